"""The sink's per-endpoint coalescing (domain/delivery.py) over fakes: full objects at once, remainders held
back in staging with one flush trigger, due triggers under a lease, failures isolated per endpoint, retries
with back-off, object names that never overwrite, gzip, and cached credentials (SPEC: What lands in storage,
Guarantees)."""

from __future__ import annotations

import gzip
import json
import math
from typing import Any

import pytest

from spool.domain.credentials import Credentials
from spool.domain.delivery import LEASE_PATIENCE_SECONDS, DeliveryReport
from spool.domain.endpoints import encryption_context, seal
from spool.domain.models import Endpoint
from spool.domain.naming import iso_timestamp, ndjson_line
from spool.domain.planner import (
    DUE_SLACK_SECONDS,
    LEASE_RETRY_SECONDS,
    LEASE_SECONDS,
    MAX_DELAY_SECONDS,
    InboundRecord,
    trigger_delay,
)
from spool.domain.storage import StorageSettings
from spool.handlers.sink import to_inbound
from tests.conftest import load_event
from tests.conftest import seed_key as object_key
from tests.fakes import FakeCipher, MemoryStore
from tests.unit.conftest import SinkHarness

TENANT = "ten_sink"
ACCESS_KEY_ID = "AKIASINKTESTKEY00001"
SECRET = "sink/Secret+Value/NeverLogged000000001"


def add_endpoint(
    sink: SinkHarness,
    endpoint_id: str = "ep_a",
    *,
    bucket: str = "bucket-a",
    prefix: str = "events/",
    batch_size: int = 3,
    interval: int = 60,
    compression: str = "none",
    tenant_id: str = TENANT,
) -> Endpoint:
    cipher = sink.sink.directory.cipher
    stamp = iso_timestamp(sink.clock[0] - 3600)
    endpoint = Endpoint(
        id=endpoint_id,
        tenantId=tenant_id,
        url=f"s3://{bucket}/{prefix}",
        eventTypes=["*"],
        storage=StorageSettings(
            provider="s3",
            bucket=bucket,
            prefix=prefix,
            region="us-east-1",
            batchSize=batch_size,
            flushIntervalSeconds=interval,
            compression=compression,  # type: ignore[arg-type]
        ),
        credentials=seal(
            cipher, tenant_id, endpoint_id, Credentials(accessKeyId=ACCESS_KEY_ID, secretAccessKey=SECRET)
        ),
        createdAt=stamp,
        updatedAt=stamp,
    )
    sink.repo.create_endpoint(endpoint)
    return endpoint


def events(
    sink: SinkHarness, endpoint_id: str, count: int, *, first: int = 0, receive_count: int = 1
) -> list[InboundRecord]:
    """`count` event messages for the endpoint, accepted a millisecond apart just before the clock."""
    records = []
    for n in range(first, first + count):
        accepted = sink.clock[0] - 1 + n / 1000
        records.append(
            InboundRecord(
                message_id=f"msg-{endpoint_id}-{n}",
                receipt_handle=f"rh-{endpoint_id}-{n}",
                tenant_id=TENANT,
                endpoint_id=endpoint_id,
                body=ndjson_line(f"evt_{endpoint_id}_{n}", "order.created", {"n": n}, iso_timestamp(accepted)),
                accepted_at=accepted,
                receive_count=receive_count,
                line_count=1,
            )
        )
    return records


def trigger(endpoint_id: str, flush_at: int, *, name: str = "flush", receive_count: int = 1) -> InboundRecord:
    return InboundRecord(
        message_id=f"msg-{name}-{endpoint_id}-{flush_at}",
        receipt_handle=f"rh-{name}-{endpoint_id}-{flush_at}",
        tenant_id=TENANT,
        endpoint_id=endpoint_id,
        body=f"flush {endpoint_id} at {flush_at}",
        accepted_at=flush_at - 60,
        receive_count=receive_count,
        kind="flush",
        flush_at=flush_at,
    )


def store(sink: SinkHarness, bucket: str = "bucket-a") -> MemoryStore:
    return sink.stores.stores.setdefault(bucket, MemoryStore())


def written(sink: SinkHarness, bucket: str = "bucket-a") -> list[list[str]]:
    """The lines of every object in the bucket, objects in key order."""
    objects = store(sink, bucket).objects
    return [body_lines(objects[key]) for key in sorted(objects)]


def body_lines(body: bytes) -> list[str]:
    text = body.decode()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def lines(records: list[InboundRecord]) -> list[str]:
    return [line for r in records for line in r.lines]


def staged_lines(sink: SinkHarness, endpoint_id: str = "ep_a") -> list[str]:
    return [
        line for (ep, _), items in sink.repo.staged.items() if ep == endpoint_id for b in items.values() for line in b
    ]


def deliver(sink: SinkHarness, *groups: list[InboundRecord]) -> DeliveryReport:
    return sink.sink.deliver([record for group in groups for record in group])


def held_until_due(sink: SinkHarness, count: int) -> tuple[list[InboundRecord], int]:
    """`count` events of ep_a held back, and the clock moved to their flush time."""
    held = events(sink, "ep_a", count)
    deliver(sink, held)
    flush_at = sink.queue.flushes[0][2]
    sink.clock[0] = flush_at
    return held, flush_at


# --- full batches ----------------------------------------------------------------------------------------------


def test_full_batches_are_written_at_once_as_objects_of_batch_size_lines(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=3)
    records = events(sink_harness, "ep_a", 6)

    report = deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records[:3]), lines(records[3:])]
    assert report.retry == set()
    assert sink_harness.repo.staged == {}
    assert sink_harness.queue.flushes == []


def test_objects_follow_the_spec_key_layout(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, prefix="events/production/", batch_size=2)

    deliver(sink_harness, events(sink_harness, "ep_a", 4))

    second = int(sink_harness.clock[0])
    assert sorted(store(sink_harness).objects) == [
        f"events/production/2026-04-14/{second}-001.ndjson",
        f"events/production/2026-04-14/{second}-002.ndjson",
    ]


