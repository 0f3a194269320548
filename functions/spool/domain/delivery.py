"""The sink's heart: per-endpoint coalescing with hold-back (SPEC: What lands in storage, batching).

Lambda's SQS trigger hands the sink whatever its pollers gathered, split across concurrent invocations,
early and small. Writing what each invocation holds gives many small objects, so per endpoint and per
invocation the sink:

1. writes full objects of `batchSize` lines at once;
2. holds back a remainder that is not full: its lines go to a durable staging area (objects in Spool's staging
   bucket; the flush lease is a DynamoDB item), keyed by the
   endpoint's next flush time, and a *flush trigger* message is enqueued with a delay until that time; then
   the remainder's messages are acknowledged. Flush times lie on a per-endpoint grid of
   `flushIntervalSeconds` (offset by a hash of the endpoint id so endpoints do not all flush at once), so
   every invocation holding back for the endpoint picks the same time and stages into the same place;
3. on a due trigger, takes the flush lease for (endpoint, time), reads everything staged there, adds this
   invocation's own remainder, writes it as full objects plus at most one partial one, removes the staged
   items and releases the lease. Triggers that lose the lease race come back shortly and find nothing left.
   Remainders held in the last second before a flush time are staged for the next one (so the flush does
   not start while holders are still staging for it); the flush reads the endpoint's staged times from one
   listing and takes every later one it can lease too.

So a held event waits at most about `flushIntervalSeconds` plus the trigger's batching window, is held at
most once, and is written even when no new traffic arrives (the trigger is already queued). A write that
fails fails only that endpoint's messages, which come back after an exponential back-off and reach the DLQ
after the queue's maxReceiveCount; staged lines stay staged until a trigger (retried, or redriven from the
DLQ) writes them. A crash after an object is written but before its staged items are removed can write
those lines twice; every line carries its id, so readers can drop the rare duplicate.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Protocol

from spool.domain.encoding import EncodedObject, encode_objects
from spool.domain.endpoints import unseal
from spool.domain.errors import SpoolError, StoreError
from spool.domain.keys import object_key
from spool.domain.messages import is_event_bundle
from spool.domain.models import Endpoint
from spool.domain.naming import iso_timestamp
from spool.domain.ports import (
    Cipher,
    EndpointRepository,
    Leases,
    ObjectStore,
    StagedBundle,
    Staging,
    StoreFactory,
    Triggers,
)

Clock = Callable[[], float]
_log = logging.getLogger(__name__)
# SQS allows a message's visibility to reach 12 hours after it was received; DelaySeconds at most 15 min.
MAX_VISIBILITY_SECONDS = 43_200
MAX_DELAY_SECONDS = 900
# A trigger this close to its time counts as due: waiting would cost another round trip.
DUE_SLACK_SECONDS = 0.5
# How soon a trigger that lost the lease race comes back to check that the winner finished.
LEASE_RETRY_SECONDS = 5
LEASE_SECONDS = 120
# Remainders held this close to a flush time go to the next one, so the flush for a time starts after every
# holder has finished staging for it (otherwise late stragglers become extra small objects).
HOLD_SETTLE_SECONDS = 1.0
MAX_BATCH_COUNTER = 9_999
MAX_PARALLEL_ENDPOINTS = 8


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
    boundary: int = 0

    @cached_property
    def count(self) -> int:
        """Event lines in the bundle (none in a trigger); counted once, it scans the whole body."""
        return self.body.count("\n") + 1 if self.kind == "event" else 0

    @property
    def lines(self) -> list[str]:
        return self.body.split("\n") if self.kind == "event" else []


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


class VisibilityPort(Protocol):
    def change_visibility(self, changes: list[tuple[str, int]]) -> None:
        """Set each (receipt handle, seconds) message's visibility timeout. Best effort."""


@dataclass
class EndpointOutcome:
    events_written: int = 0
    objects_written: int = 0
    held: int = 0
    failed: int = 0
    keys: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class DeliveryReport:
    """`retry` holds the message ids to report as batch item failures (SQS hands them back later)."""

    retry: set[str] = field(default_factory=set)
    endpoints: dict[str, EndpointOutcome] = field(default_factory=dict)


