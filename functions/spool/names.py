"""Names the Lambda code shares with the CDK app (infra/spool_infra/names.py re-exports them): the table's
key attributes, the key prefix the sink may write, the metrics the dashboards read. Plain constants, so the
CDK app can import them without loading the functions' dependencies. Environment variable names are the
aliases of the settings models in config.py."""

from __future__ import annotations

from typing import Final

# DynamoDB single table (layout: adapters/dynamo.py).
TABLE_PARTITION_KEY: Final = "pk"
TABLE_SORT_KEY: Final = "sk"
TABLE_TTL_ATTRIBUTE: Final = "expiresAt"
# Partition keys of flush leases (and of the lines older sinks staged as items) start with this; the sink may
# write only those.
STAGING_KEY_PREFIX: Final = "B#"
# Powertools Idempotency's records share the table under this partition key.
IDEMPOTENCY_PARTITION: Final = "IDEMPOTENCY"

# Powertools metrics (namespace METRICS_NAMESPACE unless POWERTOOLS_METRICS_NAMESPACE says otherwise).
METRICS_NAMESPACE: Final = "Spool"
METRIC_EVENTS_ACCEPTED: Final = "EventsAccepted"
# The sink's, one per figure of a delivery report, as totals and per endpoint (handlers/sink.py).
SINK_METRICS: Final = ("EventsWritten", "ObjectsWritten", "HeldBack", "DeliveryFailures")
METRIC_EVENTS_WRITTEN, METRIC_OBJECTS_WRITTEN, METRIC_HELD_BACK, METRIC_DELIVERY_FAILURES = SINK_METRICS

# The Lambda handlers (Lambda puts the one a function runs in `_HANDLER`).
API_HANDLER: Final = "spool.handlers.api.lambda_handler"
SINK_HANDLER: Final = "spool.handlers.sink.lambda_handler"
