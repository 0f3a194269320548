"""The benchmarks' references do the same job as the handlers they are measured against, and the cost model's
billing arithmetic holds (bench/). Fast and without sockets; the benchmarks themselves run in `make bench`."""

from __future__ import annotations

import io
import json
import math

import pytest
from bench import stubs
from bench.calls import Meter, sqs_units
from bench.cost import firehose_per_million
from bench.reference import reference_ingest, reference_sink, reference_sink_parquet

from spool.handlers import api, sink
from spool.local.front import to_event
from spool.local.lambda_context import FakeContext


def test_reference_sink_writes_the_same_object_as_the_sink_handler() -> None:
    handled, referenced = stubs.CountingStore(keep_bodies=True), stubs.CountingStore(keep_bodies=True)
    services, _, queue = stubs.sink_services([stubs.endpoint("ep_a", batch_size=10)], handled)
    event = stubs.sqs_event(10, ["ep_a"])

    answer = sink.make_handler(lambda: services)(event, FakeContext("spool-sink", timeout_seconds=900))
    reference = reference_sink(event, referenced)

    assert answer == reference == {"batchItemFailures": []}
    assert queue.flushes == []
    assert list(handled.bodies.values()) == list(referenced.bodies.values())


@pytest.mark.parametrize("per_message", [1, 5])
def test_reference_sink_parquet_writes_the_same_parquet_file_as_the_sink_handler(per_message: int) -> None:
    import pyarrow.parquet as pq

    handled, referenced = stubs.CountingStore(keep_bodies=True), stubs.CountingStore(keep_bodies=True)
    services, _, queue = stubs.sink_services([stubs.endpoint("ep_a", batch_size=10, parquet=True)], handled)
    event = stubs.sqs_event(10, ["ep_a"], per_message=per_message)

    answer = sink.make_handler(lambda: services)(event, FakeContext("spool-sink", timeout_seconds=900))
    reference = reference_sink_parquet(event, referenced)

    assert answer == reference == {"batchItemFailures": []}
    assert queue.flushes == []
    assert [key.rsplit(".", 1)[1] for key in handled.bodies] == ["parquet"] * len(referenced.bodies) == ["parquet"]
    (written,), (expected,) = handled.bodies.values(), referenced.bodies.values()
    table = pq.read_table(io.BytesIO(written))
    assert table.num_rows == 10
    assert table.equals(pq.read_table(io.BytesIO(expected)))
    assert json.loads(table.column("payload")[0].as_py()) == stubs.payload(0)


def test_reference_ingest_sends_the_same_sqs_entries_as_the_api_handler() -> None:
    sqs = stubs.StubSqsClient(keep_entries=True)
    rig = stubs.api_services(sqs, endpoints=2)
    headers = {"x-api-key": rig.api_key, "content-type": "application/json"}
    event = to_event("POST", "/api/v1/events", headers, stubs.events_body(12), "198.51.100.7")

    answer = api.make_handler(lambda: rig.services)(event, FakeContext("spool-api"))
    handled = list(sqs.entries)
    sqs.entries.clear()
    reference = reference_ingest(event, sqs=sqs, queue_url=stubs.QUEUE_URL, repo=rig.repo, tenant_id=rig.tenant_id)

    def shape(entries: list[dict]) -> list[tuple]:
        """Everything but the generated id and timestamp; key order of the line included."""
        rows = []
        for entry in entries:
            for text in entry["MessageBody"].split("\n"):
                line = json.loads(text)
                rows.append((entry["Id"], entry["MessageAttributes"], list(line), line["eventType"], line["payload"]))
        return sorted(rows, key=repr)

    assert answer["statusCode"] == reference["statusCode"] == 202
    assert len(handled) == len(sqs.entries) == 2  # one bundle per endpoint
    assert len(shape(handled)) == 24
    assert shape(handled) == shape(sqs.entries)
    assert len(json.loads(answer["body"])["events"]) == len(json.loads(reference["body"])["events"]) == 12


def test_synthetic_events_are_about_one_kilobyte_as_ndjson_lines() -> None:
    lines = [record["body"] for record in stubs.sqs_event(5, ["ep_a"])["Records"]]

    assert all(abs(len(line.encode()) - stubs.EVENT_BYTES) <= 16 for line in lines)


def test_firehose_bills_each_1_kb_record_as_5_kb() -> None:
    assert firehose_per_million(1024) == pytest.approx(0.029 * 1e6 * 5 * 1024 / 1024**3)
    assert firehose_per_million(6 * 1024) == pytest.approx(2 * firehose_per_million(1024))


def test_sqs_bills_each_64_kb_of_a_request_as_one_request() -> None:
    entries = [{"MessageBody": "x" * 10_000, "MessageAttributes": {}} for _ in range(10)]

    unit, amount, _, _ = sqs_units("SendMessageBatch", {"Entries": entries}, {})

    assert (unit, amount) == ("request", math.ceil(100_000 / 65_536))


def test_a_staged_item_costs_its_size_in_write_units_to_put_and_again_to_delete() -> None:
    meter = Meter()
    key = {"pk": {"S": "B#ep_a#1800000000"}, "sk": {"S": "holder#0000"}}
    put = meter.dynamodb_units("PutItem", {"TableName": "t", "Item": key | {"lines": {"S": "x" * 5000}}}, {})
    delete = meter.dynamodb_units("BatchWriteItem", {"RequestItems": {"t": [{"DeleteRequest": {"Key": key}}]}}, {})

    assert put[:3] == ("WRU", 5.0, "staging")
    assert delete[:3] == ("WRU", 5.0, "staging")
