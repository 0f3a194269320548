"""Deployment settings: a pydantic model parsed once from CDK context (cdk.json, or `-c key=value`).

Values given with `-c` arrive as strings; pydantic's lax mode turns "500" into 500 and "true" into True.
A bad value fails `cdk synth` with the field's name instead of producing a surprising stack.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from aws_cdk import aws_logs as logs
from constructs import Node
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spool import names as shared

# CloudWatch Logs accepts only these retention periods (days).
_RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class Settings(BaseModel):
    """Every knob of the stack. Field aliases are the context keys documented in docs/infrastructure.md."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    stage: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,19}$")] = "dev"
    # Event source mapping: how many messages one sink invocation may get, and how long Lambda may wait to
    # fill a batch. Both are hints: the sink coalesces per endpoint itself (SPEC: Batching).
    batch_size: Annotated[int, Field(alias="batchSize", ge=1, le=10_000)] = 1000
    max_batching_window_seconds: Annotated[int, Field(alias="maxBatchingWindowSeconds", ge=0, le=300)] = 5
    # Most concurrent sink invocations the mapping starts; protects user stores and the account's
    # concurrency pool from a burst.
    max_concurrency: Annotated[int, Field(alias="maxConcurrency", ge=2, le=1000)] = 10
    # Reserved concurrency (docs/infrastructure.md): each function's guaranteed share of the account's Lambda
    # concurrency and its cap. The api's bounds what a flood of requests takes from the account (0: none); the
    # sink's must hold the mapping's maxConcurrency (unset: equal to it; 0: none); verify's is its cap of probes at
    # once. Lambda keeps 100 of the account's concurrency unreserved: the three together must leave that.
    api_reserved_concurrency: Annotated[int, Field(alias="apiReservedConcurrency", ge=0, le=10_000)] = 50
    sink_reserved_concurrency: Annotated[int | None, Field(alias="sinkReservedConcurrency", ge=0, le=10_000)] = None
    verify_reserved_concurrency: Annotated[int, Field(alias="verifyReservedConcurrency", ge=1, le=1000)] = 5
    log_retention_days: Annotated[int, Field(alias="logRetentionDays")] = 30
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], Field(alias="logLevel")] = "INFO"
    # Plain-http, loopback and private store endpoints: only for emulators and self-hosted stores.
    allow_insecure_endpoints: Annotated[bool, Field(alias="allowInsecureEndpoints")] = False
    # `retain` keeps the table, the credentials key and the pepper secret on `cdk destroy`.
    data_removal_policy: Annotated[Literal["retain", "destroy"], Field(alias="dataRemovalPolicy")] = "retain"
    api_rate_limit: Annotated[int, Field(alias="apiRateLimit", ge=1, le=10_000)] = 200
    api_burst_limit: Annotated[int, Field(alias="apiBurstLimit", ge=1, le=5_000)] = 400
    domain_name: Annotated[str, Field(alias="domainName")] = ""
    certificate_arn: Annotated[str, Field(alias="certificateArn")] = ""
    alarm_email: Annotated[str, Field(alias="alarmEmail")] = ""
    # Alarm when the oldest ingest message is older than this: deliveries are stuck or retrying a lot.
    oldest_message_alarm_seconds: Annotated[int, Field(alias="oldestMessageAlarmSeconds", ge=300)] = 3600
    tracing: bool = True
    # Lambda SnapStart for both functions (published versions; the event source mapping and the HTTP API call
    # the `live` alias): a new execution environment resumes from a snapshot taken after init instead of
    # importing and building everything (docs/infrastructure.md, SnapStart). False: no snapshot, the same alias.
    snap_start: Annotated[bool, Field(alias="snapStart")] = True
    # arm64 (Graviton) costs less per GB-second. x86_64 exists for emulators that run the handlers with
    # the host's interpreter (scripts/test-deployed.sh on an x86_64 machine): the wheels must match it.
    architecture: Annotated[Literal["arm64", "x86_64"], Field(alias="lambdaArchitecture")] = "arm64"
    # Parquet objects (storageConfig.format parquet): pyarrow goes into the sink's asset (most of it, against the
    # 250 MB Lambda allows: docs/delivery.md) and the api accepts Parquet endpoints. False: a smaller sink,
    # and the api answers 422 to Parquet.
    parquet: bool = True
    # False swaps the pip bundling for the raw functions/ directory: quick synths for assertion tests only.
    bundle: bool = True

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in _RETENTION:
            raise ValueError(f"must be one of {sorted(_RETENTION)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if bool(self.domain_name) != bool(self.certificate_arn):
            raise ValueError("domainName and certificateArn go together")
        if self.batch_size > 10 and self.max_batching_window_seconds < 1:
            raise ValueError("SQS batchSize above 10 needs maxBatchingWindowSeconds of at least 1")
        if self.sink_reserved_concurrency and self.sink_reserved_concurrency < self.max_concurrency:
            # Lambda would throttle the mapping's own invocations (AWS's advice for SQS event sources).
            raise ValueError("sinkReservedConcurrency must be 0 (none) or at least maxConcurrency")
        return self

    @property
    def sink_reservation(self) -> int | None:
        """The sink's reserved concurrency: maxConcurrency unless set; None for none."""
        reserved = self.max_concurrency if self.sink_reserved_concurrency is None else self.sink_reserved_concurrency
        return reserved or None

    @property
    def api_reservation(self) -> int | None:
        return self.api_reserved_concurrency or None

    def reservation(self, function: shared.Function) -> int | None:
        """The reserved concurrency of one of Spool's functions (its guaranteed share and its cap); None for none."""
        return {
            shared.API_FUNCTION: self.api_reservation,
            shared.SINK_FUNCTION: self.sink_reservation,
            shared.VERIFY_FUNCTION: self.verify_reserved_concurrency,
        }[function]

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION[self.log_retention_days]

    @property
    def retain_data(self) -> bool:
        return self.data_removal_policy == "retain"

    @classmethod
    def from_node(cls, node: Node) -> Settings:
        """Read every field's context key from the construct tree (app-level context and cdk.json)."""
        raw = {}
        for name, field in cls.model_fields.items():
            key = field.alias or name
            value = node.try_get_context(key)
            if value is not None:
                raw[key] = value
        return cls.model_validate(raw)
