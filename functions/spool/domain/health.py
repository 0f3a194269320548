"""Containment of a bad endpoint (SPEC: Guarantees; docs/delivery.md, "A bad endpoint is contained").

An endpoint whose store fails again and again, or keeps a write open until its deadline, must not take the sink's
time from other endpoints. So the sink keeps, per endpoint, its *health*: consecutive failed deliveries and, once
it is parked, until when. The rules are pure and live here; the sink (domain/delivery.py) reads and records the
health through the `StatusBook` port (the endpoint's status item, shared by every sink) and keeps, per process, a
`HealthBoard`: the health it last read or wrote, and which deliveries are in flight.

- A failure of the endpoint's own store (an error it answered, a refused connection, a deadline) counts; a fault
  of Spool's own services (staging, the queue, KMS) does not: that is not the tenant's doing.
- A deadline hit parks the endpoint at once, for at least DEADLINE_PARK_FACTOR times the deadline: a store that
  drips its answer costs a sink the whole deadline per write, so its probes may take at most a quarter of one
  sink's time. Other failures park it after PARK_AFTER_FAILURES in a row.
- While parked, its records are handed back untouched (no store, no KMS, no staging call) until the park ends.
  Each park is twice the one before (PARK_BASE_SECONDS up to PARK_MAX_SECONDS, the retry back-off's numbers).
- When a park has ended, one sink takes the *probe* (a conditional write on the status item) and delivers; the
  others hand their records back until the probe is decided. The probe's first write decides: written, the
  endpoint is healthy again; failed, it is parked for longer.
- In one process, deliveries of an endpoint write side by side once one of them wrote, until one is slow (a
  write of it in flight for SLOW_DELIVERY_SECONDS) or the endpoint's store failed here; before that (a new
  endpoint) and after, at most one of them calls the store at a time: a delivery ready to write that finds
  another one writing waits for it (WRITE_WAIT_SECONDS), then hands its records back. While one is slow, no
  delivery of the endpoint starts, and none waiting to write goes on. Only the store counts: time in Spool's own
  services (reading the endpoint, staging, waiting for a flush lease) makes no delivery slow, and deliveries that
  only stage are not held back by one another, or a new endpoint's first events, staged side by side, would
  miss their flush time and land as objects of their own (and on a loaded machine a healthy endpoint's
  deliveries would hand one another back). (The local runtime's pollers share a process; in Lambda one
  invocation runs per process and the endpoints of an invocation are one delivery each.) So a store that starts
  to drip holds at most the deliveries that began to write before it was slow, and only until its deadline parks
  it.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from spool.domain import limits

PARK_AFTER_FAILURES = 3
# A park after a deadline hit lasts at least this many times the deadline.
DEADLINE_PARK_FACTOR = 3
# Parks follow the sink's retry back-off (its settings; these are the defaults): the first is the base, each
# next one twice the one before, up to the maximum.
PARK_BASE_SECONDS = limits.RETRY_BASE_SECONDS
PARK_MAX_SECONDS = limits.RETRY_MAX_SECONDS
# How long a sink trusts the health it read (another sink's failures and parks are seen within this).
HEALTH_CACHE_SECONDS = 5.0
# A delivery whose write (the store calls of one step: its objects, or a seal's manifests) has been in flight for
# longer than this is slow: no other delivery of its endpoint starts beside it.
SLOW_DELIVERY_SECONDS = 3.0
# How long a delivery that is ready to write waits for another one writing to a suspect store: until that one
# is slow. By then it has staged or planned everything; handed back, its lines would miss their flush time. A
# store that drips holds such waiters for at most SLOW_DELIVERY_SECONDS, then every one is handed back at once.
WRITE_WAIT_SECONDS = SLOW_DELIVERY_SECONDS
# How soon records handed back because their endpoint was busy (or its probe undecided) come back.
BUSY_RETRY_SECONDS = 2
# How long a probe may stay undecided before another sink may take it (a sink that died while probing).
PROBE_LEASE_SECONDS = 120


@dataclass(frozen=True)
class Health:
    """An endpoint's health as its status item holds it: consecutive failed deliveries, and the epoch seconds
    until which it is parked and until which a sink holds its probe (0: none)."""

    failures: int = 0
    parked_until: float = 0.0
    probe_until: float = 0.0


class Admission(Enum):
    DELIVER = "deliver"  # healthy: deliver as usual
    PROBE = "probe"  # a park has ended: try to take the probe, then deliver all at once
    PARKED = "parked"  # hand back until the park ends, as a failure's back-off
    WAIT = "wait"  # a probe is undecided: hand back for a short while, not a failure


def admission(health: Health, now: float) -> Admission:
    """What a sink does with an endpoint's records, given its health."""
    if health.parked_until > now:
        return Admission.PARKED
    if health.parked_until:
        return Admission.WAIT if health.probe_until > now else Admission.PROBE
    return Admission.DELIVER


def park_seconds(failures: int, base: int = PARK_BASE_SECONDS, maximum: int = PARK_MAX_SECONDS) -> int:
    """How long a park lasts after `failures` failed deliveries in a row: `base`, doubling, at most `maximum`."""
    return min(maximum, base * 2 ** max(0, failures - PARK_AFTER_FAILURES))


