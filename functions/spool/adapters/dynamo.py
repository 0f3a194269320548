"""The Spool table (DynamoDB, one table for everything) and what its adapters share.

Layout (pk / sk):
  T#{tenantId} / TENANT          the tenant (its endpoint count and limit)        adapters/tenant_table.py
  T#{tenantId} / KEY#{keyId}     one of its API keys (hash, revoked flag)         adapters/tenant_table.py
  K#{keyHash}  / KEY             key lookup by HMAC hash (the operator writes it) adapters/tenant_table.py
  T#{tenantId} / EP#{endpointId} an endpoint (settings as JSON, credentials as    adapters/endpoint_table.py
                                 KMS ciphertext)
  S#{tenantId}#{endpointId} / STATUS  its delivery status and health (written by  adapters/status_table.py
                                 the sink only, names.STATUS_ATTRIBUTES)
  R#{roleArn}  / ROLE            which tenant's endpoints use a role              adapters/endpoint_table.py
  V#{tenantId}#{endpointId} / RATE  verify's window for the endpoint (until)       adapters/verify_rate.py
  B#{endpointId}#{time} / #LEASE        the flush lease for that time             adapters/leases.py
  W#{endpointId} / {entry id}    an object written (or being written): its key,   adapters/ledger.py
                                 sources, bytes, SHA-256; its manifest epoch
  Q#dlq        / LEASE           the DLQ's scan lease (one redrive at a time)     adapters/redrive.py
  IDEMPOTENCY#{function}#{hash} / IDEMPOTENCY
                                 a Powertools Idempotency record, each in a       adapters/idempotency_records.py
                                 partition of its own (before 2026-12: all under
                                 pk IDEMPOTENCY; those expired within the hour)
`expiresAt` is the TTL attribute.

The low-level client is used instead of the boto3 resource: it imports faster (cold starts) and the
attribute mapping is small.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from spool.domain.errors import CorruptRecord, describe
from spool.names import KEY_LOOKUP_PREFIX, TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE, TENANT_KEY_PREFIX

# The key and TTL attributes' names, short for the adapters' items and expressions.
PK, SK, TTL = TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class TableAdapter:
    """What every adapter over the Spool table holds: the low-level client and the table's name."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name


def string(value: str) -> dict[str, Any]:
    """A DynamoDB string attribute value."""
    return {"S": value}


def tenant_pk(tenant_id: str) -> str:
    """The partition of a tenant: its item, endpoints and API keys."""
    return f"{TENANT_KEY_PREFIX}{tenant_id}"


def key_lookup_pk(key_hash: str) -> str:
    """The partition of an API key's lookup by its hash."""
    return f"{KEY_LOOKUP_PREFIX}{key_hash}"


def item_key(pk: str, sk: str) -> dict[str, Any]:
    """An item's key: its partition and sort key values, under the table's key names."""
    return {PK: string(pk), SK: string(sk)}


def corrupt(record: str, item: dict[str, Any], exc: Exception) -> CorruptRecord:
    """The stored item does not parse: a fault of the service (500), never of the request. The detail names
    the item and what failed where, not the values (a stored document can hold anything a client sent)."""
    found = {name: item[name].get("S") for name in (PK, SK) if isinstance(item.get(name), dict)}
    return CorruptRecord(f"a stored {record} could not be read", detail={"record": record, **found, **describe(exc)})


def applied(write: Callable[[], object]) -> bool:
    """Make a conditional write; False when its condition refused it (the item is someone else's or changed)."""
    try:
        write()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


class Lease(TableAdapter):
    """A lease on one item (`pk`, `sk`): taken by one owner until it expires, given back by that owner only. The
    flush leases (adapters/leases.py) and the DLQ's scan lease (adapters/redrive.py) are such items."""

    def take(self, pk: str, sk: str, owner: str, seconds: float, *, keep_seconds: float) -> bool:
        """Take the lease for `seconds` unless another owner holds an unexpired one; the item itself is kept
        `keep_seconds` (the table's TTL removes it then)."""
        now = time.time()
        return applied(
            lambda: self._db.put_item(
                TableName=self._table,
                Item={
                    **item_key(pk, sk),
                    "owner": string(owner),
                    "leaseUntil": {"N": str(round(now + seconds, 3))},
                    TTL: {"N": str(int(now + keep_seconds))},
                },
                ConditionExpression=f"attribute_not_exists({PK}) OR leaseUntil < :now",
                ExpressionAttributeValues={":now": {"N": str(round(now, 3))}},
            )
        )

    def give_back(self, pk: str, sk: str, owner: str) -> None:
        """Give the lease back; nothing happens if it is not `owner`'s any more (it expired, another took it)."""
        applied(
            lambda: self._db.delete_item(
                TableName=self._table,
                Key=item_key(pk, sk),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": string(owner)},
            )
        )

    def until(self, pk: str, sk: str) -> float | None:
        """When the lease expires (epoch seconds), if one is held."""
        item = self._db.get_item(TableName=self._table, Key=item_key(pk, sk), ConsistentRead=True).get("Item")
        return float(item["leaseUntil"]["N"]) if item else None
