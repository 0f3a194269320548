"""Ingest and sink: the SQS ingest queue with its DLQ, the sink Lambda and its event source mapping."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from spool_infra import names
from spool_infra.lambdas import SpoolFunction
from spool_infra.nag import acknowledge
from spool_infra.settings import Settings
from spool_infra.state import State

# One store write is bounded by the store client (connect 5 s + read 30 s, 3 attempts: about 105 s), so
# 120 s lets a whole batch finish even when one endpoint's store answers slowly.
SINK_TIMEOUT = Duration.seconds(120)
SINK_MEMORY_MB = 512
# AWS's advice for SQS triggers: visibility at least six times the function timeout (plus the batching
# window), so a batch that Lambda retries after throttling is not handed to a second invocation meanwhile.
VISIBILITY_FACTOR = 6
RETENTION = Duration.days(14)
# Receives before a message moves to the DLQ. At most one receive is a deliberate hold-back (the sink
# returns a remainder that is not due yet until the endpoint's next flush); the others are write attempts
# with exponential back-off (SPOOL_RETRY_BASE_SECONDS * 2^(receive-1), capped at SPOOL_RETRY_MAX_SECONDS:
# 20, 40, ... 640, 900 s), so a store has to stay unreachable for about 36 minutes before its events land
# in the DLQ, from where the admin CLI's redrive sends them back.
MAX_RECEIVE_COUNT = 8
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 900
ENDPOINT_CACHE_SECONDS = 30


class IngestSink(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, state: State, code: lambda_.Code
    ) -> None:
        super().__init__(scope, construct_id)

        self.dlq = sqs.Queue(
            self,
            "Dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            # SSE-SQS rather than a KMS key: the sink's KMS rights stay limited to credential decryption.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
            visibility_timeout=Duration.seconds(
                VISIBILITY_FACTOR * SINK_TIMEOUT.to_seconds() + settings.max_batching_window_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
        )

        self.sink = SpoolFunction(
            self,
            "Sink",
            settings=settings,
            code=code,
            handler=names.SINK_HANDLER,
            service=names.SINK_SERVICE,
            description="Spool sink: SQS batches to NDJSON objects in user storage",
            timeout=SINK_TIMEOUT,
            memory_mb=SINK_MEMORY_MB,
            environment={
                names.ENV_TABLE_NAME: state.table.table_name,
                names.ENV_QUEUE_URL: self.queue.queue_url,
                names.ENV_ALLOW_INSECURE_ENDPOINTS: str(settings.allow_insecure_endpoints).lower(),
                names.ENV_ENDPOINT_CACHE_SECONDS: str(ENDPOINT_CACHE_SECONDS),
                names.ENV_RETRY_BASE_SECONDS: str(RETRY_BASE_SECONDS),
                names.ENV_RETRY_MAX_SECONDS: str(RETRY_MAX_SECONDS),
                names.ENV_BATCHING_WINDOW_SECONDS: str(settings.max_batching_window_seconds),
            },
        )
        fn = self.sink.function
        # Reads endpoints and records delivery status on them (UpdateItem); reads staged lines and the flush
        # lease (GetItem, Query).
        state.table.grant(fn, "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem")
        # Hold-back writes and removes staged lines and the flush lease, all of them items whose partition key
        # starts with `B#` (adapters/dynamo.py): the condition keeps these writes off endpoints, tenants and keys.
        state.grant_staging_writes(fn, "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
        state.grant_decrypt_credentials(fn)
        # Flush triggers: the sink sends delayed messages to its own queue.
        self.queue.grant(fn, "sqs:SendMessage")
        self._grant_assume_tenant_roles(fn)
        # The event source mapping grants Receive/Delete/ChangeMessageVisibility/GetQueueAttributes (and
        # GetQueueUrl, which CDK's SqsEventSource adds and Lambda's poller does not need; left as the L2
        # construct writes it); the handler's own ChangeMessageVisibility calls (hold-back, back-off) use it.
        fn.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=settings.batch_size,
                max_batching_window=Duration.seconds(settings.max_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=settings.max_concurrency,
            )
        )

    def _grant_assume_tenant_roles(self, fn: lambda_.Function) -> None:
        """Endpoints with a roleArn: the sink assumes the tenant's role (functions/spool/adapters/stores.py).

        Tenants' accounts are not known when the stack is deployed, so the resource is any role; the conditions
        are STS's caller-side keys for AssumeRole: every call must carry a Spool ExternalId and name a Spool
        session (`sts:ExternalId`, `sts:RoleSessionName`). The tenant's trust policy, which requires the
        endpoint's own ExternalId, is what lets a call through. Roles of this account are denied: a role here
        that trusts the account (its root) would otherwise be assumable by naming it as a roleArn."""
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::*:role/*"],
                conditions={
                    "StringLike": {
                        "sts:ExternalId": names.EXTERNAL_ID_PATTERN,
                        "sts:RoleSessionName": names.ROLE_SESSION_NAME_PATTERN,
                    }
                },
            )
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["sts:AssumeRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/*"],
            )
        )
        acknowledge(
            self.sink.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/*]",
            "sts:AssumeRole of tenants' roles, in accounts not known at deploy time (each endpoint's roleArn). "
            "Limited by conditions to calls carrying a Spool ExternalId and a Spool session name; roles of "
            "Spool's own account are denied; the tenant's trust policy requires the endpoint's own ExternalId.",
        )
