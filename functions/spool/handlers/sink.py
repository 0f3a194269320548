"""The sink Lambda: SQS batch (event source mapping) -> per-endpoint coalescing -> objects in storage.

Verification of an endpoint is the verify function's (handlers/verify.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from spool.domain import messages
from spool.domain.base import build_validators
from spool.domain.delivery import DeliveryReport, EndpointOutcome
from spool.domain.planner import InboundRecord
from spool.handlers import snapstart
from spool.handlers.wiring import SinkServices, sink_services
from spool.names import SINK_METRICS
from spool.observability import NAMESPACE, SERVICE, share_log_config, sink_logger, traced
from spool.observability import prime as prime_observability

share_log_config()


def to_inbound(record: dict[str, Any]) -> InboundRecord:
    """The fields the sink needs, read straight from the record dict rather than through Powertools' SQSRecord
    wrappers, which cost more than the rest of the sink (docs/benchmarks.md, "Measurements behind the code"); the
    body and attributes are decoded by the message format's owner."""
    message = messages.decode_lambda_record(record)
    system = record["attributes"]
    receive_count = int(system["ApproximateReceiveCount"])
    first_attempt = message.first_attempt
    if first_attempt is None and receive_count > 1:  # a retry: when it was first received
        first_attempt = int(system.get("ApproximateFirstReceiveTimestamp") or 0) / 1000 or None
    return InboundRecord(
        message_id=record["messageId"],
        receipt_handle=record["receiptHandle"],
        tenant_id=message.tenant_id,
        endpoint_id=message.endpoint_id,
        body=message.body,
        accepted_at=int(system["SentTimestamp"]) / 1000,
        receive_count=receive_count,
        kind=message.kind,
        flush_at=message.flush_at,
        line_count=message.line_count,
        first_attempt=first_attempt,
        window=message.window,
    )


# The directive every endpoint's document shares: the sink's four counts under the one dimension set `service`
# (CloudWatch sums the documents into the totals). The endpoint's id is a property of the document, not a
# dimension: a custom metric per endpoint would cost about $0.30 a month each (four per endpoint with traffic),
# which grows with endpoints; per-endpoint figures are a Logs Insights query over these documents instead
# (docs/delivery.md), beside the delivery status each endpoint keeps.
_METRICS = [{"Name": name, "Unit": "Count"} for name in SINK_METRICS]
_DIRECTIVE = [{"Namespace": NAMESPACE, "Dimensions": [["service"]], "Metrics": _METRICS}]


def metrics_document(endpoint_id: str, outcome: EndpointOutcome, timestamp_ms: int) -> str:
    """One endpoint's EMF document, exactly as Powertools' `EphemeralMetrics` writes it for the same figures, with
    the endpoint's id as metadata (tests/unit/test_sink_metrics.py holds the two side by side).

    Built here rather than through `EphemeralMetrics` because Powertools' provider (a new instance, four
    validated `add_metric` calls, dimension sanitising, serialising) costs several times as much per document
    (docs/benchmarks.md, "Measurements behind the code"). The sink's document has a fixed shape, so none of that
    checking has anything to find."""
    figures = (outcome.events_written, outcome.objects_written, outcome.held, outcome.failed)
    document: dict[str, Any] = {
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": _DIRECTIVE},
        "service": SERVICE,
    }
    if endpoint_id:
        document["endpointId"] = endpoint_id
    document.update((name, [float(value)]) for name, value in zip(SINK_METRICS, figures, strict=True))
    return json.dumps(document, separators=(",", ":"))


def emit_metrics(report: DeliveryReport) -> None:
    """One EMF document per endpoint on stdout (where Lambda sends it to CloudWatch Logs, which reads the
    metrics out of it). One document instead of one per endpoint plus one of totals halves the metric lines of
    the common one-endpoint invocation (log bytes and sink CPU)."""
    timestamp_ms = int(time.time() * 1000)
    disabled = is_metrics_disabled()  # POWERTOOLS_METRICS_DISABLED / POWERTOOLS_DEV, as Powertools' own providers
    for endpoint_id, outcome in report.endpoints.items():
        if not disabled:
            print(metrics_document(endpoint_id, outcome, timestamp_ms))
        if outcome.error:
            sink_logger.warning(
                "delivery failed",
                extra={"endpointId": endpoint_id, "error": outcome.error, "failed": outcome.failed},
            )


def handle_batch(event: dict[str, Any], context: LambdaContext, services: SinkServices) -> dict[str, Any]:
    report = services.sink.deliver(
        (to_inbound(r) for r in event["Records"]),
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    emit_metrics(report)
    # The sink decides per batch (coalescing needs every record at once), so Powertools' BatchProcessor, which
    # handles records one by one, would only walk the records again to format this answer; it is built directly.
    # An empty list acknowledges everything; all records held back is the normal case at low traffic, not an
    # error.
    return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record, _ in report.handed_back]}


def make_handler(services: Callable[[], SinkServices]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The sink entry point over the services `services()` returns (built on first use)."""

    @sink_logger.inject_lambda_context
    @traced
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return handle_batch(event, context, services())

    return lambda_handler


lambda_handler = make_handler(sink_services)


def prime(services: Callable[[], SinkServices] = sink_services) -> None:
    """Before a SnapStart snapshot (handlers/snapstart.py): the services and their clients, the Tracer and
    every model's validator. No AWS call: endpoints and credentials are read by invocations, after the restore."""
    services()
    prime_observability()
    build_validators()


snapstart.install(prime)
