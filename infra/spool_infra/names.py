"""Names shared across the constructs, the tests and the deploy scripts, kept in one place."""

from __future__ import annotations

from typing import Final

APP_NAME: Final = "Spool"


# The admin CLI and scripts/test-deployed.sh read the outputs of this stack by name.
def stack_name(stage: str) -> str:
    """CloudFormation stack name for a stage, e.g. `Spool-dev`."""
    return f"{APP_NAME}-{stage}"


# Lambda code: assets rooted at functions/ holding the `spool` package. The sink's adds pyarrow (Parquet).
FUNCTIONS_DIR: Final = "functions"
PACKAGE_DIR: Final = "spool"
REQUIREMENTS_FILE: Final = "requirements.txt"
PARQUET_REQUIREMENTS_FILE: Final = "requirements-parquet.txt"
API_HANDLER: Final = "spool.handlers.api.lambda_handler"
SINK_HANDLER: Final = "spool.handlers.sink.lambda_handler"

# Powertools
METRICS_NAMESPACE: Final = "Spool"
API_SERVICE: Final = "spool-api"
SINK_SERVICE: Final = "spool-sink"
METRIC_EVENTS_ACCEPTED: Final = "EventsAccepted"
METRIC_EVENTS_WRITTEN: Final = "EventsWritten"
METRIC_OBJECTS_WRITTEN: Final = "ObjectsWritten"
METRIC_DELIVERY_FAILURES: Final = "DeliveryFailures"
METRIC_HELD_BACK: Final = "HeldBack"

# Environment variables read by functions/spool/config.py.
ENV_TABLE_NAME: Final = "SPOOL_TABLE_NAME"
ENV_QUEUE_URL: Final = "SPOOL_QUEUE_URL"
ENV_DLQ_URL: Final = "SPOOL_DLQ_URL"
ENV_KMS_KEY_ID: Final = "SPOOL_KMS_KEY_ID"
ENV_PEPPER_SECRET_ID: Final = "SPOOL_PEPPER_SECRET_ID"  # noqa: S105 (a variable name, not a secret)
ENV_SINK_FUNCTION_NAME: Final = "SPOOL_SINK_FUNCTION_NAME"
ENV_SINK_ROLE_ARN: Final = "SPOOL_SINK_ROLE_ARN"
ENV_STAGING_BUCKET: Final = "SPOOL_STAGING_BUCKET"
ENV_ALLOW_INSECURE_ENDPOINTS: Final = "SPOOL_ALLOW_INSECURE_ENDPOINTS"
ENV_ENDPOINT_CACHE_SECONDS: Final = "SPOOL_ENDPOINT_CACHE_SECONDS"
ENV_RETRY_BASE_SECONDS: Final = "SPOOL_RETRY_BASE_SECONDS"
ENV_RETRY_MAX_SECONDS: Final = "SPOOL_RETRY_MAX_SECONDS"
ENV_BATCHING_WINDOW_SECONDS: Final = "SPOOL_BATCHING_WINDOW_SECONDS"
# Whether the sink can write Parquet (its asset holds pyarrow), told to the api, whose asset does not.
ENV_PARQUET: Final = "SPOOL_PARQUET"

# DynamoDB single table (functions/spool/adapters/dynamo.py).
TABLE_PARTITION_KEY: Final = "pk"
TABLE_SORT_KEY: Final = "sk"
TABLE_TTL_ATTRIBUTE: Final = "expiresAt"
# Partition keys of hold-back staging items and flush leases start with this; the sink may write only those.
STAGING_KEY_PREFIX: Final = "B#"

# Tenants' roles the sink assumes (functions/spool/domain/roles.py): every AssumeRole names a session
# `spool-{endpoint id}` and carries the endpoint's ExternalId `spool-{random}`.
ROLE_SESSION_NAME_PATTERN: Final = "spool-ep_*"
EXTERNAL_ID_PATTERN: Final = "spool-*"

# KMS encryption context the api binds every credentials ciphertext to.
ENCRYPTION_CONTEXT_KEYS: Final = ("spool:tenantId", "spool:endpointId")

# Stack outputs (the admin CLI looks these up in DescribeStacks).
OUTPUT_API_URL: Final = "ApiUrl"
OUTPUT_API_ID: Final = "ApiId"
OUTPUT_TABLE_NAME: Final = "TableName"
OUTPUT_QUEUE_URL: Final = "QueueUrl"
OUTPUT_DLQ_URL: Final = "DlqUrl"
OUTPUT_KMS_KEY_ID: Final = "KmsKeyId"
OUTPUT_PEPPER_SECRET_ARN: Final = "PepperSecretArn"  # noqa: S105 (an output name)
OUTPUT_SINK_FUNCTION_NAME: Final = "SinkFunctionName"
OUTPUT_SINK_ROLE_ARN: Final = "SinkRoleArn"
OUTPUT_API_FUNCTION_NAME: Final = "ApiFunctionName"
OUTPUT_ALARM_TOPIC_ARN: Final = "AlarmTopicArn"
OUTPUT_DASHBOARD_NAME: Final = "DashboardName"
OUTPUT_CUSTOM_DOMAIN_TARGET: Final = "CustomDomainTarget"
