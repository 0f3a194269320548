"""The sink's rules (docs/delivery.md, Batching and hold-back), one test per rule, on the pure planner
(domain/planner.py): records and what is staged in, steps and one decision per record out."""

from __future__ import annotations

from typing import Any

from spool.domain import planner
from spool.domain.naming import ndjson_line
from spool.domain.planner import (
    FoundFlush,
    HandBack,
    Hold,
    InboundRecord,
    Plan,
    Rules,
    Write,
    partition_names,
    plan,
    triage,
)
from spool.domain.ports import StagedBundle
from spool.domain.storage import StorageSettings

NOW = 1_776_162_600.0
EP = "ep_a"
RULES = Rules(retry_base_seconds=10, retry_max_seconds=900)


def line(n: int) -> str:
    return ndjson_line(f"evt_{n:028x}", "order.created", {"n": n}, "2026-04-14T10:30:00.000Z")


def bundle(name: str, lines: range, *, accepted_at: float = NOW - 1, receive_count: int = 1) -> InboundRecord:
    body = "\n".join(line(n) for n in lines)
    return InboundRecord(
        name, f"rh-{name}", "ten_a", EP, body, accepted_at, receive_count=receive_count, line_count=len(lines)
    )


def trigger(name: str, flush_at: int, *, receive_count: int = 1) -> InboundRecord:
    return InboundRecord(
        name, f"rh-{name}", "ten_a", EP, "flush", flush_at - 60, receive_count=receive_count, kind="flush",
        flush_at=flush_at,
    )  # fmt: skip


def settings(batch_size: int = 10, **fields: Any) -> StorageSettings:
    return StorageSettings.model_validate(
        {"provider": "local", "bucket": "archive", "batchSize": batch_size, "flushIntervalSeconds": 60} | fields
    )


def decide(
    records: list[InboundRecord], flushes: list[FoundFlush] | None = None, *, batch_size: int = 10, rules: Rules = RULES
) -> Plan:
    return plan(settings(batch_size), triage(records, NOW, rules.trigger_lead_seconds), flushes or [], NOW, rules)


def decisions(decided: Plan) -> dict[str, str]:
    """Every record's one decision: the step that acknowledges it, 'ack', or 'back N'."""
    found: dict[str, str] = {}

    def put(record: InboundRecord, decision: str) -> None:
        assert record.message_id not in found, f"{record.message_id} decided twice"
        found[record.message_id] = decision

    for i, step in enumerate(decided.steps):
        for record in step.settles:
            put(record, f"step {i}")
        for record in step.clearing if isinstance(step, Write) else []:
            put(record, f"step {i} cleared")
    for record in decided.acknowledged:
        put(record, "ack")
    for back in decided.handed_back:
        put(back.record, f"back {back.seconds}")
    return found


def lines_of(step: Write) -> list[str]:
    return [text_line for obj in step.objects for text_line in obj.text.split("\n")]


def objects_of(step: Write) -> list[list[str]]:
    return [obj.text.split("\n") for obj in step.objects]


def test_full_objects_are_written_at_once_and_acknowledge_their_bundles() -> None:
    a, b = bundle("a", range(0, 6)), bundle("b", range(6, 10))
    decided = decide([a, b])
    [write] = decided.steps
    assert isinstance(write, Write) and lines_of(write) == [line(n) for n in range(10)]
    assert decisions(decided) == {"a": "step 0", "b": "step 0"}


def test_a_remainder_is_held_for_the_next_flush_time_and_its_bundles_acknowledged_once_held() -> None:
    a, b = bundle("a", range(0, 8)), bundle("b", range(8, 13))
    decided = decide([a, b])
    write, hold = decided.steps
    assert isinstance(write, Write) and lines_of(write) == [line(n) for n in range(10)]
    assert isinstance(hold, Hold) and hold.lines == [line(n) for n in range(10, 13)]
    assert hold.flush_at == int(NOW - 1 + 60)  # an interval after its oldest event was accepted
    # `b` straddles the cut: its first lines are in the full object, the rest are held, so the hold settles it.
    assert decisions(decided) == {"a": "step 0", "b": "step 1"}


def test_lines_are_planned_in_acceptance_order_whatever_the_arrival_order() -> None:
    late, early = bundle("late", range(5, 10), accepted_at=NOW - 1), bundle("early", range(0, 5), accepted_at=NOW - 2)
    [write] = decide([late, early]).steps
    assert isinstance(write, Write) and lines_of(write) == [line(n) for n in range(10)]


def test_a_retried_remainder_is_written_at_once_never_held_twice() -> None:
    decided = decide([bundle("a", range(3), receive_count=2)])
    [write] = decided.steps
    assert isinstance(write, Write) and lines_of(write) == [line(n) for n in range(3)]
    assert decisions(decided) == {"a": "step 0"}


def test_with_hold_back_off_a_remainder_is_written_at_once() -> None:
    decided = decide([bundle("a", range(3))], rules=Rules(hold_back=False))
    assert [type(step) for step in decided.steps] == [Write]


