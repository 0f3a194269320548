"""The sink's rules for one endpoint's records, as pure functions (docs/delivery.md, Batching and hold-back).

The sink (domain/delivery.py) asks twice per endpoint and invocation:

1. `triage(records, now)`: which records are event bundles to deliver (in acceptance order), which are not
   bundles (they fail until they reach the DLQ), which flush triggers are early (handed back until their
   flush time) and which flush times are due.
2. `plan(...)`, once the sink has tried the flush lease of each due time and read what is staged there: the
   steps to perform in order (writes, and at most one hold), and for every record the one decision that
   applies to it: acknowledged when a given step succeeds, acknowledged at once, or handed back after N
   seconds. Every record gets exactly one decision; none is decided by being left out.

Nothing here performs I/O or reads a clock: the sink passes the time in.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from spool.domain import limits
from spool.domain.encoding import partition_names
from spool.domain.messages import is_event_bundle
from spool.domain.ports import StagedBundle

# SQS allows a message's visibility to reach 12 hours after it was received; DelaySeconds at most 15 min.
MAX_VISIBILITY_SECONDS = 43_200
MAX_DELAY_SECONDS = 900
# A trigger this close to its flush time counts as due: waiting would cost another round trip.
DUE_SLACK_SECONDS = 0.5
# How soon a trigger that found the flush lease taken comes back to check that the holder finished.
LEASE_RETRY_SECONDS = 5
LEASE_SECONDS = 120
# A remainder is held only if its flush time is at least the batching window, less this, away: a trigger sent
# now is back by then. Within this slack holding still pays (other holders' lines share the object).
HOLD_SETTLE_SECONDS = 1.0
ODD_MESSAGE = "a queued message was not one event line; it goes to the DLQ"


@dataclass(frozen=True)
class InboundRecord:
    """One SQS message as the sink sees it: a bundle of event lines for an endpoint (domain/messages.py), or a
    flush trigger. A bundle is acknowledged only when every one of its lines is written or staged."""

    message_id: str
    receipt_handle: str
    tenant_id: str
    endpoint_id: str
    body: str  # a bundle's lines joined by "\n" (domain/messages.py); a trigger's note
    accepted_at: float
    receive_count: int = 1
    kind: Literal["event", "flush"] = "event"
    flush_at: int = 0  # a trigger's flush time
    # The bundle's line count as the api sent it (attribute `lines`); None for a message without it, whose
    # body is then checked line by line.
    line_count: int | None = None

    # Plain properties: with the api's line count both are a few comparisons, cheaper than functools'
    # cached_property's lookup (4.8 against 5.9 us per record decoded and read as the planner does, timeit; a
    # tenth of the sink's CPU per single-event record, make bench B1); without it (a message queued before the
    # count existed) they are C-speed scans of the body.
    @property
    def is_bundle(self) -> bool:
        """Whether this is an event bundle Spool may write. With the api's line count only its ends are
        checked (the count spares a scan of the whole body); without it every line break is checked."""
        if self.kind != "event":
            return False
        if self.line_count is not None:
            return self.line_count >= 1 and self.body.startswith('{"id":"') and self.body.endswith("}")
        return is_event_bundle(self.body)

    @property
    def count(self) -> int:
        """Event lines in the bundle (none in a trigger)."""
        if self.kind != "event":
            return 0
        return self.line_count if self.line_count is not None else self.body.count("\n") + 1

    @property
    def lines(self) -> list[str]:
        return self.body.split("\n") if self.kind == "event" else []


@dataclass(frozen=True)
class Rules:
    """The settings of the rules that are not the endpoint's own."""

    retry_base_seconds: int = limits.RETRY_BASE_SECONDS
    retry_max_seconds: int = limits.RETRY_MAX_SECONDS
    # False writes every remainder at once as a partial object (make bench, B4's reference run).
    hold_back: bool = True
    # The event source mapping's batching window; a trigger is sent that much early.
    trigger_lead_seconds: float = 0.0


# Text holding `count` lines joined by "\n": bundles are written as they came, split only where an object ends.
Block = tuple[str, int]


def cut(blocks: list[Block], n: int) -> tuple[list[Block], list[Block]]:
    """The first `n` lines of `blocks` and the rest, splitting at most one block."""
    head: list[Block] = []
    for i, (text, count) in enumerate(blocks):
        if n <= 0:
            return head, blocks[i:]
        if count <= n:
            head.append((text, count))
            n -= count
            continue
        lines = text.split("\n")
        head.append(("\n".join(lines[:n]), n))
        return head, [("\n".join(lines[n:]), count - n), *blocks[i + 1 :]]
    return head, []


