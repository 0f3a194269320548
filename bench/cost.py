"""The cost model of B6: counted calls and measured handler time, times the prices in bench/prices.py, per
million events; and Amazon Data Firehose's ingestion price for the same events."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from bench.calls import Meter
from bench.common import Deployed
from bench.prices import FIREHOSE_RECORD_STEP_BYTES, GB, PRICES, usd

# CloudWatch Logs is modelled, not counted: bytes per invocation, including the 26 bytes CloudWatch adds to
# every log event. One Powertools EMF metrics document per invocation (api: 1 metric, 206 B measured by
# tests/unit/test_api_logging.py, + 26; sink: one document per endpoint, 4 metrics under the one dimension
# set `service` with the endpoint's id as a property, 432 B with a 31-character endpoint id, + 26; 457 B while
# `endpointId` was a dimension too, until 2026-12-07), the api's sampled debug line (1 % of ~412 B), and one
# API Gateway access log line (ACCESS_LOG_BYTES, held against the synthesized format by
# tests/infra/test_cdk_api.py). Lambda's START/END/REPORT lines (~400 B) are not logged: the functions use
# JSON logs with the system log level WARN (infra/spool_infra/lambdas.py).
# Before 2026-12-02: api 400 + 450 + 400, sink 400 + 650; until the one-document metrics: sink 650 (two
# documents, per endpoint and totals); until 2026-12-07 the access log line was ~400 B (13 fields).
ACCESS_LOG_BYTES = 190
LOG_BYTES = {"api": 232 + 4 + ACCESS_LOG_BYTES, "sink": 432 + 26}
# Custom metrics are billed per metric and month, not per event, so they are not in the per-million figures:
# the sink's four under `service` and the api's one (CUSTOM_METRICS). Until 2026-12-07 every endpoint with
# traffic added four more (dimension `endpointId`), about $1.20 a month per endpoint.
CUSTOM_METRICS = 5

SQS_LABELS = {
    "SendMessageBatch": "SQS SendMessageBatch (api: events in)",
    "SendMessage": "SQS SendMessage (sink: flush triggers)",
    "ReceiveMessage": "SQS ReceiveMessage (event source mapping)",
    "DeleteMessageBatch": "SQS DeleteMessageBatch (event source mapping)",
    "ChangeMessageVisibilityBatch": "SQS ChangeMessageVisibilityBatch (sink)",
}


def firehose_per_million(line_bytes: float) -> float:
    """Direct PUT ingestion for one million records of `line_bytes`, each rounded up to 5 KB."""
    billed = math.ceil(line_bytes / FIREHOSE_RECORD_STEP_BYTES) * FIREHOSE_RECORD_STEP_BYTES
    return usd("firehose_ingest_gb", 1e6 * billed / GB)


def per_million(meter: Meter, events: int, deployed: Deployed) -> dict[str, Any]:
    """Cost items and request counts per million events from one metered phase of a local run."""
    scale = 1e6 / events
    costs: dict[str, float] = {}
    requests: dict[str, float] = {}
    notes: dict[str, Any] = {}

    requests["API Gateway HTTP API requests"] = meter.apigw_units * scale
    costs["API Gateway HTTP API"] = usd("apigw_http_request", meter.apigw_units) * scale
    gb_second = f"lambda_gb_second_{deployed.architecture}"
    logs_bytes = 0.0
    for role, memory_mb in (("api", deployed.api_memory_mb), ("sink", deployed.sink_memory_mb)):
        calls = meter.invocations.get(role, [])
        billed_ms = sum(math.ceil(i.wall * 1000) for i in calls)
        cpu_ms = sum(i.cpu * 1000 for i in calls)
        gb_s = billed_ms / 1000 * memory_mb / 1024
        requests[f"Lambda {role} invocations"] = len(calls) * scale
        costs[f"Lambda {role}: invocations"] = usd("lambda_request", len(calls)) * scale
        costs[f"Lambda {role}: duration"] = usd(gb_second, gb_s) * scale
        logs_bytes += LOG_BYTES[role] * len(calls)
        notes[f"{role}_invocations"] = len(calls)
        notes[f"{role}_mean_wall_ms"] = round(billed_ms / len(calls), 2) if calls else 0
        notes[f"{role}_mean_cpu_ms"] = round(cpu_ms / len(calls), 2) if calls else 0
        notes[f"{role}_gb_seconds_per_million"] = round(gb_s * scale, 2)
        if role == "sink" and calls:
            notes["sink_mean_records_per_invocation"] = round(sum(i.records for i in calls) / len(calls), 1)

    sqs = defaultdict(float)
    dynamo_units: dict[str, float] = defaultdict(float)
    dynamo_calls: dict[str, float] = defaultdict(float)
    other: dict[str, float] = defaultdict(float)
    staging_s3: dict[str, float] = defaultdict(float)
    for (_role, service, operation, unit, purpose), tally in meter.tallies.items():
        if service == "sqs":
            if operation == "ReceiveMessage (empty)":
                notes["sqs_empty_receives"] = notes.get("sqs_empty_receives", 0) + tally.calls
                continue
            sqs[SQS_LABELS.get(operation, f"SQS {operation}")] += tally.units
        elif service == "s3" and purpose == "staging":
            staging_s3[operation] += tally.calls
        elif service == "dynamodb":
            dynamo_units[f"DynamoDB {unit} ({purpose})"] += tally.units
            dynamo_calls[f"DynamoDB {operation} ({purpose})"] += tally.calls
            dynamo_calls[f"DynamoDB {operation} ({purpose}): {unit}"] += tally.units
        else:
            other[f"{_service_name(service)} {operation}"] += tally.calls

    for label, units in sorted(sqs.items()):
        requests[label] = units * scale
    costs["SQS"] = usd("sqs_request", sum(sqs.values())) * scale
    for label, calls in sorted(dynamo_calls.items()):
        requests[label] = calls * scale
    for label, units in sorted(dynamo_units.items()):
        price = "dynamodb_wru" if "WRU" in label else "dynamodb_rru"
        costs[label] = usd(price, units) * scale
    for label, calls in sorted(other.items()):
        requests[label] = calls * scale
        if label.startswith("KMS"):
            costs[label] = costs.get(label, 0.0) + usd("kms_request", calls) * scale
        elif label.startswith("Secrets Manager"):
            costs[label] = costs.get(label, 0.0) + usd("secretsmanager_request", calls) * scale
    staging_price = {"PutObject": "s3_put", "ListObjectsV2": "s3_list", "GetObject": "s3_get"}
    for operation, calls in sorted(staging_s3.items()):
        requests[f"S3 {operation} (staging)"] = calls * scale
        if operation in staging_price:  # DeleteObject is free
            costs["S3 requests (staging)"] = (
                costs.get("S3 requests (staging)", 0.0) + usd(staging_price[operation], calls) * scale
            )
    costs["CloudWatch Logs (modelled)"] = usd("logs_ingest_gb", logs_bytes / GB) * scale

    total = sum(costs.values())
    s3_puts = other.get("S3 PutObject", 0.0) * scale
    traces = (len(meter.invocations.get("api", [])) + len(meter.invocations.get("sink", []))) * scale
    notes["tenant_s3_put_usd_per_million"] = round(usd("s3_put", s3_puts), 4)
    notes["xray_upper_bound_usd_per_million"] = round(usd("xray_trace", traces), 4)
    notes["custom_metrics_usd_per_month_whatever_the_endpoints"] = round(
        usd("cloudwatch_metric_month", CUSTOM_METRICS), 2
    )
    return {
        "total_usd_per_million": total,
        "costs_usd_per_million": {k: round(v, 5) for k, v in sorted(costs.items(), key=lambda kv: -kv[1])},
        "requests_per_million": {k: round(v, 1) for k, v in requests.items()},
        "notes": notes,
    }


def _service_name(service: str) -> str:
    return {"kms": "KMS", "s3": "S3", "secretsmanager": "Secrets Manager", "lambda": "Lambda"}.get(service, service)


def price_table() -> dict[str, dict[str, Any]]:
    return {name: {"usd": p.usd, "per": p.per, "source": p.source} for name, p in PRICES.items()}
