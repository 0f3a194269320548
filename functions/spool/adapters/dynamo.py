"""DynamoDB single-table adapter for tenants, API keys, endpoints and delivery status.

Layout (pk / sk):
  T#{tenantId} / TENANT          the tenant
  T#{tenantId} / KEY#{keyId}     one of its API keys (hash, revoked flag)
  K#{keyHash}  / KEY             key lookup by HMAC hash
  T#{tenantId} / EP#{endpointId} an endpoint (settings as JSON, credentials as KMS ciphertext, status)
  T#{tenantId} / ST#{endpointId} its delivery status (written by the sink only)
  B#{endpointId}#{time} / {holder}#{n}  lines an older sink held back (read by adapters/staged_items.py)
  B#{endpointId}#{time} / #LEASE        the flush lease for that time
Idempotency records (Powertools) share the table under their own partition. `expiresAt` is the TTL attribute.

The low-level client is used instead of the boto3 resource: it imports faster (cold starts) and the
attribute mapping here is small.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from spool.domain.errors import Conflict, CorruptRecord, describe
from spool.domain.models import DeliveryStatus, Endpoint
from spool.domain.ports import ApiKeyRecord, Tenant

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A deleted endpoint is kept this long so the sink can still write events accepted before the delete
# (SQS retention of the queue and its DLQ is 14 days).
DELETED_ENDPOINT_RETENTION_SECONDS = 15 * 24 * 3600
# Staged lines outlive the queue and DLQ retention (14 days), so a redriven trigger still finds them.
# A flush lease item outlives its flush by far; the table TTL removes it after this.
STAGING_RETENTION_SECONDS = 15 * 24 * 3600
LEASE_SK = "#LEASE"


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


class DynamoRepository:
    """Implements `EndpointRepository` and `TenantRepository`."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # --- endpoints -------------------------------------------------------------------------------------
    def create_endpoint(self, endpoint: Endpoint) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=self._endpoint_item(endpoint),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def replace_endpoint(self, endpoint: Endpoint, expected_updated_at: str) -> None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._endpoint_item(endpoint),
                ConditionExpression="updatedAt = :expected AND #status = :active",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":expected": _s(expected_updated_at), ":active": _s("active")},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict("the endpoint changed meanwhile; read it again and retry") from None
            raise

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": _s(f"T#{tenant_id}"), "sk": _s(f"EP#{endpoint_id}")},
            ConsistentRead=True,
        ).get("Item")
        return self._endpoint(item) if item else None

    def list_endpoints(self, tenant_id: str, limit: int, after: str | None) -> tuple[list[Endpoint], str | None]:
        found = list(self._query_endpoints(tenant_id, after=after, stop_after=limit + 1))
        if len(found) > limit:
            return found[:limit], found[limit - 1].id
        return found, None

    def active_endpoints(self, tenant_id: str) -> list[Endpoint]:
        return list(self._query_endpoints(tenant_id, after=None, stop_after=None))

    def mark_deleted(self, tenant_id: str, endpoint_id: str, at: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"pk": _s(f"T#{tenant_id}"), "sk": _s(f"EP#{endpoint_id}")},
            UpdateExpression="SET #status = :deleted, deletedAt = :at, expiresAt = :exp",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":deleted": _s("deleted"),
                ":at": _s(at),
                ":exp": {"N": str(int(time.time()) + DELETED_ENDPOINT_RETENTION_SECONDS)},
            },
        )

    def get_status(self, tenant_id: str, endpoint_id: str) -> DeliveryStatus | None:
        item = self._db.get_item(
            TableName=self._table, Key={"pk": _s(f"T#{tenant_id}"), "sk": _s(f"ST#{endpoint_id}")}
        ).get("Item")
        if not item:
            return None
        try:
            return DeliveryStatus(
                lastFlushAt=item.get("lastFlushAt", {}).get("S"),
                lastObjectKey=item.get("lastObjectKey", {}).get("S"),
                lastError=item.get("lastError", {}).get("S"),
                lastErrorAt=item.get("lastErrorAt", {}).get("S"),
                eventsWritten=int(item.get("eventsWritten", {}).get("N", "0")),
                objectsWritten=int(item.get("objectsWritten", {}).get("N", "0")),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise _corrupt("delivery status", item, exc) from None

    def record_flush(self, tenant_id: str, endpoint_id: str, *, key: str, events: int, objects: int, at: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"pk": _s(f"T#{tenant_id}"), "sk": _s(f"ST#{endpoint_id}")},
            UpdateExpression="SET lastFlushAt = :at, lastObjectKey = :key ADD eventsWritten :e, objectsWritten :o",
            ExpressionAttributeValues={
                ":at": _s(at),
                ":key": _s(key),
                ":e": {"N": str(events)},
                ":o": {"N": str(objects)},
            },
        )

    def record_failure(self, tenant_id: str, endpoint_id: str, *, message: str, at: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"pk": _s(f"T#{tenant_id}"), "sk": _s(f"ST#{endpoint_id}")},
            UpdateExpression="SET lastError = :m, lastErrorAt = :at",
            ExpressionAttributeValues={":m": _s(message[:1000]), ":at": _s(at)},
        )

    def _query_endpoints(self, tenant_id: str, *, after: str | None, stop_after: int | None) -> Iterator[Endpoint]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :ep)",
            "FilterExpression": "#status = :active",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":pk": _s(f"T#{tenant_id}"),
                ":ep": _s("EP#"),
                ":active": _s("active"),
            },
            "ConsistentRead": True,
        }
        if after:
            kwargs["ExclusiveStartKey"] = {"pk": _s(f"T#{tenant_id}"), "sk": _s(f"EP#{after}")}
        count = 0
        while True:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                yield self._endpoint(item)
                count += 1
                if stop_after is not None and count >= stop_after:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _endpoint_item(endpoint: Endpoint) -> dict[str, Any]:
        doc = endpoint.model_dump(mode="json", exclude={"credentials", "status"})
        item: dict[str, Any] = {
            "pk": _s(f"T#{endpoint.tenantId}"),
            "sk": _s(f"EP#{endpoint.id}"),
            "doc": _s(json.dumps(doc, separators=(",", ":"))),
            "status": _s(endpoint.status),
            "updatedAt": _s(endpoint.updatedAt),
        }
        if endpoint.credentials is not None:
            item["credentials"] = {"B": endpoint.credentials}
        return item

    @staticmethod
    def _endpoint(item: dict[str, Any]) -> Endpoint:
        try:
            doc = json.loads(item["doc"]["S"])
            doc["status"] = item["status"]["S"]
            doc["credentials"] = item["credentials"]["B"] if "credentials" in item else None
            return Endpoint.model_validate(doc)
        except (KeyError, TypeError, ValueError, RecursionError) as exc:  # ValidationError is a ValueError
            raise _corrupt("endpoint", item, exc) from None

    # --- flush leases (the staged lines themselves are in S3: adapters/staging.py) ------------------------
    def acquire(self, endpoint_id: str, boundary: int, owner: str, seconds: int) -> bool:
        now = int(time.time())
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": _s(f"B#{endpoint_id}#{boundary}"),
                    "sk": _s(LEASE_SK),
                    "owner": _s(owner),
                    "leaseUntil": {"N": str(now + seconds)},
                    "expiresAt": {"N": str(now + STAGING_RETENTION_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(pk) OR leaseUntil < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def lease_until(self, endpoint_id: str, boundary: int) -> float | None:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": _s(f"B#{endpoint_id}#{boundary}"), "sk": _s(LEASE_SK)},
            ConsistentRead=True,
        ).get("Item")
        return float(item["leaseUntil"]["N"]) if item else None

    def release(self, endpoint_id: str, boundary: int, owner: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": _s(f"B#{endpoint_id}#{boundary}"), "sk": _s(LEASE_SK)},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # --- tenants and keys ------------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": _s(f"T#{tenant.id}"),
                "sk": _s("TENANT"),
                "name": _s(tenant.name),
                "createdAt": _s(tenant.createdAt),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        item = self._db.get_item(TableName=self._table, Key={"pk": _s(f"T#{tenant_id}"), "sk": _s("TENANT")}).get(
            "Item"
        )
        if not item:
            return None
        return Tenant(id=tenant_id, name=item["name"]["S"], createdAt=item["createdAt"]["S"])

    def list_tenants(self) -> list[Tenant]:
        # Admin-only and rare: a filtered scan is fine here and keeps the table free of a GSI.
        tenants: list[Tenant] = []
        paginator = self._db.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :tenant",
            ExpressionAttributeValues={":tenant": _s("TENANT")},
        ):
            for item in page.get("Items", []):
                tenants.append(Tenant(id=item["pk"]["S"][2:], name=item["name"]["S"], createdAt=item["createdAt"]["S"]))
        return sorted(tenants, key=lambda t: t.id)

    def put_key(self, record: ApiKeyRecord, key_hash: str) -> None:
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": _s(f"K#{key_hash}"),
                            "sk": _s("KEY"),
                            "tenantId": _s(record.tenantId),
                            "keyId": _s(record.keyId),
                            "createdAt": _s(record.createdAt),
                            "revoked": {"BOOL": False},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": _s(f"T#{record.tenantId}"),
                            "sk": _s(f"KEY#{record.keyId}"),
                            "keyHash": _s(key_hash),
                            "createdAt": _s(record.createdAt),
                            "revoked": {"BOOL": False},
                        },
                    }
                },
            ]
        )

    def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        item = self._db.get_item(
            TableName=self._table, Key={"pk": _s(f"K#{key_hash}"), "sk": _s("KEY")}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return ApiKeyRecord(
            keyId=item["keyId"]["S"],
            tenantId=item["tenantId"]["S"],
            createdAt=item["createdAt"]["S"],
            revoked=item["revoked"]["BOOL"],
        )

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :key)",
            ExpressionAttributeValues={":pk": _s(f"T#{tenant_id}"), ":key": _s("KEY#")},
        )
        return [
            ApiKeyRecord(
                keyId=item["sk"]["S"][4:],
                tenantId=tenant_id,
                createdAt=item["createdAt"]["S"],
                revoked=item["revoked"]["BOOL"],
            )
            for item in page.get("Items", [])
        ]

    def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        item = self._db.get_item(
            TableName=self._table, Key={"pk": _s(f"T#{tenant_id}"), "sk": _s(f"KEY#{key_id}")}
        ).get("Item")
        if not item:
            return False
        revoked = {":t": {"BOOL": True}}
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": _s(f"T#{tenant_id}"), "sk": _s(f"KEY#{key_id}")},
                        "UpdateExpression": "SET revoked = :t",
                        "ExpressionAttributeValues": revoked,
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": _s(f"K#{item['keyHash']['S']}"), "sk": _s("KEY")},
                        "UpdateExpression": "SET revoked = :t",
                        "ExpressionAttributeValues": revoked,
                    }
                },
            ]
        )
        return True


def _corrupt(record: str, item: dict[str, Any], exc: Exception) -> CorruptRecord:
    """The stored item does not parse: a fault of the service (500), never of the request. The detail names
    the item and what failed where, not the values (a stored document can hold anything a client sent)."""
    key = {name: item[name].get("S") for name in ("pk", "sk") if isinstance(item.get(name), dict)}
    return CorruptRecord(f"a stored {record} could not be read", detail={"record": record, **key, **describe(exc)})