def hold_until(remainder: list[InboundRecord], interval: int, now: float, lead: float) -> int | None:
    """The flush time a remainder is held for: `interval` after its oldest event was accepted (whole seconds,
    rounded down), so no event waits more than its endpoint's interval for a fuller object. A trigger sent now
    comes back within the batching window `lead`; a flush time closer than that, less the settle time, would be
    missed by up to a window: None then, and the remainder is written at once (an interval no longer than the
    window, or events that waited out a long window before the sink saw them)."""
    flush_at = math.floor(min(r.accepted_at for r in remainder) + interval)
    return flush_at if flush_at >= now + lead - HOLD_SETTLE_SECONDS else None


def trigger_delay(until_flush: float, lead: float) -> int:
    """`DelaySeconds` for a flush trigger due in `until_flush` seconds, sent `lead` seconds (the batching
    window) early. Rounded to the nearest second rather than up: arriving up to half a second early still
    counts as due (DUE_SLACK_SECONDS), while rounding up made every trigger late by half a second on average."""
    return min(MAX_DELAY_SECONDS, max(0, round(until_flush - lead)))


def _early_wait(flush_at: int, now: float, lead: float) -> int:
    """How long a trigger received before its time (an interval past SQS's 15-minute delay) stays away: until
    the batching window before its time, at least a second."""
    return min(MAX_VISIBILITY_SECONDS, max(1, math.ceil(flush_at - now - lead)))


def back_off(receive_count: int, rules: Rules) -> int:
    """How long a record whose delivery failed stays away: the base, doubling with each receive, capped."""
    return min(rules.retry_max_seconds, rules.retry_base_seconds * 2 ** max(0, receive_count - 1))


def lease_wait(receive_count: int, lease_until: float | None, now: float) -> int:
    """How long a trigger that found the flush lease taken stays away. The holder is almost always a live flush
    that finishes within seconds, so the trigger comes back soon: LEASE_RETRY_SECONDS, doubling with each
    receive, never past the lease's expiry (a lease left by a sink that died is free then)."""
    wait = LEASE_RETRY_SECONDS * 2 ** max(0, receive_count - 1)
    if lease_until is not None:
        wait = min(wait, math.ceil(lease_until - now) + 1)
    return min(MAX_VISIBILITY_SECONDS, max(LEASE_RETRY_SECONDS, wait))


@dataclass(frozen=True)
class Triage:
    bundles: list[InboundRecord]  # in acceptance order
    odd: list[InboundRecord]  # not event bundles: never written into a tenant's object
    early: list[InboundRecord]  # triggers before their flush time (intervals over SQS's 15-minute delay)
    due: dict[int, list[InboundRecord]]  # due flush time -> its triggers, earliest time first


def triage(records: list[InboundRecord], now: float, lead: float = 0.0) -> Triage:
    """Sort one endpoint's records. A trigger is sent the batching window (`lead`) early and may join a
    poller's batch already under way, so it counts as due up to that much (and DUE_SLACK_SECONDS) early:
    handing it back would cost a second window after its flush time."""
    bundles: list[InboundRecord] = []
    odd: list[InboundRecord] = []
    early: list[InboundRecord] = []
    due: dict[int, list[InboundRecord]] = {}
    for record in records:
        if record.kind == "flush":
            if record.flush_at > now + lead + DUE_SLACK_SECONDS:
                early.append(record)
            else:
                due.setdefault(record.flush_at, []).append(record)
        elif record.is_bundle:
            bundles.append(record)
        else:
            odd.append(record)
    bundles.sort(key=lambda r: r.accepted_at)
    return Triage(bundles, odd, early, dict(sorted(due.items())))


@dataclass(frozen=True)
class FoundFlush:
    """What the sink found for a due flush time: whether it took the lease; if so what is staged there and at
    the later times it leased with it (by flush time); if not, when the holder's lease expires."""

    flush_at: int
    leased: bool
    staged: dict[int, list[StagedBundle]]
    lease_until: float | None = None


@dataclass(frozen=True)
class Write:
    """Write `blocks` as objects of batchSize lines; for a flush, then remove the staged bundles in `clears`."""

    blocks: list[Block]
    settles: list[InboundRecord]  # acknowledged once the objects are written
    clears: dict[int, list[StagedBundle]] = field(default_factory=dict)
    clearing: list[InboundRecord] = field(default_factory=list)  # acknowledged once `clears` are removed too


@dataclass(frozen=True)
class Hold:
    """Stage `lines` for `flush_at` and send its flush trigger."""

    flush_at: int
    lines: list[str]
    settles: list[InboundRecord]


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
    error: str | None = None

    @property
    def failed(self) -> int:
        return sum(1 for h in self.handed_back if h.failed)


