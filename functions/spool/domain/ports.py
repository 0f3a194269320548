"""Ports: the small protocols the domain needs from the outside world. Adapters implement them with AWS,
tests with the in-memory fakes in `tests/fakes.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from spool.domain.credentials import Credentials
from spool.domain.health import Health
from spool.domain.messages import Message
from spool.domain.models import Endpoint
from spool.domain.status import DeliveryStatus
from spool.domain.storage import StorageSettings


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    createdAt: str
    # Its active endpoints, and its own limit on them (None: limits.ENDPOINTS_PER_TENANT_DEFAULT).
    endpointCount: int = 0
    endpointLimit: int | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    keyId: str
    tenantId: str
    createdAt: str
    revoked: bool = False


class EndpointRepository(Protocol):
    def create_endpoint(self, endpoint: Endpoint) -> None:
        """Counts it against its tenant's limit (`LimitExceeded` past it) and claims its roleArn for the tenant
        (`InvalidInput` on storageConfig.roleArn when another tenant's endpoints use the role)."""

    def replace_endpoint(self, endpoint: Endpoint, expected_updated_at: str, *, previous_role: str | None) -> None:
        """Raises `Conflict` when the stored item's updatedAt is no longer `expected_updated_at`; moves the role
        claim from `previous_role` to the endpoint's roleArn when they differ (as `create_endpoint`)."""

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        """Deleted endpoints too: the sink still needs them for events accepted before the delete."""

    def list_endpoints(self, tenant_id: str, limit: int, after: str | None) -> tuple[list[Endpoint], str | None]:
        """Active endpoints in creation order; `after` is the id of the last endpoint already seen."""

    def active_endpoints(self, tenant_id: str) -> list[Endpoint]: ...
    def mark_deleted(self, tenant_id: str, endpoint_id: str, at: str, *, role_arn: str | None) -> None:
        """No longer active (no new routing): counted off its tenant, its claim on `role_arn` given up."""


class StatusBook(Protocol):
    """An endpoint's delivery status and health (domain/health.py), one item every sink shares. Only the sink
    writes it; the api shows it."""

    def get_status(self, tenant_id: str, endpoint_id: str) -> DeliveryStatus | None: ...
    def health(self, tenant_id: str, endpoint_id: str) -> Health:
        """The endpoint's health as stored (a healthy one when nothing is)."""

    def record_flush(self, tenant_id: str, endpoint_id: str, *, key: str, events: int, objects: int, at: str) -> None:
        """Objects were written: count them, and the endpoint is healthy (its failures and park cleared)."""

    def record_failure(self, tenant_id: str, endpoint_id: str, *, message: str, at: str, health: Health | None) -> None:
        """A delivery failed with `message`. `health`: the endpoint's own store failed, and this is its health now
        (its failures, and its park if it is parked; a probe it held is decided); None: a fault of Spool's own
        services, which leaves its health alone."""

    def take_probe(self, tenant_id: str, endpoint_id: str, *, now: float, until: float) -> bool:
        """Take the probe of a parked endpoint whose park has ended, unless another sink holds it."""

    def release_probe(self, tenant_id: str, endpoint_id: str) -> None:
        """Give the probe back undecided (the delivery had nothing to write), so another sink may take it."""


class TenantRepository(Protocol):
    def create_tenant(self, tenant: Tenant) -> None: ...
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...
    def list_tenants(self) -> list[Tenant]: ...
    def put_key(self, record: ApiKeyRecord, key_hash: str) -> None: ...
    def find_key(self, key_hash: str) -> ApiKeyRecord | None: ...
    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]: ...
    def revoke_key(self, tenant_id: str, key_id: str) -> bool: ...
    def set_endpoint_limit(self, tenant_id: str, limit: int) -> bool:
        """The tenant's own limit on active endpoints; False when there is no such tenant."""


class Queue(Protocol):
    def send(self, messages: list[Message]) -> None:
        """Enqueue every message or raise; partial failures are retried inside the adapter."""


class Cipher(Protocol):
    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes: ...
    def decrypt(self, ciphertext: bytes, context: dict[str, str]) -> bytes: ...


class ObjectStore(Protocol):
    def put_new(
        self, key: str, body: bytes, *, content_type: str, content_encoding: str | None, sha256: str | None = None
    ) -> bool:
        """Write `key` only if it does not exist yet, checksummed (`sha256`: the body's, hex, when the caller has
        it already); False when it already exists. Raises `StoreError`."""

    def delete(self, key: str) -> None: ...
    def holds(self, key: str, sha256: str) -> bool | None:
        """Whether `key` exists with this body (its SHA-256, hex); None when the store will not say (a role that
        may not read what it writes)."""


class StoreFactory(Protocol):
    def __call__(self, settings: StorageSettings, credentials: Credentials | None) -> ObjectStore: ...


@dataclass(frozen=True)
class StagedBundle:
    """Lines held back for an endpoint's flush at `flush_at`, as one staging item. `written`: a flush already
    put these lines in an object and marked them, but could not remove them; remove, never write again."""

    item_id: str
    lines: list[str]
    written: bool = False


