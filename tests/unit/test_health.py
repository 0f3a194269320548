"""A bad endpoint is contained (issue 20, items 1-2; domain/health.py): parked after a deadline hit or repeated
failures, its records handed back untouched while parked, one probe write deciding when it is healthy again, at
most one delivery writing to its store while it has not proven healthy (and none beside a slow write), and no
store call started without time for its deadline."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from spool.domain.delivery import DeliveryReport
from spool.domain.health import (
    BUSY_RETRY_SECONDS,
    PARK_AFTER_FAILURES,
    PARK_BASE_SECONDS,
    PARK_MAX_SECONDS,
    SLOW_DELIVERY_SECONDS,
    Admission,
    Health,
    HealthBoard,
    admission,
    after_failure,
    park_seconds,
    wait_seconds,
)
from tests.unit.conftest import SinkHarness
from tests.unit.test_delivery import add_endpoint, deliver, events, held_until_due, store, trigger, written

NOW = 1_776_162_600.0


def handed_back_seconds(report: DeliveryReport) -> dict[str, int]:
    """Message id -> visibility seconds of every record the report hands back."""
    return {record.message_id: seconds for record, seconds in report.handed_back}


# --- the rules ------------------------------------------------------------------------------------------------


def test_a_healthy_endpoint_is_delivered() -> None:
    assert admission(Health(), NOW) is Admission.DELIVER
    assert admission(Health(failures=PARK_AFTER_FAILURES - 1), NOW) is Admission.DELIVER


def test_a_parked_endpoint_waits_until_its_park_ends_then_is_probed() -> None:
    parked = Health(failures=3, parked_until=NOW + 10)

    assert admission(parked, NOW) is Admission.PARKED
    assert wait_seconds(parked, NOW) == 10
    assert admission(parked, NOW + 10) is Admission.PROBE


def test_while_one_sink_probes_the_others_wait_for_the_probe() -> None:
    probing = Health(failures=3, parked_until=NOW - 1, probe_until=NOW + 60)

    assert admission(probing, NOW) is Admission.WAIT
    assert admission(probing, NOW + 60) is Admission.PROBE


def test_a_deadline_hit_parks_at_once() -> None:
    assert after_failure(Health(), NOW, deadline=2.0).parked_until == NOW + PARK_BASE_SECONDS


def test_other_failures_park_after_several_in_a_row() -> None:
    health = Health()
    for _ in range(PARK_AFTER_FAILURES - 1):
        health = after_failure(health, NOW, deadline=None)
        assert health.parked_until == 0

    assert after_failure(health, NOW, deadline=None).parked_until == NOW + PARK_BASE_SECONDS


def test_a_failed_probe_parks_twice_as_long_as_the_park_before() -> None:
    parked = after_failure(Health(), NOW, deadline=2.0)

    again = after_failure(parked, NOW + PARK_BASE_SECONDS, deadline=2.0)

    assert again.parked_until == NOW + PARK_BASE_SECONDS + 2 * PARK_BASE_SECONDS


def test_a_store_that_kept_a_call_open_to_its_deadline_is_parked_for_three_deadlines_at_least() -> None:
    """Its probe costs a sink the whole deadline: at most a quarter of one sink's time goes to it."""
    assert after_failure(Health(), NOW, deadline=10.0, base=1, maximum=2).parked_until == NOW + 30


def test_each_park_is_twice_the_one_before_up_to_the_maximum() -> None:
    periods = [park_seconds(PARK_AFTER_FAILURES + n) for n in range(12)]

    assert periods[:3] == [PARK_BASE_SECONDS, 2 * PARK_BASE_SECONDS, 4 * PARK_BASE_SECONDS]
    assert periods[-1] == PARK_MAX_SECONDS


# --- the board: deliveries in flight in one process ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_new_endpoint_writes_one_delivery_at_a_time_until_one_wrote() -> None:
    board = HealthBoard(clock=Clock())
    first = board.enter("t#a")
    second = board.enter("t#a")  # staging side by side: no store call yet

    assert first is not None and second is not None
    assert board.write("t#a", first, wait=0)
    assert not board.write("t#a", second, wait=0)  # one writer while nothing was written here
    third = board.enter("t#a")  # a delivery that stages still starts beside the writer
    assert third is not None
    board.leave("t#a", third, wrote=False, failed=False)
    board.leave("t#a", first, wrote=False, failed=False)  # it only held: still unproven
    assert board.write("t#a", second, wait=0)
    board.leave("t#a", second, wrote=True, failed=False)
    proven = [board.enter("t#a"), board.enter("t#a")]
    assert None not in proven
    assert all(board.write("t#a", t, wait=0) for t in proven if t is not None)  # side by side once one wrote