def next_flush_at(endpoint_id: str, interval: int, after: float) -> int:
    """The first point of the endpoint's flush grid strictly after `after` (whole seconds)."""
    offset = zlib.crc32(endpoint_id.encode()) % interval
    return (math.floor((after - offset) / interval) + 1) * interval + offset


def trigger_delay(until_flush: float, lead: float) -> int:
    """`DelaySeconds` for a flush trigger due in `until_flush` seconds, sent `lead` seconds (the batching
    window) early. Rounded to the nearest second rather than up: arriving up to half a second early still
    counts as due (DUE_SLACK_SECONDS), while rounding up made every trigger late by half a second on average."""
    return min(MAX_DELAY_SECONDS, max(0, round(until_flush - lead)))


@dataclass
class _Target:
    endpoint: Endpoint
    store: ObjectStore
    loaded_at: float


@dataclass
class EndpointDirectory:
    """Endpoint settings, decrypted credentials and store clients, cached for `ttl` seconds.

    Without it every invocation would cost a DynamoDB read, a KMS Decrypt and a new S3 client per endpoint.
    A changed endpoint (PATCH) is seen within `ttl`.
    """

    repo: EndpointRepository
    cipher: Cipher
    stores: StoreFactory
    ttl: float = 30.0
    clock: Clock = time.monotonic
    _cache: dict[tuple[str, str], _Target] = field(default_factory=dict)

    def target(self, tenant_id: str, endpoint_id: str) -> _Target:
        cached = self._cache.get((tenant_id, endpoint_id))
        if cached and self.clock() - cached.loaded_at < self.ttl:
            return cached
        endpoint = self.repo.get_endpoint(tenant_id, endpoint_id)
        if endpoint is None:
            raise StoreError(f"endpoint {endpoint_id} no longer exists")
        if cached and cached.endpoint.updatedAt == endpoint.updatedAt:
            cached.loaded_at = self.clock()
            return cached
        target = _Target(endpoint, self.stores(endpoint.storage, unseal(self.cipher, endpoint)), self.clock())
        self._cache[(tenant_id, endpoint_id)] = target
        return target

    def forget(self, tenant_id: str, endpoint_id: str) -> None:
        self._cache.pop((tenant_id, endpoint_id), None)


class _Failed(Exception):
    def __init__(self, error: SpoolError) -> None:
        self.error = error


