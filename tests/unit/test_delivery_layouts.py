"""The sink writes what the endpoint's object settings say (domain/encoding.py, domain/keys.py)."""

from __future__ import annotations

import io
import json
import math
import random
from typing import Any

import pyarrow.parquet as pq
import zstandard

from spool.domain import limits
from spool.domain.delivery import DeliveryReport
from spool.domain.naming import iso_timestamp, ndjson_line
from spool.domain.planner import InboundRecord
from tests.unit.conftest import SinkHarness
from tests.unit.test_delivery import TENANT, add_endpoint, staged_lines, store, trigger

HIVE = "{prefix}dt={date}/hour={hour}/type={eventType}/{timestamp}-{batch}"


def configure(sink: SinkHarness, **fields: Any) -> None:
    endpoint = sink.repo.get_endpoint(TENANT, "ep_a")
    assert endpoint is not None
    sink.repo.replace_endpoint(
        endpoint.model_copy(update={"storage": endpoint.storage.model_copy(update=fields)}),
        endpoint.updatedAt,
        previous_role=endpoint.storage.roleArn,
    )


def typed_events(sink: SinkHarness, count: int, types: tuple[str, ...], pad: int = 0) -> list[InboundRecord]:
    return [
        InboundRecord(
            message_id=f"msg-{n}",
            receipt_handle=f"rh-{n}",
            tenant_id=TENANT,
            endpoint_id="ep_a",
            body=ndjson_line(
                f"evt_{n:06d}",
                types[n % len(types)],
                {"n": n, "pad": f"{random.Random(n).getrandbits(pad * 4):0{pad}x}" if pad else ""},
                iso_timestamp(sink.clock[0] - 1 + n / 1000),
            ),
            accepted_at=sink.clock[0] - 1 + n / 1000,
            line_count=1,
        )
        for n in range(count)
    ]


def test_a_hive_parquet_endpoint_gets_one_object_per_type_under_partition_keys(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=3)  # per type: 3 events of each type fill one object each
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


def flush_all_held(sink: SinkHarness) -> DeliveryReport:
    """Move the clock to the last flush time held for and deliver every trigger sent."""
    times = sorted({flush_at for _, _, flush_at, _ in sink.queue.flushes})
    sink.clock[0] = times[-1]
    return sink.sink.deliver([trigger("ep_a", t, name=f"flush{n}") for n, t in enumerate(times)])


def objects_by_type(sink: SinkHarness) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for key, body in store(sink).objects.items():
        found.setdefault(key.split("/type=")[1].split("/")[0], []).append(body.decode().splitlines())
    return found


def test_with_event_type_in_the_template_batch_size_applies_per_type_hold_back_included(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=100)
    configure(sink_harness, keyTemplate=HIVE)
    records = typed_events(sink_harness, 3000, ("order.created", "order.paid", "refund.issued"))

    for start in range(0, 3000, 350):  # invocations of 350 events: full objects per type, remainders held
        assert not sink_harness.sink.deliver(records[start : start + 350]).retry
    assert not flush_all_held(sink_harness).retry

    found = objects_by_type(sink_harness)
    assert set(found) == {"order.created", "order.paid", "refund.issued"}
    assert sum(len(objects) for objects in found.values()) <= 3 * math.ceil(1000 / 100) + 3
    for event_type, objects in found.items():
        assert all(json.loads(line)["eventType"] == event_type for lines in objects for line in lines)
        assert all(len(lines) <= 100 for lines in objects)
    ids = [json.loads(line)["id"] for objects in found.values() for lines in objects for line in lines]
    assert sorted(ids) == sorted(f"evt_{n:06d}" for n in range(3000))
    assert not staged_lines(sink_harness)


def test_types_past_the_partition_bound_share_the_other_partition_and_none_is_lost(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=10)
    configure(sink_harness, keyTemplate=HIVE)
    types = tuple(f"kind.t{n:02d}" for n in range(60))
    records = typed_events(sink_harness, 600, types)  # 10 of each of 60 types

    assert not sink_harness.sink.deliver(records).retry

    found = objects_by_type(sink_harness)
    assert limits.OTHER_PARTITION in found
    assert len(found) == limits.TYPE_PARTITIONS_MAX + 1
    assert {json.loads(line)["eventType"] for lines in found[limits.OTHER_PARTITION] for line in lines} == set(
        types[limits.TYPE_PARTITIONS_MAX :]
    )
    ids = [json.loads(line)["id"] for objects in found.values() for lines in objects for line in lines]
    assert sorted(ids) == sorted(f"evt_{n:06d}" for n in range(600))


def test_sixty_types_one_event_each_held_and_flushed_together_make_at_most_51_partitions(
    sink_harness: SinkHarness,
) -> None:
    """Issue 21's case: everything is held back (batchSize 2, one event of each type) and flushed together; the
    flush writes 50 types' partitions plus the shared `_other`, which holds full objects, every event once."""
    add_endpoint(sink_harness, batch_size=2, interval=60)
    configure(sink_harness, keyTemplate=HIVE)
    types = tuple(f"kind.t{n:02d}" for n in range(60))
    records = typed_events(sink_harness, 60, types)

    for record in records:  # one event per invocation: each is held
        assert not sink_harness.sink.deliver([record]).retry
    assert store(sink_harness).objects == {}
    assert not flush_all_held(sink_harness).retry

    found = objects_by_type(sink_harness)
    assert len(found) == limits.TYPE_PARTITIONS_MAX + 1
    assert [len(lines) for lines in found[limits.OTHER_PARTITION]] == [2, 2, 2, 2, 2]  # full objects, not ten of one
    ids = [json.loads(line)["id"] for objects in found.values() for lines in objects for line in lines]
    assert sorted(ids) == sorted(f"evt_{n:06d}" for n in range(60))
    assert not staged_lines(sink_harness)


def test_sixty_types_in_full_objects_at_once_make_at_most_51_partitions(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2, interval=60)
    configure(sink_harness, keyTemplate=HIVE)
    records = typed_events(sink_harness, 120, tuple(f"kind.t{n:02d}" for n in range(60)))  # two of each

    assert not sink_harness.sink.deliver(records).retry

    found = objects_by_type(sink_harness)
    assert len(found) == limits.TYPE_PARTITIONS_MAX + 1
    assert all(len(lines) == 2 for objects in found.values() for lines in objects)
    ids = [json.loads(line)["id"] for objects in found.values() for lines in objects for line in lines]
    assert sorted(ids) == sorted(f"evt_{n:06d}" for n in range(120))
    assert not staged_lines(sink_harness)
