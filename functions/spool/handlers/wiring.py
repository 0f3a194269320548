"""Composition root: builds the domain services with their AWS adapters from a settings object and a boto3
session (one per function: every AWS call a function makes goes through its session, which is how the local
runtime and the grant check attribute calls to a function's role). The Lambda entry points build once per
process (first use), so importing a handler module creates no clients and tests can swap in fakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from spool.adapters.dynamo import DynamoRepository
from spool.adapters.idempotency import IdempotentIngest
from spool.adapters.kms import KmsCipher
from spool.adapters.sqs import SqsQueue, belonging_to, redrive
from spool.adapters.staged_items import StagedItems
from spool.adapters.staging import S3Staging
from spool.adapters.stores import STS_CLIENT_CONFIG, VERIFY_CLIENT_CONFIG, Stores
from spool.config import ApiSettings, SinkSettings
from spool.domain.delivery import EndpointDirectory, Sink
from spool.domain.endpoints import EndpointService
from spool.domain.ingest import Ingest
from spool.domain.tenants import Tenants
from spool.domain.urlpolicy import UrlPolicy

# Powertools Parameters caches the pepper; a rotated pepper is picked up within this many seconds.
PEPPER_CACHE_SECONDS = 300
# A redrive from the API stops after this long (the API function has 28 s); the answer says whether to call again.
REDRIVE_SECONDS = 20.0


class Verifier(Protocol):
    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]: ...


class Redriver(Protocol):
    def redrive(self, tenant_id: str | None, endpoint_id: str | None) -> tuple[int, bool]: ...


@dataclass
class ApiServices:
    tenants: Tenants
    endpoints: EndpointService
    ingest: IdempotentIngest
    verifier: Verifier
    redriver: Redriver


@dataclass
class SinkServices:
    sink: Sink
    endpoints: EndpointService
    verify_stores: Stores


class LambdaVerifier:
    """Runs `verify` in the sink function, the only place credentials are decrypted."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._lambda = client
        self._function = function_name

    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        response = self._lambda.invoke(
            FunctionName=self._function,
            Payload=json.dumps({"spool": "verify", "tenantId": tenant_id, "endpointId": endpoint_id}).encode(),
        )
        result: dict[str, Any] = json.loads(response["Payload"].read())
        if response.get("FunctionError"):
            return {"ok": False, "error": "verification could not run; try again later"}
        return result


class SqsRedriver:
    def __init__(self, client: Any, dlq_url: str, queue_url: str) -> None:
        self._sqs = client
        self._dlq = dlq_url
        self._queue = queue_url

    def redrive(self, tenant_id: str | None, endpoint_id: str | None) -> tuple[int, bool]:
        return redrive(
            self._sqs,
            self._dlq,
            self._queue,
            belonging_to(tenant_id, endpoint_id),
            seconds=REDRIVE_SECONDS,
        )


def pepper_loader(secret_id: str, client: Any) -> Callable[[], bytes]:
    """The API-key pepper through Powertools Parameters (cached), read with `client` (a Secrets Manager
    client of the caller's session, so its region and endpoint are the caller's, not the environment's)."""
    provider = SecretsProvider(boto3_client=client)

    def pepper() -> bytes:
        value = provider.get(secret_id, max_age=PEPPER_CACHE_SECONDS)
        if not value:
            raise RuntimeError("the API-key pepper secret is empty")
        return str(value).encode()

    return pepper


def build_api(settings: ApiSettings, session: boto3.session.Session | None = None) -> ApiServices:
    """The api function's services; every client comes from `session` (default: a new one)."""
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb")
    sqs = session.client("sqs")
    repo = DynamoRepository(dynamodb, settings.table_name)
    policy = UrlPolicy(allow_insecure=settings.allow_insecure_endpoints)
    return ApiServices(
        tenants=Tenants(repo, pepper_loader(settings.pepper_secret_id, session.client("secretsmanager"))),
        endpoints=EndpointService(
            repo,
            KmsCipher(session.client("kms"), settings.kms_key_id),
            policy,
            settings.local_root,
            sink_role_arn=settings.sink_role_arn,
            parquet=settings.parquet,
        ),
        ingest=IdempotentIngest(
            Ingest(repo, SqsQueue(sqs, settings.queue_url)),
            DynamoDBPersistenceLayer(
                table_name=settings.table_name,
                key_attr="pk",
                sort_key_attr="sk",
                static_pk_value="IDEMPOTENCY",
                expiry_attr="expiresAt",
                boto3_client=dynamodb,
            ),
            settings.idempotency_seconds,
        ),
        verifier=LambdaVerifier(session.client("lambda"), settings.sink_function_name),
        redriver=SqsRedriver(sqs, settings.dlq_url, settings.queue_url),
    )


def build_sink(settings: SinkSettings, session: boto3.session.Session | None = None) -> SinkServices:
    """The sink function's services; every client of the role comes from `session` (default: a new one).
    Store clients use the endpoint's own credentials and never the session (adapters/stores.py); a tenant's
    role is assumed with the session's STS client, so AssumeRole is the sink role's call."""
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb")
    repo = DynamoRepository(dynamodb, settings.table_name)
    cipher = KmsCipher(session.client("kms"))
    policy = UrlPolicy(allow_insecure=settings.allow_insecure_endpoints)
    sts = session.client("sts", config=STS_CLIENT_CONFIG)
    stores = Stores(policy, settings.local_root, sts=sts)
    queue = SqsQueue(session.client("sqs"), settings.queue_url)
    return SinkServices(
        sink=Sink(
            directory=EndpointDirectory(repo, cipher, stores, ttl=settings.endpoint_cache_seconds),
            repo=repo,
            visibility=queue,
            # Lines an older sink staged in DynamoDB are still read and removed (adapters/staged_items.py).
            staging=S3Staging(
                session.client("s3"), settings.staging_bucket, StagedItems(dynamodb, settings.table_name)
            ),
            triggers=queue,
            leases=repo,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            trigger_lead_seconds=settings.batching_window_seconds,
        ),
        endpoints=EndpointService(repo, cipher, policy, settings.local_root),
        verify_stores=Stores(policy, settings.local_root, VERIFY_CLIENT_CONFIG, sts=sts, verifying=True),
    )


@cache
def api_services() -> ApiServices:
    return build_api(ApiSettings.from_env())


@cache
def sink_services() -> SinkServices:
    return build_sink(SinkSettings.from_env())
