"""Names the Lambda code shares with the CDK app (which imports them as `shared`): the table's key attributes,
the key prefixes each function may write, the functions' handlers and services, the metrics the dashboards read,
the stack's outputs the admin CLI reads. Plain constants, so the CDK app can import them without loading the
functions' dependencies. Environment variable names are the aliases of the settings models in config.py."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, NamedTuple

# DynamoDB single table (layout: adapters/dynamo.py).
TABLE_PARTITION_KEY: Final = "pk"
TABLE_SORT_KEY: Final = "sk"
TABLE_TTL_ATTRIBUTE: Final = "expiresAt"
# Partition keys of flush leases start with this; the sink may write only those, its ledger's and the status
# items below.
LEASE_KEY_PREFIX: Final = "B#"
# An endpoint's delivery status and health (S#{tenantId}#{endpointId} / STATUS): the only other items the sink
# writes, and only these attributes of them (the stack's IAM conditions read both names).
STATUS_KEY_PREFIX: Final = "S#"
STATUS_ATTRIBUTES: Final = (
    "lastFlushAt",
    "lastObjectKey",
    "eventsWritten",
    "objectsWritten",
    "lastError",
    "lastErrorAt",
    "failures",
    "parkedUntil",
    "probeUntil",
)
# Partitions only the operator (the admin CLI) writes: API-key lookups by hash (K#{hash} / KEY). The api reads
# them and may not write them.
KEY_LOOKUP_PREFIX: Final = "K#"
# Powertools Idempotency's records: each in a partition of its own, `{prefix}{idempotency key}` (the key is the
# function's name and a hash of the request), under one sort key (adapters/idempotency_records.py).
IDEMPOTENCY_KEY_PREFIX: Final = "IDEMPOTENCY#"
IDEMPOTENCY_SORT_KEY: Final = "IDEMPOTENCY"
# Tenants and their endpoints and keys (T#{tenantId} / TENANT, EP#..., KEY#...), and role claims
# (R#{roleArn} / ROLE): partitions the api writes, apart from key lookups.
TENANT_KEY_PREFIX: Final = "T#"
ROLE_CLAIM_KEY_PREFIX: Final = "R#"
# Verify's rate per endpoint (V#{tenantId}#{endpointId} / RATE, adapters/verify_rate.py) and the redrive lease
# (Q#...): short-lived conditional items the api writes.
VERIFY_RATE_KEY_PREFIX: Final = "V#"
REDRIVE_LEASE_KEY_PREFIX: Final = "Q#"
# The ledger of written objects (W#{endpointId} / {entry id}, adapters/ledger.py), written by the sink.
LEDGER_KEY_PREFIX: Final = "W#"


class Function(NamedTuple):
    """One of Spool's Lambda functions as its code knows it: the handler Lambda runs (and names in `_HANDLER`)
    and the Powertools service its logs and metrics carry (the CDK app sets POWERTOOLS_SERVICE_NAME to it)."""

    handler: str
    service: str


API_FUNCTION: Final = Function("spool.handlers.api.lambda_handler", "spool-api")
SINK_FUNCTION: Final = Function("spool.handlers.sink.lambda_handler", "spool-sink")
# Endpoint verification: the api invokes it; its own function so a reserved concurrency bounds it.
VERIFY_FUNCTION: Final = Function("spool.handlers.verify.lambda_handler", "spool-verify")

# Powertools metrics (namespace METRICS_NAMESPACE unless POWERTOOLS_METRICS_NAMESPACE says otherwise).
METRICS_NAMESPACE: Final = "Spool"
METRIC_EVENTS_ACCEPTED: Final = "EventsAccepted"
# The sink's, one per figure of a delivery report, as totals and per endpoint (handlers/sink.py).
SINK_METRICS: Final = ("EventsWritten", "ObjectsWritten", "HeldBack", "DeliveryFailures")
METRIC_EVENTS_WRITTEN, METRIC_OBJECTS_WRITTEN, METRIC_HELD_BACK, METRIC_DELIVERY_FAILURES = SINK_METRICS


class StackOutput(StrEnum):
    """The outputs of the CDK stack (infra/spool_infra/stack.py); the admin CLI (cli.py) and
    scripts/ministack/drive.py (for `make test-deployed`) read them by these names."""

    API_URL = "ApiUrl"
    API_ID = "ApiId"
    TABLE_NAME = "TableName"
    QUEUE_URL = "QueueUrl"
    DLQ_URL = "DlqUrl"
    KMS_KEY_ID = "KmsKeyId"
    PEPPER_SECRET_ARN = "PepperSecretArn"  # noqa: S105 (an output name)
    SINK_FUNCTION_NAME = "SinkFunctionName"
    SINK_ROLE_ARN = "SinkRoleArn"
    VERIFY_FUNCTION_NAME = "VerifyFunctionName"
    API_FUNCTION_NAME = "ApiFunctionName"
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DASHBOARD_NAME = "DashboardName"
    CUSTOM_DOMAIN_TARGET = "CustomDomainTarget"