@dataclass
class Sink:
    """Coalesces one invocation's records per endpoint and writes them (see the module docstring)."""

    directory: EndpointDirectory
    repo: EndpointRepository
    visibility: VisibilityPort
    staging: Staging
    triggers: Triggers
    leases: Leases
    clock: Clock = time.time
    retry_base_seconds: int = 10
    retry_max_seconds: int = 900
    # False writes every remainder at once as a partial object: what the trigger's batching alone gives
    # (make bench, B4's reference run). Never switched off in a deployment.
    hold_back: bool = True
    # The event source mapping's batching window: how long a trigger may wait in the poller after its delay.
    # The trigger is sent that much early, so the window is spent before the flush time, not after it.
    trigger_lead_seconds: float = 0.0
    # Time one endpoint may need at worst (a slow store's write with its retries, see adapters/stores.py).
    reserve_seconds: float = 50.0
    _counters: dict[tuple[str, int], int] = field(default_factory=dict)

    def deliver(
        self, records: Iterable[InboundRecord], remaining_seconds: Callable[[], float] | None = None
    ) -> DeliveryReport:
        """Deliver one invocation's records. `remaining_seconds` is the invocation's time left: endpoints not
        started while enough is left for one slow write are handed back at once, untouched, so one slow store
        cannot time the whole invocation out and delay every other endpoint's events with it."""
        groups: dict[tuple[str, str], list[InboundRecord]] = defaultdict(list)
        for record in records:
            groups[(record.tenant_id, record.endpoint_id)].append(record)
        report = DeliveryReport()
        changes: list[tuple[str, int]] = []

        def one(key: tuple[str, str]) -> tuple[str, DeliveryReport, list[tuple[str, int]]]:
            mine, my_changes = DeliveryReport(), list[tuple[str, int]]()
            self._deliver_group(key[0], key[1], groups[key], remaining_seconds, mine, my_changes)
            return key[1], mine, my_changes

        # Endpoints are delivered side by side, so a store that hangs until its client times out holds up only
        # its own endpoint's messages, not the other endpoints' in the same invocation.
        if len(groups) > 1:
            with ThreadPoolExecutor(max_workers=min(len(groups), MAX_PARALLEL_ENDPOINTS)) as pool:
                results = list(pool.map(one, groups))
        else:
            results = [one(key) for key in groups]
        for endpoint_id, mine, my_changes in results:
            report.retry |= mine.retry
            report.endpoints[endpoint_id] = mine.endpoints[endpoint_id]
            changes.extend(my_changes)
        if changes:
            self.visibility.change_visibility(changes)
        return report

    def _deliver_group(
        self,
        tenant_id: str,
        endpoint_id: str,
        group: list[InboundRecord],
        remaining_seconds: Callable[[], float] | None,
        report: DeliveryReport,
        changes: list[tuple[str, int]],
    ) -> None:
        outcome = report.endpoints[endpoint_id] = EndpointOutcome()
        if remaining_seconds is not None and remaining_seconds() < self.reserve_seconds:
            changes.extend((r.receipt_handle, 0) for r in group)
            report.retry.update(r.message_id for r in group)
            return
        done: set[str] = set()
        error: SpoolError | None = None
        try:
            self._deliver_endpoint(tenant_id, endpoint_id, group, outcome, report, changes, done)
        except _Failed as failed:
            self.directory.forget(tenant_id, endpoint_id)
            error = failed.error
        except Exception as exc:  # e.g. staging unavailable: this endpoint only, retried later
            self.directory.forget(tenant_id, endpoint_id)
            error = StoreError(f"delivery interrupted ({type(exc).__name__})")
        # Whatever was neither written, staged nor already handed back is retried: nothing is acked unless its
        # line is safe.
        unresolved = [r for r in group if r.message_id not in done and r.message_id not in report.retry]
        if unresolved:
            self._fail(unresolved, error or StoreError("not delivered"), outcome, report, changes)
        self._record(tenant_id, endpoint_id, outcome)

    def _deliver_endpoint(
        self,
        tenant_id: str,
        endpoint_id: str,
        group: list[InboundRecord],
        outcome: EndpointOutcome,
        report: DeliveryReport,
        changes: list[tuple[str, int]],
        done: set[str],
    ) -> None:
        try:
            target = self.directory.target(tenant_id, endpoint_id)
        except SpoolError as exc:
            raise _Failed(exc) from None
        except Exception as exc:  # a KMS or DynamoDB fault fails only this endpoint's messages
            raise _Failed(StoreError(f"could not load endpoint settings ({type(exc).__name__})")) from None
        settings = target.endpoint.storage
        now = self.clock()
        events = sorted((r for r in group if r.kind == "event"), key=lambda r: r.accepted_at)
        odd = [r for r in events if not is_event_bundle(r.body)]
        if odd:
            # Only the api enqueues events, as bundles of rendered lines; anything else is not written into a
            # tenant's object: the odd message fails until it reaches the DLQ.
            events = [r for r in events if r not in odd]
            for r in odd:
                changes.append((r.receipt_handle, self.retry_base_seconds))
                report.retry.add(r.message_id)
            outcome.failed += len(odd)
            outcome.error = "a queued message was not one event line; it goes to the DLQ"
        triggers = [r for r in group if r.kind == "flush"]
        early = [t for t in triggers if t.boundary > now + DUE_SLACK_SECONDS]
        for trigger in early:  # only for intervals longer than SQS's 15-minute delay
            changes.append((trigger.receipt_handle, min(MAX_VISIBILITY_SECONDS, math.ceil(trigger.boundary - now))))
            report.retry.add(trigger.message_id)
        due = sorted({t.boundary for t in triggers if t not in early})

        blocks = [(r.body, r.count) for r in events]
        total = sum(count for _, count in blocks)
        full = total - total % settings.batchSize
        written, rest = cut(blocks, full)
        self._write_all(target, written, outcome)
        # Bundles all of whose lines went into full objects are done; the rest (a bundle may straddle the cut:
        # its first lines are written, the others go with the remainder) are done once the remainder is safe.
        remainder: list[InboundRecord] = []
        end = 0
        for r in events:
            end += r.count
            if end <= full:
                done.add(r.message_id)
            else:
                remainder.append(r)

        # A remainder that failed before is written with the next flush; otherwise it may be held once.
        retried = any(r.receive_count > 1 for r in remainder)

        if due:
            owner = uuid.uuid4().hex
            for boundary in due:
                mine = [t for t in triggers if t.boundary == boundary]
                # The remainder goes with the first flush that writes.
                flushed = self._flush_staged(target, boundary, owner, rest if remainder else [], outcome)
                if flushed is None:
                    wait = self._lease_wait(endpoint_id, boundary, max(t.receive_count for t in mine))
                    changes.extend((t.receipt_handle, wait) for t in mine)
                    report.retry.update(t.message_id for t in mine)
                    continue
                done.update(t.message_id for t in mine)
                if remainder and flushed:
                    done.update(r.message_id for r in remainder)
                    remainder = []
        if remainder and (retried or not self.hold_back):
            self._write_all(target, rest, outcome)
            done.update(r.message_id for r in remainder)
        elif remainder:
            held = [line for text, _ in rest for line in text.split("\n")]  # staging takes lines
            self._hold(tenant_id, endpoint_id, settings.flushIntervalSeconds, held, outcome, now)
            done.update(r.message_id for r in remainder)

    def _lease_wait(self, endpoint_id: str, boundary: int, receive_count: int) -> int:
        """How long a trigger that found the lease taken stays away. The holder is almost always a live flush
        that finishes within seconds, so the trigger comes back soon: LEASE_RETRY_SECONDS, doubling with each
        receive, never past the lease's expiry (a lease left by a sink that died is free then). Waiting for
        the expiry at once kept triggers in flight for minutes after their work was done."""
        wait = LEASE_RETRY_SECONDS * 2 ** max(0, receive_count - 1)
        try:
            until = self.leases.lease_until(endpoint_id, boundary)
        except Exception:
            until = None
        if until is not None:
            wait = min(wait, math.ceil(until - self.clock()) + 1)
        return min(MAX_VISIBILITY_SECONDS, max(LEASE_RETRY_SECONDS, wait))

    def _flush_staged(
        self, target: _Target, boundary: int, owner: str, extra: list[Block], outcome: EndpointOutcome
    ) -> bool | None:
        """Write what is staged for `boundary` (and the next flush time) together with the lines in `extra`.

        None: another invocation holds the lease. False: nothing was staged any more (an earlier trigger for
        the same time wrote it), so `extra` was not written and is still to be held. True: written.
        """
        endpoint_id = target.endpoint.id
        if not self.leases.acquire(endpoint_id, boundary, owner, LEASE_SECONDS):
            return None
        # Also take what is staged for the endpoint's later flush times: holders that opened times a second
        # apart (racing), or held in the settle time just before this one, so a burst still lands in one
        # object (and earlier, which is never worse). A time another flush holds is left to it.
        times = [boundary]
        try:
            listed = self.staging.staged_ids(endpoint_id)  # one listing for every flush time
            later = [t for t in sorted(listed) if t > boundary]
            times.extend(t for t in later if self.leases.acquire(endpoint_id, t, owner, LEASE_SECONDS))
            staged = {when: self.staging.bundles(endpoint_id, when, listed.get(when, [])) for when in times}
            if not staged[boundary]:
                # An earlier trigger for this time wrote it; what is staged for the next time waits for that.
                return False
            # Bundles marked written are in an object already (a flush whose clean-up failed): removed, not
            # written again.
            fresh = {when: [b for b in bundles if not b.written] for when, bundles in staged.items()}
            staged_lines = [line for bundles in fresh.values() for bundle in bundles for line in bundle.lines]
            self._write_all(target, [("\n".join(staged_lines), len(staged_lines)), *extra], outcome)
            for when, bundles in staged.items():
                if bundles:
                    self._remove_written(endpoint_id, when, bundles)
        finally:
            for when in times:
                self.leases.release(endpoint_id, when, owner)
        return True

    def _remove_written(self, endpoint_id: str, flush_at: int, bundles: list[StagedBundle]) -> None:
        """Remove staged bundles that are in an object now. If the removal fails (throttling beyond botocore's
        attempts), a marker naming them is written before the error goes on, so the trigger's retry removes
        them without writing their lines again. Only then, not on every flush: a marker is a PUT, which costs
        as much as staging itself. A sink that dies between the write and the removal (milliseconds) still
        writes the lines twice, as any write whose acknowledgement is lost does; readers drop duplicates by id."""
        try:
            self.staging.remove(endpoint_id, flush_at, [b.item_id for b in bundles])
        except Exception:
            fresh = [b.item_id for b in bundles if not b.written]
            if fresh:
                with contextlib.suppress(Exception):  # the error that matters is the removal's, raised below
                    self.staging.mark_written(endpoint_id, flush_at, fresh)
            raise

    def _hold(
        self,
        tenant_id: str,
        endpoint_id: str,
        interval: int,
        remainder: list[str],
        outcome: EndpointOutcome,
        now: float,
    ) -> None:
        boundary = next_flush_at(endpoint_id, interval, now + min(HOLD_SETTLE_SECONDS, interval / 2))
        staged: list[str] = []
        try:
            staged = self.staging.stage(tenant_id, endpoint_id, boundary, uuid.uuid4().hex, remainder)
            delay = trigger_delay(boundary - self.clock(), self.trigger_lead_seconds)
            self.triggers.send_flush(tenant_id, endpoint_id, boundary, delay)
        except Exception as exc:
            # Not held: the messages come back and are tried again. Take the staged lines back, so another
            # trigger for the same time does not write them too (if that fails as well: a rare duplicate).
            if staged:
                with contextlib.suppress(Exception):  # best effort, see above
                    self.staging.remove(endpoint_id, boundary, staged)
            raise _Failed(StoreError(f"could not hold back ({type(exc).__name__})")) from None
        outcome.held += len(remainder)

    def _write_all(self, target: _Target, blocks: list[Block], outcome: EndpointOutcome) -> None:
        """Write `blocks` as objects of `batchSize` lines (the last may hold fewer), each encoded as the
        endpoint's settings say: split further under maxObjectBytes and, with {eventType}, per type."""
        size = target.endpoint.storage.batchSize
        blocks = [block for block in blocks if block[1]]
        while blocks:
            chunk, blocks = cut(blocks, size)
            try:
                for obj in encode_objects(target.endpoint.storage, "\n".join(text for text, _ in chunk)):
                    outcome.keys.append(self._write(target, obj))
                    outcome.objects_written += 1
                    outcome.events_written += obj.count
            except StoreError as exc:
                raise _Failed(exc) from None

    def _write(self, target: _Target, obj: EncodedObject) -> str:
        """One object, under the first name with a free batch counter."""
        settings = target.endpoint.storage
        flushed_at = self.clock()
        counter_key = (target.endpoint.id, int(flushed_at))
        batch = self._counters.get(counter_key, 0) + 1
        while batch <= MAX_BATCH_COUNTER:
            key = object_key(settings, flushed_at, batch, obj.event_type)
            if target.store.put_new(
                key, obj.body, content_type=obj.content_type, content_encoding=obj.content_encoding
            ):
                self._remember_counter(counter_key, batch)
                return key
            batch += 1
        raise StoreError(f"more than {MAX_BATCH_COUNTER} objects in one second for one endpoint")

    def _remember_counter(self, counter_key: tuple[str, int], batch: int) -> None:
        if len(self._counters) > 1024:
            self._counters.clear()
        self._counters[counter_key] = batch

    def _fail(
        self,
        records: list[InboundRecord],
        exc: SpoolError,
        outcome: EndpointOutcome,
        report: DeliveryReport,
        changes: list[tuple[str, int]],
    ) -> None:
        for record in records:
            delay = self.retry_base_seconds * 2 ** max(0, record.receive_count - 1)
            changes.append((record.receipt_handle, min(self.retry_max_seconds, delay)))
            report.retry.add(record.message_id)
        outcome.failed += len(records)
        outcome.error = exc.message

    def _record(self, tenant_id: str, endpoint_id: str, outcome: EndpointOutcome) -> None:
        at = iso_timestamp(self.clock())
        try:
            if outcome.objects_written:
                self.repo.record_flush(
                    tenant_id,
                    endpoint_id,
                    key=outcome.keys[-1],
                    events=outcome.events_written,
                    objects=outcome.objects_written,
                    at=at,
                )
            if outcome.error:
                self.repo.record_failure(tenant_id, endpoint_id, message=outcome.error, at=at)
        except Exception as exc:  # status is informational; the objects are written and acknowledged
            _log.warning("could not record delivery status for %s: %s", endpoint_id, type(exc).__name__)