def test_object_body_is_the_spec_ndjson_lines_each_ending_in_a_newline(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2)
    records = events(sink_harness, "ep_a", 2)

    deliver(sink_harness, records)

    [body] = store(sink_harness).objects.values()
    assert body == (records[0].lines[0] + "\n" + records[1].lines[0] + "\n").encode()
    for line in body_lines(body):
        assert list(json.loads(line)) == ["id", "eventType", "payload", "createdAt"]


def test_lines_are_written_in_acceptance_order_whatever_the_arrival_order(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=4)
    records = events(sink_harness, "ep_a", 4)

    deliver(sink_harness, [records[2], records[0], records[3], records[1]])

    assert written(sink_harness) == [lines(records)]


def test_delivery_status_records_the_flush(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2)

    report = deliver(sink_harness, events(sink_harness, "ep_a", 4))

    status = sink_harness.repo.status["ep_a"]
    assert (status.eventsWritten, status.objectsWritten) == (4, 2)
    assert status.lastObjectKey == report.endpoints["ep_a"].keys[-1]
    assert status.lastFlushAt == iso_timestamp(sink_harness.clock[0])


# --- remainders are held back ----------------------------------------------------------------------------------


def test_remainder_is_staged_with_one_flush_trigger_an_interval_after_its_oldest_event(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=3, interval=60)
    records = events(sink_harness, "ep_a", 7)
    flush_at = math.floor(records[6].accepted_at + 60)

    report = deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records[:3]), lines(records[3:6])]
    assert [bundle for bundle in sink_harness.repo.staged[("ep_a", flush_at)].values()] == [lines(records[6:])]
    assert sink_harness.queue.flushes == [(TENANT, "ep_a", flush_at, round(flush_at - sink_harness.clock[0]))]
    assert report.endpoints["ep_a"].held == 1


def test_a_flush_trigger_is_sent_the_batching_window_early_so_the_window_ends_at_the_flush_time(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=3, interval=60)
    sink_harness.sink.trigger_lead_seconds = 5
    sink_harness.clock[0] += 0.3
    records = events(sink_harness, "ep_a", 1)

    deliver(sink_harness, records)

    (_, _, flush_at, delay) = sink_harness.queue.flushes[0]
    assert flush_at == math.floor(records[0].accepted_at + 60)
    assert delay == round(flush_at - sink_harness.clock[0] - 5)


@pytest.mark.parametrize(
    ("until_flush", "lead", "delay"),
    [
        (30.0, 0, 30),  # no window: sent for the flush time itself
        (30.4, 5, 25),  # the window early, to the nearest second (arriving 0.4 s early is still due)
        (30.6, 5, 26),  # rounding up here: arriving 0.6 s early would be too early (DUE_SLACK_SECONDS)
        (3.0, 5, 0),  # the flush time is inside the window: at once
        (5_000.0, 0, MAX_DELAY_SECONDS),  # SQS delays at most 15 minutes; an early trigger is handed back
    ],
)
def test_trigger_delay(until_flush: float, lead: float, delay: int) -> None:
    assert trigger_delay(until_flush - lead) == delay


def test_held_messages_are_not_reported_for_retry(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=5)

    report = deliver(sink_harness, events(sink_harness, "ep_a", 2))

    assert report.retry == set()
    assert sink_harness.queue.visibility == []
    assert store(sink_harness).objects == {}


def test_remainder_below_batch_size_writes_no_object(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=100)
    records = events(sink_harness, "ep_a", 99)

    deliver(sink_harness, records)

    assert store(sink_harness).puts == 0
    assert staged_lines(sink_harness) == lines(records)


def test_a_remainder_too_late_for_a_trigger_to_come_back_in_time_is_written_at_once(
    sink_harness: SinkHarness,
) -> None:
    # Interval 5 s, batching window 5 s, the events accepted 2 s ago: a trigger could be back up to 5 s
    # later, well after the interval ends, so holding would only add a window.
    add_endpoint(sink_harness, batch_size=10, interval=5)
    sink_harness.sink.trigger_lead_seconds = 5
    records = events(sink_harness, "ep_a", 2)
    sink_harness.clock[0] += 1

    report = deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records)]
    assert sink_harness.repo.staged == {}
    assert sink_harness.queue.flushes == []
    assert report.retry == set()


def test_a_remainder_past_its_flush_time_is_still_held_when_the_window_is_short(sink_harness: SinkHarness) -> None:
    # Window 1 s: the trigger, sent at once, is back within about the settle time, so holding still lets
    # other invocations' remainders share the object.
    add_endpoint(sink_harness, batch_size=10, interval=1)
    sink_harness.sink.trigger_lead_seconds = 1
    records = events(sink_harness, "ep_a", 2)

    deliver(sink_harness, records)

    assert staged_lines(sink_harness) == lines(records)
    assert [f[3] for f in sink_harness.queue.flushes] == [0]


def test_a_trigger_arriving_up_to_the_batching_window_early_counts_as_due(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10, interval=60)
    sink_harness.sink.trigger_lead_seconds = 5
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at - 5 - DUE_SLACK_SECONDS

    report = deliver(sink_harness, [trigger("ep_a", flush_at)])

    assert len(written(sink_harness)) == 1
    assert report.retry == set()


def test_invocations_a_second_apart_hold_for_their_own_times_and_the_first_flush_writes_both(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=10, interval=60)
    first = events(sink_harness, "ep_a", 2)
    deliver(sink_harness, first)
    sink_harness.clock[0] += 1
    second = events(sink_harness, "ep_a", 3, first=2)
    deliver(sink_harness, second)
    times = sorted(f[2] for f in sink_harness.queue.flushes)
    assert times == [times[0], times[0] + 1]
    sink_harness.clock[0] = times[0]

    deliver(sink_harness, [trigger("ep_a", times[0])])
    sink_harness.clock[0] = times[1]
    later = deliver(sink_harness, [trigger("ep_a", times[1])])

    assert written(sink_harness) == [lines(first + second)]
    assert staged_lines(sink_harness) == []
    assert later.retry == set()


