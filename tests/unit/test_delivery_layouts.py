"""The sink writes what the endpoint's object settings say (domain/encoding.py, domain/keys.py)."""

from __future__ import annotations

import io
import random
from typing import Any

import pyarrow.parquet as pq
import zstandard

from spool.domain import limits
from spool.domain.naming import iso_timestamp, ndjson_line
from spool.domain.planner import InboundRecord
from tests.unit.conftest import SinkHarness
from tests.unit.test_delivery import TENANT, add_endpoint, store

HIVE = "{prefix}dt={date}/hour={hour}/type={eventType}/{timestamp}-{batch}"


def configure(sink: SinkHarness, **fields: Any) -> None:
    endpoint = sink.repo.get_endpoint(TENANT, "ep_a")
    assert endpoint is not None
    sink.repo.replace_endpoint(
        endpoint.model_copy(update={"storage": endpoint.storage.model_copy(update=fields)}), endpoint.updatedAt
    )


def typed_events(sink: SinkHarness, count: int, types: tuple[str, ...], pad: int = 0) -> list[InboundRecord]:
    return [
        InboundRecord(
            message_id=f"msg-{n}",
            receipt_handle=f"rh-{n}",
            tenant_id=TENANT,
            endpoint_id="ep_a",
            body=ndjson_line(
                f"evt_{n}",
                types[n % len(types)],
                {"n": n, "pad": f"{random.Random(n).getrandbits(pad * 4):0{pad}x}" if pad else ""},
                iso_timestamp(sink.clock[0]),
            ),
            accepted_at=sink.clock[0] - 1 + n / 1000,
        )
        for n in range(count)
    ]


def test_a_hive_parquet_endpoint_gets_one_object_per_type_under_partition_keys(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=6)
    configure(sink_harness, keyTemplate=HIVE, format="parquet")

    report = sink_harness.sink.deliver(typed_events(sink_harness, 6, ("a.b", "c.d")))

    assert not report.retry
    objects = store(sink_harness).objects
    assert sorted(objects) == [
        "events/dt=2026-04-14/hour=10/type=a.b/1776162600-001.parquet",
        "events/dt=2026-04-14/hour=10/type=c.d/1776162600-002.parquet",
    ]
    assert sum(pq.read_table(io.BytesIO(body)).num_rows for body in objects.values()) == 6


def test_a_capped_zstd_endpoint_splits_a_batch_with_the_next_counters(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=300)
    configure(sink_harness, compression="zstd", maxObjectBytes=limits.MAX_OBJECT_BYTES_MIN)

    report = sink_harness.sink.deliver(typed_events(sink_harness, 300, ("a.b",), pad=5000))

    assert not report.retry
    objects = store(sink_harness).objects
    assert len(objects) >= 2
    assert sorted(objects)[:2] == [
        "events/2026-04-14/1776162600-001.ndjson.zst",
        "events/2026-04-14/1776162600-002.ndjson.zst",
    ]
    assert max(len(b) for b in objects.values()) <= limits.MAX_OBJECT_BYTES_MIN
    lines = [ln for b in objects.values() for ln in zstandard.ZstdDecompressor().decompress(b).decode().splitlines()]
    assert len(lines) == 300
    assert report.endpoints["ep_a"].events_written == 300
