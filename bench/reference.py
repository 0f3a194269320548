"""Bare references for B1 and B2: the least work that turns the same input into the same output on the same
stubs. No validation, logging, metrics, tracing, partial-batch bookkeeping or hold-back; nothing sleeps.

They are what the handlers are measured against, so they must stay honest: if a handler's output changes
(object layout, SQS entries), change these to match; never add work to them.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from typing import Any

from spool.domain.ids import new_id
from spool.domain.naming import iso_timestamp
from spool.domain.ports import EndpointRepository, ObjectStore

_objects = itertools.count(1)
# The end of every line after the payload: `,"createdAt":"2026-04-14T10:30:00.123Z"}` (domain/naming.py).
_CREATED_TAIL = len(',"createdAt":""}') + len("2026-04-14T10:30:00.123Z")
_CREATED = len("2026-04-14T10:30:00.123Z")


def reference_sink(event: dict[str, Any], store: ObjectStore) -> dict[str, Any]:
    """Group the SQS event's records by endpoint, join their bodies as NDJSON, one put per group."""
    groups: dict[str, list[str]] = defaultdict(list)
    for record in event["Records"]:
        groups[record["messageAttributes"]["endpointId"]["stringValue"]].append(record["body"])
    second = int(time.time())
    for endpoint_id, lines in groups.items():
        store.put_new(
            f"{endpoint_id}/{second}-{next(_objects):03d}.ndjson",
            ("\n".join(lines) + "\n").encode(),
            content_type="application/x-ndjson",
            content_encoding=None,
        )
    return {"batchItemFailures": []}


def reference_sink_parquet(event: dict[str, Any], store: ObjectStore, codec: str = "snappy") -> dict[str, Any]:
    """reference_sink for a Parquet endpoint: the same grouping, then one Parquet file per group with the
    sink's four columns, cut out of each line by position (every line has the same fixed shape)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    groups: dict[str, list[str]] = defaultdict(list)
    for record in event["Records"]:
        groups[record["messageAttributes"]["endpointId"]["stringValue"]].extend(record["body"].split("\n"))
    second = int(time.time())
    timestamp = pa.timestamp("ms", tz="UTC")
    schema = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("eventType", pa.string(), nullable=False),
            pa.field("createdAt", timestamp, nullable=False),
            pa.field("payload", pa.string(), nullable=False),
        ]
    )
    for endpoint_id, lines in groups.items():
        ids, types, payloads, created = [], [], [], []
        for line in lines:
            type_at = line.index('"', 7)  # after {"id":"
            payload_at = line.index('"', type_at + 15)  # after ","eventType":"
            ids.append(line[7:type_at])
            types.append(line[type_at + 15 : payload_at])
            payloads.append(line[payload_at + 12 : -_CREATED_TAIL])  # after ","payload":
            created.append(line[-_CREATED - 2 : -2])
        table = pa.Table.from_arrays(
            [pa.array(ids), pa.array(types), pa.array(created).cast(timestamp), pa.array(payloads)], schema=schema
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=codec)
        store.put_new(
            f"{endpoint_id}/{second}-{next(_objects):03d}.parquet",
            sink.getvalue().to_pybytes(),
            content_type="application/vnd.apache.parquet",
            content_encoding=None,
        )
    return {"batchItemFailures": []}


def reference_ingest(
    event: dict[str, Any], *, sqs: Any, queue_url: str, repo: EndpointRepository, tenant_id: str
) -> dict[str, Any]:
    """Parse a batch body, render each event's line, send one SQS entry per endpoint with all the lines (a
    bundle, as the api does; the reference's bodies stay far below SQS's size limit), answer 202."""
    body = json.loads(event["body"])
    created_at = iso_timestamp(time.time())
    endpoints = [e.id for e in repo.active_endpoints(tenant_id)]
    accepted: list[dict[str, str]] = []
    lines: list[str] = []
    for item in body["events"]:
        event_id = new_id("evt")
        document = {"id": event_id, "eventType": item["eventType"], "payload": item["payload"], "createdAt": created_at}
        lines.append(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
        accepted.append({"id": event_id, "createdAt": created_at})
    bundle = "\n".join(lines)
    entries: list[dict[str, Any]] = []
    for endpoint_id in endpoints:
        attributes = {
            "tenantId": {"DataType": "String", "StringValue": tenant_id},
            "endpointId": {"DataType": "String", "StringValue": endpoint_id},
            "lines": {"DataType": "Number", "StringValue": str(len(lines))},
        }
        entries.append({"Id": str(len(entries) % 10), "MessageBody": bundle, "MessageAttributes": attributes})
    for start in range(0, len(entries), 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries[start : start + 10])
    return {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"events": accepted}),
        "isBase64Encoded": False,
    }
