"""The sink's executor: per endpoint, it asks the planner (domain/planner.py) what to do with an invocation's
records and does it (SPEC: What lands in storage, batching; docs/delivery.md has the whole path).

Lambda's SQS trigger hands the sink whatever its pollers gathered, split across concurrent invocations,
early and small. Writing what each invocation holds gives many small objects, so per endpoint and per
invocation the sink writes full objects of `batchSize` lines at once and holds back a remainder that is not
full: its lines go to a durable staging area (objects in Spool's staging bucket; the flush lease is a DynamoDB
item), keyed by its flush time (an interval after its oldest event was accepted), and a *flush trigger* message is
enqueued with a delay until that time. A due trigger takes the flush lease for (endpoint, flush time), reads
everything staged there (and at the later times it can lease), writes it with the invocation's own remainder
and removes it. The rules are the planner's; here are only the calls that carry them out:

1. `planner.triage` sorts the records; for each due flush time the sink takes the lease and reads what is
   staged (one listing per endpoint);
2. `planner.plan` returns the steps (writes, at most one hold) and each record's decision;
3. the sink performs the steps in order. A step that fails fails the records it would have settled and every
   later step's, which come back after an exponential back-off and reach the DLQ after the queue's
   maxReceiveCount; what was staged stays staged until a trigger (retried, or redriven) writes it;
4. it releases the leases it took, hands records back with their visibility and reports.

A crash after an object is written but before its staged bundles are removed can write those lines twice;
every line carries its id, so readers can drop the rare duplicate.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from spool.domain import limits, planner
from spool.domain.encoding import EncodedObject, by_event_type, encode_blocks, encode_objects, partitions
from spool.domain.endpoints import unseal
from spool.domain.errors import SpoolError, StoreError
from spool.domain.keys import object_key
from spool.domain.models import Endpoint
from spool.domain.naming import iso_timestamp
from spool.domain.planner import Block, FoundFlush, Hold, InboundRecord, Plan, Rules, Write
from spool.domain.ports import (
    Cipher,
    EndpointRepository,
    Leases,
    ObjectStore,
    StagedBundle,
    Staging,
    StoreFactory,
    Triggers,
    VisibilityPort,
)

Clock = Callable[[], float]
_log = logging.getLogger(__name__)
MAX_BATCH_COUNTER = 9_999
MAX_PARALLEL_ENDPOINTS = 8


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
    """What became of one invocation's records: `handed_back` are reported as batch item failures, each with
    the visibility (seconds) it was given; everything else was acknowledged."""

    handed_back: list[tuple[InboundRecord, int]] = field(default_factory=list)
    endpoints: dict[str, EndpointOutcome] = field(default_factory=dict)

    @property
    def retry(self) -> set[str]:
        return {record.message_id for record, _ in self.handed_back}


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
    ttl: float = limits.ENDPOINT_CACHE_SECONDS
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


@dataclass
class Sink:
    """Delivers one invocation's records, endpoint by endpoint (see the module docstring)."""

    directory: EndpointDirectory
    repo: EndpointRepository
    visibility: VisibilityPort
    staging: Staging
    triggers: Triggers
    leases: Leases
    clock: Clock = time.time
    retry_base_seconds: int = limits.RETRY_BASE_SECONDS
    retry_max_seconds: int = limits.RETRY_MAX_SECONDS
    # False writes every remainder at once as a partial object: what the trigger's batching alone gives
    # (make bench, B4's reference run). Never switched off in a deployment.
    hold_back: bool = True
    # The event source mapping's batching window: how long a trigger may wait in the poller after its delay.
    # The trigger is sent that much early, so the window is spent before the flush time, not after it.
    trigger_lead_seconds: float = 0.0
    # Time one endpoint may need at worst: a slow store's write with its retries, and a margin.
    reserve_seconds: float = limits.STORE_WRITE_MAX_SECONDS + 4.0
    _counters: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def rules(self) -> Rules:
        return Rules(self.retry_base_seconds, self.retry_max_seconds, self.hold_back, self.trigger_lead_seconds)

    def deliver(
        self, records: Iterable[InboundRecord], remaining_seconds: Callable[[], float] | None = None
    ) -> DeliveryReport:
        """Deliver one invocation's records. `remaining_seconds` is the invocation's time left: endpoints not
        started while enough is left for one slow write are handed back at once, untouched, so one slow store
        cannot time the whole invocation out and delay every other endpoint's events with it."""
        groups: dict[tuple[str, str], list[InboundRecord]] = defaultdict(list)
        for record in records:
            groups[(record.tenant_id, record.endpoint_id)].append(record)

        def one(key: tuple[str, str]) -> tuple[EndpointOutcome, list[tuple[InboundRecord, int]]]:
            if remaining_seconds is not None and remaining_seconds() < self.reserve_seconds:
                return EndpointOutcome(), [(r, 0) for r in groups[key]]
            return self._deliver_endpoint(key[0], key[1], groups[key])

        # Endpoints are delivered side by side, so a store that hangs until its client times out holds up only
        # its own endpoint's messages, not the other endpoints' in the same invocation.
        if len(groups) > 1:
            with ThreadPoolExecutor(max_workers=min(len(groups), MAX_PARALLEL_ENDPOINTS)) as pool:
                results = list(pool.map(one, groups))
        else:
            results = [one(key) for key in groups]
        report = DeliveryReport()
        for (_, endpoint_id), (outcome, handed_back) in zip(groups, results, strict=True):
            report.endpoints[endpoint_id] = outcome
            report.handed_back.extend(handed_back)
        if report.handed_back:
            self.visibility.change_visibility([(r.receipt_handle, seconds) for r, seconds in report.handed_back])
        return report

    def _deliver_endpoint(
        self, tenant_id: str, endpoint_id: str, records: list[InboundRecord]
    ) -> tuple[EndpointOutcome, list[tuple[InboundRecord, int]]]:
        outcome = EndpointOutcome()
        try:
            handed_back = self._deliver_plan(tenant_id, endpoint_id, records, outcome)
        except Exception as exc:  # e.g. KMS, DynamoDB or staging unavailable: this endpoint only, retried later
            handed_back = self._fail(tenant_id, endpoint_id, records, _as_spool_error(exc), outcome)
        self._record(tenant_id, endpoint_id, outcome)
        return outcome, handed_back

    def _deliver_plan(
        self, tenant_id: str, endpoint_id: str, records: list[InboundRecord], outcome: EndpointOutcome
    ) -> list[tuple[InboundRecord, int]]:
        """Triage, lease and read the due flush times, plan, perform; the records handed back."""
        try:
            target = self.directory.target(tenant_id, endpoint_id)
        except SpoolError:
            raise
        except Exception as exc:
            raise StoreError(f"could not load endpoint settings ({type(exc).__name__})") from None
        settings = target.endpoint.storage
        now = self.clock()
        rules = self.rules
        found = planner.triage(records, now, rules.trigger_lead_seconds)
        owner = uuid.uuid4().hex if found.due else ""  # the leases' holder; no lease without a due flush time
        leased: list[int] = []
        try:
            flushes = self._open_flushes(endpoint_id, list(found.due), owner, leased)
            decided = planner.plan(
                settings.batchSize,
                settings.flushIntervalSeconds,
                found,
                flushes,
                now,
                rules,
                by_type=by_event_type(settings),
            )
            failed = self._perform(target, decided, outcome)
        finally:
            for flush_at in leased:
                with contextlib.suppress(Exception):  # an unreleased lease expires after LEASE_SECONDS
                    self.leases.release(endpoint_id, flush_at, owner)
        handed_back = [(h.record, h.seconds) for h in decided.handed_back]
        outcome.failed += decided.failed
        outcome.error = decided.error
        if failed:
            records_failed, error = failed
            handed_back += self._fail(tenant_id, endpoint_id, records_failed, error, outcome)
        return handed_back

    def _open_flushes(self, endpoint_id: str, due: list[int], owner: str, leased: list[int]) -> list[FoundFlush]:
        """For each due flush time: take its lease and read what is staged there and, when that holds lines, at
        the later staged times whose leases it can take too (holders whose oldest events were a second or so
        apart, so a burst still lands in one object). One listing serves every time. A time an earlier flush
        of this invocation already took is found leased with nothing of its own."""
        found: list[FoundFlush] = []
        listed: dict[int, list[str]] | None = None
        for flush_at in due:
            if flush_at in leased:
                found.append(FoundFlush(flush_at, leased=True, staged={}))
                continue
            if not self.leases.acquire(endpoint_id, flush_at, owner, planner.LEASE_SECONDS):
                found.append(
                    FoundFlush(flush_at, leased=False, staged={}, lease_until=self._lease_until(endpoint_id, flush_at))
                )
                continue
            leased.append(flush_at)
            if listed is None:
                listed = self.staging.staged_ids(endpoint_id)
            # Read even when the listing shows nothing: lines an older sink staged elsewhere are found there.
            own = self.staging.bundles(endpoint_id, flush_at, listed.get(flush_at, []))
            if not own:
                found.append(FoundFlush(flush_at, leased=True, staged={}))
                continue
            staged = {flush_at: own}
            for later in sorted(t for t in listed if t > flush_at and t not in leased):
                if self.leases.acquire(endpoint_id, later, owner, planner.LEASE_SECONDS):
                    leased.append(later)
                    staged[later] = self.staging.bundles(endpoint_id, later, listed[later])
            found.append(FoundFlush(flush_at, leased=True, staged=staged))
        return found

    def _lease_until(self, endpoint_id: str, flush_at: int) -> float | None:
        try:
            return self.leases.lease_until(endpoint_id, flush_at)
        except Exception:  # the trigger then comes back after the shortest wait
            return None

    def _perform(
        self, target: _Target, decided: Plan, outcome: EndpointOutcome
    ) -> tuple[list[InboundRecord], SpoolError] | None:
        """Perform the plan's steps in order. On the first that fails: the records it and every later step
        would have settled, and the error; None when all succeeded."""
        for i, step in enumerate(decided.steps):
            later = [r for s in decided.steps[i + 1 :] for r in _settled_by(s)]
            try:
                if isinstance(step, Write):
                    self._write_all(target, step.blocks, outcome)
                else:
                    self._hold(target.endpoint, step, outcome)
            except Exception as exc:
                return [*_settled_by(step), *later], _as_spool_error(exc)
            if isinstance(step, Write) and step.clears:
                try:
                    self._remove_written(target.endpoint.id, step.clears)
                except Exception as exc:
                    # The lines are in an object, so the bundles written with them are done; the triggers come
                    # back and remove what is still staged (marked written, so not written again).
                    error = StoreError(f"could not remove staged lines ({type(exc).__name__})")
                    return [*step.clearing, *later], error
        return None

    def _remove_written(self, endpoint_id: str, clears: dict[int, list[StagedBundle]]) -> None:
        """Remove staged bundles that are in an object now. If a removal fails (throttling beyond botocore's
        attempts), a marker naming them is written before the error goes on, so the trigger's retry removes
        them without writing their lines again. Only then, not on every flush: a marker is a PUT, which costs
        as much as staging itself. A sink that dies between the write and the removal (milliseconds) still
        writes the lines twice, as any write whose acknowledgement is lost does; readers drop duplicates by id."""
        for flush_at, bundles in clears.items():
            if not bundles:
                continue
            try:
                self.staging.remove(endpoint_id, flush_at, [b.item_id for b in bundles])
            except Exception:
                fresh = [b.item_id for b in bundles if not b.written]
                if fresh:
                    with contextlib.suppress(Exception):  # the error that matters is the removal's, raised below
                        self.staging.mark_written(endpoint_id, flush_at, fresh)
                raise

    def _hold(self, endpoint: Endpoint, step: Hold, outcome: EndpointOutcome) -> None:
        staged: list[str] = []
        try:
            staged = self.staging.stage(endpoint.tenantId, endpoint.id, step.flush_at, uuid.uuid4().hex, step.lines)
            delay = planner.trigger_delay(step.flush_at - self.clock(), self.trigger_lead_seconds)
            self.triggers.send_flush(endpoint.tenantId, endpoint.id, step.flush_at, delay)
        except Exception as exc:
            # Not held: the messages come back and are tried again. Take the staged lines back, so another
            # trigger for the same time does not write them too (if that fails as well: a rare duplicate).
            if staged:
                with contextlib.suppress(Exception):  # best effort, see above
                    self.staging.remove(endpoint.id, step.flush_at, staged)
            raise StoreError(f"could not hold back ({type(exc).__name__})") from None
        outcome.held += len(step.lines)

    def _write_all(self, target: _Target, blocks: list[Block], outcome: EndpointOutcome) -> None:
        """Write `blocks` as objects of `batchSize` lines (the last may hold fewer), each encoded as the
        endpoint's settings say: split further under maxObjectBytes and, with {eventType}, per type."""
        settings = target.endpoint.storage
        blocks = [block for block in blocks if block[1]]
        if by_event_type(settings):
            lines = [text_line for text, _ in blocks for text_line in text.split("\n")]
            for event_type, group in partitions(lines).items():
                for start in range(0, len(group), settings.batchSize):
                    text = "\n".join(group[start : start + settings.batchSize])
                    self._write_objects(target, encode_objects(settings, text, event_type), outcome)
            return
        while blocks:
            chunk, blocks = planner.cut(blocks, settings.batchSize)
            self._write_objects(target, encode_blocks(settings, chunk), outcome)

    def _write_objects(self, target: _Target, objects: list[EncodedObject], outcome: EndpointOutcome) -> None:
        for obj in objects:
            outcome.keys.append(self._write(target, obj))
            outcome.objects_written += 1
            outcome.events_written += obj.count

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
        tenant_id: str,
        endpoint_id: str,
        records: list[InboundRecord],
        error: SpoolError,
        outcome: EndpointOutcome,
    ) -> list[tuple[InboundRecord, int]]:
        """Hand `records` back after their back-off, forget the endpoint's cached settings (so a fix is seen at
        once) and record the failure."""
        self.directory.forget(tenant_id, endpoint_id)
        outcome.failed += len(records)
        outcome.error = error.message
        rules = self.rules
        return [(r, planner.back_off(r.receive_count, rules)) for r in records]

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


def _settled_by(step: planner.Step) -> list[InboundRecord]:
    """The records a step settles, acknowledged when it succeeds (a flush's triggers after its clean-up)."""
    return [*step.settles, *step.clearing] if isinstance(step, Write) else step.settles


def _as_spool_error(exc: Exception) -> SpoolError:
    """The error to report for `exc`: its own if it is Spool's (its message names no secret), otherwise only
    its type."""
    return exc if isinstance(exc, SpoolError) else StoreError(f"delivery interrupted ({type(exc).__name__})")
