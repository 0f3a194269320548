"""Which `endpoint` URLs the sink may be pointed at (SPEC: endpoint URLs are checked).

Cloud metadata and link-local addresses are refused always, by literal address and by every address the
host name resolves to. Plain http, loopback and private addresses are refused unless the operator allows
them (the local runtime does). The check runs on create/update and again in the sink before connecting,
so a DNS answer that changes later is caught too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from spool.domain.errors import InvalidInput

Resolver = Callable[[str], list[str]]

_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}
_ALWAYS_REFUSED = [
    ipaddress.ip_network("169.254.0.0/16"),  # link-local, incl. 169.254.169.254 (EC2/ECS metadata)
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::/32"),  # EC2 IPv6 metadata (fd00:ec2::254)
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("0.0.0.0/8"),
]


def resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class UrlPolicy:
    allow_insecure: bool = False
    resolver: Resolver = resolve

    def check(self, url: str, field: str = "storageConfig.endpoint") -> str:
        """Return the URL normalised (no trailing slash) or raise `InvalidInput` naming `field`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidInput("must be an absolute http(s) URL", field=field) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("must be an absolute http(s) URL", field=field)
        if parts.username or parts.password:
            raise InvalidInput("must not carry credentials; use accessKeyId/secretAccessKey", field=field)
        if parts.query or parts.fragment:
            raise InvalidInput("must not have a query or fragment", field=field)
        if parts.scheme == "http" and not self.allow_insecure:
            raise InvalidInput("must use https (plain http is not allowed by this deployment)", field=field)
        if port == 0:
            raise InvalidInput("has an invalid port", field=field)
        host = parts.hostname.rstrip(".").lower()
        if host in _METADATA_HOSTS:
            raise InvalidInput("points at a cloud metadata service", field=field)
        self._check_addresses(host, field)
        return url.rstrip("/")

    def _check_addresses(self, host: str, field: str) -> None:
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            # A name that does not resolve (yet) points nowhere; it is accepted here and checked again in the
            # sink right before each connection, where it must resolve to an allowed address.
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(host)]
        for address in addresses:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if any(address in net for net in _ALWAYS_REFUSED) or address.is_link_local:
                raise InvalidInput("points at a link-local or cloud metadata address", field=field)
            if address.is_unspecified or address.is_multicast or (address.is_reserved and not address.is_loopback):
                raise InvalidInput("points at an address that cannot be a store", field=field)
            if (address.is_loopback or address.is_private) and not self.allow_insecure:
                raise InvalidInput(
                    "points at a loopback or private address (not allowed by this deployment)", field=field
                )