def test_deliveries_of_an_endpoint_run_side_by_side_until_one_is_slow() -> None:
    clock = Clock()
    board = HealthBoard(clock=clock)
    proven = board.enter("t#a")
    assert proven is not None
    board.leave("t#a", proven, wrote=True, failed=False)
    slow, beside = board.enter("t#a"), board.enter("t#a")
    assert slow is not None and beside is not None
    assert board.write("t#a", slow, wait=0) and board.write("t#a", beside, wait=0)
    board.calling("t#a", slow)
    clock.now += SLOW_DELIVERY_SECONDS + 1  # the first's store call is still in flight; the other wrote again
    assert board.write("t#a", beside, wait=0) is False  # a write beside a slow one does not start

    assert board.enter("t#a") is None
    board.leave("t#a", slow, wrote=True, failed=False)
    assert board.enter("t#a") is not None


def test_only_the_store_makes_a_delivery_slow() -> None:
    # Time in Spool's own services (reading, staging, waiting for a flush lease, the ledger) around a store call:
    # not slow.
    clock = Clock()
    board = HealthBoard(clock=clock)
    staging = board.enter("t#a")
    assert staging is not None
    clock.now += SLOW_DELIVERY_SECONDS * 3

    other = board.enter("t#a")
    assert other is not None and board.write("t#a", other, wait=0)
    assert board.write("t#a", staging, wait=0) is False  # the store is new here: one writer at a time
    board.leave("t#a", other, wrote=True, failed=False)
    assert board.write("t#a", staging, wait=0)
    clock.now += SLOW_DELIVERY_SECONDS * 3  # its ledger record before the store call
    assert board.enter("t#a") is not None
    board.calling("t#a", staging)
    clock.now += SLOW_DELIVERY_SECONDS - 1
    board.returned("t#a", staging)
    board.calling("t#a", staging)  # each store call starts the clock anew
    clock.now += SLOW_DELIVERY_SECONDS - 1
    assert board.enter("t#a") is not None
    clock.now += 2
    assert board.enter("t#a") is None


def test_once_its_store_call_returned_a_delivery_is_not_slow_however_long_it_goes_on() -> None:
    # After the store call: the ledger's confirmation, staging removals, the status item, the leases' release.
    clock = Clock()
    board = HealthBoard(clock=clock)
    proven = board.enter("t#a")
    assert proven is not None
    board.leave("t#a", proven, wrote=True, failed=False)
    first = board.enter("t#a")
    assert first is not None and board.write("t#a", first, wait=0)
    board.calling("t#a", first)
    board.returned("t#a", first)
    clock.now += SLOW_DELIVERY_SECONDS * 3

    second = board.enter("t#a")
    assert second is not None and board.write("t#a", second, wait=0)
    board.calling("t#a", second)
    clock.now += SLOW_DELIVERY_SECONDS + 1  # the second's store call has not returned: now it is slow
    assert board.enter("t#a") is None


def test_a_returned_store_call_still_holds_a_suspect_store_until_its_delivery_leaves() -> None:
    board = HealthBoard(clock=Clock())
    first, second = board.enter("t#a"), board.enter("t#a")
    assert first is not None and second is not None
    assert board.write("t#a", first, wait=0)
    board.returned("t#a", first)
    assert board.write("t#a", second, wait=0) is False  # not known to work yet: one writer at a time
    board.leave("t#a", first, wrote=True, failed=False)
    assert board.write("t#a", second, wait=0)


def test_after_its_store_failed_an_endpoint_has_one_delivery_in_flight_until_a_write() -> None:
    board = HealthBoard(clock=Clock())
    proven = board.enter("t#a")
    assert proven is not None
    board.leave("t#a", proven, wrote=True, failed=False)
    failed = board.enter("t#a")
    assert failed is not None
    board.leave("t#a", failed, wrote=False, failed=True)

    first, second = board.enter("t#a"), board.enter("t#a")
    assert first is not None and second is not None
    assert board.write("t#a", first, wait=0)
    assert not board.write("t#a", second, wait=0)
    board.leave("t#a", first, wrote=True, failed=False)
    assert board.write("t#a", second, wait=0)
    third = board.enter("t#a")
    assert third is not None and board.write("t#a", third, wait=0)