def plan(
    batch_size: int,
    interval: int,
    found: Triage,
    flushes: list[FoundFlush],
    now: float,
    rules: Rules,
    *,
    by_type: bool = False,
) -> Plan:
    """The steps and decisions for one endpoint's records (see the module docstring). The rules, in order:

    - a message that is not an event bundle is handed back after the base back-off (it fails to the DLQ);
    - a trigger before its flush time (less the batching window) is handed back until then;
    - the bundles' lines are written at once in objects of `batch_size`, as many full ones as they fill
      (`by_type`: per event type, each type's own full objects);
    - a bundle whose lines all went into those objects is acknowledged when they are written; the others (a
      bundle may straddle the cut) belong to the remainder;
    - a due flush time whose lease another sink holds: its triggers come back when the lease may be free;
    - a due flush time with nothing staged was written by an earlier trigger: its triggers are acknowledged;
    - a due flush time with staged lines writes them, the remainder with the first such flush, and removes
      them; the remainder's bundles are acknowledged once written, its triggers once the lines are removed;
    - a due flush time an earlier flush of this plan took with it: its triggers go with that flush;
    - a remainder that no flush took is held for `interval` after its oldest event was accepted, unless a
      trigger could not be back by then (`hold_until`), any of its bundles failed before (a retry is never held
      twice) or hold-back is off: then it is written at once.
    """
    steps: list[Step] = []
    acknowledged: list[InboundRecord] = []
    handed_back = [HandBack(r, rules.retry_base_seconds, failed=True) for r in found.odd]
    lead = rules.trigger_lead_seconds
    handed_back += [HandBack(t, _early_wait(t.flush_at, now, lead), False) for t in found.early]

    full, rest, written, remainder = (_cut_by_type if by_type else _cut)(found.bundles, batch_size)
    if full:
        steps.append(Write(full, written))

    covering: dict[int, Write] = {}  # flush time -> the write of this plan that takes what is staged there
    for flush in flushes:
        triggers = found.due[flush.flush_at]
        if flush.flush_at in covering:
            # An earlier flush of this plan took this time's staged lines with its own.
            covering[flush.flush_at].clearing.extend(triggers)
        elif not flush.leased:
            wait = lease_wait(max(t.receive_count for t in triggers), flush.lease_until, now)
            handed_back += [HandBack(t, wait, False) for t in triggers]
        elif not flush.staged.get(flush.flush_at):
            # An earlier trigger for this time wrote it; what is staged for later times waits for theirs.
            acknowledged += triggers
        else:
            # Bundles marked written are in an object already (a flush whose clean-up failed): removed, not
            # written again.
            lines = [line for bundles in flush.staged.values() for b in bundles if not b.written for line in b.lines]
            write = Write([("\n".join(lines), len(lines)), *rest], remainder, flush.staged, list(triggers))
            steps.append(write)
            covering.update(dict.fromkeys(flush.staged, write))
            rest, remainder = [], []

    if remainder:
        flush_at = hold_until(remainder, interval, now, lead)
        if flush_at is None or not rules.hold_back or any(r.receive_count > 1 for r in remainder):
            steps.append(Write(rest, remainder))
        else:
            held = [line for text, _ in rest for line in text.split("\n")]  # staging takes lines
            steps.append(Hold(flush_at, held, remainder))
    return Plan(steps, acknowledged, handed_back, ODD_MESSAGE if found.odd else None)


Cut = tuple[list[Block], list[Block], list[InboundRecord], list[InboundRecord]]


def _cut(bundles: list[InboundRecord], batch_size: int) -> Cut:
    """(full objects' lines, the remainder's, bundles all of whose lines are in the full ones, the others).
    A bundle may straddle the cut: its first lines are written, the others go with the remainder."""
    total = sum(r.count for r in bundles)
    n = total - total % batch_size
    full, rest = cut([(r.body, r.count) for r in bundles], n)
    written: list[InboundRecord] = []
    remainder: list[InboundRecord] = []
    end = 0
    for r in bundles:
        end += r.count
        (written if end <= n else remainder).append(r)
    return full, rest, written, remainder


def _cut_by_type(bundles: list[InboundRecord], batch_size: int) -> Cut:
    """`_cut` per event type partition (encoding.partitions: at most TYPE_PARTITIONS_MAX types, the rest in
    `_other`): each partition's full objects are written, the rest of every partition is the remainder."""
    lines = [(i, text) for i, r in enumerate(bundles) for text in r.lines]
    names = partition_names([text for _, text in lines])
    room = {name: count - count % batch_size for name, count in Counter(names).items()}  # full lines each
    full_lines: list[str] = []
    rest_lines: list[str] = []
    straddling: set[int] = set()
    for (i, text), name in zip(lines, names, strict=True):
        if room[name] > 0:
            room[name] -= 1
            full_lines.append(text)
        else:
            rest_lines.append(text)
            straddling.add(i)
    written = [r for i, r in enumerate(bundles) if i not in straddling]
    remainder = [r for i, r in enumerate(bundles) if i in straddling]
    full = [("\n".join(full_lines), len(full_lines))] if full_lines else []
    rest = [("\n".join(rest_lines), len(rest_lines))] if rest_lines else []
    return full, rest, written, remainder
