"""The Spool stack: state, ingest + sink, verify, api and monitoring, wired together, and the outputs the admin CLI
and the deploy scripts read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import App, CfnOutput, Stack, Tags
from constructs import Construct

from spool.names import StackOutput
from spool_infra import names
from spool_infra.api import Api
from spool_infra.bundling import lambda_code
from spool_infra.ingest import IngestSink, Parts
from spool_infra.monitoring import Monitoring
from spool_infra.nag import acknowledge, add_checks
from spool_infra.settings import Settings
from spool_infra.state import State
from spool_infra.verify import Verify

REPO_ROOT = Path(__file__).resolve().parents[2]


class SpoolStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Spool {settings.stage}: webhook storage sink", **kwargs)
        self.settings = settings
        functions = REPO_ROOT / names.FUNCTIONS_DIR
        code = lambda_code(functions, bundle=settings.bundle, architecture=settings.architecture)
        # Only the sink writes objects, so only its asset carries the Parquet library (imported only by the
        # flushes of Parquet endpoints); the api learns of it from SPOOL_PARQUET (api.py).
        sink_code = (
            lambda_code(
                functions,
                bundle=settings.bundle,
                architecture=settings.architecture,
                requirements=(names.REQUIREMENTS_FILE, names.PARQUET_REQUIREMENTS_FILE),
            )
            if settings.parquet
            else code
        )

        self.state = State(self, "State", settings=settings)
        self.ingest = IngestSink(self, "Ingest", settings=settings, state=self.state, code=sink_code)
        parts = Parts(settings, self.state, self.ingest, code)
        self.verify = Verify(self, "Verify", parts)
        self.api = Api(self, "Api", parts, verify=self.verify)
        self.monitoring = Monitoring(self, "Monitoring", settings=settings, api=self.api, ingest=self.ingest)
        Tags.of(self).add("app", "spool")
        Tags.of(self).add("stage", settings.stage)

        self._acknowledge_stack_wide()
        self._outputs()

    def _acknowledge_stack_wide(self) -> None:
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Python 3.13 on purpose: the Lambda code, its lockfile and the local runtime are built and "
            "tested on 3.13 (pyproject requires-python), and the bundled wheels are cp313. Moving to a "
            "newer runtime is a change of the whole project, not of this stack.",
        )

    def _outputs(self) -> None:
        fn_sink = self.ingest.sink.function
        values = {
            StackOutput.API_URL: (self.api.url, "Base URL of the Spool API"),
            StackOutput.API_ID: (self.api.http_api.api_id, "HTTP API id"),
            StackOutput.TABLE_NAME: (self.state.table.table_name, "DynamoDB table"),
            StackOutput.QUEUE_URL: (self.ingest.queue.queue_url, "Ingest queue"),
            StackOutput.DLQ_URL: (self.ingest.dlq.queue_url, "Dead-letter queue (redrive source)"),
            StackOutput.KMS_KEY_ID: (self.state.credentials_key.key_id, "KMS key for storage credentials"),
            StackOutput.PEPPER_SECRET_ARN: (self.state.pepper_secret.secret_arn, "API-key pepper secret"),
            StackOutput.SINK_FUNCTION_NAME: (fn_sink.function_name, "Sink function"),
            StackOutput.SINK_ROLE_ARN: (
                self.ingest.sink.role.role_arn,
                "Sink role: the principal tenants' delivery roles trust",
            ),
            StackOutput.API_FUNCTION_NAME: (self.api.handler.function.function_name, "Api function"),
            StackOutput.VERIFY_FUNCTION_NAME: (self.verify.function.function.function_name, "Verify function"),
            StackOutput.ALARM_TOPIC_ARN: (self.monitoring.topic.topic_arn, "SNS topic the alarms notify"),
            StackOutput.DASHBOARD_NAME: (self.monitoring.dashboard.dashboard_name, "CloudWatch dashboard"),
        }
        if self.api.domain is not None:
            values[StackOutput.CUSTOM_DOMAIN_TARGET] = (
                self.api.domain.regional_domain_name,
                f"Point a CNAME (or alias) for {self.settings.domain_name} here",
            )
        for key, (value, description) in values.items():
            CfnOutput(self, key, value=value, description=description)


def build(app: App) -> SpoolStack:
    """Add the stack named by the context's stage to `app`, with cdk-nag checking it on synth."""
    settings = Settings.from_node(app.node)
    stack = SpoolStack(app, names.stack_name(settings.stage), settings=settings)
    add_checks(app)
    return stack
