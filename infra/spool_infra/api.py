"""The public API: an HTTP API (payload v2) with throttling and JSON access logs before the api Lambda."""

from __future__ import annotations

import json

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from spool import names as shared
from spool.config import ApiSettings
from spool_infra.ingest import Parts
from spool_infra.lambdas import FunctionSpec, SpoolFunction
from spool_infra.nag import acknowledge
from spool_infra.verify import Verify

# HTTP APIs give up on an integration after 30 s. Ordinary requests take milliseconds; the endpoint
# verification invokes the verify function, which writes a probe object to the user's store, and waits for it
# (at most limits.VERIFY_TIMEOUT_SECONDS and a cold start's allowance, adapters/verifier.py).
API_TIMEOUT = Duration.seconds(28)
# More memory is more CPU: pydantic validation and the cold start (Powertools, boto3) both profit.
API_MEMORY_MB = 512
API_SPEC = FunctionSpec(shared.API_FUNCTION, "Spool api: endpoints and events over HTTPS", API_TIMEOUT, API_MEMORY_MB)
# The table's partitions the api writes: tenants' items (endpoints, counters), role claims, Powertools
# Idempotency's records (one partition each; DeleteItem when an ingest fails), verify's rate items and the
# redrive lease.
API_WRITE_PREFIXES = (
    shared.TENANT_KEY_PREFIX,
    shared.ROLE_CLAIM_KEY_PREFIX,
    shared.IDEMPOTENCY_KEY_PREFIX,
    shared.VERIFY_RATE_KEY_PREFIX,
    shared.REDRIVE_LEASE_KEY_PREFIX,
)
# One line per request; no headers, so X-API-Key never reaches the log. What an operator needs to find a request
# and see how it ended, nothing CloudWatch records anyway (the event's own timestamp) or that is the same on every
# line (route key, protocol): CloudWatch Logs bills every byte, and this line is most of what a single-event request
# logs (about 160 B, was 300; make bench, B6).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "latencyMs": "$context.responseLatency",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":")))


class Api(Construct):
    def __init__(self, scope: Construct, construct_id: str, parts: Parts, *, verify: Verify) -> None:
        super().__init__(scope, construct_id)
        settings, state, ingest = parts.settings, parts.state, parts.ingest

        environment = ApiSettings.environment(
            table_name=state.table.table_name,
            queue_url=ingest.queue.queue_url,
            dlq_url=ingest.dlq.queue_url,
            kms_key_id=state.credentials_key.key_id,
            pepper_secret_id=state.pepper_secret.secret_arn,
            # The `live` alias (`name:live`): the SnapStart version, as the sink's trigger invokes.
            verify_function_name=verify.function.alias.function_name,
            # The principal tenants' roles trust (GET /api/v1/endpoints/{id}/aws-role hands it out).
            sink_role_arn=ingest.sink.role.role_arn,
            allow_insecure_endpoints=settings.allow_insecure_endpoints,
            # Parquet endpoints are accepted when the sink's asset holds pyarrow (stack.py); the api's own asset
            # does not, so it cannot find out by looking for the library.
            parquet=settings.parquet,
        )
        self.handler = SpoolFunction(
            self, "Handler", API_SPEC, settings=settings, code=parts.code, environment=environment
        )
        fn = self.handler.function
        # Reads anything of the table by key (tenants, key lookups, endpoints, status, idempotency records); no
        # Scan and no table management.
        state.table.grant(fn, "dynamodb:GetItem", "dynamodb:Query")
        # Writes only the partitions of API_WRITE_PREFIXES (PutItem, UpdateItem, DeleteItem, and the same per item
        # of a TransactWriteItems): never a key lookup (K#, the admin CLI's, with the operator's credentials), a
        # status item (S#, the sink's) or a flush lease (B#).
        state.grant_items(fn, API_WRITE_PREFIXES, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
        # `grant_send_messages`/`grant_consume_messages` would add GetQueueAttributes and GetQueueUrl, which
        # the code never calls (the grant check in tests/integration/test_grants.py lists what it calls).
        ingest.queue.grant(fn, "sqs:SendMessage")
        # Redrive: receive from the DLQ, send back to the ingest queue, delete from the DLQ, and hand
        # passed-over messages of other endpoints back (visibility 0).
        ingest.dlq.grant(fn, "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")
        state.grant_encrypt_credentials(fn)
        state.grant_read_pepper(fn)
        # Verify: `grant_invoke` would also allow the unqualified function and every version and alias
        # (`arn:...:function:name:*`); the api only ever invokes the `live` alias.
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[verify.function.alias.function_arn])
        )

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            description=f"Spool {settings.stage}",
            create_default_stage=False,
            # One catch-all route: the api Lambda's resolver owns routing, 404s and the X-API-Key check.
            # The `live` alias: the published version, resumed from its SnapStart snapshot (lambdas.py).
            default_integration=integrations.HttpLambdaIntegration("Lambda", self.handler.alias),
        )
        acknowledge(
            self.http_api,
            "AwsSolutions-APIG4",
            "Requests are authorized by the api Lambda itself: it checks the X-API-Key header against "
            "HMAC-SHA256 hashes in DynamoDB (SPEC: all /api/v1 routes need X-API-Key; GET /health is open). "
            "HTTP APIs have no native API keys, and a Lambda authorizer would add a second invocation "
            "for the same lookup.",
        )

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=settings.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        domain_mapping = None
        self.domain: apigwv2.DomainName | None = None
        if settings.domain_name:
            self.domain = apigwv2.DomainName(
                self,
                "Domain",
                domain_name=settings.domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", settings.certificate_arn),
            )
            domain_mapping = apigwv2.DomainMappingOptions(domain_name=self.domain)
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            # Account-wide protection for the Lambda and the queue; per-tenant limits are not possible in
            # HTTP APIs (docs/infrastructure.md).
            throttle=apigwv2.ThrottleSettings(rate_limit=settings.api_rate_limit, burst_limit=settings.api_burst_limit),
            access_log_settings=_AccessLogs(self.access_logs),
            domain_mapping=domain_mapping,
        )

    @property
    def url(self) -> str:
        return self.stage.url
