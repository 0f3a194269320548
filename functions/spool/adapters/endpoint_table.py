"""Endpoints and their delivery status in the Spool table (layout: adapters/dynamo.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from spool.adapters.dynamo import PK, SK, TTL, TableAdapter, item_key
from spool.adapters.dynamo import corrupt as _corrupt
from spool.adapters.dynamo import string as _s
from spool.domain.errors import Conflict
from spool.domain.models import DeliveryStatus, Endpoint

# A deleted endpoint is kept this long so the sink can still write events accepted before the delete
# (SQS retention of the queue and its DLQ is 14 days).
DELETED_ENDPOINT_RETENTION_SECONDS = 15 * 24 * 3600


class DynamoEndpoints(TableAdapter):
    """Implements `EndpointRepository`."""

    def create_endpoint(self, endpoint: Endpoint) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=self._endpoint_item(endpoint),
            ConditionExpression=f"attribute_not_exists({PK})",
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
            Key=item_key(f"T#{tenant_id}", f"EP#{endpoint_id}"),
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
            Key=item_key(f"T#{tenant_id}", f"EP#{endpoint_id}"),
            UpdateExpression=f"SET #status = :deleted, deletedAt = :at, {TTL} = :exp",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":deleted": _s("deleted"),
                ":at": _s(at),
                ":exp": {"N": str(int(time.time()) + DELETED_ENDPOINT_RETENTION_SECONDS)},
            },
        )

    def get_status(self, tenant_id: str, endpoint_id: str) -> DeliveryStatus | None:
        item = self._db.get_item(TableName=self._table, Key=item_key(f"T#{tenant_id}", f"ST#{endpoint_id}")).get("Item")
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
            Key=item_key(f"T#{tenant_id}", f"ST#{endpoint_id}"),
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
            Key=item_key(f"T#{tenant_id}", f"ST#{endpoint_id}"),
            UpdateExpression="SET lastError = :m, lastErrorAt = :at",
            ExpressionAttributeValues={":m": _s(message[:1000]), ":at": _s(at)},
        )

    def _query_endpoints(self, tenant_id: str, *, after: str | None, stop_after: int | None) -> Iterator[Endpoint]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"{PK} = :pk AND begins_with({SK}, :ep)",
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
            kwargs["ExclusiveStartKey"] = item_key(f"T#{tenant_id}", f"EP#{after}")
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
            PK: _s(f"T#{endpoint.tenantId}"),
            SK: _s(f"EP#{endpoint.id}"),
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
