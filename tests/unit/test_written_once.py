"""Written once (issue 22, item 2): a flush that runs again (the sink died after the put, the answer was lost, the
trigger or the messages came back, a redrive) finds in the ledger what it wrote and does not write those lines a
second time. Over fakes; the fault suite does the same through the local runtime (tests/reliability)."""

from __future__ import annotations

import contextlib
import dataclasses

from spool.domain.planner import InboundRecord
from tests.unit.conftest import SinkHarness
from tests.unit.test_delivery import add_endpoint, deliver, events, held_until_due, lines, store, trigger, written


def again(records: list[InboundRecord], first_attempt: float) -> list[InboundRecord]:
    """The same messages received once more (a sink that died before they were acknowledged)."""
    return [dataclasses.replace(r, receive_count=r.receive_count + 1, first_attempt=first_attempt) for r in records]


def test_messages_that_come_back_after_their_lines_were_written_are_acknowledged_without_a_write(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=3)
    records = events(sink_harness, "ep_a", 6)
    first_try = sink_harness.clock[0]
    deliver(sink_harness, records)
    sink_harness.clock[0] += 61  # the visibility timeout, then a new invocation

    report = deliver(sink_harness, again(records, first_try))

    assert report.retry == set()
    assert report.endpoints["ep_a"].objects_written == 0
    assert written(sink_harness) == [lines(records[:3]), lines(records[3:])]


def test_only_the_lines_a_dead_sink_did_not_write_are_written_when_its_messages_come_back(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=3)
    records = events(sink_harness, "ep_a", 6)
    first_try = sink_harness.clock[0]
    bucket = store(sink_harness)
    put = bucket.put_new
    calls = {"n": 0}

    def dies_after_one(*args: object, **kwargs: object) -> bool:
        calls["n"] += 1
        if calls["n"] > 1:
            raise SystemExit("the execution environment died")  # not an Exception: nothing is cleaned up
        return put(*args, **kwargs)  # type: ignore[arg-type]

    bucket.put_new = dies_after_one  # type: ignore[method-assign]
    with contextlib.suppress(SystemExit):
        deliver(sink_harness, records)
    bucket.put_new = put  # type: ignore[method-assign]
    sink_harness.clock[0] += 61

    deliver(sink_harness, again(records, first_try))

    assert sorted(line for obj in written(sink_harness) for line in obj) == sorted(lines(records))


def test_an_object_put_whose_confirmation_was_lost_is_found_in_the_store_after_its_deadline(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=3)
    records = events(sink_harness, "ep_a", 3)
    first_try = sink_harness.clock[0]
    ledger = sink_harness.ledger
    ledger.confirm = lambda *_: None  # type: ignore[method-assign]  # the sink died right after the put
    deliver(sink_harness, records)
    [entry] = ledger.all("ep_a")
    assert not entry.written
    sink_harness.clock[0] = entry.deadline + 61

    report = deliver(sink_harness, again(records, first_try))

    assert report.retry == set()
    assert written(sink_harness) == [lines(records)]


def test_lines_another_sink_is_putting_right_now_come_back_shortly_rather_than_twice(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=3)
    records = events(sink_harness, "ep_a", 3)
    ledger = sink_harness.ledger
    ledger.confirm = lambda *_: None  # type: ignore[method-assign]
    deliver(sink_harness, records)  # its put is over, but not confirmed; its deadline is still ahead
    store(sink_harness).objects.clear()  # as if the put were still under way

    report = deliver(sink_harness, again(records, sink_harness.clock[0]))

    assert report.endpoints["ep_a"].busy == 3
    assert store(sink_harness).objects == {}


def test_a_flush_that_runs_again_after_its_put_does_not_write_the_staged_lines_twice(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=10, interval=5)
    held, flush_at = held_until_due(sink_harness, 3)
    repo = sink_harness.repo
    remove = repo.remove
    repo.remove = lambda *_: (_ for _ in ()).throw(SystemExit("died before the clean-up"))  # type: ignore[method-assign]
    with contextlib.suppress(SystemExit):
        deliver(sink_harness, [trigger("ep_a", flush_at)])
    repo.remove = remove  # type: ignore[method-assign]

    report = deliver(sink_harness, [trigger("ep_a", flush_at, receive_count=2)])

    assert report.retry == set()
    assert written(sink_harness) == [lines(held)]
    assert not repo.staged