def test_a_flush_with_nothing_staged_for_its_time_leases_no_later_time(sink_harness: SinkHarness) -> None:
    # Holding the later time's lease while finding nothing would send that time's own trigger away for
    # LEASE_RETRY_SECONDS (the B5 tail of per-batch flush times).
    add_endpoint(sink_harness, batch_size=10, interval=60)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    later = sink_harness.queue.flushes[0][2]
    leased: list[int] = []
    acquire = sink_harness.repo.acquire

    def recording(endpoint_id: str, flush_at: int, owner: str, seconds: int) -> bool:
        leased.append(flush_at)
        return acquire(endpoint_id, flush_at, owner, seconds)

    sink_harness.repo.acquire = recording  # type: ignore[method-assign]
    sink_harness.clock[0] = later - 10

    report = deliver(sink_harness, [trigger("ep_a", later - 10)])

    assert leased == [later - 10]
    assert store(sink_harness).puts == 0
    assert report.retry == set()


def test_trigger_delay_is_capped_at_the_sqs_maximum_for_long_intervals(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10, interval=3600)
    # The flush time is an interval, almost an hour, after the event.

    deliver(sink_harness, events(sink_harness, "ep_a", 1))

    [(_, _, flush_at, delay)] = sink_harness.queue.flushes
    assert delay == MAX_DELAY_SECONDS < flush_at - sink_harness.clock[0]


# --- due flush triggers ----------------------------------------------------------------------------------------


def test_due_trigger_writes_staged_lines_and_its_own_remainder_as_one_object(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 2)
    own = events(sink_harness, "ep_a", 3, first=2)

    report = deliver(sink_harness, [trigger("ep_a", flush_at)], own)

    assert written(sink_harness) == [lines(held) + lines(own)]
    assert report.retry == set()
    assert staged_lines(sink_harness) == []
    assert len(sink_harness.queue.flushes) == 1


def test_due_trigger_writes_full_objects_and_at_most_one_partial_one(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=3)
    first, second = events(sink_harness, "ep_a", 2), events(sink_harness, "ep_a", 2, first=2)
    deliver(sink_harness, first)
    deliver(sink_harness, second)
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at

    deliver(sink_harness, [trigger("ep_a", flush_at)])

    assert sorted(len(o) for o in written(sink_harness)) == [1, 3]
    assert sorted(line for o in written(sink_harness) for line in o) == sorted(lines(first + second))


def test_due_trigger_within_the_slack_counts_as_due(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at - DUE_SLACK_SECONDS

    report = deliver(sink_harness, [trigger("ep_a", flush_at)])

    assert len(written(sink_harness)) == 1
    assert report.retry == set()


def test_due_trigger_with_nothing_staged_writes_nothing_and_is_acknowledged(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness)
    flush_at = int(sink_harness.clock[0]) + 30  # a flush time some holder chose
    sink_harness.clock[0] = flush_at

    report = deliver(sink_harness, [trigger("ep_a", flush_at)])

    assert store(sink_harness).puts == 0
    assert report.retry == set()


def test_duplicate_triggers_for_one_time_write_once_and_are_all_acknowledged(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=1))
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at

    report = deliver(sink_harness, [trigger("ep_a", flush_at, name="one"), trigger("ep_a", flush_at, name="two")])

    assert [len(o) for o in written(sink_harness)] == [2]
    assert report.retry == set()


