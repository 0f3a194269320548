"""Endpoint verification: a function of its own (the api's code asset, handlers/verify.py) that the api invokes, so
a reserved concurrency caps the probes that run at once and its timeout bounds each."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from spool import names as shared
from spool.config import VerifySettings
from spool.domain import limits
from spool_infra.ingest import IngestSink
from spool_infra.lambdas import FunctionSpec, SpoolFunction
from spool_infra.settings import Settings
from spool_infra.state import State

# The probe's total deadline and a margin (domain/limits.py); the api's Lambda client waits this and a cold start.
VERIFY_TIMEOUT = Duration.seconds(limits.VERIFY_TIMEOUT_SECONDS)
VERIFY_MEMORY_MB = 512
VERIFY_SPEC = FunctionSpec(
    shared.VERIFY_FUNCTION, "Spool verify: a probe object written and removed", VERIFY_TIMEOUT, VERIFY_MEMORY_MB
)


class Verify(Construct):
    """The verify function. It runs with the sink's role, which already reads endpoints, decrypts their
    credentials with the encryption context and assumes tenants' roles under Spool's conditions, and is the
    principal every tenant's role trusts: a role of its own would have to be trusted by every tenant's role too,
    a change of the trust policies tenants have deployed (docs/infrastructure.md, Permissions)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        state: State,
        ingest: IngestSink,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = VerifySettings.environment(
            table_name=state.table.table_name, allow_insecure_endpoints=settings.allow_insecure_endpoints
        )
        self.function = SpoolFunction(
            self,
            "Function",
            VERIFY_SPEC,
            settings=settings,
            code=code,
            environment=environment,
            role=ingest.sink.role,
            reserved_concurrency=settings.verify_reserved_concurrency,
        )
