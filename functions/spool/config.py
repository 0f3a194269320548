"""Configuration: pydantic models parsed once from environment variables, failing loudly at cold start.

These models are the one definition of every function's environment variable: the alias of a field is its
name. The CDK app writes a function's environment with `environment(...)` (by field name), the local runtime
builds the models directly, and in Lambda the handler modules parse them when they load
(handlers/wiring.py:COLD_START_SETTINGS)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field

from spool.domain import limits


class EnvSettings(BaseModel):
    """Settings read from environment variables: each field's alias is its variable's name."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls.model_validate(dict(os.environ if environ is None else environ))

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets `field`."""
        alias = cls.model_fields[field].alias
        assert alias is not None, f"{cls.__name__}.{field} has no environment variable"
        return alias

    def as_environment(self) -> dict[str, str]:
        """These settings as environment variables (the unset optional ones left out)."""
        values = {name: value for name, value in self if value is not None}
        return self.environment(**values)

    @classmethod
    def environment(cls, **values: str | float | bool) -> dict[str, str]:
        """The environment variables that give these field values (booleans as `true`/`false`), e.g. for a
        Lambda function's environment; an unknown field name is an error. Values are not validated: the CDK
        app passes tokens that resolve at deploy time."""
        return {
            cls.env_name(name): str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in values.items()
        }


class VerifySettings(EnvSettings):
    """The verify function's (handlers/verify.py), and what every function shares: the table and the stores' rules."""

    table_name: Annotated[str, Field(alias="SPOOL_TABLE_NAME", min_length=1)]
    # Plain http, loopback and private store endpoints (the local runtime and self-hosted stores).
    allow_insecure_endpoints: Annotated[bool, Field(alias="SPOOL_ALLOW_INSECURE_ENDPOINTS")] = False
    # Root directory for provider `local`; unset means the provider is refused.
    local_root: Annotated[str | None, Field(alias="SPOOL_LOCAL_ROOT")] = None


class CommonSettings(VerifySettings):
    queue_url: Annotated[str, Field(alias="SPOOL_QUEUE_URL", min_length=1)]


class ApiSettings(CommonSettings):
    kms_key_id: Annotated[str, Field(alias="SPOOL_KMS_KEY_ID", min_length=1)]
    pepper_secret_id: Annotated[str, Field(alias="SPOOL_PEPPER_SECRET_ID", min_length=1)]
    dlq_url: Annotated[str, Field(alias="SPOOL_DLQ_URL", min_length=1)]
    # The verify function the API invokes for `verify`, so credentials are decrypted only where the sink's role is.
    verify_function_name: Annotated[str, Field(alias="SPOOL_VERIFY_FUNCTION_NAME", min_length=1)]
    # The sink's role: the principal a tenant's role must trust (GET /api/v1/endpoints/{id}/aws-role).
    sink_role_arn: Annotated[str, Field(alias="SPOOL_SINK_ROLE_ARN", min_length=1)]
    idempotency_seconds: Annotated[int, Field(alias="SPOOL_IDEMPOTENCY_SECONDS", ge=60)] = 3600
    # How long the endpoints ingest routes to are trusted (domain/ingest.py: RoutingCache); 0 reads them per request.
    routing_cache_seconds: Annotated[float, Field(alias="SPOOL_ROUTING_CACHE_SECONDS", ge=0, le=60)] = (
        limits.ROUTING_CACHE_SECONDS
    )
    # Whether the sink writes Parquet (the stack's `parquet` setting puts pyarrow into the sink's asset
    # only). Unset: whether pyarrow is installed in this process (the local runtime).
    parquet: Annotated[bool | None, Field(alias="SPOOL_PARQUET")] = None


class SinkSettings(CommonSettings):
    # Spool's own bucket for held-back lines (adapters/staging.py).
    staging_bucket: Annotated[str, Field(alias="SPOOL_STAGING_BUCKET", min_length=1)]
    endpoint_cache_seconds: Annotated[float, Field(alias="SPOOL_ENDPOINT_CACHE_SECONDS", ge=0)] = (
        limits.ENDPOINT_CACHE_SECONDS
    )
    retry_base_seconds: Annotated[int, Field(alias="SPOOL_RETRY_BASE_SECONDS", ge=1)] = limits.RETRY_BASE_SECONDS
    retry_max_seconds: Annotated[int, Field(alias="SPOOL_RETRY_MAX_SECONDS", ge=1, le=43_200)] = (
        limits.RETRY_MAX_SECONDS
    )
    # The event source mapping's batching window: a flush trigger is sent this much early, so the window is
    # spent before the flush time and not after it (domain/delivery.py).
    batching_window_seconds: Annotated[float, Field(alias="SPOOL_BATCHING_WINDOW_SECONDS", ge=0, le=300)] = 0.0
