"""Ingest and sink: the SQS ingest queue with its DLQ, the sink Lambda and its event source mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from spool import names as shared
from spool.config import SinkSettings
from spool.domain import limits
from spool_infra import names
from spool_infra.lambdas import FunctionSpec, SpoolFunction
from spool_infra.nag import acknowledge
from spool_infra.settings import Settings
from spool_infra.state import State

# Every store call has a total deadline (limits.store_call_seconds, at most STORE_CALL_MAX_SECONDS), and the sink
# starts none without its whole deadline left: 120 s lets a batch finish even when one endpoint's store takes its
# longest (tests/infra/test_cdk_ingest.py holds the two together).
SINK_TIMEOUT_SECONDS = 120
SINK_TIMEOUT = Duration.seconds(SINK_TIMEOUT_SECONDS)
SINK_MEMORY_MB = 512
SINK_SPEC = FunctionSpec(
    shared.SINK_FUNCTION, "Spool sink: SQS batches to NDJSON objects in user storage", SINK_TIMEOUT, SINK_MEMORY_MB
)
# The partitions the sink reads and queries: endpoints, their status items and its ledger (flush leases are read
# with the writes of their own statement).
SINK_READ_PREFIXES = (
    shared.TENANT_KEY_PREFIX,
    shared.STATUS_KEY_PREFIX,
    shared.LEDGER_KEY_PREFIX,
)
# AWS's advice for SQS triggers: visibility at least six times the function timeout (plus the batching
# window), so a batch that Lambda retries after throttling is not handed to a second invocation meanwhile.
VISIBILITY_FACTOR = 6
RETENTION = Duration.days(14)
# Staged lines outlive the queue's retention by a day, so a flush trigger redriven from the DLQ at the end of
# its life still finds them; then the lifecycle rule removes what no flush took.
STAGING_RETENTION = Duration.days(15)


class IngestSink(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, state: State, code: lambda_.Code
    ) -> None:
        super().__init__(scope, construct_id)

        self.dlq = self._queue("Dlq")
        self.queue = self._queue(
            "Queue",
            visibility_timeout=Duration.seconds(
                VISIBILITY_FACTOR * SINK_TIMEOUT.to_seconds() + settings.max_batching_window_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=limits.MAX_RECEIVE_COUNT),
        )

        # Held-back lines (adapters/staging.py): objects only the sink writes, reads and deletes.
        self.staging = s3.Bucket(
            self,
            "Staging",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=STAGING_RETENTION)],
            # Lines in flight are user data: kept on `cdk destroy` unless dataRemovalPolicy=destroy (an empty
            # bucket then goes; a flush leaves it empty).
            removal_policy=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.staging,
            "AwsSolutions-S1",
            "The staging bucket holds only lines the sink holds back until their flush (minutes), written, read "
            "and deleted by the sink's role alone; server access logs would log every hold-back and cost more "
            "than the staging itself. CloudTrail data events can be enabled for an audit.",
        )

        environment = SinkSettings.environment(
            table_name=state.table.table_name,
            queue_url=self.queue.queue_url,
            staging_bucket=self.staging.bucket_name,
            allow_insecure_endpoints=settings.allow_insecure_endpoints,
            endpoint_cache_seconds=limits.ENDPOINT_CACHE_SECONDS,
            retry_base_seconds=limits.RETRY_BASE_SECONDS,
            retry_max_seconds=limits.RETRY_MAX_SECONDS,
            batching_window_seconds=settings.max_batching_window_seconds,
        )
        self.sink = SpoolFunction(self, "Sink", SINK_SPEC, settings=settings, code=code, environment=environment)
        fn = self.sink.function
        # Reads endpoints (T#), delivery status and health (S#), the ledger of objects it wrote (W#); not key
        # lookups, idempotency records or anything else of the api's.
        state.grant_items(fn, SINK_READ_PREFIXES, "dynamodb:GetItem", "dynamodb:Query")
        # Records delivery status and health: UpdateItem of status items and their status attributes only.
        state.grant_status_updates(fn)
        # The ledger of written objects (adapters/ledger.py): an item per object, recorded, confirmed, dropped.
        state.grant_items(
            fn, (shared.LEDGER_KEY_PREFIX,), "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
        )
        # The flush lease is an item whose partition key starts with `B#` (adapters/leases.py): taken, read and
        # released; the condition keeps these writes off endpoints, tenants and keys.
        state.grant_items(fn, (shared.LEASE_KEY_PREFIX,), "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        # Staged lines: put, read, delete objects and list a flush time's prefix. The bucket's `grant_put`,
        # `grant_read` and `grant_delete` would add the object ACL, tagging, retention and version actions,
        # which nothing calls.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                resources=[self.staging.arn_for_objects("*")],
            )
        )
        fn.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.staging.bucket_arn]))
        acknowledge(
            self.sink.role,
            "AwsSolutions-IAM5[Resource::<IngestStaging6CCA8472.Arn>/*]",
            "Objects of Spool's own staging bucket: the sink stages one object per holding invocation under "
            "names it makes up at run time ({endpoint}/{flush time}/{holder}), so no narrower resource exists; "
            "the bucket holds nothing else.",
        )
        state.grant_decrypt_credentials(fn)
        # Flush triggers: the sink sends delayed messages to its own queue.
        self.queue.grant(fn, "sqs:SendMessage")
        self._grant_assume_tenant_roles(fn)
        # The event source mapping grants Receive/Delete/ChangeMessageVisibility/GetQueueAttributes (and
        # GetQueueUrl, which CDK's SqsEventSource adds and Lambda's poller does not need; left as the L2
        # construct writes it); the handler's own ChangeMessageVisibility calls (hold-back, back-off) use it.
        # On the `live` alias: the published version, resumed from its SnapStart snapshot (lambdas.py).
        self.sink.alias.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=settings.batch_size,
                max_batching_window=Duration.seconds(settings.max_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=settings.max_concurrency,
            )
        )

    def _queue(self, construct_id: str, **options: Any) -> sqs.Queue:
        """A queue as both of Spool's are: SSE-SQS rather than a KMS key (the sink's KMS rights stay limited to
        credential decryption), TLS only, messages kept RETENTION."""
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
            **options,
        )

    def _grant_assume_tenant_roles(self, fn: lambda_.Function) -> None:
        """Endpoints with a roleArn: the sink assumes the tenant's role (functions/spool/adapters/role_session.py).

        Tenants' accounts are not known when the stack is deployed, so the resource is any role; the conditions
        are STS's caller-side keys for AssumeRole: every call must carry a Spool ExternalId and name a Spool
        session (`sts:ExternalId`, `sts:RoleSessionName`). The tenant's trust policy, which requires the
        endpoint's own ExternalId, is what lets a call through. Roles of this account are denied: a role here
        that trusts the account (its root) would otherwise be assumable by naming it as a roleArn; and so are
        roles of accounts in this account's AWS Organization."""
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
        # Roles of the operator's other accounts: denied when the role's account is in the same AWS Organization
        # as Spool's (STS supplies aws:ResourceOrgID for AssumeRole; aws:PrincipalOrgID is this role's). Outside
        # an organization either key is missing, the condition is false and nothing is denied; roles in accounts
        # of the operator outside the organization are the operator's to guard (docs/deploy.md).
        fn.add_to_role_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["sts:AssumeRole"],
                resources=[f"arn:{Aws.PARTITION}:iam::*:role/*"],
                conditions={"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
            )
        )
        acknowledge(
            self.sink.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/*]",
            "sts:AssumeRole of tenants' roles, in accounts not known at deploy time (each endpoint's roleArn). "
            "Limited by conditions to calls carrying a Spool ExternalId and a Spool session name; roles of "
            "Spool's own account and of its AWS Organization are denied; the tenant's trust policy requires the "
            "endpoint's own ExternalId.",
        )


@dataclass(frozen=True)
class Parts:
    """What the constructs after the sink are built from (the props of Verify and Api, in CDK's terms): the
    stack's settings, its state, the ingest queue and sink, and the code asset their functions run."""

    settings: Settings
    state: State
    ingest: IngestSink
    code: lambda_.Code
