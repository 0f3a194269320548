"""Composition root: builds each function's services from its settings and a boto3 session, and nothing else.

Every AWS client of a function comes from its session (one per function: that is how the local runtime and the
grant check attribute calls to a function's role) and is kept in the result's `clients`, which is where tests
inject faults. The Lambda entry points build once per process, on first use, so importing a handler module
creates no clients and tests can pass services of their own (`make_handler`). In Lambda the settings are
parsed when this module loads (`COLD_START_SETTINGS`): a missing or bad variable fails the init phase, not
the first request.

Each builder imports its own function's adapters and domain services when it runs, so loading the api does
not load the sink's delivery code and store clients, nor loading the sink the api's ingest and key checks
(make bench, B3).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import TYPE_CHECKING, Any

from spool.config import ApiSettings, SinkSettings, VerifySettings
from spool.names import API_FUNCTION, SINK_FUNCTION, VERIFY_FUNCTION

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

    from spool.adapters.idempotency import IdempotentIngest
    from spool.adapters.stores import Stores
    from spool.domain.delivery import Sink
    from spool.domain.endpoints import EndpointService
    from spool.domain.ports import Redriver
    from spool.domain.tenants import Tenants
    from spool.domain.verification import Verification


@dataclass(frozen=True)
class ApiClients:
    """The api function's AWS clients, as its services use them."""

    dynamodb: Any
    sqs: Any
    kms: Any
    secretsmanager: Any
    lambda_: Any


@dataclass(frozen=True)
class SinkClients:
    """The sink function's AWS clients (its role's), as its services use them. Store clients are not here:
    they sign with each endpoint's own credentials (adapters/stores.py builds them)."""

    dynamodb: Any
    sqs: Any
    kms: Any
    s3: Any
    sts: Any


@dataclass(frozen=True)
class VerifyClients:
    """The verify function's AWS clients: read the endpoint, decrypt its credentials, assume a tenant's role."""

    dynamodb: Any
    kms: Any
    sts: Any


@dataclass
class ApiServices:
    tenants: Tenants
    endpoints: EndpointService
    ingest: IdempotentIngest
    verification: Verification
    redriver: Redriver
    clients: ApiClients | None = None


@dataclass
class SinkServices:
    sink: Sink
    # The delivery stores (the sink's store factory) and the sink's clients.
    stores: Stores | None = None
    clients: SinkClients | None = None


@dataclass
class VerifyServices:
    endpoints: EndpointService
    # Verify's stores: stricter than delivery's (adapters/stores.py, `verifying`).
    stores: Stores
    clients: VerifyClients | None = None


def _clients[C](kind: type[C], session: boto3.session.Session, **configs: Config) -> C:
    """One client per field of `kind`, named for its service (`lambda_`: lambda), from `session`."""
    return kind(**{f.name: session.client(f.name.rstrip("_"), config=configs.get(f.name)) for f in fields(kind)})  # type: ignore[arg-type,call-overload]


def _new_session() -> boto3.session.Session:
    """A session of the function's own credentials and region. boto3 is imported here, when a builder first
    runs (the first request, or before a SnapStart snapshot: handlers/snapstart.py), not when a handler module
    loads."""
    import boto3

    return boto3.session.Session()


def build_tenants(dynamodb: Any, secretsmanager: Any, table_name: str, pepper_secret_id: str) -> Tenants:
    """Tenants and their API keys over the Spool table and the pepper: the api's, the admin CLI's and the local
    runtime's (which creates the dev tenant)."""
    from spool.adapters.pepper import pepper_loader
    from spool.adapters.tenant_table import DynamoTenants
    from spool.domain.tenants import Tenants

    return Tenants(DynamoTenants(dynamodb, table_name), pepper_loader(pepper_secret_id, secretsmanager))


