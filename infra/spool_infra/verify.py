"""Endpoint verification: a function of its own (the api's code asset, handlers/verify.py) that the api invokes, so
a reserved concurrency caps the probes that run at once and its timeout bounds each."""

from __future__ import annotations

from aws_cdk import Duration
from constructs import Construct

from spool import names as shared
from spool.config import VerifySettings
from spool.domain import limits
from spool_infra.ingest import Parts
from spool_infra.lambdas import FunctionSpec, SpoolFunction

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

    def __init__(self, scope: Construct, construct_id: str, parts: Parts) -> None:
        super().__init__(scope, construct_id)
        environment = VerifySettings.environment(
            table_name=parts.state.table.table_name, allow_insecure_endpoints=parts.settings.allow_insecure_endpoints
        )
        self.function = SpoolFunction(
            self,
            "Function",
            VERIFY_SPEC,
            settings=parts.settings,
            code=parts.code,
            environment=environment,
            role=parts.ingest.sink.role,
        )