def test_a_write_waits_for_the_one_writing_to_a_suspect_store() -> None:
    board = HealthBoard()
    first, second = board.enter("t#a"), board.enter("t#a")
    assert first is not None and board.write("t#a", first, wait=0)
    assert second is not None
    threading.Timer(0.05, lambda: board.leave("t#a", first, wrote=True, failed=False)).start()

    assert board.write("t#a", second, wait=2.0)


def test_a_delivery_does_not_wait_for_a_slow_one() -> None:
    clock = Clock()
    board = HealthBoard(clock=clock)
    first, second = board.enter("t#a"), board.enter("t#a")
    assert first is not None and board.write("t#a", first, wait=0)
    board.calling("t#a", first)
    assert second is not None
    clock.now += SLOW_DELIVERY_SECONDS + 1
    started = time.monotonic()

    assert not board.write("t#a", second, wait=30.0)
    assert board.enter("t#a") is None
    assert time.monotonic() - started < 5  # handed back at once, not after the 30 s it may wait for a young one


def test_the_board_forgets_idle_endpoints_beyond_its_size() -> None:
    board = HealthBoard(max_entries=2, clock=Clock())
    for key in ("a", "b", "c"):
        board.remember(key, Health(failures=1))

    assert board.cached("a") is None
    assert board.cached("c") == Health(failures=1)


# --- the sink ---------------------------------------------------------------------------------------------------


def test_a_store_past_its_deadline_parks_its_endpoint_and_its_records_come_back_untouched(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, "ep_a", bucket="bucket-a", batch_size=2)
    add_endpoint(sink_harness, "ep_b", bucket="bucket-b", batch_size=2)
    store(sink_harness, "bucket-a").past_deadline = True

    first = deliver(sink_harness, events(sink_harness, "ep_a", 2), events(sink_harness, "ep_b", 2))
    puts = store(sink_harness, "bucket-a").puts
    later_a, later_b = events(sink_harness, "ep_a", 2, first=2), events(sink_harness, "ep_b", 2, first=2)
    second = deliver(sink_harness, later_a, later_b)

    assert first.endpoints["ep_a"].deadline
    assert sink_harness.repo.healths["ep_a"].parked_until == sink_harness.clock[0] + PARK_BASE_SECONDS
    assert store(sink_harness, "bucket-a").puts == puts  # parked: the store is not called
    assert second.endpoints["ep_a"].parked == 2
    assert handed_back_seconds(second) == {r.message_id: PARK_BASE_SECONDS for r in later_a}
    assert len(written(sink_harness, "bucket-b")) == 2  # the other endpoint is written both times
    assert "deadline exceeded" in (sink_harness.repo.status["ep_a"].lastError or "")


def test_a_refusing_store_is_parked_after_several_failures(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    store(sink_harness).fail_with = "connection refused"

    for n in range(PARK_AFTER_FAILURES):
        deliver(sink_harness, events(sink_harness, "ep_a", 1, first=n))
        sink_harness.sink.board = HealthBoard()  # as another sink would: it reads the status item
    puts = store(sink_harness).puts
    report = deliver(sink_harness, events(sink_harness, "ep_a", 1, first=9))

    assert puts == PARK_AFTER_FAILURES
    assert store(sink_harness).puts == puts
    assert report.endpoints["ep_a"].parked == 1
    assert sink_harness.repo.status["ep_a"].consecutiveFailures == PARK_AFTER_FAILURES


def test_faults_of_spools_own_services_do_not_count_against_an_endpoint(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=3)

    def broken(*_: object, **__: object) -> list[str]:
        raise ConnectionError("staging unavailable")

    sink_harness.repo.stage = broken  # type: ignore[method-assign]
    for n in range(PARK_AFTER_FAILURES + 1):
        deliver(sink_harness, events(sink_harness, "ep_a", 1, first=n))

    assert sink_harness.repo.healths.get("ep_a", Health()) == Health()
    assert "could not hold back" in (sink_harness.repo.status["ep_a"].lastError or "")


def test_after_the_park_one_probe_write_makes_the_endpoint_healthy_again(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=5)
    store(sink_harness).past_deadline = True
    deliver(sink_harness, events(sink_harness, "ep_a", 5))
    store(sink_harness).past_deadline = False
    sink_harness.clock[0] += PARK_BASE_SECONDS
    sink_harness.sink.board = HealthBoard()

    probe = deliver(sink_harness, events(sink_harness, "ep_a", 2, first=5))

    # A probe writes what it has at once (no hold-back), so its first write decides.
    assert probe.retry == set()
    assert [len(lines) for lines in written(sink_harness)] == [2]
    assert sink_harness.repo.healths.get("ep_a", Health()) == Health()
    assert sink_harness.repo.status["ep_a"].consecutiveFailures == 0


def test_a_probe_that_fails_parks_the_endpoint_for_longer(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    store(sink_harness).past_deadline = True
    deliver(sink_harness, events(sink_harness, "ep_a", 1))
    first_park = sink_harness.repo.healths["ep_a"].parked_until - sink_harness.clock[0]
    sink_harness.clock[0] += first_park
    sink_harness.sink.board = HealthBoard()

    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=1))

    second_park = sink_harness.repo.healths["ep_a"].parked_until - sink_harness.clock[0]
    assert second_park == 2 * first_park


