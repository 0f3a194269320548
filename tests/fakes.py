"""In-memory fakes of the domain's ports, for unit tests without sockets."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from spool.domain import limits
from spool.domain.credentials import Credentials
from spool.domain.errors import Conflict, DeadlineExceeded, InvalidInput, LimitExceeded, StoreError
from spool.domain.health import Health
from spool.domain.messages import Message
from spool.domain.models import Endpoint
from spool.domain.ports import ApiKeyRecord, LedgerEntry, StagedBundle, Tenant, entry_time
from spool.domain.status import DeliveryStatus
from spool.domain.storage import StorageSettings


@dataclass
class FakeRepo:
    """EndpointRepository + TenantRepository + Staging in dicts."""

    endpoints: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    status: dict[str, DeliveryStatus] = field(default_factory=dict)
    tenants: dict[str, Tenant] = field(default_factory=dict)
    keys: dict[str, tuple[ApiKeyRecord, str]] = field(default_factory=dict)  # keyId -> (record, hash)
    staged: dict[tuple[str, int], dict[str, list[str]]] = field(default_factory=dict)
    leases: dict[tuple[str, int], str] = field(default_factory=dict)
    # Markers of written-but-not-removed staged items: (endpoint, flush time) -> marker id -> item ids.
    written_marks: dict[tuple[str, int], dict[str, list[str]]] = field(default_factory=dict)
    # When a held lease expires (epoch seconds); unset: unknown.
    lease_ends: dict[tuple[str, int], float] = field(default_factory=dict)
    endpoint_reads: int = 0
    # Endpoints' health (domain/health.py) as the status items hold it.
    healths: dict[str, Health] = field(default_factory=dict)
    health_reads: int = 0
    # roleArn -> (tenant id, endpoints using it)
    role_claims: dict[str, tuple[str, int]] = field(default_factory=dict)

    # endpoints (with the tenants' counts and the claims on roles, as adapters/endpoint_table.py keeps them)
    def create_endpoint(self, endpoint: Endpoint) -> None:
        tenant = self.tenants.get(endpoint.tenantId)
        if tenant is not None:
            limit = tenant.endpointLimit or limits.ENDPOINTS_PER_TENANT_DEFAULT
            if tenant.endpointCount >= limit:
                raise LimitExceeded(f"this tenant has reached its limit of {limit} endpoints (endpointsPerTenant)")
        self._claim(endpoint.storage.roleArn, endpoint.tenantId)
        if tenant is not None:
            self.tenants[tenant.id] = replace(tenant, endpointCount=tenant.endpointCount + 1)
        self.endpoints[(endpoint.tenantId, endpoint.id)] = endpoint

    def replace_endpoint(self, endpoint: Endpoint, expected_updated_at: str, *, previous_role: str | None) -> None:
        current = self.endpoints[(endpoint.tenantId, endpoint.id)]
        if current.updatedAt != expected_updated_at or current.status != "active":
            raise Conflict("changed meanwhile")
        if endpoint.storage.roleArn != previous_role:
            self._claim(endpoint.storage.roleArn, endpoint.tenantId)
            self._unclaim(previous_role)
        self.endpoints[(endpoint.tenantId, endpoint.id)] = endpoint

    def _claim(self, role: str | None, tenant_id: str) -> None:
        if role is None:
            return
        owner, count = self.role_claims.get(role, (tenant_id, 0))
        if owner != tenant_id and count > 0:
            raise InvalidInput("is used by another tenant's endpoint", field="storageConfig.roleArn")
        self.role_claims[role] = (tenant_id, count + 1)

    def _unclaim(self, role: str | None) -> None:
        if role is not None and role in self.role_claims:
            owner, count = self.role_claims[role]
            self.role_claims[role] = (owner, count - 1)

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        self.endpoint_reads += 1
        return self.endpoints.get((tenant_id, endpoint_id))

    def list_endpoints(self, tenant_id: str, limit: int, after: str | None) -> tuple[list[Endpoint], str | None]:
        active = self.active_endpoints(tenant_id)
        if after:
            active = [e for e in active if e.id > after]
        if len(active) > limit:
            return active[:limit], active[limit - 1].id
        return active, None

    def active_endpoints(self, tenant_id: str) -> list[Endpoint]:
        return sorted(
            (e for (t, _), e in self.endpoints.items() if t == tenant_id and e.status == "active"),
            key=lambda e: e.id,
        )

    def mark_deleted(self, tenant_id: str, endpoint_id: str, at: str, *, role_arn: str | None) -> None:
        key = (tenant_id, endpoint_id)
        self.endpoints[key] = self.endpoints[key].model_copy(update={"status": "deleted"})
        self._unclaim(role_arn)
        tenant = self.tenants.get(tenant_id)
        if tenant is not None:
            self.tenants[tenant_id] = replace(tenant, endpointCount=tenant.endpointCount - 1)

    def get_status(self, tenant_id: str, endpoint_id: str) -> DeliveryStatus | None:
        return self.status.get(endpoint_id)

    def record_flush(self, tenant_id: str, endpoint_id: str, *, key: str, events: int, objects: int, at: str) -> None:
        s = self.status.setdefault(endpoint_id, DeliveryStatus())
        s.lastFlushAt, s.lastObjectKey = at, key
        s.eventsWritten += events
        s.objectsWritten += objects
        s.consecutiveFailures = 0
        self.healths.pop(endpoint_id, None)

    def record_failure(self, tenant_id: str, endpoint_id: str, *, message: str, at: str, health: Health | None) -> None:
        s = self.status.setdefault(endpoint_id, DeliveryStatus())
        s.lastError, s.lastErrorAt = message, at
        if health is not None:
            current = self.healths.get(endpoint_id, Health())
            probe = 0.0 if health.parked_until else current.probe_until
            self.healths[endpoint_id] = replace(health, probe_until=probe)
            s.consecutiveFailures = health.failures

    def health(self, tenant_id: str, endpoint_id: str) -> Health:
        self.health_reads += 1
        return self.healths.get(endpoint_id, Health())

    def take_probe(self, tenant_id: str, endpoint_id: str, *, now: float, until: float) -> bool:
        current = self.healths.get(endpoint_id, Health())
        if not current.parked_until or current.parked_until > now or current.probe_until > now:
            return False
        self.healths[endpoint_id] = replace(current, probe_until=until)
        return True

    def release_probe(self, tenant_id: str, endpoint_id: str) -> None:
        if endpoint_id in self.healths:
            self.healths[endpoint_id] = replace(self.healths[endpoint_id], probe_until=0.0)

    # tenants
    def create_tenant(self, tenant: Tenant) -> None:
        self.tenants[tenant.id] = tenant

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self.tenants.get(tenant_id)

    def list_tenants(self) -> list[Tenant]:
        return sorted(self.tenants.values(), key=lambda t: t.id)

    def put_key(self, record: ApiKeyRecord, key_hash: str) -> None:
        self.keys[record.keyId] = (record, key_hash)

    def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        return next((r for r, h in self.keys.values() if h == key_hash), None)

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        return [r for r, _ in self.keys.values() if r.tenantId == tenant_id]

    def set_endpoint_limit(self, tenant_id: str, limit: int) -> bool:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            return False
        self.tenants[tenant_id] = replace(tenant, endpointLimit=limit)
        return True

    def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        found = self.keys.get(key_id)
        if not found or found[0].tenantId != tenant_id:
            return False
        record, key_hash = found
        self.keys[key_id] = (ApiKeyRecord(record.keyId, record.tenantId, record.createdAt, True), key_hash)
        return True

    # staging
    def stage(self, tenant_id: str, endpoint_id: str, flush_at: int, holder_id: str, lines: list[str]) -> list[str]:
        self.staged.setdefault((endpoint_id, flush_at), {})[holder_id] = list(lines)
        return [holder_id]

    def staged_ids(self, endpoint_id: str) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for (e, t), items in self.staged.items():
            if e == endpoint_id:
                found.setdefault(t, []).extend(items)
        for (e, t), marks in self.written_marks.items():
            if e == endpoint_id:
                found.setdefault(t, []).extend(marks)
        return found

    def bundles(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> list[StagedBundle]:
        items = self.staged.get((endpoint_id, flush_at), {})
        marks = self.written_marks.get((endpoint_id, flush_at), {})
        written = {i for ids in marks.values() for i in ids}
        return [StagedBundle(item_id=k, lines=v, written=k in written) for k, v in items.items() if k in item_ids] + [
            StagedBundle(item_id=k, lines=[], written=True) for k in marks if k in item_ids
        ]

    def mark_written(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> str:
        marks = self.written_marks.setdefault((endpoint_id, flush_at), {})
        marker = f"#WRITTEN#{len(marks)}"
        marks[marker] = list(item_ids)
        return marker

    def remove(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> None:
        key = (endpoint_id, flush_at)
        items = self.staged.get(key, {})
        marks = self.written_marks.get(key, {})
        for item_id in item_ids:
            items.pop(item_id, None)
            marks.pop(item_id, None)
        # An emptied flush time leaves nothing behind, as the table's items are gone.
        if key in self.staged and not items:
            del self.staged[key]
        if key in self.written_marks and not marks:
            del self.written_marks[key]

    def acquire(self, endpoint_id: str, flush_at: int, owner: str, seconds: int) -> bool:
        if (endpoint_id, flush_at) in self.leases:
            return False
        self.leases[(endpoint_id, flush_at)] = owner
        return True

    def lease_until(self, endpoint_id: str, flush_at: int) -> float | None:
        return self.lease_ends.get((endpoint_id, flush_at)) if (endpoint_id, flush_at) in self.leases else None

    def release(self, endpoint_id: str, flush_at: int, owner: str) -> None:
        if self.leases.get((endpoint_id, flush_at)) == owner:
            del self.leases[(endpoint_id, flush_at)]


@dataclass
class FakeDynamoClient:
    """The low-level DynamoDB calls `DynamoEndpoints` and `DynamoStatus` make, over a dict of items (conditions,
    counters and role claims are not modelled: a transaction's puts are stored, its updates ignored). Lets a test
    store an item the adapter cannot parse, as a bad migration or a hand edit would leave it, and watch the real
    adapter read it."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def item(self, tenant_id: str, sk: str) -> dict[str, Any]:
        """The stored item of the tenant under `sk` (e.g. `EP#ep_...`), to change in place."""
        return self.items.setdefault((f"T#{tenant_id}", sk), {"pk": {"S": f"T#{tenant_id}"}, "sk": {"S": sk}})

    def put_item(self, *, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.items[(Item["pk"]["S"], Item["sk"]["S"])] = copy.deepcopy(Item)
        return {}

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        found = self.items.get((Key["pk"]["S"], Key["sk"]["S"]))
        return {"Item": found} if found else {}

    def update_item(self, **_: Any) -> dict[str, Any]:
        return {}  # counters and claims are not modelled here

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        for entry in TransactItems:
            if "Put" in entry:
                self.put_item(**entry["Put"])
        return {}

    def query(self, *, TableName: str, ExpressionAttributeValues: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Only the endpoint listing: pk = :pk AND begins_with(sk, :ep), filtered on status = :active.
        values = ExpressionAttributeValues
        after = kwargs.get("ExclusiveStartKey", {}).get("sk", {}).get("S", "")
        return {
            "Items": [
                item
                for (pk, sk), item in sorted(self.items.items())
                if pk == values[":pk"]["S"]
                and sk.startswith(values[":ep"]["S"])
                and sk > after
                and item.get("status") == values[":active"]
            ]
        }


@dataclass
class FakeLedger:
    """Ledger in a dict, per endpoint, in the order entries were recorded."""

    entries: dict[str, dict[str, LedgerEntry]] = field(default_factory=dict)

    def record(self, endpoint_id: str, entry: LedgerEntry) -> None:
        self.entries.setdefault(endpoint_id, {})[entry.entry_id] = entry

    def confirm(self, endpoint_id: str, entry_id: str) -> None:
        entries = self.entries[endpoint_id]
        entries[entry_id] = replace(entries[entry_id], written=True)

    def drop(self, endpoint_id: str, entry_id: str) -> None:
        self.entries.get(endpoint_id, {}).pop(entry_id, None)

    def since(self, endpoint_id: str, after: float) -> list[LedgerEntry]:
        bound = entry_time(after)
        return [e for i, e in sorted(self.entries.get(endpoint_id, {}).items()) if i >= bound]

    def listed(self, endpoint_id: str, entry_ids: list[str], epoch: int, sealed_at: float) -> None:
        entries = self.entries[endpoint_id]
        for entry_id in entry_ids:
            entries[entry_id] = replace(entries[entry_id], epoch=epoch, sealed_at=sealed_at)

    def all(self, endpoint_id: str) -> list[LedgerEntry]:
        return [e for _, e in sorted(self.entries.get(endpoint_id, {}).items())]


@dataclass
class FakeQueue:
    """Queue + Triggers + VisibilityPort."""

    sent: list[Message] = field(default_factory=list)
    flushes: list[tuple[str, str, int, int]] = field(default_factory=list)
    seals: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    visibility: list[tuple[str, int]] = field(default_factory=list)

    def send(self, messages: list[Message]) -> None:
        self.sent.extend(messages)

    def send_flush(self, tenant_id: str, endpoint_id: str, flush_at: int, delay_seconds: int) -> None:
        self.flushes.append((tenant_id, endpoint_id, flush_at, delay_seconds))

    def send_seal(self, tenant_id: str, endpoint_id: str, window: int, seal_at: int, delay_seconds: int) -> None:
        self.seals.append((tenant_id, endpoint_id, window, seal_at, delay_seconds))

    def change_visibility(self, changes: list[tuple[str, int]]) -> None:
        self.visibility.extend(changes)


class FakeCipher:
    """Reversible and context-bound, so a mismatched context fails like KMS does."""

    def __init__(self) -> None:
        self.decrypts = 0

    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        return json.dumps({"ctx": context, "pt": plaintext.decode()}).encode()[::-1]

    def decrypt(self, ciphertext: bytes, context: dict[str, str]) -> bytes:
        self.decrypts += 1
        blob = json.loads(ciphertext[::-1])
        if blob["ctx"] != context:
            raise PermissionError("InvalidCiphertextException")
        return str(blob["pt"]).encode()


@dataclass
class MemoryStore:
    objects: dict[str, bytes] = field(default_factory=dict)
    fail_with: str | None = None
    # Fail as a store that kept the call open until its deadline.
    past_deadline: bool = False
    puts: int = 0

    def put_new(
        self, key: str, body: bytes, *, content_type: str, content_encoding: str | None, sha256: str | None = None
    ) -> bool:
        self.puts += 1
        if sha256 is not None:
            assert sha256 == hashlib.sha256(body).hexdigest(), "the checksum sent is the body's"
        if self.past_deadline:
            raise DeadlineExceeded.after(1.0)
        if self.fail_with:
            raise StoreError(self.fail_with)
        if key in self.objects:
            return False
        self.objects[key] = body
        return True

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def holds(self, key: str, sha256: str) -> bool | None:
        body = self.objects.get(key)
        return body is not None and hashlib.sha256(body).hexdigest() == sha256


@dataclass
class FakeStores:
    """StoreFactory handing out one MemoryStore per bucket."""

    stores: dict[str, MemoryStore] = field(default_factory=dict)
    seen_credentials: list[Credentials | None] = field(default_factory=list)

    def __call__(self, settings: StorageSettings, credentials: Credentials | None) -> MemoryStore:
        self.seen_credentials.append(credentials)
        return self.stores.setdefault(settings.bucket, MemoryStore())


class MemoryIdempotencyStore(BasePersistenceLayer):
    """Powertools Idempotency persistence in a dict: same semantics as the DynamoDB layer, no sockets."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        record = self.records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None and not existing.is_expired:
            raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


@dataclass
class FakeRateGate:
    """`RateGate` in memory, on a clock the test sets (`now`)."""

    now: float = 1_700_000_000.0
    until: dict[str, float] = field(default_factory=dict)

    def take(self, key: str, seconds: int) -> float | None:
        held = self.until.get(key, 0.0)
        if held > self.now:
            return held - self.now
        self.until[key] = self.now + seconds
        return None

    def give_back(self, key: str) -> None:
        self.until.pop(key, None)
