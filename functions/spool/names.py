"""Names the Lambda code shares with the CDK app (which imports them as `shared`): the table's key attributes,
the key prefix the sink may write, the two functions' handlers and services, the metrics the dashboards read,
the stack's outputs the admin CLI reads. Plain constants, so the CDK app can import them without loading the
functions' dependencies. Environment variable names are the aliases of the settings models in config.py."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, NamedTuple

# DynamoDB single table (layout: adapters/dynamo.py).
TABLE_PARTITION_KEY: Final = "pk"
TABLE_SORT_KEY: Final = "sk"
TABLE_TTL_ATTRIBUTE: Final = "expiresAt"
# Partition keys of flush leases (and of the lines older sinks staged as items) start with this; the sink may
# write only those.
STAGING_KEY_PREFIX: Final = "B#"
# Powertools Idempotency's records: each in a partition of its own, `{prefix}{idempotency key}` (the key is the
# function's name and a hash of the request), under one sort key (adapters/idempotency_records.py).
IDEMPOTENCY_KEY_PREFIX: Final = "IDEMPOTENCY#"
IDEMPOTENCY_SORT_KEY: Final = "IDEMPOTENCY"


class Function(NamedTuple):
    """One of Spool's Lambda functions as its code knows it: the handler Lambda runs (and names in `_HANDLER`)
    and the Powertools service its logs and metrics carry (the CDK app sets POWERTOOLS_SERVICE_NAME to it)."""

    handler: str
    service: str


API_FUNCTION: Final = Function("spool.handlers.api.lambda_handler", "spool-api")
SINK_FUNCTION: Final = Function("spool.handlers.sink.lambda_handler", "spool-sink")

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
    API_FUNCTION_NAME = "ApiFunctionName"
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DASHBOARD_NAME = "DashboardName"
    CUSTOM_DOMAIN_TARGET = "CustomDomainTarget"
