"""The sink's rules for one endpoint's records, as pure functions (docs/delivery.md, Batching and hold-back).

The sink (domain/delivery.py) asks twice per endpoint and invocation:

1. `triage(records, now)`: which records are event bundles to deliver, which are not bundles (they fail until
   they reach the DLQ), which flush triggers are early (handed back until their flush time) and which flush
   times are due.
2. `plan(...)`, once the sink has tried the flush lease of each due time and read what is staged there: the
   steps to perform in order (one write, and at most one hold) and for every record the one decision that
   applies to it: acknowledged when a given step succeeds, acknowledged at once, or handed back after N
   seconds, and how long it stays away if its step fails. Every record gets exactly one decision.

The plan is the whole decision: a write lists its objects one by one, each with its lines in acceptance order
(createdAt, then id), its event-type partition, already cut to `batchSize` and, under `maxObjectBytes`, already
encoded; the sink only names, puts and reports them. Per-type grouping happens here, once. Nothing here performs
I/O or reads a clock: the sink passes the time in.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from spool.domain import limits
from spool.domain.encoding import EncodedObject, fit
from spool.domain.messages import Kind
from spool.domain.naming import line_event_type, order_key
from spool.domain.ports import Segment, StagedBundle
from spool.domain.storage import StorageSettings

# SQS allows a message's visibility to reach 12 hours after it was received; DelaySeconds at most 15 min.
MAX_VISIBILITY_SECONDS = 43_200
MAX_DELAY_SECONDS = 900
# A trigger this close to its flush time counts as due: waiting would cost another round trip.
DUE_SLACK_SECONDS = 0.5
# How soon a trigger that found the flush lease taken comes back to check that the holder finished.
LEASE_RETRY_SECONDS = 5
LEASE_SECONDS = 120
# A lease taken less than this long ago is a flush under way (lease_wait).
YOUNG_LEASE_SECONDS = 5
# A remainder is held only if its flush time is at least the batching window, less this, away: a trigger sent
# now is back by then. Within this slack holding still pays (other holders' lines share the object).
HOLD_SETTLE_SECONDS = 1.0
ODD_MESSAGE = "a queued message was not a bundle of event lines; it goes to the DLQ"


@dataclass(frozen=True)
class InboundRecord:
    """One SQS message as the sink sees it: a bundle of event lines for an endpoint (domain/messages.py), or a
    flush trigger. A bundle is acknowledged only when every one of its lines is written or staged."""

    message_id: str
    receipt_handle: str
    tenant_id: str
    endpoint_id: str
    body: str  # a bundle's lines joined by "\n", in acceptance order (domain/messages.py); a trigger's note
    accepted_at: float
    receive_count: int = 1
    kind: Kind = "event"
    flush_at: int = 0  # a trigger's flush time (a seal trigger's: when its window may be sealed)
    # The bundle's line count as the api sent it (attribute `lines`); 0 for a message without it, which is odd.
    line_count: int = 0
    # When Spool first tried to deliver it (SQS's ApproximateFirstReceiveTimestamp, or the one a redrive carried
    # over); None: this is the first try.
    first_attempt: float | None = None
    window: int = 0  # a seal trigger's window start

    @property
    def is_bundle(self) -> bool:
        """Whether this is an event bundle Spool may write: the api's line count and the ends of a body of event
        lines (the count spares a scan of the whole body)."""
        return (
            self.kind == "event"
            and self.line_count >= 1
            and self.body.startswith('{"id":"')
            and self.body.endswith("}")
        )

    @property
    def count(self) -> int:
        """Event lines in the bundle (none in a trigger)."""
        return self.line_count if self.kind == "event" else 0

    @property
    def lines(self) -> list[str]:
        return self.body.split("\n") if self.kind == "event" else []


@dataclass(frozen=True)
class Rules:
    """The settings of the rules that are not the endpoint's own."""

    retry_base_seconds: int = limits.RETRY_BASE_SECONDS
    retry_max_seconds: int = limits.RETRY_MAX_SECONDS
    # False writes every remainder at once as a partial object (make bench, B4's reference run; a probe).
    hold_back: bool = True
    # The event source mapping's batching window; a trigger is sent that much early.
    trigger_lead_seconds: float = 0.0