def test_trigger_after_the_flush_was_done_finds_nothing_left(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    deliver(sink_harness, events(sink_harness, "ep_a", 2))
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at
    deliver(sink_harness, [trigger("ep_a", flush_at, name="winner")])

    report = deliver(sink_harness, [trigger("ep_a", flush_at, name="late")])

    assert len(written(sink_harness)) == 1
    assert report.retry == set()


def test_flush_lease_is_released_after_the_flush(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at

    deliver(sink_harness, [trigger("ep_a", flush_at)])

    assert sink_harness.repo.leases == {}


def test_trigger_losing_the_lease_is_retried_shortly_and_touches_nothing(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 2)
    sink_harness.repo.leases[("ep_a", flush_at)] = "another-invocation"
    losing = trigger("ep_a", flush_at)

    report = deliver(sink_harness, [losing])

    assert report.retry == {losing.message_id}
    # The lease's end could not be read here (the fake keeps none): read as just released, back in a second.
    assert sink_harness.queue.visibility == [(losing.receipt_handle, 1)]
    assert store(sink_harness).puts == 0
    assert staged_lines(sink_harness) == lines(held)
    assert sink_harness.repo.leases == {("ep_a", flush_at): "another-invocation"}


@pytest.mark.parametrize(
    ("receive_count", "lease_left", "wait"),
    [
        (1, 110.0, LEASE_RETRY_SECONDS),
        (1, 118.0, 1),  # taken 2 s ago: a flush of the same time under way, over in a moment
        (2, 118.0, 2 * LEASE_RETRY_SECONDS),  # later receives keep their waits, so a dead sink's lease is outlasted
        (3, 110.0, 4 * LEASE_RETRY_SECONDS),
        (6, 30.0, 31),
    ],
)
def test_trigger_losing_the_lease_comes_back_soon_doubling_but_never_after_the_lease_expires(
    sink_harness: SinkHarness, receive_count: int, lease_left: float, wait: int
) -> None:
    add_endpoint(sink_harness, batch_size=10)
    deliver(sink_harness, events(sink_harness, "ep_a", 2))
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at
    sink_harness.repo.leases[("ep_a", flush_at)] = "another-invocation"
    sink_harness.repo.lease_ends[("ep_a", flush_at)] = flush_at + lease_left
    losing = trigger("ep_a", flush_at, receive_count=receive_count)

    deliver(sink_harness, [losing])

    assert sink_harness.queue.visibility == [(losing.receipt_handle, wait)]


def patient(sink: SinkHarness, *, given_back_after: float | None) -> list[float]:
    """The sink waits for a flush under way (as deployed); the other flush gives the lease back after
    `given_back_after` seconds of waiting (None: never). Returns the sleeps, which move the clock."""
    sink.sink.lease_patience_seconds = LEASE_PATIENCE_SECONDS
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        sink.clock[0] += seconds
        if given_back_after is not None and sum(slept) >= given_back_after:
            sink.repo.leases = {k: v for k, v in sink.repo.leases.items() if v != "another-invocation"}

    sink.sink.sleep = sleep
    return slept


def test_trigger_meeting_a_flush_under_way_waits_for_it_and_writes_what_was_staged_after(
    sink_harness: SinkHarness,
) -> None:
    # Another flush of this time took the lease a second ago and listed; a hold staged these lines just after.
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 2)
    sink_harness.repo.leases[("ep_a", flush_at)] = "another-invocation"
    sink_harness.repo.lease_ends[("ep_a", flush_at)] = flush_at + LEASE_SECONDS - 1
    slept = patient(sink_harness, given_back_after=0.5)
    waiting = trigger("ep_a", flush_at)

    report = deliver(sink_harness, [waiting])

    assert report.retry == set()
    assert sink_harness.queue.visibility == []
    assert written(sink_harness) == [lines(held)]
    assert staged_lines(sink_harness) == []
    assert 0.5 <= sum(slept) < 1.0
    assert sink_harness.repo.leases == {}


def test_trigger_waits_for_a_flush_under_way_no_longer_than_its_patience(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 2)
    sink_harness.repo.leases[("ep_a", flush_at)] = "another-invocation"
    sink_harness.repo.lease_ends[("ep_a", flush_at)] = flush_at + LEASE_SECONDS - 1
    slept = patient(sink_harness, given_back_after=None)
    waiting = trigger("ep_a", flush_at)

    report = deliver(sink_harness, [waiting])

    assert report.retry == {waiting.message_id}
    assert sink_harness.queue.visibility == [(waiting.receipt_handle, 1)]
    assert LEASE_PATIENCE_SECONDS - 0.5 <= sum(slept) <= LEASE_PATIENCE_SECONDS
    assert store(sink_harness).puts == 0
    assert staged_lines(sink_harness) == lines(held)


def test_trigger_does_not_wait_for_an_old_lease(sink_harness: SinkHarness) -> None:
    # Taken a minute ago: a sink that died holding it, or a flush stuck on its store; not worth waiting for.
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 2)
    sink_harness.repo.leases[("ep_a", flush_at)] = "another-invocation"
    sink_harness.repo.lease_ends[("ep_a", flush_at)] = flush_at + 60
    slept = patient(sink_harness, given_back_after=0.5)
    waiting = trigger("ep_a", flush_at)

    deliver(sink_harness, [waiting])

    assert slept == []
    assert sink_harness.queue.visibility == [(waiting.receipt_handle, LEASE_RETRY_SECONDS)]
    assert staged_lines(sink_harness) == lines(held)


def test_remainder_of_an_invocation_losing_the_lease_is_held_not_lost(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    flush_at = int(sink_harness.clock[0]) + 30  # a flush time some holder chose
    sink_harness.clock[0] = flush_at
    sink_harness.repo.leases[("ep_a", flush_at)] = "another-invocation"
    own = events(sink_harness, "ep_a", 2)

    report = deliver(sink_harness, [trigger("ep_a", flush_at)], own)

    assert not report.retry & {r.message_id for r in own}
    assert staged_lines(sink_harness) == lines(own)


def test_early_trigger_is_put_back_until_its_time(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10, interval=3600)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at - 1000.25
    early = trigger("ep_a", flush_at)

    report = deliver(sink_harness, [early])

    assert report.retry == {early.message_id}
    assert sink_harness.queue.visibility == [(early.receipt_handle, 1001)]
    assert store(sink_harness).puts == 0
    assert len(staged_lines(sink_harness)) == 1


def test_trigger_flushes_only_its_own_endpoint(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, "ep_a", bucket="bucket-a", batch_size=10)
    add_endpoint(sink_harness, "ep_b", bucket="bucket-b", batch_size=10)
    deliver(sink_harness, events(sink_harness, "ep_a", 1), events(sink_harness, "ep_b", 1))
    flush_at_a = next(f[2] for f in sink_harness.queue.flushes if f[1] == "ep_a")
    sink_harness.clock[0] = flush_at_a

    deliver(sink_harness, [trigger("ep_a", flush_at_a)])

    assert len(written(sink_harness, "bucket-a")) == 1
    assert written(sink_harness, "bucket-b") == []
    assert len(staged_lines(sink_harness, "ep_b")) == 1


def test_a_due_trigger_also_takes_what_is_staged_for_the_next_flush_time(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10, interval=60)
    older = events(sink_harness, "ep_a", 2)
    deliver(sink_harness, older)
    first_flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = first_flush_at + 1  # the first trigger did not come (store down, say)
    newer = events(sink_harness, "ep_a", 2, first=2)
    deliver(sink_harness, newer)
    second_flush_at = sink_harness.queue.flushes[1][2]
    sink_harness.clock[0] = second_flush_at

    report = deliver(sink_harness, [trigger("ep_a", second_flush_at), trigger("ep_a", first_flush_at)])

    assert second_flush_at == first_flush_at + 60
    # Named for the earliest flush it writes: the older lines were due then (planner.Write.flushed_at).
    assert report.endpoints["ep_a"].keys == [object_key("events/", first_flush_at, 1)]
    assert written(sink_harness) == [lines(older) + lines(newer)]
    assert staged_lines(sink_harness) == []
    assert report.retry == set()


def test_staged_lines_of_an_endpoint_deleted_meanwhile_are_still_written(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held = events(sink_harness, "ep_a", 2)
    deliver(sink_harness, held)
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.repo.mark_deleted(TENANT, "ep_a", iso_timestamp(sink_harness.clock[0]), role_arn=None)
    sink_harness.clock[0] = flush_at + sink_harness.sink.directory.ttl

    deliver(sink_harness, [trigger("ep_a", flush_at)])

    assert written(sink_harness) == [lines(held)]


# --- retries ---------------------------------------------------------------------------------------------------


def test_retried_remainder_is_written_directly_instead_of_held_again(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    records = events(sink_harness, "ep_a", 2, receive_count=2)

    report = deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records)]
    assert sink_harness.repo.staged == {}
    assert sink_harness.queue.flushes == []
    assert report.retry == set()


def test_one_retried_message_makes_the_whole_remainder_written_directly(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    records = events(sink_harness, "ep_a", 2) + events(sink_harness, "ep_a", 1, first=2, receive_count=3)

    deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records)]


