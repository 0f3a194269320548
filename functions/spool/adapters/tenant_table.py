"""Tenants and their API keys in the Spool table (layout: adapters/dynamo.py)."""

from __future__ import annotations

from typing import Any

from spool.adapters.dynamo import PK, SK, TableAdapter, applied, item_key, key_lookup_pk, tenant_pk
from spool.adapters.dynamo import string as _s
from spool.domain.ports import ApiKeyRecord, Tenant


class DynamoTenants(TableAdapter):
    """Implements `TenantRepository`."""

    def create_tenant(self, tenant: Tenant) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                PK: _s(tenant_pk(tenant.id)),
                SK: _s("TENANT"),
                "name": _s(tenant.name),
                "createdAt": _s(tenant.createdAt),
            },
            ConditionExpression=f"attribute_not_exists({PK})",
        )

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        item = self._db.get_item(TableName=self._table, Key=item_key(tenant_pk(tenant_id), "TENANT")).get("Item")
        if not item:
            return None
        return _tenant(tenant_id, item)

    def set_endpoint_limit(self, tenant_id: str, limit: int) -> bool:
        return applied(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=item_key(tenant_pk(tenant_id), "TENANT"),
                UpdateExpression="SET endpointLimit = :limit",
                ConditionExpression=f"attribute_exists({PK})",
                ExpressionAttributeValues={":limit": {"N": str(limit)}},
            )
        )

    def list_tenants(self) -> list[Tenant]:
        # Admin-only and rare: a filtered scan is fine here and keeps the table free of a GSI.
        tenants: list[Tenant] = []
        paginator = self._db.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression=f"{SK} = :tenant",
            ExpressionAttributeValues={":tenant": _s("TENANT")},
        ):
            for item in page.get("Items", []):
                tenants.append(_tenant(item[PK]["S"][2:], item))
        return sorted(tenants, key=lambda t: t.id)

    def put_key(self, record: ApiKeyRecord, key_hash: str) -> None:
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            PK: _s(key_lookup_pk(key_hash)),
                            SK: _s("KEY"),
                            "tenantId": _s(record.tenantId),
                            "keyId": _s(record.keyId),
                            "createdAt": _s(record.createdAt),
                            "revoked": {"BOOL": False},
                        },
                        "ConditionExpression": f"attribute_not_exists({PK})",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            PK: _s(tenant_pk(record.tenantId)),
                            SK: _s(f"KEY#{record.keyId}"),
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
            TableName=self._table, Key=item_key(key_lookup_pk(key_hash), "KEY"), ConsistentRead=True
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
            KeyConditionExpression=f"{PK} = :pk AND begins_with({SK}, :key)",
            ExpressionAttributeValues={":pk": _s(tenant_pk(tenant_id)), ":key": _s("KEY#")},
        )
        return [
            ApiKeyRecord(
                keyId=item[SK]["S"][4:],
                tenantId=tenant_id,
                createdAt=item["createdAt"]["S"],
                revoked=item["revoked"]["BOOL"],
            )
            for item in page.get("Items", [])
        ]

    def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        item = self._db.get_item(TableName=self._table, Key=item_key(tenant_pk(tenant_id), f"KEY#{key_id}")).get("Item")
        if not item:
            return False
        revoked = {":t": {"BOOL": True}}
        self._db.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": item_key(tenant_pk(tenant_id), f"KEY#{key_id}"),
                        "UpdateExpression": "SET revoked = :t",
                        "ExpressionAttributeValues": revoked,
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": item_key(key_lookup_pk(item["keyHash"]["S"]), "KEY"),
                        "UpdateExpression": "SET revoked = :t",
                        "ExpressionAttributeValues": revoked,
                    }
                },
            ]
        )
        return True


def _tenant(tenant_id: str, item: dict[str, Any]) -> Tenant:
    limit = item.get("endpointLimit", {}).get("N")
    return Tenant(
        id=tenant_id,
        name=item["name"]["S"],
        createdAt=item["createdAt"]["S"],
        endpointCount=max(0, int(item.get("endpointCount", {}).get("N", "0"))),
        endpointLimit=int(limit) if limit is not None else None,
    )