def build_api(settings: ApiSettings, session: boto3.session.Session | None = None) -> ApiServices:
    """The api function's services; every client comes from `session` (default: a new one)."""
    from spool.adapters.endpoint_table import DynamoEndpoints
    from spool.adapters.idempotency import IdempotentIngest, table_records
    from spool.adapters.kms import KmsCipher
    from spool.adapters.redrive import ScanLease, SqsRedriver
    from spool.adapters.sqs_queue import SqsQueue
    from spool.adapters.status_table import DynamoStatus
    from spool.adapters.verifier import INVOKE_CONFIG, LambdaVerifier
    from spool.adapters.verify_rate import DynamoRateGate
    from spool.domain import limits
    from spool.domain.cache import TtlCache
    from spool.domain.endpoints import EndpointService
    from spool.domain.ingest import Ingest, RoutingCache
    from spool.domain.urlpolicy import UrlPolicy
    from spool.domain.verification import Verification

    session = session or _new_session()
    clients = _clients(ApiClients, session, lambda_=INVOKE_CONFIG)
    endpoints = RoutingCache(
        DynamoEndpoints(clients.dynamodb, settings.table_name),
        TtlCache(limits.ROUTING_CACHE_TENANTS, settings.routing_cache_seconds),
    )
    service = EndpointService(
        endpoints,
        KmsCipher(clients.kms, settings.kms_key_id),
        UrlPolicy(allow_insecure=settings.allow_insecure_endpoints),
        settings.local_root,
        sink_role_arn=settings.sink_role_arn,
        parquet=settings.parquet,
        status=DynamoStatus(clients.dynamodb, settings.table_name),
    )
    return ApiServices(
        tenants=build_tenants(clients.dynamodb, clients.secretsmanager, settings.table_name, settings.pepper_secret_id),
        endpoints=service,
        ingest=IdempotentIngest(
            Ingest(endpoints, SqsQueue(clients.sqs, settings.queue_url)),
            table_records(clients.dynamodb, settings.table_name),
            settings.idempotency_seconds,
        ),
        verification=Verification(
            service,
            DynamoRateGate(clients.dynamodb, settings.table_name),
            LambdaVerifier(clients.lambda_, settings.verify_function_name),
        ),
        redriver=SqsRedriver(
            clients.sqs, settings.dlq_url, settings.queue_url, ScanLease(clients.dynamodb, settings.table_name)
        ),
        clients=clients,
    )


def build_sink(
    settings: SinkSettings, session: boto3.session.Session | None = None, *, amazon_s3_url: str | None = None
) -> SinkServices:
    """The sink function's services; every client of the role comes from `session` (default: a new one).
    Store clients use the endpoint's own credentials and never the session (adapters/stores.py); a tenant's
    role is assumed with the session's STS client (adapters/role_session.py), so AssumeRole is the sink role's
    call. `amazon_s3_url`: where endpoints without an `endpoint` are written (None: Amazon S3; the local
    runtime's emulator)."""
    from spool.adapters.endpoint_table import DynamoEndpoints
    from spool.adapters.kms import KmsCipher
    from spool.adapters.leases import DynamoLeases
    from spool.adapters.ledger import DynamoLedger
    from spool.adapters.sqs_triggers import SqsTriggers
    from spool.adapters.sqs_visibility import SqsVisibility
    from spool.adapters.staging import S3Staging
    from spool.adapters.status_table import DynamoStatus
    from spool.adapters.stores import STS_CLIENT_CONFIG, Stores
    from spool.domain.delivery import LEASE_PATIENCE_SECONDS, EndpointDirectory, Sink
    from spool.domain.urlpolicy import UrlPolicy

    session = session or _new_session()
    clients = _clients(SinkClients, session, sts=STS_CLIENT_CONFIG)
    endpoints = DynamoEndpoints(clients.dynamodb, settings.table_name)
    status = DynamoStatus(clients.dynamodb, settings.table_name)
    cipher = KmsCipher(clients.kms)
    policy = UrlPolicy(allow_insecure=settings.allow_insecure_endpoints)
    stores = Stores(policy, settings.local_root, sts=clients.sts, amazon_s3_url=amazon_s3_url)
    return SinkServices(
        sink=Sink(
            directory=EndpointDirectory(endpoints, cipher, stores, ttl=settings.endpoint_cache_seconds),
            status=status,
            visibility=SqsVisibility(clients.sqs, settings.queue_url),
            staging=S3Staging(clients.s3, settings.staging_bucket),
            triggers=SqsTriggers(clients.sqs, settings.queue_url),
            leases=DynamoLeases(clients.dynamodb, settings.table_name),
            ledger=DynamoLedger(clients.dynamodb, settings.table_name),
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            trigger_lead_seconds=settings.batching_window_seconds,
            lease_patience_seconds=LEASE_PATIENCE_SECONDS,
        ),
        stores=stores,
        clients=clients,
    )