def after_failure(
    health: Health,
    now: float,
    *,
    deadline: float | None,
    base: int = PARK_BASE_SECONDS,
    maximum: int = PARK_MAX_SECONDS,
) -> Health:
    """The health after one more failed delivery of the endpoint's store; `deadline` (seconds) when the store kept
    a call open until its deadline, which weighs as much as PARK_AFTER_FAILURES failures and parks for at least
    DEADLINE_PARK_FACTOR deadlines (it cost a sink the whole deadline). A probe's failure parks for twice as long
    as the park before."""
    failures = max(health.failures + 1, PARK_AFTER_FAILURES if deadline is not None else 0)
    if failures < PARK_AFTER_FAILURES:
        return Health(failures=failures)
    seconds = max(park_seconds(failures, base, maximum), DEADLINE_PARK_FACTOR * (deadline or 0))
    return Health(failures=failures, parked_until=now + seconds)


def wait_seconds(health: Health, now: float) -> int:
    """How long records of a parked endpoint, or of one whose probe is undecided, stay away."""
    until = health.parked_until if health.parked_until > now else health.probe_until
    return max(1, min(PARK_MAX_SECONDS, math.ceil(until - now)))


Clock = Callable[[], float]


@dataclass
class _Entry:
    health: Health | None = None
    read_at: float = -math.inf
    suspect: bool = True  # nothing written here yet, or its store failed here since the last write
    started: set[int] = field(default_factory=set)  # deliveries in flight (tickets)
    # Those of them admitted to write: ticket -> when its store call in flight began (clock), inf between calls.
    writing: dict[int, float] = field(default_factory=dict)


class HealthBoard:
    """One process's view of its endpoints' health and its deliveries in flight (thread-safe: the local runtime's
    pollers, and the sink's per-endpoint threads, share it). Bounded: the least recently used entry without a
    delivery in flight goes first when `max_entries` is passed."""

    def __init__(self, *, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        self._entries: dict[str, _Entry] = {}
        self._max = max_entries
        self._clock = clock
        self._changed = threading.Condition()
        self._tickets = itertools.count(1)

    def cached(self, key: str) -> Health | None:
        """The health last read or recorded, if it is recent enough to act on."""
        with self._changed:
            entry = self._entries.get(key)
            if entry is None or entry.health is None or self._clock() - entry.read_at > HEALTH_CACHE_SECONDS:
                return None
            return entry.health

    def remember(self, key: str, health: Health) -> None:
        with self._changed:
            entry = self._entry(key)
            entry.health, entry.read_at = health, self._clock()

    def enter(self, key: str) -> int | None:
        """Start a delivery of `key` unless another one of it is slow (it ends at its deadline: no use waiting).
        The delivery's ticket (for `write` and `leave`), or None when it may not start. Until it asks `write`, a
        delivery only reads and stages (Spool's own services), so deliveries stage side by side."""
        return self._admit(key, None, 0.0)

    def write(self, key: str, ticket: int, *, wait: float = WRITE_WAIT_SECONDS) -> bool:
        """May the delivery `ticket` write to the endpoint's store now, for one step? Not while another one is
        slow; while the store is suspect here (nothing written yet, or it failed), only when no other delivery is
        writing, waiting up to `wait` seconds for that one to leave. Admitted, it says `calling` before each call
        of the store and `returned` after it: a delivery is slow when one store call, not the whole delivery or
        its ledger records around the call, has been in flight too long."""
        return self._admit(key, ticket, wait) is not None

    def calling(self, key: str, ticket: int) -> None:
        """The delivery `ticket`, admitted to write, calls the store now."""
        with self._changed:
            entry = self._entry(key)
            if ticket in entry.writing:
                entry.writing[ticket] = self._clock()

    def returned(self, key: str, ticket: int) -> None:
        """The delivery `ticket`'s store call returned. What it does next (its ledger, removing staged lines, its
        status, its leases) is Spool's own services, which make no delivery slow; it still counts as the one
        writing to a suspect store until it leaves or asks to write again."""
        with self._changed:
            entry = self._entry(key)
            if ticket in entry.writing:
                entry.writing[ticket] = math.inf  # in no store call: never slow

    def _admit(self, key: str, ticket: int | None, wait: float) -> int | None:
        deadline = self._clock() + wait
        with self._changed:
            while True:
                entry = self._entry(key)
                now = self._clock()
                if ticket is not None:  # asking again: its previous write (if any) has ended
                    entry.writing.pop(ticket, None)
                if any(now - since > SLOW_DELIVERY_SECONDS for since in entry.writing.values()):
                    return None  # a slow one ends at its deadline: no use waiting for it
                if ticket is None:
                    ticket = next(self._tickets)
                    entry.started.add(ticket)
                    return ticket
                if not (entry.suspect and entry.writing):
                    entry.writing[ticket] = math.inf  # admitted; slow only once a store call it makes is
                    return ticket
                if now >= deadline:
                    return None
                # Woken when a delivery leaves; at the latest when the oldest writer turns slow.
                oldest = min(entry.writing.values())
                self._changed.wait(min(deadline, oldest + SLOW_DELIVERY_SECONDS) - now + 0.01)

    def leave(self, key: str, ticket: int, *, wrote: bool, failed: bool) -> None:
        """The delivery `ticket` of `key` ended: it `wrote` to the store, or its store `failed` (neither: it only
        held or handed back)."""
        with self._changed:
            entry = self._entry(key)
            entry.started.discard(ticket)
            entry.writing.pop(ticket, None)
            if failed:
                entry.suspect = True
            elif wrote:
                entry.suspect = False
            self._changed.notify_all()

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._max:
                idle = next((k for k, e in self._entries.items() if not e.started), None)
                if idle is not None:
                    del self._entries[idle]
            entry = self._entries[key] = _Entry()
        else:  # most recently used last, so the eviction above takes the least recently used
            self._entries[key] = self._entries.pop(key)
        return entry
