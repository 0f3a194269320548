"""The `StoreFactory`: an endpoint's object store, built from its settings and decrypted credentials.

One builder per provider (`BUILDERS`, keyed by the names of domain/providers.py's `PROVIDERS`; a test holds the
two tables to the same names): s3_store.py (S3 and S3-compatible, through boto3), local_store.py (a directory).
An S3 endpoint signs with the tenant's access keys, or, on Amazon S3, with a role of the tenant's that the sink
assumes (role_session.py). The clients' botocore configs are here, with the one place that builds store clients.
Every store client, and the sink's STS client, has a total deadline on each call and, for a store at a custom
`endpoint`, connections pinned to addresses the endpoint policy checked (store_http.py); the figures are
domain/limits.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import boto3
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config

from spool.adapters.local_store import LocalStore
from spool.adapters.role_session import RoleSession, TrustChecks
from spool.adapters.s3_store import S3Store, Where, put_options
from spool.adapters.store_http import CallSeconds, body_seconds, fixed_seconds, with_deadlines
from spool.domain import limits
from spool.domain.credentials import Credentials, RoleToAssume
from spool.domain.errors import InvalidInput, StoreError
from spool.domain.ports import ObjectStore
from spool.domain.providers import takes_role
from spool.domain.storage import StorageSettings
from spool.domain.urlpolicy import UrlPolicy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Delivery's store clients: each call has a total deadline (limits.store_call_seconds) that covers these
# attempts; the connect and read timeouts bound one attempt's silences within it. `total_max_attempts` counts the
# first attempt (botocore's `max_attempts` counts retries only). Checksums only when S3 requires one or Spool sends
# its own: every put carries the endpoint's (SHA-256 or Content-MD5, s3_store.py), and boto3's default would add a
# CRC32 that some S3-compatible stores refuse.
SINK_CLIENT_CONFIG = Config(
    connect_timeout=limits.STORE_CONNECT_SECONDS,
    read_timeout=limits.STORE_READ_SECONDS,
    retries={"total_max_attempts": limits.STORE_ATTEMPTS, "mode": "standard"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)
# Verification answers an API call (API Gateway waits 30 s at most): one attempt, limits.VERIFY_CALL_SECONDS.
VERIFY_CLIENT_CONFIG = SINK_CLIENT_CONFIG.merge(Config(retries={"total_max_attempts": 1, "mode": "standard"}))
# The sink's AssumeRole calls: a store's attempts and timeouts, within limits.STS_CALL_SECONDS per call.
STS_CLIENT_CONFIG = Config(
    connect_timeout=limits.STORE_CONNECT_SECONDS,
    read_timeout=limits.STORE_READ_SECONDS,
    retries={"total_max_attempts": limits.STORE_ATTEMPTS, "mode": "standard"},
)


class Stores:
    """The `StoreFactory`: builds a client for an endpoint's settings, checking its URL again first.

    Access keys sign with a client of their own; a role gets a botocore session of its own whose only
    credentials are the role's (assumed through `sts`, the sink's own STS client, so the call is the sink
    role's). Both share one loader, so the service models are read once per process.

    Every call of a store client has a total deadline (delivery: `limits.store_call_seconds` of its body;
    verify: `limits.VERIFY_CALL_SECONDS`), and so has every call of `sts` (`limits.STS_CALL_SECONDS`: the
    client given is equipped here). A store at a custom `endpoint` connects only to addresses `url_policy`
    checked, resolved again for every new connection.

    A role's trust policy must refuse an ExternalId other than the endpoint's: delivery probes it on the first
    assume of each role and ExternalId in the process and remembers the verdict (`TrustChecks`); verify probes
    every time. `verifying` (verify's stores) also names a region S3 redirects from rather than follow it."""

    def __init__(
        self,
        url_policy: UrlPolicy,
        local_root: str | None,
        config: Config = SINK_CLIENT_CONFIG,
        sts: Any = None,
        *,
        verifying: bool = False,
        amazon_s3_url: str | None = None,
    ) -> None:
        self._policy = url_policy
        # Where an endpoint without an `endpoint` is written: Amazon S3 (None), or the local runtime's emulator.
        # Public: a test may put a proxy in front of it; stores built from then on go through it.
        self.amazon_s3_url = amazon_s3_url
        # What a call builds the store with; a test may wrap it (to watch every write), stores built from then
        # on go through the wrapper.
        self.build: Callable[[StorageSettings, Credentials | None], ObjectStore] = self.make
        self._local_root = local_root
        self._config = config
        self._sts = sts if sts is None else with_deadlines(sts, fixed_seconds(limits.STS_CALL_SECONDS), what="AWS STS")
        self._verifying = verifying
        self._trust = TrustChecks()
        self._call_seconds: CallSeconds = (
            fixed_seconds(limits.VERIFY_CALL_SECONDS) if verifying else body_seconds(limits.store_call_seconds)
        )
        self._botocore = botocore.session.get_session()
        self._session = boto3.session.Session(botocore_session=self._botocore)
        # The first S3 client of a botocore session loads and builds the S3 model, endpoint rules and client
        # class; the later ones are cheap (docs/benchmarks.md, "Measurements behind the code"). Made here, at cold
        # start (Lambda's init phase), so an invocation never pays it. The client is unsigned (no credentials
        # looked up), makes no call and is dropped.
        self._session.client("s3", region_name="us-east-1", config=Config(signature_version=UNSIGNED))

    def __call__(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore:
        return self.build(settings, credentials)

    def make(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore:
        """A store for the endpoint's settings and credentials, by its provider's builder."""
        return BUILDERS[settings.provider](self, settings, credentials)

    def _local_store(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore:
        if self._local_root is None:
            raise StoreError("provider local is not enabled in this deployment")
        return LocalStore(self._local_root, settings.bucket)

    def _s3_store(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore:
        if credentials is None:
            raise StoreError("no credentials configured")
        endpoint_url = None
        if settings.endpoint:
            try:
                # The name's addresses are checked by the client's connections, each time one is opened.
                endpoint_url = self._policy.check(settings.endpoint, resolve=False)
            except InvalidInput as exc:
                raise StoreError(f"endpoint refused: {exc.message}") from None
        config = self._config.merge(Config(s3={"addressing_style": "path" if endpoint_url else "auto"}))
        where = Where(settings.bucket, settings.prefix, settings.region)
        if credentials.role is not None:
            return self._role_store(settings, credentials.role, config, where)
        assert credentials.accessKeyId is not None  # Credentials holds both keys or a role
        assert credentials.secretAccessKey is not None
        client = self._session.client(
            "s3",
            region_name=settings.region,
            endpoint_url=endpoint_url or self.amazon_s3_url,
            aws_access_key_id=credentials.accessKeyId.get_secret_value(),
            aws_secret_access_key=credentials.secretAccessKey.get_secret_value(),
            config=config,
        )
        pinned = self._policy.addresses if endpoint_url else None
        return S3Store(
            with_deadlines(client, self._call_seconds, what="store", addresses=pinned),
            settings.bucket,
            credentials,
            where=where,
            verifying=self._verifying,
            put_options=put_options(settings),
            checksum=settings.checksum,
        )

    def _role_store(self, settings: StorageSettings, role: RoleToAssume, config: Config, where: Where) -> S3Store:
        if not takes_role(settings):
            raise StoreError("roleArn is for Amazon S3 only, not for a store at an endpoint")
        if self._sts is None:
            raise StoreError("this deployment cannot assume roles")
        assumed = RoleSession(self._sts, role)
        if self._verifying:
            assumed.check_external_id_required()
        else:
            self._trust.check(role, assumed.external_id_required)
        session = assumed.botocore_session(self._botocore.get_component("data_loader"))
        client = cast(
            "S3Client",
            session.create_client("s3", region_name=settings.region, endpoint_url=self.amazon_s3_url, config=config),
        )
        return S3Store(
            with_deadlines(client, self._call_seconds, what="store"),
            settings.bucket,
            where=replace(where, role_arn=role.roleArn),
            hidden=assumed.issued,
            verifying=self._verifying,
            put_options=put_options(settings),
            checksum=settings.checksum,
        )


# Each provider's builder (domain/providers.py names them): a store for the endpoint's settings and credentials.
BUILDERS: dict[str, Callable[[Stores, StorageSettings, Credentials | None], ObjectStore]] = {
    "s3": Stores._s3_store,
    "local": Stores._local_store,
}
