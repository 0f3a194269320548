"""Tenants and API keys. Keys are random, shown once, and stored only as HMAC-SHA256 under a pepper."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from spool.domain import limits
from spool.domain.cache import TtlCache
from spool.domain.errors import InvalidInput, NotFound, Unauthorized
from spool.domain.ids import new_id
from spool.domain.naming import iso_timestamp
from spool.domain.ports import ApiKeyRecord, Tenant, TenantRepository

KEY_PREFIX = "spool_"
_TENANT_NAME_MAX = 128


def hash_key(pepper: bytes, api_key: str) -> str:
    return hmac.new(pepper, api_key.encode(), hashlib.sha256).hexdigest()


@dataclass
class Tenants:
    repo: TenantRepository
    pepper: Callable[[], bytes]
    clock: Callable[[], float] = time.time
    cache_seconds: float = limits.API_KEY_CACHE_SECONDS
    # key hash -> its tenant, or None for a key that is unknown or revoked
    _cache: TtlCache[str, str | None] = field(init=False)

    def __post_init__(self) -> None:
        self._cache = TtlCache(limits.API_KEY_CACHE_ENTRIES, self.cache_seconds, lambda: self.clock())

    def create_tenant(self, name: str) -> tuple[Tenant, str]:
        name = name.strip()
        if not name or len(name) > _TENANT_NAME_MAX:
            raise InvalidInput(f"must be 1-{_TENANT_NAME_MAX} characters", field="name")
        tenant = Tenant(id=new_id("ten"), name=name, createdAt=iso_timestamp(self.clock()))
        self.repo.create_tenant(tenant)
        _, api_key = self.create_key(tenant.id)
        return tenant, api_key

    def set_endpoint_limit(self, tenant_id: str, limit: int) -> None:
        """The most active endpoints `tenant_id` may have (the operator's `spool admin tenant set-limit`)."""
        if not 1 <= limit <= limits.ENDPOINTS_PER_TENANT_MAX:
            raise InvalidInput(f"must be 1-{limits.ENDPOINTS_PER_TENANT_MAX}", field="endpoints")
        if not self.repo.set_endpoint_limit(tenant_id, limit):
            raise NotFound(f"tenant {tenant_id} not found")

    def create_key(self, tenant_id: str) -> tuple[ApiKeyRecord, str]:
        if self.repo.get_tenant(tenant_id) is None:
            raise NotFound(f"tenant {tenant_id} not found")
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(keyId=new_id("key"), tenantId=tenant_id, createdAt=iso_timestamp(self.clock()))
        self.repo.put_key(record, hash_key(self.pepper(), api_key))
        return record, api_key

    def adopt_key(self, tenant_id: str, api_key: str) -> ApiKeyRecord:
        """Store a key chosen elsewhere (the local runtime keeps its dev key across restarts)."""
        if not api_key.startswith(KEY_PREFIX) or not 32 <= len(api_key) <= 128:
            raise InvalidInput(f"must start with {KEY_PREFIX!r} and be 32-128 characters", field="apiKey")
        if self.repo.get_tenant(tenant_id) is None:
            raise NotFound(f"tenant {tenant_id} not found")
        record = ApiKeyRecord(keyId=new_id("key"), tenantId=tenant_id, createdAt=iso_timestamp(self.clock()))
        self.repo.put_key(record, hash_key(self.pepper(), api_key))
        return record

    def revoke_key(self, tenant_id: str, key_id: str) -> None:
        if not self.repo.revoke_key(tenant_id, key_id):
            raise NotFound(f"key {key_id} of tenant {tenant_id} not found")

    def authenticate(self, api_key: str | None) -> str:
        """The tenant id the key belongs to. Answers are cached for `cache_seconds`, revocations included."""
        if not api_key:
            raise Unauthorized("missing X-API-Key header")
        if not api_key.startswith(KEY_PREFIX) or len(api_key) > 128:
            raise Unauthorized("invalid API key")
        key_hash = hash_key(self.pepper(), api_key)
        tenant_id = self._cache.get_or_load(key_hash, lambda: self._tenant_of(key_hash))
        if tenant_id is None:
            raise Unauthorized("invalid API key")
        return tenant_id

    def _tenant_of(self, key_hash: str) -> str | None:
        record = self.repo.find_key(key_hash)
        return record.tenantId if record and not record.revoked else None
