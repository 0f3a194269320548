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
import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from spool.domain import keys, limits, manifests, planner
from spool.domain.cache import TtlCache
from spool.domain.encoding import EncodedObject, encode
from spool.domain.endpoints import unseal
from spool.domain.errors import DeadlineExceeded, SpoolError, StoreError
from spool.domain.health import (
    BUSY_RETRY_SECONDS,
    PROBE_LEASE_SECONDS,
    WRITE_WAIT_SECONDS,
    Admission,
    Health,
    HealthBoard,
    admission,
    after_failure,
    wait_seconds,
)
from spool.domain.keys import object_key
from spool.domain.models import Endpoint
from spool.domain.naming import iso_timestamp
from spool.domain.planner import FoundFlush, Hold, InboundRecord, ObjectWrite, Plan, Rules, Write
from spool.domain.ports import (
    Cipher,
    EndpointRepository,
    Leases,
    Ledger,
    LedgerEntry,
    ObjectStore,
    StagedBundle,
    Staging,
    StatusBook,
    StoreFactory,
    Triggers,
    VisibilityPort,
    entry_id,
)

Clock = Callable[[], float]
Remaining = Callable[[], float]
_log = logging.getLogger(__name__)
MAX_BATCH_COUNTER = 9_999
MAX_PARALLEL_ENDPOINTS = 8
# Time kept beyond a step's store calls for the calls around them (staging, leases, the status item).
STEP_MARGIN_SECONDS = 3.0
# How long a flush trigger waits for a flush of the same time under way to give the lease back (`_take_lease`),
# and how often it reads the lease meanwhile. Bounded by the invocation's time left, less the writes' reserve.
LEASE_PATIENCE_SECONDS = 2.0
LEASE_POLL_SECONDS = 0.2
# Slack for clocks and the ledger's own calls when it is asked what an earlier attempt wrote.
LEDGER_MARGIN_SECONDS = 2.0


@dataclass(frozen=True)
class WriteTurn:
    """One delivery's turns at its endpoint's store, on this process's HealthBoard: `begin` before a step's writes
    (False: not now), and each store call of the step inside `store_call`, so only the store's own time can make
    the delivery slow (domain/health.py)."""

    board: HealthBoard
    key: str
    ticket: int

    def begin(self) -> bool:
        return self.board.write(self.key, self.ticket, wait=WRITE_WAIT_SECONDS)

    @contextlib.contextmanager
    def store_call(self) -> Iterator[None]:
        self.board.calling(self.key, self.ticket)
        try:
            yield
        finally:
            self.board.returned(self.key, self.ticket)


@dataclass
class EndpointOutcome:
    events_written: int = 0
    objects_written: int = 0
    held: int = 0
    failed: int = 0
    keys: list[str] = field(default_factory=list)
    error: str | None = None
    # The endpoint's own store failed (not a fault of Spool's services), and the deadline it kept a call open
    # to (seconds), if that was how.
    store_failed: bool = False
    deadline: float | None = None
    # Records handed back untouched: the endpoint is parked (or its probe undecided), busy here, or the
    # invocation had no time left for them.
    parked: int = 0
    busy: int = 0
    deferred: int = 0
    # The flush times objects were named for (an endpoint with manifests schedules its windows' seals).
    flushed_at: set[float] = field(default_factory=set)
    manifests: list[str] = field(default_factory=list)  # manifest keys written


class _LedgerFault(StoreError):
    """Spool's own ledger could not record an object: a fault of Spool's, not the endpoint's store."""


# `_perform`'s answer when a write may not start: another delivery of the endpoint is writing to its suspect store.
_BUSY = StoreError("busy")


class _OutOfTime(Exception):
    """The invocation has no time left for the next store call: what is not started is handed back."""


@dataclass
class DeliveryReport:
    """What became of one invocation's records: `handed_back` are reported as batch item failures, each with
    the visibility (seconds) it was given; everything else was acknowledged."""

    handed_back: list[tuple[InboundRecord, int]] = field(default_factory=list)
    endpoints: dict[str, EndpointOutcome] = field(default_factory=dict)

    @property
    def retry(self) -> set[str]:
        return {record.message_id for record, _ in self.handed_back}