def build_verify(
    settings: VerifySettings, session: boto3.session.Session | None = None, *, amazon_s3_url: str | None = None
) -> VerifyServices:
    """The verify function's services: the endpoint's item, its credentials decrypted, the probe through verify's
    stores (a tenant's role assumed with the session's STS client, as the sink does)."""
    from spool.adapters.endpoint_table import DynamoEndpoints
    from spool.adapters.kms import KmsCipher
    from spool.adapters.stores import STS_CLIENT_CONFIG, VERIFY_CLIENT_CONFIG, Stores
    from spool.domain.endpoints import EndpointService
    from spool.domain.urlpolicy import UrlPolicy

    session = session or _new_session()
    clients = _clients(VerifyClients, session, sts=STS_CLIENT_CONFIG)
    policy = UrlPolicy(allow_insecure=settings.allow_insecure_endpoints)
    return VerifyServices(
        endpoints=EndpointService(
            DynamoEndpoints(clients.dynamodb, settings.table_name), KmsCipher(clients.kms), policy, settings.local_root
        ),
        stores=Stores(
            policy,
            settings.local_root,
            VERIFY_CLIENT_CONFIG,
            sts=clients.sts,
            verifying=True,
            amazon_s3_url=amazon_s3_url,
        ),
        clients=clients,
    )


_SETTINGS_OF_HANDLER: dict[str, type[ApiSettings] | type[SinkSettings] | type[VerifySettings]] = {
    API_FUNCTION.handler: ApiSettings,
    SINK_FUNCTION.handler: SinkSettings,
    VERIFY_FUNCTION.handler: VerifySettings,
}


def lambda_settings(environ: Mapping[str, str]) -> ApiSettings | SinkSettings | VerifySettings | None:
    """In a Lambda function running one of Spool's handlers (Lambda names it in `_HANDLER`), that function's
    settings, parsed now (a missing or invalid variable raises); None anywhere else (tests, bench, the local
    runtime, which pass settings of their own)."""
    if "AWS_LAMBDA_FUNCTION_NAME" not in environ:
        return None
    model = _SETTINGS_OF_HANDLER.get(environ.get("_HANDLER", ""))
    return model.from_env(environ) if model is not None else None


COLD_START_SETTINGS = lambda_settings(os.environ)


@cache
def api_services() -> ApiServices:
    settings = COLD_START_SETTINGS if isinstance(COLD_START_SETTINGS, ApiSettings) else ApiSettings.from_env()
    return build_api(settings)


@cache
def sink_services() -> SinkServices:
    settings = COLD_START_SETTINGS if isinstance(COLD_START_SETTINGS, SinkSettings) else SinkSettings.from_env()
    return build_sink(settings)


@cache
def verify_services() -> VerifyServices:
    # Exactly VerifySettings: the api's and the sink's settings are subclasses of it.
    settings = COLD_START_SETTINGS if type(COLD_START_SETTINGS) is VerifySettings else VerifySettings.from_env()
    return build_verify(settings)
