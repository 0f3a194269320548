"""One helper for both Lambda functions, so they share runtime, architecture, logging and role shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from spool import names as shared
from spool_infra.nag import acknowledge
from spool_infra.settings import Settings

RUNTIME = lambda_.Runtime.PYTHON_3_13
# What the event source mapping and the HTTP API invoke: the version published with this deployment.
LIVE_ALIAS = "live"
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


@dataclass(frozen=True)
class FunctionSpec:
    """What one of Spool's functions is, apart from what it is wired to: the code's function (handler and
    service), the description it is deployed with, its timeout and its memory."""

    entry: shared.Function
    description: str
    timeout: Duration
    memory_mb: int


class SpoolFunction(Construct):
    """A Python 3.13 function (arm64 by default) with its own role and its own log group, a version published
    with every change of its code or configuration and the `live` alias pointing at it (`live`, what its
    triggers invoke).

    The role is created here rather than by `lambda_.Function` so it carries no AWS managed policy: the
    only logging permission is writing to this function's log group, and every other permission is added
    by the construct that owns the resource (`grant_*`).

    With context `snapStart` (default) the version is published with SnapStart: Lambda runs the init (and
    the handlers' before-snapshot hooks, functions/spool/handlers/snapstart.py) when it publishes, and new
    execution environments of the alias resume from that snapshot. A replaced version is deleted, not kept:
    SnapStart bills the snapshot cache of every published version for as long as it exists.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        spec: FunctionSpec,
        *,
        settings: Settings,
        code: lambda_.Code,
        environment: Mapping[str, str],
        role: iam.Role | None = None,
    ) -> None:
        """`role`: another function's role to run with (default: a role of its own). Its reserved concurrency
        is the settings' for `spec.entry` (`Settings.reservation`)."""
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=settings.log_retention,
            # Logs are operational data, not user data: they go with the stack.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{spec.description} (Spool {settings.stage})",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            code=code,
            handler=spec.entry.handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURES[settings.architecture],
            description=spec.description,
            timeout=spec.timeout,
            memory_size=spec.memory_mb,
            role=self.role,
            reserved_concurrent_executions=settings.reservation(spec.entry),
            log_group=self.log_group,
            # JSON logs let Lambda filter its own START/END/REPORT lines (about 400 B per invocation, most of
            # what a single-event request logged): only platform warnings and errors are kept. Duration,
            # errors and throttles stay in Lambda's CloudWatch metrics; the functions log JSON already.
            # Application lines pass unfiltered (DEBUG): Powertools applies POWERTOOLS_LOG_LEVEL and its
            # debug sampling itself, which a stricter Lambda filter would silently undo.
            logging_format=lambda_.LoggingFormat.JSON,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            application_log_level_v2=lambda_.ApplicationLogLevel.DEBUG,
            tracing=lambda_.Tracing.ACTIVE if settings.tracing else lambda_.Tracing.DISABLED,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if settings.snap_start else None,
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
            environment={
                "POWERTOOLS_SERVICE_NAME": spec.entry.service,
                "POWERTOOLS_METRICS_NAMESPACE": shared.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": settings.log_level,
                "POWERTOOLS_TRACE_DISABLED": "false" if settings.tracing else "true",
                **environment,
            },
        )
        self.alias = lambda_.Alias(self, "Live", alias_name=LIVE_ALIAS, version=self.function.current_version)
        if settings.tracing:
            acknowledge(
                self.role,
                "AwsSolutions-IAM5[Resource::*]",
                "The only `*` resource is the X-Ray statement Lambda active tracing adds "
                "(xray:PutTraceSegments, xray:PutTelemetryRecords): X-Ray has no resource-level permissions.",
            )