class _TenantStoreError(Exception):
    """The endpoint's own store (its settings, credentials or answers) failed, as `error` says: counts against
    the endpoint's health, unlike a fault of Spool's own services."""

    def __init__(self, error: SpoolError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class _Target:
    endpoint: Endpoint
    store: ObjectStore


@dataclass
class EndpointDirectory:
    """Endpoint settings, decrypted credentials and store clients, cached for `ttl` seconds (at most
    ENDPOINT_CACHE_ENTRIES endpoints).

    Without it every invocation would cost a DynamoDB read, a KMS Decrypt and a new S3 client per endpoint.
    A changed endpoint (PATCH) is seen within `ttl`.
    """

    repo: EndpointRepository
    cipher: Cipher
    stores: StoreFactory
    ttl: float = limits.ENDPOINT_CACHE_SECONDS
    clock: Clock = time.monotonic
    _cache: TtlCache[tuple[str, str], _Target] = field(init=False)

    def __post_init__(self) -> None:
        self._cache = TtlCache(limits.ENDPOINT_CACHE_ENTRIES, self.ttl, lambda: self.clock())

    def target(self, tenant_id: str, endpoint_id: str) -> _Target:
        key = (tenant_id, endpoint_id)
        found = self._cache.find(key)
        if found is not None and found[1]:
            return found[0]
        endpoint = self.repo.get_endpoint(tenant_id, endpoint_id)
        if endpoint is None:
            raise StoreError(f"endpoint {endpoint_id} no longer exists")
        if found is not None and found[0].endpoint.updatedAt == endpoint.updatedAt:
            # Unchanged: keep its store client and credentials (no KMS Decrypt), trusted for another `ttl`.
            self._cache.put(key, found[0])
            return found[0]
        credentials = unseal(self.cipher, endpoint)
        try:
            store = self.stores(endpoint.storage, credentials)
        except StoreError as exc:
            raise _TenantStoreError(exc) from None
        target = _Target(endpoint, store)
        self._cache.put(key, target)
        return target

    def forget(self, tenant_id: str, endpoint_id: str) -> None:
        self._cache.forget((tenant_id, endpoint_id))


@dataclass
class Sink:
    """Delivers one invocation's records, endpoint by endpoint (see the module docstring)."""

    directory: EndpointDirectory
    status: StatusBook
    visibility: VisibilityPort
    staging: Staging
    triggers: Triggers
    leases: Leases
    ledger: Ledger
    clock: Clock = time.time
    retry_base_seconds: int = limits.RETRY_BASE_SECONDS
    retry_max_seconds: int = limits.RETRY_MAX_SECONDS
    # False writes every remainder at once as a partial object: what the trigger's batching alone gives
    # (make bench, B4's reference run). Never switched off in a deployment.
    hold_back: bool = True
    # The event source mapping's batching window: how long a trigger may wait in the poller after its delay.
    # The trigger is sent that much early, so the window is spent before the flush time, not after it.
    trigger_lead_seconds: float = 0.0
    # How long a flush trigger that finds its time's lease taken moments ago waits for that flush to give it
    # back (`_take_lease`); 0 hands the trigger back at once. The deployment waits LEASE_PATIENCE_SECONDS
    # (handlers/wiring.py); `sleep` is how it waits between reads of the lease.
    lease_patience_seconds: float = 0.0
    sleep: Callable[[float], None] = time.sleep
    # The total deadline of one store call that sends `n` bytes (the store clients enforce it).
    call_seconds: Callable[[int], float] = limits.store_call_seconds
    # This process's view of its endpoints' health and deliveries in flight (domain/health.py).
    board: HealthBoard = field(default_factory=HealthBoard)
    # (endpoint, second) -> the last batch counter used; seals scheduled here, by (endpoint, window, late)
    _counters: TtlCache[tuple[str, int], int] = field(
        default_factory=lambda: TtlCache(limits.COUNTER_CACHE_ENTRIES, limits.SINK_MEMORY_SECONDS)
    )
    _seals_sent: TtlCache[tuple[str, int, int | bool], bool] = field(
        default_factory=lambda: TtlCache(limits.SEALS_SENT_ENTRIES, limits.SINK_MEMORY_SECONDS)
    )

    @property
    def rules(self) -> Rules:
        return Rules(self.retry_base_seconds, self.retry_max_seconds, self.hold_back, self.trigger_lead_seconds)

    @property
    def reserve_seconds(self) -> float:
        """The least time left in which an endpoint is started: one small store call and the calls around it."""
        return self.call_seconds(0) + STEP_MARGIN_SECONDS

    def deliver(self, records: Iterable[InboundRecord], remaining_seconds: Remaining | None = None) -> DeliveryReport:
        """Deliver one invocation's records. `remaining_seconds` is the invocation's time left: no store call is
        started without time for its whole deadline, and what is not started is handed back at once, untouched,
        so one slow store cannot time the whole invocation out and fail other endpoints' records with it."""
        groups: dict[tuple[str, str], list[InboundRecord]] = defaultdict(list)
        for record in records:
            groups[(record.tenant_id, record.endpoint_id)].append(record)

        def one(key: tuple[str, str]) -> tuple[EndpointOutcome, list[tuple[InboundRecord, int]]]:
            if remaining_seconds is not None and remaining_seconds() < self.reserve_seconds:
                return EndpointOutcome(deferred=len(groups[key])), [(r, 0) for r in groups[key]]
            return self._deliver_endpoint(key[0], key[1], groups[key], remaining_seconds)

        # Endpoints are delivered side by side, so a store that is slow until its deadline holds up only its own
        # endpoint's messages, not the other endpoints' in the same invocation.
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
        self, tenant_id: str, endpoint_id: str, records: list[InboundRecord], remaining: Remaining | None
    ) -> tuple[EndpointOutcome, list[tuple[InboundRecord, int]]]:
        """One endpoint's records, as its health admits them (domain/health.py): delivered, probed, or handed
        back untouched while it is parked or busy here."""
        outcome = EndpointOutcome()
        key = f"{tenant_id}#{endpoint_id}"
        health = self._health(tenant_id, endpoint_id, key)
        now = self.clock()
        decided = admission(health, now)
        probing = decided is Admission.PROBE and self._take_probe(tenant_id, endpoint_id, now)
        if decided is Admission.PARKED or (decided is not Admission.DELIVER and not probing):
            outcome.parked = len(records)
            wait = wait_seconds(health, now) if decided is Admission.PARKED else BUSY_RETRY_SECONDS
            return outcome, [(r, wait) for r in records]
        ticket = self.board.enter(key)
        if ticket is None:
            outcome.busy = len(records)
            return outcome, [(r, BUSY_RETRY_SECONDS) for r in records]
        try:
            turn = WriteTurn(self.board, key, ticket)
            handed_back = self._deliver_plan(tenant_id, endpoint_id, records, outcome, probing, remaining, turn)
        except _TenantStoreError as exc:  # its settings or credentials cannot make a store: its own failure
            outcome.store_failed = True
            handed_back = self._fail(tenant_id, endpoint_id, records, exc.error, outcome)
        except Exception as exc:  # e.g. KMS, DynamoDB or staging unavailable: this endpoint only, retried later
            handed_back = self._fail(tenant_id, endpoint_id, records, _as_spool_error(exc), outcome)
        finally:
            self.board.leave(key, ticket, wrote=outcome.objects_written > 0, failed=outcome.store_failed)
        if probing and not outcome.objects_written and not outcome.store_failed:
            with contextlib.suppress(Exception):  # undecided: the probe's lease runs out after PROBE_LEASE_SECONDS
                self.status.release_probe(tenant_id, endpoint_id)
        self._record(tenant_id, endpoint_id, key, outcome, health)
        return outcome, handed_back

    def _health(self, tenant_id: str, endpoint_id: str, key: str) -> Health:
        """The endpoint's health: this process's recent view, or the status item's. If that cannot be read, the
        endpoint counts as healthy (Spool's fault is not the endpoint's)."""
        cached = self.board.cached(key)
        if cached is not None:
            return cached
        try:
            health = self.status.health(tenant_id, endpoint_id)
        except Exception as exc:
            _log.warning("could not read the health of %s: %s", endpoint_id, type(exc).__name__)
            return Health()
        self.board.remember(key, health)
        return health

    def _take_probe(self, tenant_id: str, endpoint_id: str, now: float) -> bool:
        try:
            return self.status.take_probe(tenant_id, endpoint_id, now=now, until=now + PROBE_LEASE_SECONDS)
        except Exception as exc:
            _log.warning("could not take the probe of %s: %s", endpoint_id, type(exc).__name__)
            return False

    def _deliver_plan(
        self,
        tenant_id: str,
        endpoint_id: str,
        records: list[InboundRecord],
        outcome: EndpointOutcome,
        probing: bool,
        remaining: Remaining | None,
        turn: WriteTurn,
    ) -> list[tuple[InboundRecord, int]]:
        """Triage, lease and read the due flush times, plan, perform; the records handed back. A probe writes
        everything at once: its first write decides whether the endpoint is healthy again. `turn` asks this
        process's health board before each step's objects or a window's manifests, and times their store calls
        (domain/health.py)."""
        try:
            target = self.directory.target(tenant_id, endpoint_id)
        except (SpoolError, _TenantStoreError):
            raise
        except Exception as exc:
            raise StoreError(f"could not load endpoint settings ({type(exc).__name__})") from None
        settings = target.endpoint.storage
        now = self.clock()
        rules = self.rules
        if probing:
            rules = replace(rules, hold_back=False)
        found = planner.triage(records, now, rules.trigger_lead_seconds)
        # The leases' holder; no lease without a due flush time or seal.
        owner = uuid.uuid4().hex if found.due or found.seals else ""
        leased: list[int] = []
        leased_seals: list[int] = []
        unsealed: list[tuple[InboundRecord, int]] = []
        try:
            patience = 0.0 if probing else self.lease_patience_seconds
            if remaining is not None:  # waiting for a lease never eats the time the writes need
                patience = min(patience, max(0.0, remaining() - 2 * self.reserve_seconds))
            flushes = self._open_flushes(endpoint_id, list(found.due), owner, leased, now + patience)
            written = self._written_before(target, found, flushes, rules)
            if written is None:  # another sink is putting some of these lines right now
                outcome.busy = len(records)
                return [(r, BUSY_RETRY_SECONDS) for r in records]
            decided = planner.plan(settings, found, flushes, now, rules, written)
            stopped = self._perform(target, decided, outcome, remaining, turn)
            unsealed = self._seal(target, found.seals, owner, leased_seals, outcome, remaining, turn)
            if settings.manifests:
                self._schedule_seals(target, outcome)
        finally:
            for flush_at in [*leased, *(seal_lease(w) for w in leased_seals)]:
                with contextlib.suppress(Exception):  # an unreleased lease expires after LEASE_SECONDS
                    self.leases.release(endpoint_id, flush_at, owner)
        handed_back = [(h.record, h.seconds) for h in decided.handed_back] + unsealed
        outcome.failed += decided.failed
        outcome.error = decided.error
        if stopped is not None:
            records_stopped, error = stopped
            if error is _BUSY:  # another delivery is writing to this suspect store: back soon, not a failure
                outcome.busy += len(records_stopped)
                handed_back += [(r, BUSY_RETRY_SECONDS) for r in records_stopped]
            elif error is None:  # not started for want of time: back at once, not a failure
                outcome.deferred += len(records_stopped)
                handed_back += [(r, 0) for r in records_stopped]
            else:
                handed_back += self._fail(tenant_id, endpoint_id, records_stopped, error, outcome, decided)
        return handed_back

    def _seal(
        self,
        target: _Target,
        seals: dict[int, list[InboundRecord]],
        owner: str,
        leased: list[int],
        outcome: EndpointOutcome,
        remaining: Remaining | None,
        turn: WriteTurn,
    ) -> list[tuple[InboundRecord, int]]:
        """Seal the folders of each due window (domain/manifests.py): under the window's seal lease, list what the
        ledger holds of it and write the manifests. The seal triggers to hand back (the others are done)."""
        back: list[tuple[InboundRecord, int]] = []
        endpoint = target.endpoint
        for window_start, records in seals.items():
            settings = endpoint.storage
            window = keys.time_window(settings.keyTemplate, window_start) if settings.manifests else None
            if window is None:  # manifests were switched off, or the template changed: nothing to seal
                continue
            if not turn.begin():
                back += [(r, BUSY_RETRY_SECONDS) for r in records]
                continue
            if not self.leases.acquire(endpoint.id, seal_lease(window_start), owner, planner.LEASE_SECONDS):
                back += [(r, planner.LEASE_RETRY_SECONDS) for r in records]
                continue
            leased.append(window_start)
            try:
                outcome.manifests += self._write_manifests(target, window, remaining, turn)
            except Exception as exc:
                _log.warning("could not seal %s: %s", endpoint.id, _as_spool_error(exc).message)
                rules = self.rules
                back += [(r, planner.back_off(r.receive_count, rules)) for r in records]
        return back

    def _write_manifests(
        self, target: _Target, window: tuple[float, float], remaining: Remaining | None, turn: WriteTurn
    ) -> list[str]:
        """The window's manifests, written (domain/manifests.py); their keys."""
        endpoint = target.endpoint
        written: list[str] = []
        entries = []
        for entry in self.ledger.since(endpoint.id, window[0] - LEDGER_MARGIN_SECONDS):
            if not entry.written and window[0] <= entry.flushed_at < window[1]:
                with turn.store_call():
                    held = target.store.holds(entry.key, entry.sha256)
                if not held:
                    continue  # never written (its put failed and the sink died before it said so)
                entry = replace(entry, written=True)
            entries.append(entry)
        now = self.clock()
        for manifest in manifests.seal(endpoint.id, window, entries, now):
            if remaining is not None and remaining() < self.call_seconds(len(manifest.body)) + STEP_MARGIN_SECONDS:
                raise StoreError("no time left to write the manifest")
            fresh = [e.entry_id for e in manifest.entries if e.epoch != manifest.epoch]
            if fresh:  # marked first: a sealer that runs again finishes this epoch
                self.ledger.listed(endpoint.id, fresh, manifest.epoch, manifest.sealed_at)
            sha256 = hashlib.sha256(manifest.body).hexdigest()
            with turn.store_call():
                stored = target.store.put_new(
                    manifest.key,
                    manifest.body,
                    content_type=manifests.MANIFEST_CONTENT_TYPE,
                    content_encoding=None,
                    sha256=sha256,
                )
                ours = stored or target.store.holds(manifest.key, sha256)
            if not ours:
                raise StoreError(f"{manifest.key} exists with other content; it is never overwritten")
            self.ledger.record(
                endpoint.id,
                LedgerEntry(
                    entry_id=entry_id(self.clock(), uuid.uuid4().hex[:8]),
                    key=manifest.key,
                    flushed_at=window[0],
                    deadline=now,
                    bytes=len(manifest.body),
                    events=0,
                    sha256=sha256,
                    first_created_at="",
                    last_created_at="",
                    first_id="",
                    last_id="",
                    written=True,
                    epoch=manifest.epoch,
                    sealed_at=manifest.sealed_at,
                ),
            )
            written.append(manifest.key)
        return written

    def _schedule_seals(self, target: _Target, outcome: EndpointOutcome) -> None:
        """Send a seal trigger for each window an object was just named in, once per window and process; at once
        for a window whose seal time has passed (a late object: the next epoch)."""
        endpoint = target.endpoint
        settings = endpoint.storage
        now = self.clock()
        for flushed_at in outcome.flushed_at:
            window = keys.time_window(settings.keyTemplate, flushed_at)
            if window is None:
                continue
            due = manifests.seal_at(window[1], settings.flushIntervalSeconds, self.trigger_lead_seconds)
            late = due <= now
            cache_key = (endpoint.id, int(window[0]), late and int(now))
            if cache_key in self._seals_sent:
                continue
            try:
                self.triggers.send_seal(
                    endpoint.tenantId, endpoint.id, int(window[0]), max(due, int(now)), planner.trigger_delay(due - now)
                )
            except Exception as exc:  # the window's next write schedules it again
                _log.warning("could not schedule the seal of %s: %s", endpoint.id, type(exc).__name__)
                continue
            self._seals_sent.put(cache_key, True)

    def _written_before(
        self, target: _Target, found: planner.Triage, flushes: list[FoundFlush], rules: Rules
    ) -> dict[str, set[int]] | None:
        """The lines of this delivery that an earlier attempt already put into objects, by source, from the
        ledger: asked only for retried bundles and for staged lines (a first try cannot have been written
        before). An entry not confirmed (a sink that died right after its put, or a put under way) is looked up in
        the store: there, it is written; not there before its deadline, None: come back shortly."""
        sources: dict[str, float] = {}  # source -> since when an earlier attempt could have written it
        for record in found.bundles:
            if record.receive_count > 1:
                sources[record.message_id] = record.first_attempt or record.accepted_at
        for flush in flushes:
            for at, bundles in flush.staged.items():
                for bundle in bundles:
                    sources[planner.staged_source(at, bundle.item_id)] = at - rules.trigger_lead_seconds
        if not sources:
            return {}
        endpoint_id = target.endpoint.id
        written: dict[str, set[int]] = {}
        now = self.clock()
        for entry in self.ledger.since(endpoint_id, min(sources.values()) - LEDGER_MARGIN_SECONDS):
            mine = [(s, start, count) for s, start, count in entry.segments if s in sources]
            if not mine:
                continue
            if not entry.written and not target.store.holds(entry.key, entry.sha256):
                if now <= entry.deadline + LEDGER_MARGIN_SECONDS:
                    return None  # its put may still be under way
                with contextlib.suppress(Exception):  # never written (or the store will not say)
                    self.ledger.drop(endpoint_id, entry.entry_id)
                continue
            for source, start, count in mine:
                written.setdefault(source, set()).update(range(start, start + count))
        return written

    def _open_flushes(
        self, endpoint_id: str, due: list[int], owner: str, leased: list[int], patient_until: float
    ) -> list[FoundFlush]:
        """For each due flush time: take its lease (waiting until `patient_until` for a flush of that time under
        way, `_take_lease`) and read what is staged there and, when that holds lines, at the later staged times
        whose leases it can take too (holders whose oldest events were a second or so apart, so a burst still
        lands in one object). One listing serves every time, made once the leases are taken. A time an earlier
        flush of this invocation already took is found leased with nothing of its own."""
        found: list[FoundFlush] = []
        listed: dict[int, list[str]] | None = None
        for flush_at in due:
            if flush_at in leased:
                found.append(FoundFlush(flush_at, leased=True, staged={}))
                continue
            taken, lease_until, waited = self._take_lease(endpoint_id, flush_at, owner, patient_until)
            if not taken:
                found.append(FoundFlush(flush_at, leased=False, staged={}, lease_until=lease_until))
                continue
            leased.append(flush_at)
            if listed is None or waited:  # a listing made before the flush it waited for misses its stragglers
                listed = self.staging.staged_ids(endpoint_id)
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

    def _take_lease(
        self, endpoint_id: str, flush_at: int, owner: str, patient_until: float
    ) -> tuple[bool, float | None, bool]:
        """Take the flush lease of `flush_at`: whether it was taken; if not, when the holder's lease ends (None:
        unknown, or given back just now); and whether it waited. A lease taken moments ago (planner.young_lease) is
        a flush of the same time under way: it writes what it listed, and lines a hold staged there just after it
        listed are this trigger's to write. Handed back, the trigger would be back a second and a batching window
        later (more if it met the lease again), so it waits for that flush here, reading the lease every
        LEASE_POLL_SECONDS until `patient_until`, and takes the lease once it is given back. An older lease (a sink
        that died holding it, or a flush stuck on a slow store) is not waited for: the trigger is handed back
        (planner.lease_wait). It waits with reads and tries the lease again only when one shows it free: DynamoDB
        bills a refused conditional write as a write."""
        if self.leases.acquire(endpoint_id, flush_at, owner, planner.LEASE_SECONDS):
            return True, None, False
        waited = False
        while True:
            lease_until = self._lease_until(endpoint_id, flush_at)
            now = self.clock()
            held = lease_until is not None and lease_until > now
            if not held and self.leases.acquire(endpoint_id, flush_at, owner, planner.LEASE_SECONDS):
                return True, None, waited
            if now + LEASE_POLL_SECONDS > patient_until or (held and not planner.young_lease(lease_until, now)):
                return False, lease_until, waited
            self.sleep(LEASE_POLL_SECONDS)
            waited = True

    def _lease_until(self, endpoint_id: str, flush_at: int) -> float | None:
        try:
            return self.leases.lease_until(endpoint_id, flush_at)
        except Exception:  # read as gone: the trigger comes back after a second (planner.lease_wait)
            return None

    def _perform(
        self,
        target: _Target,
        decided: Plan,
        outcome: EndpointOutcome,
        remaining: Remaining | None,
        turn: WriteTurn,
    ) -> tuple[list[InboundRecord], SpoolError | None] | None:
        """Perform the plan's steps in order. A step is started only with time left for its first store call, and
        a write only when `turn.begin()`; the first that fails, or that cannot start, stops the rest. Returns the
        records it and every later step would have settled, with the error (None: not started for want of time;
        `_BUSY`: another delivery is writing to this suspect store), or None when all ran."""
        for i, step in enumerate(decided.steps):
            later = [r for s in decided.steps[i + 1 :] for r in _settled_by(s)]
            if remaining is not None and remaining() < self._step_seconds(step):
                return [*_settled_by(step), *later], None
            if isinstance(step, Write) and step.objects and not turn.begin():
                return [*_settled_by(step), *later], _BUSY
            try:
                if isinstance(step, Write):
                    self._write_objects(target, step, outcome, remaining, turn)
                else:
                    self._hold(target.endpoint, step, outcome)
            except _OutOfTime:
                return [*_settled_by(step), *later], None
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

    def _step_seconds(self, step: planner.Step) -> float:
        """The least time left in which a step is started: its first object's whole deadline (each later object
        is checked again before it is written) and the margin for the calls around it; a hold makes no store
        call."""
        if not isinstance(step, Write) or not step.objects:
            return STEP_MARGIN_SECONDS
        first = step.objects[0]
        size = len(first.encoded.body) if first.encoded else len(first.text)
        return self.call_seconds(size) + STEP_MARGIN_SECONDS

    def _remove_written(self, endpoint_id: str, clears: dict[int, list[StagedBundle]]) -> None:
        """Remove staged bundles that are in an object now. If a removal fails (throttling beyond botocore's
        attempts), a marker naming them is written before the error goes on, so the trigger's retry removes
        them without writing their lines again. Only then, not on every flush: a marker is a PUT, which costs
        as much as staging itself."""
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
            delay = planner.trigger_delay(step.trigger_at - self.clock())
            self.triggers.send_flush(endpoint.tenantId, endpoint.id, step.flush_at, delay)
        except Exception as exc:
            # Not held: the messages come back and are tried again. Take the staged lines back, so another
            # trigger for the same time does not write them too (if that fails as well: a rare duplicate).
            if staged:
                with contextlib.suppress(Exception):  # best effort, see above
                    self.staging.remove(endpoint.id, step.flush_at, staged)
            raise StoreError(f"could not hold back ({type(exc).__name__})") from None
        outcome.held += len(step.lines)

    def _write_objects(
        self, target: _Target, write: Write, outcome: EndpointOutcome, remaining: Remaining | None, turn: WriteTurn
    ) -> None:
        """Write the plan's objects, in order, each as the plan cut it, named for the write's flush time."""
        settings = target.endpoint.storage
        for planned in write.objects:
            obj = planned.encoded or encode(settings, planned.text, planned.count)
            if remaining is not None and remaining() < self.call_seconds(len(obj.body)) + STEP_MARGIN_SECONDS:
                raise _OutOfTime
            try:
                key = self._write(target, obj, write.flushed_at, planned, turn)
            except Exception as exc:
                outcome.store_failed = outcome.store_failed or not isinstance(exc, _LedgerFault)
                if isinstance(exc, DeadlineExceeded) and exc.by_store:
                    outcome.deadline = exc.seconds or self.call_seconds(len(obj.body))
                raise
            outcome.keys.append(key)
            outcome.objects_written += 1
            outcome.events_written += obj.count
            outcome.flushed_at.add(write.flushed_at)

    def _write(
        self, target: _Target, obj: EncodedObject, flushed_at: float, planned: ObjectWrite, turn: WriteTurn
    ) -> str:
        """One object, named for `flushed_at`, under the first name with a free batch counter. The ledger records
        it before the put (with where its lines come from), confirms it after, and drops it if the put failed:
        so a retry of these lines finds them written (docs/delivery.md, written once)."""
        settings = target.endpoint.storage
        endpoint_id = target.endpoint.id
        sha256 = hashlib.sha256(obj.body).hexdigest()
        first, last = planner.Run(planned.text, planned.count).bounds()
        counter_key = (endpoint_id, int(flushed_at))
        batch = (self._counters.get(counter_key) or 0) + 1
        while batch <= MAX_BATCH_COUNTER:
            key = object_key(settings, flushed_at, batch, planned.partition)
            now = self.clock()
            entry = LedgerEntry(
                entry_id=entry_id(now, uuid.uuid4().hex[:8]),
                key=key,
                flushed_at=flushed_at,
                deadline=now + self.call_seconds(len(obj.body)),
                bytes=len(obj.body),
                events=obj.count,
                sha256=sha256,
                first_created_at=first[0],
                last_created_at=last[0],
                first_id=first[1],
                last_id=last[1],
                segments=planned.segments,
            )
            try:
                self.ledger.record(endpoint_id, entry)
            except Exception as exc:
                raise _LedgerFault(f"could not record the object in the ledger ({type(exc).__name__})") from None
            try:
                with turn.store_call():
                    stored = target.store.put_new(
                        key,
                        obj.body,
                        content_type=obj.content_type,
                        content_encoding=obj.content_encoding,
                        sha256=sha256,
                    )
            except Exception:
                with contextlib.suppress(Exception):  # not written: a retry must not count on it
                    self.ledger.drop(endpoint_id, entry.entry_id)
                raise
            if stored:
                with contextlib.suppress(Exception):  # unconfirmed, a retry looks the object up in the store
                    self.ledger.confirm(endpoint_id, entry.entry_id)
                self._counters.put(counter_key, batch)
                return key
            with contextlib.suppress(Exception):
                self.ledger.drop(endpoint_id, entry.entry_id)
            batch += 1
        raise StoreError(f"more than {MAX_BATCH_COUNTER} objects in one second for one endpoint")

    def _fail(
        self,
        tenant_id: str,
        endpoint_id: str,
        records: list[InboundRecord],
        error: SpoolError,
        outcome: EndpointOutcome,
        decided: Plan | None = None,
    ) -> list[tuple[InboundRecord, int]]:
        """Hand `records` back after their back-off (the plan's, or before a plan the retry rule's), forget the
        endpoint's cached settings (so a fix is seen at once) and record the failure."""
        self.directory.forget(tenant_id, endpoint_id)
        outcome.failed += len(records)
        outcome.error = error.message
        if decided is not None:
            return [(r, decided.retry_seconds[r.message_id]) for r in records]
        rules = self.rules
        return [(r, planner.back_off(r.receive_count, rules)) for r in records]

    def _record(self, tenant_id: str, endpoint_id: str, key: str, outcome: EndpointOutcome, health: Health) -> None:
        """Record what the delivery did on the endpoint's status item: objects written make it healthy; a failure
        of its store counts against it and may park it (domain/health.py)."""
        at = iso_timestamp(self.clock())
        try:
            if outcome.objects_written:
                self.status.record_flush(
                    tenant_id,
                    endpoint_id,
                    key=outcome.keys[-1],
                    events=outcome.events_written,
                    objects=outcome.objects_written,
                    at=at,
                )
                health = Health()
                self.board.remember(key, health)
            if outcome.error:
                now = None
                if outcome.store_failed:
                    now = after_failure(
                        health,
                        self.clock(),
                        deadline=outcome.deadline,
                        base=self.retry_base_seconds,
                        maximum=self.retry_max_seconds,
                    )
                    self.board.remember(key, now)
                self.status.record_failure(tenant_id, endpoint_id, message=outcome.error, at=at, health=now)
                if now is not None and now.parked_until:
                    _log.warning(
                        "endpoint %s parked for %d s after %d failed deliveries: %s",
                        endpoint_id,
                        round(now.parked_until - self.clock()),
                        now.failures,
                        outcome.error,
                    )
        except Exception as exc:  # status is informational; the objects are written and acknowledged
            _log.warning("could not record delivery status for %s: %s", endpoint_id, type(exc).__name__)


def seal_lease(window_start: int) -> int:
    """The lease of a window's seal: the flush leases' items (one per endpoint and time), under the negated window
    start, which no flush time can be."""
    return -window_start


def _settled_by(step: planner.Step) -> list[InboundRecord]:
    """The records a step settles, acknowledged when it succeeds (a flush's triggers after its clean-up)."""
    return [*step.settles, *step.clearing] if isinstance(step, Write) else step.settles


def _as_spool_error(exc: Exception) -> SpoolError:
    """The error to report for `exc`: its own if it is Spool's (its message names no secret), otherwise only
    its type."""
    return exc if isinstance(exc, SpoolError) else StoreError(f"delivery interrupted ({type(exc).__name__})")