# --- failures --------------------------------------------------------------------------------------------------


def test_failing_store_fails_only_that_endpoints_messages(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, "ep_a", bucket="bucket-a", batch_size=2)
    add_endpoint(sink_harness, "ep_b", bucket="bucket-b", batch_size=2)
    store(sink_harness, "bucket-a").fail_with = "NoSuchBucket"
    failing, healthy = events(sink_harness, "ep_a", 4), events(sink_harness, "ep_b", 4)

    report = deliver(sink_harness, failing[:2], healthy[:2], failing[2:], healthy[2:])

    assert report.retry == {r.message_id for r in failing}
    assert written(sink_harness, "bucket-b") == [lines(healthy[:2]), lines(healthy[2:])]
    assert report.endpoints["ep_a"].error == "NoSuchBucket"
    assert report.endpoints["ep_b"].error is None


def test_failed_messages_come_back_after_the_base_back_off(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2)
    store(sink_harness).fail_with = "SlowDown"
    records = events(sink_harness, "ep_a", 2)

    deliver(sink_harness, records)

    assert sorted(sink_harness.queue.visibility) == sorted((r.receipt_handle, 10) for r in records)


@pytest.mark.parametrize(
    ("receive_count", "delay"), [(1, 10), (2, 20), (3, 40), (6, 320), (7, 640), (8, 900), (30, 900)]
)
def test_back_off_doubles_with_each_receive_up_to_the_maximum(
    sink_harness: SinkHarness, receive_count: int, delay: int
) -> None:
    add_endpoint(sink_harness, batch_size=1)
    store(sink_harness).fail_with = "SlowDown"
    [record] = events(sink_harness, "ep_a", 1, receive_count=receive_count)

    deliver(sink_harness, [record])

    assert sink_harness.queue.visibility == [(record.receipt_handle, delay)]


def test_failure_is_recorded_in_the_delivery_status_without_credentials(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    store(sink_harness).fail_with = "AccessDenied"

    deliver(sink_harness, events(sink_harness, "ep_a", 1))

    status = sink_harness.repo.status["ep_a"]
    assert status.lastError == "AccessDenied"
    assert SECRET not in status.model_dump_json()
    assert ACCESS_KEY_ID not in status.model_dump_json()


def test_full_objects_written_before_a_failure_are_acknowledged(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2)
    records = events(sink_harness, "ep_a", 3)
    sink_harness.repo.stage = _raise  # type: ignore[method-assign]

    report = deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records[:2])]
    assert report.retry == {records[2].message_id}


def _raise(*args: Any, **kwargs: Any) -> None:
    raise ConnectionError("staging unavailable")


def test_staging_failure_sends_the_remainder_back_for_retry(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    records = events(sink_harness, "ep_a", 2)
    sink_harness.repo.stage = _raise  # type: ignore[method-assign]

    report = deliver(sink_harness, records)

    assert report.retry == {r.message_id for r in records}
    assert sink_harness.queue.flushes == []


def test_trigger_send_failure_sends_the_remainder_back_for_retry(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    records = events(sink_harness, "ep_a", 2)
    sink_harness.queue.send_flush = _raise  # type: ignore[method-assign]

    report = deliver(sink_harness, records)

    assert report.retry == {r.message_id for r in records}


def test_failing_flush_keeps_the_staged_lines_and_retries_the_trigger_with_back_off(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 2)
    store(sink_harness).fail_with = "InternalError"
    flush = trigger("ep_a", flush_at)

    report = deliver(sink_harness, [flush])

    assert report.retry == {flush.message_id}
    assert sink_harness.queue.visibility == [(flush.receipt_handle, 10)]
    assert staged_lines(sink_harness) == lines(held)
    assert sink_harness.repo.leases == {}


def test_retried_trigger_writes_the_staged_lines_once_the_store_is_back(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 2)
    store(sink_harness).fail_with = "InternalError"
    deliver(sink_harness, [trigger("ep_a", flush_at)])
    store(sink_harness).fail_with = None
    sink_harness.clock[0] += 10

    report = deliver(sink_harness, [trigger("ep_a", flush_at, receive_count=2)])

    assert written(sink_harness) == [lines(held)]
    assert report.retry == set()
    assert staged_lines(sink_harness) == []


def test_messages_of_an_endpoint_that_no_longer_exists_are_retried_not_dropped(sink_harness: SinkHarness) -> None:
    records = events(sink_harness, "ep_missing", 2)

    report = deliver(sink_harness, records)

    assert report.retry == {r.message_id for r in records}
    assert report.endpoints["ep_missing"].error is not None


def test_credentials_that_fail_to_decrypt_fail_only_that_endpoint(sink_harness: SinkHarness) -> None:
    broken = add_endpoint(sink_harness, "ep_a", bucket="bucket-a", batch_size=1)
    add_endpoint(sink_harness, "ep_b", bucket="bucket-b", batch_size=1)
    # Ciphertext of another endpoint: KMS refuses it under this endpoint's encryption context.
    sink_harness.repo.endpoints[(TENANT, "ep_a")] = broken.model_copy(
        update={"credentials": sink_harness.repo.endpoints[(TENANT, "ep_b")].credentials}
    )
    failing, healthy = events(sink_harness, "ep_a", 1), events(sink_harness, "ep_b", 1)

    report = deliver(sink_harness, failing, healthy)

    assert report.retry == {failing[0].message_id}
    assert written(sink_harness, "bucket-b") == [lines(healthy)]


def test_events_accepted_before_a_delete_are_still_written(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2)
    sink_harness.repo.mark_deleted(TENANT, "ep_a", iso_timestamp(sink_harness.clock[0]), role_arn=None)
    records = events(sink_harness, "ep_a", 2)

    report = deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records)]
    assert report.retry == set()