def test_only_one_sink_probes_and_the_others_wait_for_it(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)
    now = sink_harness.clock[0]
    sink_harness.repo.healths["ep_a"] = Health(failures=3, parked_until=now - 1, probe_until=now + 60)

    report = deliver(sink_harness, events(sink_harness, "ep_a", 1))

    assert store(sink_harness).puts == 0
    assert handed_back_seconds(report) == {"msg-ep_a-0": BUSY_RETRY_SECONDS}


def test_a_probe_with_nothing_to_write_gives_the_probe_back(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1, interval=3600)
    now = sink_harness.clock[0]
    sink_harness.repo.healths["ep_a"] = Health(failures=3, parked_until=now - 1)

    deliver(sink_harness, [trigger("ep_a", int(now) + 3000)])  # an early trigger: nothing to write yet

    assert sink_harness.repo.healths["ep_a"].probe_until == 0.0


def test_a_delivery_of_an_endpoint_whose_write_is_slow_is_handed_back_untouched(
    sink_harness: SinkHarness,
) -> None:
    add_endpoint(sink_harness, batch_size=1)
    clock = Clock()
    board = sink_harness.sink.board = HealthBoard(clock=clock)
    ticket = board.enter("ten_sink#ep_a")
    assert ticket is not None and board.write("ten_sink#ep_a", ticket, wait=0)
    board.calling("ten_sink#ep_a", ticket)
    clock.now += SLOW_DELIVERY_SECONDS + 1  # its store has not answered that write yet

    report = deliver(sink_harness, events(sink_harness, "ep_a", 1))

    assert report.endpoints["ep_a"].busy == 1
    assert handed_back_seconds(report) == {"msg-ep_a-0": BUSY_RETRY_SECONDS}
    assert store(sink_harness).puts == 0


class Meanwhile:
    """Another delivery of ep_a, started once from inside a slow call of Spool's own services made by the delivery
    under test (`inside`): the board's clock moves past SLOW_DELIVERY_SECONDS first, as if that call had taken so
    long."""

    def __init__(self, sink_harness: SinkHarness, clock: Clock) -> None:
        self._harness = sink_harness
        self._clock = clock
        self.report: DeliveryReport | None = None
        self._started = False

    def inside(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        """`owner.name` starts the other delivery, the first time it is called, before doing its own work."""
        original = getattr(owner, name)

        def slow(*args: Any, **kwargs: Any) -> Any:
            self._start()
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, slow)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._clock.now += SLOW_DELIVERY_SECONDS + 1
        self.report = deliver(self._harness, events(self._harness, "ep_a", 1, first=10))