def test_a_message_that_is_not_a_bundle_is_handed_back_after_the_base_back_off_and_counts_as_failed() -> None:
    odd = InboundRecord("odd", "rh-odd", "ten_a", EP, "not json", NOW - 1)
    decided = decide([odd, bundle("a", range(10))])
    assert decisions(decided) == {"odd": "back 10", "a": "step 0"}
    assert decided.failed == 1 and decided.error == planner.ODD_MESSAGE


def test_event_lines_without_the_line_count_are_an_odd_message() -> None:
    uncounted = InboundRecord("uncounted", "rh", "ten_a", EP, f"{line(1)}\n{line(2)}", NOW)
    counted = InboundRecord("counted", "rh", "ten_a", EP, f"{line(1)}\n{line(2)}", NOW, line_count=2)
    assert counted.is_bundle and counted.count == 2
    assert not uncounted.is_bundle
    decided = decide([uncounted])
    assert decisions(decided) == {"uncounted": "back 10"}
    assert decided.failed == 1 and decided.error == planner.ODD_MESSAGE


def test_an_early_trigger_is_handed_back_until_its_flush_time() -> None:
    decided = decide([trigger("t", int(NOW) + 3600)])
    assert decisions(decided) == {"t": "back 3600"}
    assert not decided.steps


def test_a_trigger_within_the_slack_of_its_time_is_due() -> None:
    found = triage([trigger("t", int(NOW + planner.DUE_SLACK_SECONDS))], NOW)
    assert list(found.due) == [int(NOW + planner.DUE_SLACK_SECONDS)] and not found.early


def test_a_trigger_up_to_the_batching_window_early_is_due_an_earlier_one_comes_back_a_window_before_its_time() -> None:
    due, early = trigger("due", int(NOW) + 5), trigger("early", int(NOW) + 65)
    decided = decide([due, early], [FoundFlush(int(NOW) + 5, True, {})], rules=Rules(trigger_lead_seconds=5))
    assert decisions(decided) == {"due": "ack", "early": "back 60"}


def test_a_remainder_is_held_an_interval_after_its_oldest_event_was_accepted() -> None:
    older, newer = bundle("older", range(2), accepted_at=NOW - 7.5), bundle("newer", range(2, 3), accepted_at=NOW)
    [hold] = decide([newer, older]).steps
    assert isinstance(hold, Hold) and hold.flush_at == int(NOW - 7.5 + 60)


def test_a_remainder_whose_trigger_could_not_be_back_in_time_is_written_at_once() -> None:
    # Interval 60, batching window 5: the events waited 56 s already, so a trigger sent now is back too late.
    late = bundle("late", range(2), accepted_at=NOW - 56.5)
    decided = decide([late], rules=Rules(trigger_lead_seconds=5))
    assert [type(step) for step in decided.steps] == [Write]
    assert decisions(decided) == {"late": "step 0"}


def test_a_due_flush_writes_what_is_staged_with_the_remainder_and_acknowledges_the_trigger_after_clean_up() -> None:
    due = int(NOW)
    staged = {due: [StagedBundle("s1", [line(100), line(101)])]}
    t, a = trigger("t", due), bundle("a", range(2))
    decided = decide([t, a], [FoundFlush(due, leased=True, staged=staged)])
    [write] = decided.steps
    assert isinstance(write, Write)
    assert lines_of(write) == [line(0), line(1), line(100), line(101)]  # acceptance order: createdAt, then id
    assert write.clears == staged
    assert decisions(decided) == {"a": "step 0", "t": "step 0 cleared"}


def test_staged_bundles_marked_written_are_removed_not_written_again() -> None:
    due = int(NOW)
    staged = {due: [StagedBundle("s1", [line(100)], written=True), StagedBundle("s2", [line(101)])]}
    [write] = decide([trigger("t", due)], [FoundFlush(due, leased=True, staged=staged)]).steps
    assert isinstance(write, Write) and lines_of(write) == [line(101)] and write.clears == staged


def test_a_due_flush_with_nothing_staged_acknowledges_its_triggers_and_the_remainder_is_held() -> None:
    due = int(NOW)
    decided = decide([trigger("t1", due), trigger("t2", due), bundle("a", range(2))], [FoundFlush(due, True, {})])
    assert [type(step) for step in decided.steps] == [Hold]
    assert decisions(decided) == {"t1": "ack", "t2": "ack", "a": "step 0"}


def test_a_trigger_finding_the_lease_taken_comes_back_before_the_lease_can_expire() -> None:
    due = int(NOW)
    decided = decide([trigger("t", due, receive_count=3)], [FoundFlush(due, False, {}, lease_until=NOW + 7)])
    # 5 s doubling per receive would be 20 s; the lease is free after 7.
    assert decided.handed_back == [HandBack(trigger("t", due, receive_count=3), 8, False)]