def test_message_naming_another_tenants_endpoint_is_not_written_to_it(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    [record] = events(sink_harness, "ep_a", 1)
    forged = InboundRecord(**{**vars(record), "tenant_id": "ten_intruder"})

    report = deliver(sink_harness, [forged])

    assert store(sink_harness).objects == {}
    assert report.retry == {forged.message_id}


# --- object names never overwrite ------------------------------------------------------------------------------


def test_existing_object_is_never_overwritten_the_counter_moves_on(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    taken = object_key("events/", sink_harness.clock[0], 1)
    store(sink_harness).objects[taken] = b"written by another invocation\n"
    [record] = events(sink_harness, "ep_a", 1)

    report = deliver(sink_harness, [record])

    assert store(sink_harness).objects[taken] == b"written by another invocation\n"
    assert report.endpoints["ep_a"].keys == [object_key("events/", sink_harness.clock[0], 2)]
    assert (
        store(sink_harness).objects[object_key("events/", sink_harness.clock[0], 2)]
        == (record.lines[0] + "\n").encode()
    )


def test_counter_skips_every_taken_name(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    for batch in (1, 2, 3):
        store(sink_harness).objects[object_key("events/", sink_harness.clock[0], batch)] = b"x\n"

    report = deliver(sink_harness, events(sink_harness, "ep_a", 1))

    assert report.endpoints["ep_a"].keys == [object_key("events/", sink_harness.clock[0], 4)]


def test_counter_is_remembered_within_a_second_so_no_write_is_wasted(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)

    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=1))

    assert sorted(store(sink_harness).objects) == [object_key("events/", sink_harness.clock[0], n) for n in (1, 2)]
    assert store(sink_harness).puts == 2


def test_counter_starts_again_at_001_in_a_new_second(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    sink_harness.clock[0] += 1

    report = deliver(sink_harness, events(sink_harness, "ep_a", 1, first=1))

    assert report.endpoints["ep_a"].keys == [object_key("events/", sink_harness.clock[0], 1)]


def test_two_endpoints_sharing_a_bucket_and_prefix_never_overwrite_each_other(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, "ep_a", batch_size=1)
    add_endpoint(sink_harness, "ep_b", batch_size=1)
    first, second = events(sink_harness, "ep_a", 1), events(sink_harness, "ep_b", 1)

    deliver(sink_harness, first, second)

    assert sorted(line for o in written(sink_harness) for line in o) == sorted(lines(first + second))


def test_object_date_is_the_utc_date_of_the_flush_not_of_the_events(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    sink_harness.clock[0] = 1_776_211_200.0 + 5  # 2026-04-15T00:00:05Z; the event was accepted before midnight
    [record] = events(sink_harness, "ep_a", 1)
    record = InboundRecord(**{**vars(record), "accepted_at": 1_776_211_199.0})

    report = deliver(sink_harness, [record])

    assert report.endpoints["ep_a"].keys == [f"events/2026-04-15/{1_776_211_205}-001.ndjson"]


# --- gzip ------------------------------------------------------------------------------------------------------


def test_gzip_endpoint_writes_ndjson_gz_that_gunzips_to_the_same_lines(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=3, compression="gzip")
    records = events(sink_harness, "ep_a", 3)

    report = deliver(sink_harness, records)

    [key] = report.endpoints["ep_a"].keys
    assert key == object_key("events/", sink_harness.clock[0], 1, gzip=True)
    assert key.endswith(".ndjson.gz")
    assert gzip.decompress(store(sink_harness).objects[key]) == ("\n".join(lines(records)) + "\n").encode()


@pytest.mark.parametrize(("compression", "encoding"), [("none", None), ("gzip", "gzip")], ids=["plain", "gzip"])
def test_objects_are_stored_as_ndjson_content(
    sink_harness: SinkHarness, compression: str, encoding: str | None
) -> None:
    add_endpoint(sink_harness, batch_size=1, compression=compression)
    recording = RecordingStore()
    sink_harness.stores.stores["bucket-a"] = recording

    deliver(sink_harness, events(sink_harness, "ep_a", 1))

    assert recording.headers == [("application/x-ndjson", encoding)]


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.headers: list[tuple[str, str | None]] = []

    def put_new(
        self, key: str, body: bytes, *, content_type: str, content_encoding: str | None, sha256: str | None = None
    ) -> bool:
        self.headers.append((content_type, content_encoding))
        return super().put_new(key, body, content_type=content_type, content_encoding=content_encoding, sha256=sha256)


def test_gzip_output_is_deterministic_for_the_same_lines(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1, compression="gzip")
    [record] = events(sink_harness, "ep_a", 1)
    deliver(sink_harness, [record])
    deliver(sink_harness, [record])

    first, second = (store(sink_harness).objects[k] for k in sorted(store(sink_harness).objects))

    assert first == second


# --- credentials and the endpoint cache ------------------------------------------------------------------------


def test_store_client_gets_the_decrypted_credentials(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)

    deliver(sink_harness, events(sink_harness, "ep_a", 1))

    [credentials] = sink_harness.stores.seen_credentials
    assert credentials is not None
    assert (credentials.accessKeyId.get_secret_value(), credentials.secretAccessKey.get_secret_value()) == (
        ACCESS_KEY_ID,
        SECRET,
    )


def test_credentials_are_decrypted_once_within_the_cache_ttl(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    cipher = sink_harness.sink.directory.cipher
    assert isinstance(cipher, FakeCipher)

    for n in range(5):
        deliver(sink_harness, events(sink_harness, "ep_a", 1, first=n))
        sink_harness.clock[0] += 5

    assert cipher.decrypts == 1
    assert sink_harness.repo.endpoint_reads == 1


def test_unchanged_endpoint_is_read_again_after_the_ttl_but_not_decrypted_again(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    cipher = sink_harness.sink.directory.cipher
    assert isinstance(cipher, FakeCipher)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    sink_harness.clock[0] += sink_harness.sink.directory.ttl

    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=1))

    assert sink_harness.repo.endpoint_reads == 2
    assert cipher.decrypts == 1


def test_changed_endpoint_is_seen_and_decrypted_again_after_the_ttl(sink_harness: SinkHarness) -> None:
    endpoint = add_endpoint(sink_harness, batch_size=1)
    cipher = sink_harness.sink.directory.cipher
    assert isinstance(cipher, FakeCipher)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    sink_harness.repo.endpoints[(TENANT, "ep_a")] = endpoint.model_copy(
        update={
            "storage": endpoint.storage.model_copy(update={"batchSize": 2}),
            "updatedAt": iso_timestamp(sink_harness.clock[0]),
        }
    )

    sink_harness.clock[0] += 1
    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=1))
    within_ttl = (cipher.decrypts, len(store(sink_harness).objects))
    sink_harness.clock[0] += sink_harness.sink.directory.ttl
    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=2))

    assert within_ttl == (1, 2)  # old settings: batchSize 1 wrote the event at once
    assert cipher.decrypts == 2
    assert len(staged_lines(sink_harness)) == 1  # new settings: batchSize 2 holds one event back


