"""Flush leases in the Spool table: one conditional item per (endpoint, flush time) (layout: adapters/dynamo.py).
The held lines themselves are in S3 (adapters/staging.py)."""

from __future__ import annotations

from spool.adapters.dynamo import Lease
from spool.names import LEASE_KEY_PREFIX

LEASE_SK = "#LEASE"
# A flush lease item outlives its flush by far; the table TTL removes it after this (the queue's and the
# DLQ's retention, 14 days, plus one).
LEASE_ITEM_RETENTION_SECONDS = 15 * 24 * 3600


def lease_pk(endpoint_id: str, flush_at: int) -> str:
    """The partition of one flush time's lease."""
    return f"{LEASE_KEY_PREFIX}{endpoint_id}#{flush_at}"


class DynamoLeases(Lease):
    """Implements `Leases`: a `Lease` per (endpoint, flush time)."""

    def acquire(self, endpoint_id: str, flush_at: int, owner: str, seconds: int) -> bool:
        return self.take(
            lease_pk(endpoint_id, flush_at), LEASE_SK, owner, seconds, keep_seconds=LEASE_ITEM_RETENTION_SECONDS
        )

    def lease_until(self, endpoint_id: str, flush_at: int) -> float | None:
        return self.until(lease_pk(endpoint_id, flush_at), LEASE_SK)

    def release(self, endpoint_id: str, flush_at: int, owner: str) -> None:
        self.give_back(lease_pk(endpoint_id, flush_at), LEASE_SK, owner)