def test_everything_the_due_flushes_staged_is_written_with_the_bundles_in_one_write_in_acceptance_order() -> None:
    first, second = int(NOW) - 1, int(NOW)
    flushes = [
        FoundFlush(first, True, {first: [StagedBundle("s1", [line(100)])]}),
        FoundFlush(second, True, {second: [StagedBundle("s2", [line(200)])]}),
    ]
    decided = decide([trigger("t1", first), trigger("t2", second), bundle("a", range(1))], flushes)
    [write] = decided.steps
    assert isinstance(write, Write) and lines_of(write) == [line(0), line(100), line(200)]
    assert decisions(decided) == {"a": "step 0", "t1": "step 0 cleared", "t2": "step 0 cleared"}


def test_a_due_time_an_earlier_flush_took_with_it_is_acknowledged_with_that_flush_not_before() -> None:
    first, later = int(NOW) - 1, int(NOW)
    taken = {first: [StagedBundle("s1", [line(100)])], later: [StagedBundle("s2", [line(200)])]}
    flushes = [FoundFlush(first, True, taken), FoundFlush(later, True, {})]
    decided = decide([trigger("t1", first), trigger("t2", later)], flushes)
    [write] = decided.steps
    assert isinstance(write, Write) and lines_of(write) == [line(100), line(200)]
    assert decisions(decided) == {"t1": "step 0 cleared", "t2": "step 0 cleared"}


def test_back_off_doubles_with_each_receive_up_to_the_maximum() -> None:
    assert [planner.back_off(n, RULES) for n in (1, 2, 3, 8)] == [10, 20, 40, 900]


def typed(name: str, types: list[str]) -> InboundRecord:
    body = "\n".join(
        ndjson_line(f"evt_{name}{n:024x}", t, {"n": n}, "2026-04-14T10:30:00.000Z") for n, t in enumerate(types)
    )
    return InboundRecord(name, f"rh-{name}", "ten_a", EP, body, NOW - 1, line_count=len(types))


def test_with_event_types_in_the_key_each_type_fills_its_own_objects_and_the_rest_is_held() -> None:
    a, b = typed("a", ["x.a"] * 4 + ["y.b"] * 2), typed("b", ["y.b"])
    template = "{prefix}{eventType}/{timestamp}-{batch}"
    decided = plan(settings(3, keyTemplate=template), triage([a, b], NOW), [], NOW, RULES)
    write, hold = decided.steps
    assert isinstance(write, Write) and isinstance(hold, Hold)
    assert [partition_names([x]) for x in lines_of(write)] == [["x.a"]] * 3 + [["y.b"]] * 3
    assert partition_names(hold.lines) == ["x.a"]
    # `a` has a line held; every line of `b` is in a full object.
    assert decisions(decided) == {"a": "step 1", "b": "step 0"}


def test_each_object_names_where_its_lines_come_from() -> None:
    a, b = bundle("a", range(0, 6)), bundle("b", range(6, 12))
    [write] = decide([a, b], batch_size=4).steps
    assert isinstance(write, Write)
    assert [obj.segments for obj in write.objects] == [(("a", 0, 4),), (("a", 4, 2), ("b", 0, 2)), (("b", 2, 4),)]


def test_a_retried_bundle_whose_lines_an_earlier_attempt_wrote_is_acknowledged_without_a_write() -> None:
    retried = bundle("a", range(3), receive_count=2)
    decided = plan(settings(), triage([retried], NOW), [], NOW, RULES, written={"a": {0, 1, 2}})
    assert decided.steps == []
    assert decisions(decided) == {"a": "ack"}


def test_only_the_lines_an_earlier_attempt_did_not_write_are_written() -> None:
    retried = bundle("a", range(4), receive_count=2)
    decided = plan(settings(), triage([retried], NOW), [], NOW, RULES, written={"a": {0, 1}})
    [write] = decided.steps
    assert isinstance(write, Write) and lines_of(write) == [line(2), line(3)]
    assert write.objects[0].segments == (("a", 2, 2),)


def test_a_staged_bundle_an_earlier_flush_wrote_is_removed_not_written_again() -> None:
    due = int(NOW)
    staged = {due: [StagedBundle("s1", [line(100)]), StagedBundle("s2", [line(101)])]}
    written = {planner.staged_source(due, "s1"): {0}}
    found = triage([trigger("t", due, receive_count=2)], NOW)
    [write] = plan(settings(), found, [FoundFlush(due, True, staged)], NOW, RULES, written=written).steps
    assert isinstance(write, Write) and lines_of(write) == [line(101)] and write.clears == staged


def test_a_retry_is_named_for_its_first_attempt() -> None:
    retried = InboundRecord(
        "a", "rh-a", "ten_a", EP, line(0), NOW - 100, receive_count=3, line_count=1, first_attempt=NOW - 90
    )
    [write] = decide([retried]).steps
    assert isinstance(write, Write) and write.flushed_at == NOW - 90
