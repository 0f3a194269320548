"""Storage providers, one table entry each (SPEC: storageConfig.provider; docs/api.md, Providers).

Like encoding.py's `FORMATS`, `PROVIDERS` keeps one entry per provider that says everything the domain knows of it:
its name and URL scheme, what it calls a bucket, the `storageConfig` fields of its own it takes (every other
provider's are refused with a 422 naming the field), which of them it requires, the kinds of credentials it signs
with, and the checks it needs from the deployment. Every other module asks this table: the API model
(`storageConfig.provider`), the endpoint rules (domain/endpoints.py), the endpoint's URL (`storage_url`,
`parse_storage_url`). The store of each provider is built by the adapter of the same name (adapters/stores.py,
`BUILDERS`; tests/unit/test_providers.py holds the two tables to the same names). Pure: no AWS, no I/O but the
local root's check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from spool.domain.errors import InvalidInput
from spool.domain.paths import check_local_target

# What an endpoint signs its store requests with: the tenant's access keys, or a role of the tenant's that the sink
# assumes with the endpoint's ExternalId (domain/roles.py). A provider with neither signs with nothing.
Credential = Literal["keys", "role"]
CREDENTIAL_FIELDS: dict[Credential, tuple[str, ...]] = {
    "keys": ("accessKeyId", "secretAccessKey"),
    "role": ("roleArn",),
}


class Destination(Protocol):
    """What the providers' rules read of an endpoint's storage settings (a request's, or the stored ones)."""

    @property
    def provider(self) -> str: ...
    @property
    def bucket(self) -> str | None: ...
    @property
    def prefix(self) -> str: ...
    @property
    def endpoint(self) -> str | None: ...


def _always(settings: Destination) -> bool:
    return True


def _no_check(settings: Destination, local_root: str | None) -> None:
    return None


@dataclass(frozen=True)
class Provider:
    """A storage provider: everything the domain knows of it."""

    name: str
    scheme: str  # the endpoint URL's: {scheme}://{bucket}/{prefix}
    bucket: str  # what the provider's `bucket` is, for messages ("bucket", "directory")
    settings: tuple[str, ...]  # the storageConfig fields of its own it takes, beside the shared ones
    required: tuple[str, ...]  # of those, the ones it cannot do without
    credentials: tuple[Credential, ...]  # what it may sign with; () for nothing
    # Of its settings, those that say which store the data goes to (besides provider and bucket): access keys are
    # the tenant's for one store, so a change of one of these must give them again (domain/endpoints.py).
    destination: tuple[str, ...] = ()
    # For which settings a role may stand in for keys (Amazon S3 itself, not an S3-compatible store), and what the
    # 422 on a roleArn says where it may not.
    role_when: Callable[[Destination], bool] = _always
    role_refused: str = ""
    # Its checks that need the deployment (the local root); raise InvalidInput naming the field.
    check: Callable[[Destination, str | None], None] = _no_check

    @property
    def fields(self) -> frozenset[str]:
        """Every storageConfig field of its own it takes: its settings and its credentials' fields."""
        return frozenset(self.settings).union(*(CREDENTIAL_FIELDS[kind] for kind in self.credentials))

    def signs_with(self, settings: Destination) -> tuple[Credential, ...]:
        """The kinds of credentials an endpoint with these settings may sign with."""
        return tuple(kind for kind in self.credentials if kind != "role" or self.role_when(settings))


def _amazon_s3(settings: Destination) -> bool:
    return settings.endpoint is None


def _local_check(settings: Destination, local_root: str | None) -> None:
    if local_root is None:
        raise InvalidInput("provider local is not enabled in this deployment", field="storageConfig.provider")
    check_local_target(local_root, settings.bucket or "", settings.prefix)


PROVIDERS: dict[str, Provider] = {
    # Amazon S3, or any S3-compatible store at `endpoint` (MinIO, SeaweedFS, LocalStack, Spaces, B2).
    "s3": Provider(
        "s3",
        scheme="s3",
        bucket="bucket",
        settings=("region", "endpoint", "serverSideEncryption", "kmsKeyId", "storageClass", "checksum"),
        required=("region",),
        credentials=("keys", "role"),
        destination=("region", "endpoint"),
        role_when=_amazon_s3,
        role_refused="is for Amazon S3 only; an S3-compatible store (endpoint) takes accessKeyId and secretAccessKey",
    ),
    # A directory below the deployment's local root (self-hosted runs and dev): `bucket` names the directory.
    "local": Provider(
        "local", scheme="local", bucket="directory", settings=(), required=(), credentials=(), check=_local_check
    ),
}
# Every storageConfig field that some provider owns: a request that sets one its provider does not take is refused.
PROVIDER_FIELDS = frozenset().union(*(provider.fields for provider in PROVIDERS.values()))
_URL_FORMS = " or ".join(f"{p.scheme}://{{{p.bucket}}}/{{prefix}}" for p in PROVIDERS.values())


def takes_role(settings: Destination) -> bool:
    """Whether a role may stand in for access keys (and the endpoint gets an ExternalId, domain/roles.py)."""
    return "role" in PROVIDERS[settings.provider].signs_with(settings)


def storage_url(settings: Destination) -> str:
    """The endpoint's URL from its storage settings: `{scheme}://{bucket}/{prefix}`."""
    return f"{PROVIDERS[settings.provider].scheme}://{settings.bucket}/{settings.prefix}"


def parse_storage_url(url: str) -> tuple[str, str, str]:
    """`s3://bucket/prefix` -> (provider, bucket, prefix); raises `InvalidInput` on `url`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidInput(f"must be {_URL_FORMS}", field="url") from None
    provider = next((p.name for p in PROVIDERS.values() if p.scheme == parts.scheme), None)
    if provider is None or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(f"must be {_URL_FORMS}", field="url")
    return provider, parts.netloc, parts.path.removeprefix("/")
