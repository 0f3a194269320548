"""Which `endpoint` URLs the sink may be pointed at (SPEC: endpoint URLs are checked).

Cloud metadata and link-local addresses are refused always, by literal address and by every address the
host name resolves to (an IPv4 address carried inside an IPv6 one, IPv4-mapped, 6to4 or Teredo, is checked as
well). Plain http and every address that is not global (loopback, private, carrier-grade NAT 100.64.0.0/10,
documentation and benchmarking ranges...) are refused unless the operator allows them (the local runtime does).
A name that does not resolve is refused.

The check runs on create and update (`check`), and in the sink before every connection: the store clients
resolve the name for each new connection, check every address (`addresses`) and connect to one of the checked
addresses (adapters/store_http.py), so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot lead anywhere else. The resolver is injectable; this module never opens a connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from spool.domain.errors import InvalidInput

Resolver = Callable[[str], list[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ENDPOINT_FIELD = "storageConfig.endpoint"
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}
_ALWAYS_REFUSED = [
    ipaddress.ip_network("169.254.0.0/16"),  # link-local, incl. 169.254.169.254 (EC2/ECS metadata)
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::/32"),  # EC2 IPv6 metadata (fd00:ec2::254)
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("0.0.0.0/8"),
]


def resolve(host: str) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order of preference, each once; [] if none."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _carried(address: Address) -> list[Address]:
    """The address to judge, and any IPv4 address it carries: an IPv4-mapped IPv6 address is its IPv4 address
    (`::ffff:10.0.0.1` is 10.0.0.1); 6to4 and Teredo addresses are judged with the IPv4 address inside."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    inside = [address.sixtofour] if address.sixtofour is not None else []
    if address.teredo is not None:
        inside.append(address.teredo[1])
    return [address, *inside]


@dataclass(frozen=True)
class UrlPolicy:
    allow_insecure: bool = False
    resolver: Resolver = resolve

    def check(self, url: str, field: str = ENDPOINT_FIELD, *, resolve: bool = True) -> str:
        """Return the URL normalised (no trailing slash) or raise `InvalidInput` naming `field`.

        `resolve=False` checks all but the name's addresses (a literal address is still checked): the sink's
        store clients check those before every connection instead (`addresses`)."""
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
        if resolve or _literal(parts.hostname) is not None:
            self.addresses(parts.hostname, field)
        else:
            _refuse_metadata_name(parts.hostname, field)
        return url.rstrip("/")

    def addresses(self, host: str, field: str = ENDPOINT_FIELD) -> list[str]:
        """The addresses to connect to for `host`, each checked: a literal address itself, else every address
        the resolver answers, in its order. Raises `InvalidInput` naming `field` if the name does not resolve
        or any one address is refused (one bad address among good ones refuses the name)."""
        literal = _literal(host)
        if literal is not None:
            found = [literal]
        else:
            _refuse_metadata_name(host, field)
            found = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolver(_name(host))]
            if not found:
                raise InvalidInput("does not resolve to any address", field=field)
        for address in found:
            self._check_address(address, field)
        return [str(address) for address in found]

    def _check_address(self, address: Address, field: str) -> None:
        judged = _carried(address)
        for one in judged:
            if any(one in net for net in _ALWAYS_REFUSED) or one.is_link_local:
                raise InvalidInput("points at a link-local or cloud metadata address", field=field)
            if one.is_unspecified or one.is_multicast or (one.is_reserved and not one.is_loopback):
                raise InvalidInput("points at an address that cannot be a store", field=field)
        if not self.allow_insecure and not all(one.is_global for one in judged):
            raise InvalidInput("points at a loopback or private address (not allowed by this deployment)", field=field)


def _name(host: str) -> str:
    return host.rstrip(".").lower()


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _refuse_metadata_name(host: str, field: str) -> None:
    if _name(host) in _METADATA_HOSTS:
        raise InvalidInput("points at a cloud metadata service", field=field)