def test_failure_forgets_the_cached_endpoint_so_a_fix_is_seen_at_once(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    cipher = sink_harness.sink.directory.cipher
    assert isinstance(cipher, FakeCipher)
    store(sink_harness).fail_with = "AccessDenied"
    deliver(sink_harness, events(sink_harness, "ep_a", 1))

    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=1))

    assert sink_harness.repo.endpoint_reads == 2


def test_credentials_decrypt_under_the_endpoints_own_context(sink_harness: SinkHarness) -> None:
    endpoint = add_endpoint(sink_harness)
    cipher = sink_harness.sink.directory.cipher
    assert endpoint.credentials is not None

    plaintext = json.loads(cipher.decrypt(endpoint.credentials, encryption_context(TENANT, "ep_a")))

    assert plaintext == {"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET}


def test_sink_logs_never_contain_credentials(sink_harness: SinkHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    add_endpoint(sink_harness, "ep_a", batch_size=1)
    add_endpoint(sink_harness, "ep_b", bucket="bucket-b", batch_size=1)
    store(sink_harness, "bucket-b").fail_with = "AccessDenied"
    sink_harness.repo.record_flush = _raise  # type: ignore[method-assign]

    deliver(sink_harness, events(sink_harness, "ep_a", 1), events(sink_harness, "ep_b", 1))

    assert caplog.records, "nothing was logged: the check would be vacuous"
    logged = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    assert SECRET not in logged
    assert ACCESS_KEY_ID not in logged


# --- the SQS records the handler turns into InboundRecords ----------------------------------------------------


def test_sample_sqs_events_become_event_records() -> None:
    records = [to_inbound(r) for r in load_event("sqs_three_events.json")["Records"]]

    assert [(r.kind, r.tenant_id, r.endpoint_id, r.receive_count) for r in records] == [
        ("event", "ten_sample", "ep_sample", 1)
    ] * 3
    assert records[0].accepted_at == 1_776_162_600.0
    assert json.loads(records[0].lines[0])["id"] == "evt_sample0"


def test_sample_flush_trigger_becomes_a_flush_record() -> None:
    [record] = [to_inbound(r) for r in load_event("sqs_flush_trigger.json")["Records"]]

    assert (record.kind, record.endpoint_id, record.flush_at) == ("flush", "ep_sample", 1_776_162_660)


def test_sample_sqs_events_are_written_as_one_object(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, "ep_sample", tenant_id="ten_sample", batch_size=3)
    records = [to_inbound(r) for r in load_event("sqs_three_events.json")["Records"]]

    report = sink_harness.sink.deliver(records)

    assert written(sink_harness) == [lines(records)]
    assert report.retry == set()


# --- bundles: one message with many lines ------------------------------------------------------------------------


def bundled(records: list[InboundRecord], name: str = "bundle") -> InboundRecord:
    """The records' lines as one bundle (what the api sends for one request)."""
    first = records[0]
    lines = [line for r in records for line in r.lines]
    return InboundRecord(
        message_id=f"msg-{name}",
        receipt_handle=f"rh-{name}",
        tenant_id=first.tenant_id,
        endpoint_id=first.endpoint_id,
        body="\n".join(lines),
        accepted_at=first.accepted_at,
        receive_count=first.receive_count,
        line_count=len(lines),
    )


def test_a_bundle_of_full_batches_is_written_and_acknowledged(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=3)
    records = events(sink_harness, "ep_a", 6)

    report = deliver(sink_harness, [bundled(records)])

    assert written(sink_harness) == [lines(records[:3]), lines(records[3:])]
    assert report.retry == set()


def test_a_bundle_straddling_a_full_object_writes_the_full_part_and_holds_the_rest(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=4)
    records = events(sink_harness, "ep_a", 6)
    first, second = bundled(records[:3], "one"), bundled(records[3:], "two")

    report = deliver(sink_harness, [first, second])

    assert written(sink_harness) == [lines(records[:4])]
    assert sorted(staged_lines(sink_harness)) == sorted(lines(records[4:]))
    assert report.retry == set()  # both acknowledged: every line is written or staged
    assert report.endpoints["ep_a"].held == 2


def test_a_bundle_whose_remainder_cannot_be_held_is_handed_back_whole(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=4)
    records = events(sink_harness, "ep_a", 6)
    first, second = bundled(records[:3], "one"), bundled(records[3:], "two")

    sink_harness.queue.send_flush = _raise  # type: ignore[method-assign]
    report = deliver(sink_harness, [first, second])

    assert report.retry == {second.message_id}  # its first line is written; it comes back for the rest
    assert staged_lines(sink_harness) == []


def test_a_bundle_with_a_line_that_is_not_an_event_goes_to_the_dlq_whole(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=2)
    good = events(sink_harness, "ep_a", 2)
    forged = InboundRecord(**{**vars(bundled(good, "forged")), "body": good[0].lines[0] + "\nnot json"})

    report = deliver(sink_harness, [forged])

    assert store(sink_harness).objects == {}
    assert report.retry == {forged.message_id}


def test_a_bundle_decodes_from_an_sqs_record() -> None:
    record = load_event("sqs_bundle.json")["Records"][0]
    inbound = to_inbound(record)
    assert len(inbound.lines) == 3
    assert [json.loads(line)["id"] for line in inbound.lines] == ["evt_bundle1", "evt_bundle2", "evt_bundle3"]


# --- a flush whose clean-up fails ----------------------------------------------------------------------------


def test_a_flush_whose_staging_clean_up_fails_does_not_write_the_lines_again(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 3)
    real_remove = sink_harness.repo.remove

    sink_harness.repo.remove = _raise  # type: ignore[method-assign]
    first = deliver(sink_harness, [trigger("ep_a", flush_at)])
    assert written(sink_harness) == [lines(held)]
    assert first.retry  # the trigger comes back: its clean-up is not done

    sink_harness.repo.remove = real_remove  # type: ignore[method-assign]
    second = deliver(sink_harness, [trigger("ep_a", flush_at, name="again", receive_count=2)])

    assert written(sink_harness) == [lines(held)]  # once
    assert second.retry == set()
    assert sink_harness.repo.staged == {}
    assert sink_harness.repo.written_marks == {}


def test_lines_staged_after_a_failed_clean_up_are_still_written_with_the_next_trigger(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=10)
    held, flush_at = held_until_due(sink_harness, 3)
    real_remove = sink_harness.repo.remove
    sink_harness.repo.remove = _raise  # type: ignore[method-assign]
    deliver(sink_harness, [trigger("ep_a", flush_at)])
    sink_harness.repo.remove = real_remove  # type: ignore[method-assign]
    late = events(sink_harness, "ep_a", 2, first=10)
    sink_harness.repo.stage(TENANT, "ep_a", flush_at, "late-holder", lines(late))

    deliver(sink_harness, [trigger("ep_a", flush_at, name="again", receive_count=2)])

    assert written(sink_harness) == [lines(held), lines(late)]
    assert sink_harness.repo.staged == {}


def test_with_hold_back_off_a_remainder_is_written_at_once(sink_harness: SinkHarness) -> None:
    # B4's reference run (bench/local.py): what the trigger's batching alone gives.
    add_endpoint(sink_harness, batch_size=3)
    sink_harness.sink.hold_back = False
    records = events(sink_harness, "ep_a", 4)

    report = deliver(sink_harness, records)

    assert written(sink_harness) == [lines(records[:3]), lines(records[3:])]
    assert staged_lines(sink_harness) == [] and sink_harness.queue.flushes == [] and report.retry == set()


def test_a_flush_writes_everything_it_takes_in_acceptance_order(sink_harness: SinkHarness) -> None:
    """Issue 22: twenty single events held by invocations in an arbitrary order (as several pollers deliver
    them) come out of the flush in the order they were accepted, staged lines and the flush's own bundles alike."""
    add_endpoint(sink_harness, batch_size=100, interval=5)
    records = events(sink_harness, "ep_a", 20)
    arrival = [2, 11, 13, 14, 20, 4, 8, 9, 17, 5, 1, 3, 6, 7, 10, 12, 15, 16, 18]
    for n in arrival:
        deliver(sink_harness, [records[n - 1]])
    flush_at = sink_harness.queue.flushes[0][2]
    sink_harness.clock[0] = flush_at

    deliver(sink_harness, [trigger("ep_a", flush_at), records[18]])  # the 19th arrives with the trigger

    assert written(sink_harness) == [lines(records)]


def test_overlapping_bundles_are_merged_line_by_line_into_acceptance_order(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=6)
    odd = [ndjson_line(f"evt_{n:03d}", "order.created", {}, "2026-04-14T10:29:59.000Z") for n in (1, 3, 5)]
    even = [ndjson_line(f"evt_{n:03d}", "order.created", {}, "2026-04-14T10:29:59.000Z") for n in (2, 4, 6)]
    bundles = [
        InboundRecord(name, f"rh-{name}", TENANT, "ep_a", "\n".join(body), sink_harness.clock[0] - 1, line_count=3)
        for name, body in (("odd", odd), ("even", even))
    ]

    deliver(sink_harness, bundles)

    assert written(sink_harness) == [[odd[0], even[0], odd[1], even[1], odd[2], even[2]]]
