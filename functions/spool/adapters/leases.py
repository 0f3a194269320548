"""Flush leases in the Spool table: one conditional item per (endpoint, flush time) (layout: adapters/dynamo.py).
The held lines themselves are in S3 (adapters/staging.py)."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from spool.adapters.dynamo import PK, SK, TTL, TableAdapter, item_key
from spool.adapters.dynamo import string as _s
from spool.names import LEASE_KEY_PREFIX

LEASE_SK = "#LEASE"
# A flush lease item outlives its flush by far; the table TTL removes it after this (the queue's and the
# DLQ's retention, 14 days, plus one).
LEASE_ITEM_RETENTION_SECONDS = 15 * 24 * 3600


def lease_pk(endpoint_id: str, flush_at: int) -> str:
    """The partition of one flush time's lease."""
    return f"{LEASE_KEY_PREFIX}{endpoint_id}#{flush_at}"


class DynamoLeases(TableAdapter):
    """Implements `Leases`."""

    def acquire(self, endpoint_id: str, flush_at: int, owner: str, seconds: int) -> bool:
        now = int(time.time())
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    PK: _s(lease_pk(endpoint_id, flush_at)),
                    SK: _s(LEASE_SK),
                    "owner": _s(owner),
                    "leaseUntil": {"N": str(now + seconds)},
                    TTL: {"N": str(now + LEASE_ITEM_RETENTION_SECONDS)},
                },
                ConditionExpression=f"attribute_not_exists({PK}) OR leaseUntil < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def lease_until(self, endpoint_id: str, flush_at: int) -> float | None:
        item = self._db.get_item(
            TableName=self._table,
            Key=item_key(lease_pk(endpoint_id, flush_at), LEASE_SK),
            ConsistentRead=True,
        ).get("Item")
        return float(item["leaseUntil"]["N"]) if item else None

    def release(self, endpoint_id: str, flush_at: int, owner: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=item_key(lease_pk(endpoint_id, flush_at), LEASE_SK),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