def test_a_delivery_whose_write_returned_makes_no_other_delivery_busy_while_it_cleans_up(
    sink_harness: SinkHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flush wrote its object; removing the staged lines (Spool's own bucket) takes long. Another delivery of
    # the endpoint that starts meanwhile is not handed back as busy: the store answered.
    add_endpoint(sink_harness, batch_size=100)
    clock = Clock()
    sink_harness.sink.board = HealthBoard(clock=clock)
    _, flush_at = held_until_due(sink_harness, 2)
    meanwhile = Meanwhile(sink_harness, clock)
    meanwhile.inside(monkeypatch, sink_harness.repo, "remove")

    deliver(sink_harness, [trigger("ep_a", flush_at)])

    assert [len(lines) for lines in written(sink_harness)] == [2]
    assert meanwhile.report is not None
    assert meanwhile.report.endpoints["ep_a"].busy == 0
    assert meanwhile.report.endpoints["ep_a"].held == 1


def test_a_slow_ledger_record_before_the_put_makes_no_other_delivery_busy(
    sink_harness: SinkHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_endpoint(sink_harness, batch_size=1)
    clock = Clock()
    sink_harness.sink.board = HealthBoard(clock=clock)
    deliver(sink_harness, events(sink_harness, "ep_a", 1))  # its store wrote here: deliveries write side by side
    meanwhile = Meanwhile(sink_harness, clock)
    meanwhile.inside(monkeypatch, sink_harness.sink.ledger, "record")

    deliver(sink_harness, events(sink_harness, "ep_a", 1, first=5))

    assert meanwhile.report is not None
    assert meanwhile.report.endpoints["ep_a"].busy == 0
    assert meanwhile.report.endpoints["ep_a"].objects_written == 1


def test_a_new_endpoints_deliveries_stage_side_by_side(sink_harness: SinkHarness) -> None:
    # Its first events arrive in two deliveries at once: the second is not handed back (it would come back after
    # the flush time and make an object of its own), it stages beside the first.
    add_endpoint(sink_harness, batch_size=100)
    board = sink_harness.sink.board
    staging = board.enter("ten_sink#ep_a")  # the first delivery, staging its events
    assert staging is not None

    report = deliver(sink_harness, events(sink_harness, "ep_a", 1))

    assert report.endpoints["ep_a"].busy == 0
    assert report.endpoints["ep_a"].held == 1
    assert handed_back_seconds(report) == {}


def test_a_write_waits_its_turn_when_another_delivery_began_writing_to_a_suspect_store(
    sink_harness: SinkHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_endpoint(sink_harness, batch_size=1)
    board = sink_harness.sink.board
    other = board.enter("ten_sink#ep_a")
    assert other is not None
    write = board.write

    def other_writes_first(key: str, ticket: int, *, wait: float = 0.5) -> bool:
        assert write(key, other, wait=0)  # the other delivery began its write just before this one asks
        return write(key, ticket, wait=0)

    monkeypatch.setattr(board, "write", other_writes_first)

    report = deliver(sink_harness, events(sink_harness, "ep_a", 1))

    assert report.endpoints["ep_a"].busy == 1
    assert handed_back_seconds(report) == {"msg-ep_a-0": BUSY_RETRY_SECONDS}
    assert store(sink_harness).puts == 0
    assert not report.endpoints["ep_a"].failed


# --- time left in the invocation --------------------------------------------------------------------------------


def test_no_endpoint_is_started_without_time_for_one_store_call(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=1)

    report = sink_harness.sink.deliver(events(sink_harness, "ep_a", 2), remaining_seconds=lambda: 1.0)

    assert store(sink_harness).puts == 0
    assert report.endpoints["ep_a"].deferred == 2
    assert set(handed_back_seconds(report).values()) == {0}
    assert sink_harness.repo.healths.get("ep_a", Health()) == Health()


def test_a_write_is_not_started_without_time_for_its_deadline_and_is_not_a_failure(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=3)
    sink = sink_harness.sink
    sink.call_seconds = lambda nbytes: 5.0 + nbytes / 100  # a deadline that grows with the body
    budget = sink.reserve_seconds + 1  # enough to start, not for a write of 3 lines of ~110 bytes

    report = sink.deliver(events(sink_harness, "ep_a", 3), remaining_seconds=lambda: budget)

    assert store(sink_harness).puts == 0
    assert report.endpoints["ep_a"].deferred == 3
    assert report.endpoints["ep_a"].failed == 0
    assert sink_harness.repo.status.get("ep_a") is None


def test_a_flush_due_with_no_time_left_keeps_its_staged_lines(sink_harness: SinkHarness) -> None:
    add_endpoint(sink_harness, batch_size=10, interval=5)
    _, flush_at = held_until_due(sink_harness, 3)
    sink = sink_harness.sink

    # Time to start the endpoint (its lease and staging read), then none for the write.
    times = [sink.reserve_seconds + 1]
    report = sink.deliver([trigger("ep_a", flush_at)], remaining_seconds=lambda: times.pop(0) if times else 1.0)

    assert written(sink_harness) == []
    assert report.endpoints["ep_a"].deferred == 1
    assert sink_harness.repo.staged  # still staged, for the trigger's next receive
