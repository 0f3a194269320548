"""Endpoints in the Spool table, with the tenants' endpoint counts and the claims on roles (layout:
adapters/dynamo.py); their delivery status is adapters/status_table.py's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from spool.adapters.dynamo import PK, SK, TTL, TableAdapter, item_key, tenant_pk
from spool.adapters.dynamo import corrupt as _corrupt
from spool.adapters.dynamo import string as _s
from spool.domain import limits
from spool.domain.errors import Conflict, InvalidInput, LimitExceeded
from spool.domain.models import Endpoint
from spool.names import ROLE_CLAIM_KEY_PREFIX


class _Refused(Exception):
    """A transaction's write number `index` was refused by its condition (one the caller names)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


# A deleted endpoint is kept this long so the sink can still write events accepted before the delete
# (SQS retention of the queue and its DLQ is 14 days).
DELETED_ENDPOINT_RETENTION_SECONDS = 15 * 24 * 3600


class DynamoEndpoints(TableAdapter):
    """Implements `EndpointRepository`. Creating, deleting and re-pointing an endpoint are transactions with the
    tenant's endpoint count (its limit is a condition on the tenant's item) and the claims on roles (`R#{roleArn}`:
    which tenant's endpoints use it, and how many)."""

    def create_endpoint(self, endpoint: Endpoint) -> None:
        writes = [
            {
                "Put": {
                    **self._at(),
                    "Item": self._endpoint_item(endpoint),
                    "ConditionExpression": f"attribute_not_exists({PK})",
                }
            },
            self._count(endpoint.tenantId, +1),
        ]
        role = endpoint.storage.roleArn
        if role is not None:
            writes.append(self._claim(role, endpoint.tenantId))
        self._transact(writes, endpoint.tenantId, role)

    def replace_endpoint(self, endpoint: Endpoint, expected_updated_at: str, *, previous_role: str | None) -> None:
        put = {
            "Put": {
                **self._at(),
                "Item": self._endpoint_item(endpoint),
                "ConditionExpression": "updatedAt = :expected AND #status = :active",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":expected": _s(expected_updated_at), ":active": _s("active")},
            }
        }
        role = endpoint.storage.roleArn
        writes: list[dict[str, Any]] = [put]
        if role != previous_role:
            if role is not None:
                writes.append(self._claim(role, endpoint.tenantId))
            if previous_role is not None:
                writes.append(self._unclaim(previous_role))
        try:
            self._transact(writes, endpoint.tenantId, role if role != previous_role else None)
        except _Refused as refused:
            if refused.index == 0:
                raise Conflict("the endpoint changed meanwhile; read it again and retry") from None
            raise

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        item = self._db.get_item(
            TableName=self._table,
            Key=item_key(tenant_pk(tenant_id), f"EP#{endpoint_id}"),
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

    def mark_deleted(self, tenant_id: str, endpoint_id: str, at: str, *, role_arn: str | None) -> None:
        mark = {
            "Update": {
                **self._at(),
                "Key": item_key(tenant_pk(tenant_id), f"EP#{endpoint_id}"),
                "UpdateExpression": f"SET #status = :deleted, deletedAt = :at, {TTL} = :exp",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":deleted": _s("deleted"),
                    ":at": _s(at),
                    ":exp": {"N": str(int(time.time()) + DELETED_ENDPOINT_RETENTION_SECONDS)},
                },
            }
        }
        writes = [mark, self._count(tenant_id, -1, limited=False)]
        if role_arn is not None:
            writes.append(self._unclaim(role_arn))
        self._transact(writes, tenant_id, None)

    # --- the transactions' parts ------------------------------------------------------------------------
    def _at(self) -> dict[str, Any]:
        return {"TableName": self._table}

    def _count(self, tenant_id: str, change: int, *, limited: bool = True) -> dict[str, Any]:
        """The tenant's endpoint count, changed by `change`; an increase only while it is under the tenant's
        limit (its own `endpointLimit`, else the default)."""
        update: dict[str, Any] = {
            **self._at(),
            "Key": item_key(tenant_pk(tenant_id), "TENANT"),
            "UpdateExpression": "ADD endpointCount :change",
            "ExpressionAttributeValues": {":change": {"N": str(change)}},
        }
        if limited:
            update["ConditionExpression"] = (
                f"attribute_exists({PK}) AND (attribute_not_exists(endpointCount) OR "
                "(attribute_not_exists(endpointLimit) AND endpointCount < :default) OR endpointCount < endpointLimit)"
            )
            update["ExpressionAttributeValues"][":default"] = {"N": str(limits.ENDPOINTS_PER_TENANT_DEFAULT)}
        return {"Update": update}

    def _claim(self, role_arn: str, tenant_id: str) -> dict[str, Any]:
        """The role is this tenant's (or no one's: no endpoint uses it)."""
        return {
            "Update": {
                **self._at(),
                "Key": item_key(f"{ROLE_CLAIM_KEY_PREFIX}{role_arn}", "ROLE"),
                "UpdateExpression": "SET tenantId = :me ADD endpoints :one",
                "ConditionExpression": f"attribute_not_exists({PK}) OR tenantId = :me OR endpoints < :one",
                "ExpressionAttributeValues": {":me": _s(tenant_id), ":one": {"N": "1"}},
            }
        }

    def _unclaim(self, role_arn: str) -> dict[str, Any]:
        return {
            "Update": {
                **self._at(),
                "Key": item_key(f"{ROLE_CLAIM_KEY_PREFIX}{role_arn}", "ROLE"),
                "UpdateExpression": "ADD endpoints :minus",
                "ConditionExpression": f"attribute_exists({PK})",
                "ExpressionAttributeValues": {":minus": {"N": "-1"}},
            }
        }

    def _transact(self, writes: list[dict[str, Any]], tenant_id: str, claimed_role: str | None) -> None:
        """Run `writes` as one transaction; a refused condition becomes the domain's error for it."""
        try:
            self._db.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            index = next((i for i, code in enumerate(reasons) if code == "ConditionalCheckFailed"), -1)
            if index == -1:
                raise
            part = writes[index]
            key = next(iter(part.values()))
            sort = (key.get("Key") or key.get("Item"))[SK]["S"]
            if sort == "TENANT":
                raise LimitExceeded(self._limit_message(tenant_id)) from None
            if sort == "ROLE" and claimed_role is not None:
                raise InvalidInput(
                    "is used by another tenant's endpoint; a role serves the endpoints of one tenant only",
                    field="storageConfig.roleArn",
                ) from None
            raise _Refused(index) from None

    def _limit_message(self, tenant_id: str) -> str:
        item = self._db.get_item(TableName=self._table, Key=item_key(tenant_pk(tenant_id), "TENANT")).get("Item") or {}
        limit = int(item.get("endpointLimit", {}).get("N", limits.ENDPOINTS_PER_TENANT_DEFAULT))
        return (
            f"this tenant has reached its limit of {limit} endpoints (endpointsPerTenant): delete one, or ask the "
            "operator to raise the limit"
        )

    def _query_endpoints(self, tenant_id: str, *, after: str | None, stop_after: int | None) -> Iterator[Endpoint]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"{PK} = :pk AND begins_with({SK}, :ep)",
            "FilterExpression": "#status = :active",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":pk": _s(tenant_pk(tenant_id)),
                ":ep": _s("EP#"),
                ":active": _s("active"),
            },
            "ConsistentRead": True,
        }
        if after:
            kwargs["ExclusiveStartKey"] = item_key(tenant_pk(tenant_id), f"EP#{after}")
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
            PK: _s(tenant_pk(endpoint.tenantId)),
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