# --- lines in acceptance order ----------------------------------------------------------------------------------


def staged_source(flush_at: int, item_id: str) -> str:
    """A staged bundle as a source of lines (a `Segment`'s first part; a record's is its message id). The ledger
    keeps each object's segments, so that a retry knows which of its lines an earlier attempt wrote."""
    return f"staged:{flush_at}:{item_id}"


@dataclass(frozen=True)
class Run:
    """Lines in acceptance order joined by "\\n" (a bundle's body, a staged bundle's lines), how many, and where
    they come from. Whole runs are ordered by their first and last lines; only runs that overlap are looked
    into."""

    text: str
    count: int
    segments: tuple[Segment, ...] = ()

    @property
    def first(self) -> tuple[str, str]:
        end = self.text.find("\n")
        return order_key(self.text if end < 0 else self.text[:end])

    @property
    def last(self) -> tuple[str, str]:
        return order_key(self.text[self.text.rfind("\n") + 1 :])

    def bounds(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(createdAt, id) of its first and of its last line."""
        return self.first, self.last

    def tagged(self) -> list[tuple[str, str, int]]:
        """(line, source, index) of every line."""
        lines = self.text.split("\n")
        tags = [(source, start + i) for source, start, count in self.segments for i in range(count)]
        return [(line, *tag) for line, tag in zip(lines, tags, strict=True)]


def run_of(tagged: list[tuple[str, str, int]]) -> Run:
    """A run of tagged lines, their segments joined where a source's indices go on."""
    segments: list[Segment] = []
    for _, source, index in tagged:
        if segments and segments[-1][0] == source and segments[-1][1] + segments[-1][2] == index:
            segments[-1] = (source, segments[-1][1], segments[-1][2] + 1)
        else:
            segments.append((source, index, 1))
    return Run("\n".join(line for line, _, _ in tagged), len(tagged), tuple(segments))


def in_order(runs: list[Run]) -> list[Run]:
    """`runs` as runs in acceptance order: sorted by their first lines, and those that overlap merged line by line
    (lines of one request share a createdAt, so runs overlap only where requests were accepted in the same
    millisecond, or staged runs whose holders' events interleave)."""
    ordered = sorted((run for run in runs if run.count), key=lambda run: run.first)
    found: list[Run] = []
    group: list[Run] = []
    group_last: tuple[str, str] = ("", "")
    for run in ordered:
        if group and run.first < group_last:
            group.append(run)
            group_last = max(group_last, run.last)
            continue
        found.extend(_merged(group))
        group, group_last = [run], run.last
    found.extend(_merged(group))
    return found


def _merged(group: list[Run]) -> list[Run]:
    if len(group) < 2:
        return group
    return [run_of(list(heapq.merge(*(run.tagged() for run in group), key=lambda t: order_key(t[0]))))]


def _split_segments(segments: tuple[Segment, ...], n: int) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    head: list[Segment] = []
    for i, (source, start, count) in enumerate(segments):
        if n <= 0:
            return tuple(head), segments[i:]
        if count <= n:
            head.append((source, start, count))
            n -= count
            continue
        return (*head, (source, start, n)), ((source, start + n, count - n), *segments[i + 1 :])
    return tuple(head), ()


def cut(runs: list[Run], n: int) -> tuple[list[Run], list[Run]]:
    """The first `n` lines of `runs` and the rest, splitting at most one run."""
    head: list[Run] = []
    for i, run in enumerate(runs):
        if n <= 0:
            return head, runs[i:]
        if run.count <= n:
            head.append(run)
            n -= run.count
            continue
        lines = run.text.split("\n")
        first, rest = _split_segments(run.segments, n)
        head.append(Run("\n".join(lines[:n]), n, first))
        return head, [Run("\n".join(lines[n:]), run.count - n, rest), *runs[i + 1 :]]
    return head, []


def joined(runs: list[Run]) -> Run:
    segments: list[Segment] = []
    for source, start, count in (segment for run in runs for segment in run.segments):
        if segments and segments[-1][0] == source and segments[-1][1] + segments[-1][2] == start:
            segments[-1] = (source, segments[-1][1], segments[-1][2] + count)
        else:
            segments.append((source, start, count))
    return Run("\n".join(run.text for run in runs), sum(run.count for run in runs), tuple(segments))


def partition_names(lines: list[str], bound: int = limits.TYPE_PARTITIONS_MAX) -> list[str]:
    """Each line's partition, for an endpoint whose key template names {eventType}: its event type, or
    `_other` for types after the first `bound` to appear (never dropped)."""
    seen: set[str] = set()
    names: list[str] = []
    for line in lines:
        event_type = line_event_type(line)
        if event_type not in seen:
            if len(seen) >= bound:
                event_type = limits.OTHER_PARTITION
            seen.add(event_type)
        names.append(event_type)
    return names


# --- the plan ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectWrite:
    """One object to write: its lines in acceptance order (joined by "\\n"), how many, the event-type partition it
    belongs to (a template with {eventType}), and its body when cutting it under `maxObjectBytes` encoded it."""

    text: str
    count: int
    partition: str | None = None
    encoded: EncodedObject | None = None
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Write:
    """Write `objects` in order, named for the flush at `flushed_at`; for a flush, then remove the staged bundles
    in `clears`.

    `flushed_at` is when this flush was first tried: now, for lines Spool sees for the first time; for lines it
    tried to write before (a retry after a store failed, a redriven message, a flush trigger that comes again)
    the time of that first attempt (`InboundRecord.first_attempt`, the staged lines' flush time). So a flush
    that had to wait keeps its name, and its objects land in the folder they belong to (a sealed one gets a later
    manifest epoch, docs/delivery.md)."""

    objects: list[ObjectWrite]
    settles: list[InboundRecord]  # acknowledged once the objects are written
    flushed_at: float
    clears: dict[int, list[StagedBundle]] = field(default_factory=dict)
    clearing: list[InboundRecord] = field(default_factory=list)  # acknowledged once `clears` are removed too


@dataclass(frozen=True)
class Hold:
    """Stage `lines` for `flush_at` and send its flush trigger, to become visible at `trigger_at` (the flush time
    less the batching window)."""

    flush_at: int
    lines: list[str]
    settles: list[InboundRecord]
    trigger_at: float


Step = Write | Hold


@dataclass(frozen=True)
class HandBack:
    record: InboundRecord
    seconds: int
    failed: bool  # counts as a failed delivery (a message that is not a bundle)


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    acknowledged: list[InboundRecord]  # whatever the steps do: triggers whose flush time was already written
    handed_back: list[HandBack]
    # How long each record a step settles stays away if that step fails (the retry back-off).
    retry_seconds: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> int:
        return sum(1 for h in self.handed_back if h.failed)


def hold_until(remainder: list[InboundRecord], interval: int, now: float, lead: float) -> int | None:
    """The flush time a remainder is held for: `interval` after its oldest event was accepted (whole seconds,
    rounded down), so no event waits more than its endpoint's interval for a fuller object. A trigger sent now
    comes back within the batching window `lead`; a flush time closer than that, less the settle time, would be
    missed by up to a window: None then, and the remainder is written at once (an interval no longer than the
    window, or events that waited out a long window before the sink saw them)."""
    flush_at = math.floor(min(r.accepted_at for r in remainder) + interval)
    return flush_at if flush_at >= now + lead - HOLD_SETTLE_SECONDS else None


def trigger_delay(until_visible: float) -> int:
    """`DelaySeconds` for a flush trigger that should become visible in `until_visible` seconds. Rounded to the
    nearest second rather than up: arriving up to half a second early still counts as due (DUE_SLACK_SECONDS),
    while rounding up made every trigger late by half a second on average."""
    return min(MAX_DELAY_SECONDS, max(0, round(until_visible)))


def _early_wait(flush_at: int, now: float, lead: float) -> int:
    """How long a trigger received before its time (an interval past SQS's 15-minute delay) stays away: until
    the batching window before its time, at least a second."""
    return min(MAX_VISIBILITY_SECONDS, max(1, math.ceil(flush_at - now - lead)))


def back_off(receive_count: int, rules: Rules) -> int:
    """How long a record whose delivery failed stays away: the base, doubling with each receive, capped."""
    return min(rules.retry_max_seconds, rules.retry_base_seconds * 2 ** max(0, receive_count - 1))


def young_lease(lease_until: float | None, now: float) -> bool:
    """A flush lease taken less than YOUNG_LEASE_SECONDS ago, or gone by the time it was read (`lease_until`
    None): a flush of the same time under way or just done, not a sink that died holding it."""
    return lease_until is None or LEASE_SECONDS - (lease_until - now) < YOUNG_LEASE_SECONDS


def lease_wait(receive_count: int, lease_until: float | None, now: float) -> int:
    """How long a trigger that found the flush lease taken stays away. The holder is almost always a live flush
    that finishes within seconds, so the trigger comes back soon: LEASE_RETRY_SECONDS, doubling with each
    receive, never past the lease's expiry (a lease left by a sink that died is free then).

    On its first receive, a trigger that finds a lease taken moments ago (YOUNG_LEASE_SECONDS), or gone by the
    time it was read (`lease_until` None), comes back after a second: the holder is a flush of the same time under
    way or just done, most often beside a hold that staged its lines just after that flush had listed them, and
    those lines would otherwise wait LEASE_RETRY_SECONDS more. The later receives keep their waits, so a dead
    sink's lease (read, and old) is still outlasted within the same receives."""
    if receive_count <= 1 and young_lease(lease_until, now):
        return 1
    wait = LEASE_RETRY_SECONDS * 2 ** max(0, receive_count - 1)
    if lease_until is not None:
        wait = min(wait, math.ceil(lease_until - now) + 1)
    return min(MAX_VISIBILITY_SECONDS, max(LEASE_RETRY_SECONDS, wait))


@dataclass(frozen=True)
class Triage:
    bundles: list[InboundRecord]  # in the order they were accepted
    odd: list[InboundRecord]  # not event bundles: never written into a tenant's object
    early: list[InboundRecord]  # triggers before their time (intervals over SQS's 15-minute delay)
    due: dict[int, list[InboundRecord]]  # due flush time -> its triggers, earliest time first
    seals: dict[int, list[InboundRecord]] = field(default_factory=dict)  # due window start -> its seal triggers


def triage(records: list[InboundRecord], now: float, lead: float = 0.0) -> Triage:
    """Sort one endpoint's records. A trigger is sent the batching window (`lead`) early and may join a
    poller's batch already under way, so it counts as due up to that much (and DUE_SLACK_SECONDS) early:
    handing it back would cost a second window after its flush time."""
    bundles: list[InboundRecord] = []
    odd: list[InboundRecord] = []
    early: list[InboundRecord] = []
    due: dict[int, list[InboundRecord]] = {}
    seals: dict[int, list[InboundRecord]] = {}
    for record in records:
        if record.kind == "seal":
            if record.flush_at > now + DUE_SLACK_SECONDS:
                early.append(record)
            else:
                seals.setdefault(record.window, []).append(record)
        elif record.kind == "flush":
            if record.flush_at > now + lead + DUE_SLACK_SECONDS:
                early.append(record)
            else:
                due.setdefault(record.flush_at, []).append(record)
        elif record.is_bundle:
            bundles.append(record)
        else:
            odd.append(record)
    bundles.sort(key=lambda r: r.accepted_at)
    return Triage(bundles, odd, early, dict(sorted(due.items())), dict(sorted(seals.items())))


@dataclass(frozen=True)
class FoundFlush:
    """What the sink found for a due flush time: whether it took the lease; if so what is staged there and at
    the later times it leased with it (by flush time); if not, when the holder's lease expires."""

    flush_at: int
    leased: bool
    staged: dict[int, list[StagedBundle]]
    lease_until: float | None = None


def plan(
    settings: StorageSettings,
    found: Triage,
    flushes: list[FoundFlush],
    now: float,
    rules: Rules,
    written: Mapping[str, Collection[int]] | None = None,
) -> Plan:
    """The steps and decisions for one endpoint's records (see the module docstring). `written`: the lines an
    earlier attempt already put into objects (by source: a record's message id, a staged bundle's
    `staged_source`; the ledger's answer for a retry). The rules, in order:

    - a message that is not an event bundle is handed back after the base back-off (it fails to the DLQ);
    - a trigger before its flush time (less the batching window) is handed back until then;
    - a due flush time whose lease another sink holds: its triggers come back when the lease may be free;
    - a due flush time with nothing staged was written by an earlier trigger: its triggers are acknowledged;
    - lines an earlier attempt wrote are not written again: a bundle all of whose lines were is acknowledged, a
      staged bundle all of whose lines were is only removed;
    - the lines staged at the due times the sink leased, and the bundles' lines, in acceptance order, are
      written at once in objects of `batchSize` (per event type with {eventType}: at most 50 types, then
      `_other`), the last one possibly partial; the staged bundles are removed after, and the triggers then
      acknowledged;
    - without a flush, the bundles' lines fill as many full objects as they can; a bundle whose lines are all in
      them is acknowledged when they are written, the others (a bundle may straddle the cut) belong to the
      remainder;
    - the remainder is held for `interval` after its oldest event was accepted, unless a trigger could not be
      back by then (`hold_until`), any of its bundles failed before (a retry is never held twice) or hold-back
      is off: then it is written at once.
    """
    done = written or {}
    handed_back = [HandBack(r, rules.retry_base_seconds, failed=True) for r in found.odd]
    lead = rules.trigger_lead_seconds
    handed_back += [HandBack(t, _early_wait(t.flush_at, now, lead), False) for t in found.early]
    acknowledged: list[InboundRecord] = []
    staged: dict[int, list[StagedBundle]] = {}
    clearing: list[InboundRecord] = []
    for flush in flushes:
        triggers = found.due[flush.flush_at]
        if flush.flush_at in staged:  # taken with an earlier due time's lines
            clearing.extend(triggers)
        elif not flush.leased:
            wait = lease_wait(max(t.receive_count for t in triggers), flush.lease_until, now)
            handed_back += [HandBack(t, wait, False) for t in triggers]
        elif not flush.staged.get(flush.flush_at):
            # An earlier trigger for this time wrote it; what is staged for later times waits for theirs.
            acknowledged += triggers
        else:
            staged.update(flush.staged)
            clearing.extend(triggers)

    runs = {r.message_id: _unwritten(r.message_id, r.body, r.count, done.get(r.message_id)) for r in found.bundles}
    bundles = [r for r in found.bundles if runs[r.message_id]]
    acknowledged += [r for r in found.bundles if not runs[r.message_id]]  # an earlier attempt wrote them all
    retry = {r.message_id: back_off(r.receive_count, rules) for r in [*bundles, *clearing]}
    layout = _Layout(settings)
    error = ODD_MESSAGE if found.odd else None
    if staged:
        # Bundles marked written are in an object already (a flush whose clean-up failed): removed, not written.
        held = [
            run
            for at, bundles_at in staged.items()
            for b in bundles_at
            if not b.written
            for run in _unwritten(
                staged_source(at, b.item_id), "\n".join(b.lines), len(b.lines), done.get(staged_source(at, b.item_id))
            )
        ]
        everything = in_order([*held, *(run for r in bundles for run in runs[r.message_id])])
        flushed_at = min([now, *staged, *(r.first_attempt for r in [*bundles, *clearing] if r.first_attempt)])
        write = Write(layout.objects(everything, whole=True)[0], bundles, flushed_at, staged, clearing)
        return Plan([write] if write.objects or staged else [], acknowledged, handed_back, retry, error)
    if not bundles:
        return Plan([], acknowledged, handed_back, retry, error)

    ordered = in_order([run for r in bundles for run in runs[r.message_id]])
    full, rest = layout.objects(ordered, whole=False)
    in_rest = {source for run in rest for source, _, _ in run.segments}
    written_now = [r for r in bundles if r.message_id not in in_rest]
    remainder = [r for r in bundles if r.message_id in in_rest]
    flush_at = hold_until(remainder, settings.flushIntervalSeconds, now, lead) if remainder else None
    if flush_at is None or not rules.hold_back or any(r.receive_count > 1 for r in remainder):
        # Nothing to hold, or it cannot be held: every line now, in one write (one partitioning by type).
        write = Write(layout.objects(ordered, whole=True)[0], bundles, _first_tried(bundles, now))
        return Plan([write], acknowledged, handed_back, retry, error)
    steps: list[Step] = [Write(full, written_now, _first_tried(written_now, now))] if full else []
    held_lines = [line for run in rest for line in run.text.split("\n")]  # staging takes lines
    steps.append(Hold(flush_at, held_lines, remainder, trigger_at=flush_at - lead))
    return Plan(steps, acknowledged, handed_back, retry, error)


def _unwritten(source: str, text: str, count: int, done: Collection[int] | None) -> list[Run]:
    """The runs of `source`'s lines (`text`, `count` of them) that no earlier attempt wrote: all of them, as they
    are, in the common case."""
    if not done:
        return [Run(text, count, ((source, 0, count),))] if count else []
    return [run_of([(line, source, i)]) for i, line in enumerate(text.split("\n")) if i not in done]


@dataclass(frozen=True)
class _Layout:
    """How an endpoint's lines become objects: `batchSize` lines each, per event type with {eventType}, under
    `maxObjectBytes`."""

    settings: StorageSettings

    @property
    def by_type(self) -> bool:
        return "{eventType}" in self.settings.keyTemplate

    def objects(self, runs: list[Run], *, whole: bool) -> tuple[list[ObjectWrite], list[Run]]:
        """The objects `runs` (in acceptance order) fill, and the rest: with `whole`, every line goes into an
        object (the last of each partition may be partial); without, only full objects, the rest returned."""
        size = self.settings.batchSize
        if not self.by_type:
            total = sum(run.count for run in runs)
            head, rest = cut(runs, total if whole else total - total % size)
            objects: list[ObjectWrite] = []
            while head:
                chunk, head = cut(head, size)
                objects.extend(self._fitted(joined(chunk), None))
            return objects, rest
        tagged = [t for run in runs for t in run.tagged()]
        groups: dict[str, list[tuple[str, str, int]]] = {}
        for t, name in zip(tagged, partition_names([line for line, _, _ in tagged]), strict=True):
            groups.setdefault(name, []).append(t)
        objects = []
        rest_tagged: list[tuple[str, str, int]] = []
        for name, group in groups.items():
            keep = len(group) if whole else len(group) - len(group) % size
            for start in range(0, keep, size):
                objects.extend(self._fitted(run_of(group[start : min(start + size, keep)]), name))
            rest_tagged.extend(group[keep:])
        # The rest stays in acceptance order across partitions (it is staged or written as it is).
        rest_tagged.sort(key=lambda t: order_key(t[0]))
        return objects, ([run_of(rest_tagged)] if rest_tagged else [])

    def _fitted(self, run: Run, partition: str | None) -> list[ObjectWrite]:
        """The object of one batch, split further under `maxObjectBytes` (each part with its lines' sources)."""
        if self.settings.maxObjectBytes is None:
            return [ObjectWrite(run.text, run.count, partition, segments=run.segments)]
        parts: list[ObjectWrite] = []
        segments = run.segments
        for text, count, encoded in fit(self.settings, run.text, run.count):
            mine, segments = _split_segments(segments, count)
            parts.append(ObjectWrite(text, count, partition, encoded, mine))
        return parts


def _first_tried(records: list[InboundRecord], now: float) -> float:
    return min([now, *(r.first_attempt for r in records if r.first_attempt)])