class Staging(Protocol):
    """Durable holding area for remainders, keyed by endpoint and flush time (objects in Spool's staging
    bucket on AWS, adapters/staging.py)."""

    def stage(self, tenant_id: str, endpoint_id: str, flush_at: int, holder_id: str, lines: list[str]) -> list[str]:
        """Store the lines; returns the staging item ids written."""

    def staged_ids(self, endpoint_id: str) -> dict[int, list[str]]:
        """Everything staged for the endpoint (written markers too), by flush time, from one listing."""

    def bundles(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> list[StagedBundle]:
        """The staged items `item_ids` of one flush time (as `staged_ids` listed them), read."""

    def mark_written(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> str:
        """Record durably that these staged items are in an object; returns the marker's own item id."""

    def remove(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> None: ...


# Where an object's lines come from: (source, index of the first line in it, how many); planner.Segment.
Segment = tuple[str, int, int]


@dataclass(frozen=True)
class LedgerEntry:
    """One object the sink wrote, or is writing, for an endpoint: where its lines come from (so that a retry does
    not write them again), and what a manifest lists of it (bytes, events, SHA-256, first and last line)."""

    entry_id: str  # sorts by when it was recorded
    key: str
    flushed_at: float  # the flush time the key is named for
    deadline: float  # its put is over by then, one way or the other (epoch seconds)
    bytes: int
    events: int
    sha256: str  # hex
    first_created_at: str
    last_created_at: str
    first_id: str
    last_id: str
    segments: tuple[Segment, ...] = ()
    written: bool = False
    epoch: int = 0  # the manifest epoch that lists it (0: none yet), or a manifest's own epoch
    sealed_at: float = 0.0  # when it was marked with its epoch


def entry_id(recorded_at: float, unique: str) -> str:
    """A ledger entry's id: milliseconds since the epoch, zero-padded (ids sort by time), then `unique`."""
    return f"{entry_time(recorded_at)}-{unique}"


def entry_time(recorded_at: float) -> str:
    """The part of an entry id that says when it was recorded: the bound of `Ledger.since`."""
    return f"{int(recorded_at * 1000):013d}"


class Ledger(Protocol):
    """The objects written per endpoint (a DynamoDB item each, adapters/ledger.py): one record before the put,
    confirmed after it, dropped when it failed."""

    def record(self, endpoint_id: str, entry: LedgerEntry) -> None: ...
    def confirm(self, endpoint_id: str, entry_id: str) -> None: ...
    def drop(self, endpoint_id: str, entry_id: str) -> None: ...
    def since(self, endpoint_id: str, after: float) -> list[LedgerEntry]:
        """Every entry recorded at or after `after` (epoch seconds), oldest first."""

    def listed(self, endpoint_id: str, entry_ids: list[str], epoch: int, sealed_at: float) -> None:
        """These entries are listed in the manifest of `epoch`, sealed at `sealed_at`."""


class Leases(Protocol):
    """One flush at a time per (endpoint, flush time): a conditional item in DynamoDB."""

    def acquire(self, endpoint_id: str, flush_at: int, owner: str, seconds: int) -> bool:
        """Take the flush lease for (endpoint, flush_at) unless another owner holds an unexpired one."""

    def release(self, endpoint_id: str, flush_at: int, owner: str) -> None: ...
    def lease_until(self, endpoint_id: str, flush_at: int) -> float | None:
        """When the current flush lease for (endpoint, flush_at) expires (epoch seconds), if one is held."""


class VisibilityPort(Protocol):
    def change_visibility(self, changes: list[tuple[str, int]]) -> None:
        """Set each (receipt handle, seconds) message's visibility timeout. Best effort."""


class Triggers(Protocol):
    def send_flush(self, tenant_id: str, endpoint_id: str, flush_at: int, delay_seconds: int) -> None:
        """Enqueue a flush trigger that becomes visible after `delay_seconds` (at most 900)."""

    def send_seal(self, tenant_id: str, endpoint_id: str, window: int, seal_at: int, delay_seconds: int) -> None:
        """Enqueue a seal trigger for the folders of the window starting at `window`, due at `seal_at`, visible
        after `delay_seconds` (at most 900; a later `seal_at` is waited out like an early flush trigger)."""


class Verifier(Protocol):
    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        """Check that an endpoint's store takes a write (runs where its credentials may be decrypted)."""


class RateGate(Protocol):
    """At most one holder of a key per window (a conditional item with a TTL in the table)."""

    def take(self, key: str, seconds: int) -> float | None:
        """Hold `key` for `seconds`: None when taken; else the seconds until the current holder's window ends."""

    def give_back(self, key: str) -> None:
        """End this holder's window early (the call it guarded did not run)."""


class Redriver(Protocol):
    def redrive(self, tenant_id: str | None, endpoint_id: str | None) -> tuple[int, bool]:
        """Move the DLQ's messages of this tenant (and endpoint) back; (moved, whether all matching went)."""
