"""Delivery status and health in the Spool table: one item per endpoint, `S#{tenantId}#{endpointId}` / `STATUS`
(layout: adapters/dynamo.py), written by the sink only and only in the attributes `names.STATUS_ATTRIBUTES`,
which is what the sink's role allows (infra/spool_infra/state.py)."""

from __future__ import annotations

from typing import Any

from spool.adapters.dynamo import TableAdapter, applied, item_key
from spool.adapters.dynamo import corrupt as _corrupt
from spool.adapters.dynamo import string as _s
from spool.domain.health import Health
from spool.domain.naming import iso_timestamp
from spool.domain.status import DeliveryStatus
from spool.names import STATUS_KEY_PREFIX

STATUS_SORT_KEY = "STATUS"


def status_key(tenant_id: str, endpoint_id: str) -> dict[str, Any]:
    return item_key(f"{STATUS_KEY_PREFIX}{tenant_id}#{endpoint_id}", STATUS_SORT_KEY)


def _number(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 3))}


class DynamoStatus(TableAdapter):
    """Implements `StatusBook`."""

    def get_status(self, tenant_id: str, endpoint_id: str) -> DeliveryStatus | None:
        item = self._db.get_item(TableName=self._table, Key=status_key(tenant_id, endpoint_id)).get("Item")
        if not item:
            return None
        try:
            parked = float(item.get("parkedUntil", {}).get("N", "0"))
            return DeliveryStatus(
                lastFlushAt=item.get("lastFlushAt", {}).get("S"),
                lastObjectKey=item.get("lastObjectKey", {}).get("S"),
                lastError=item.get("lastError", {}).get("S"),
                lastErrorAt=item.get("lastErrorAt", {}).get("S"),
                eventsWritten=int(item.get("eventsWritten", {}).get("N", "0")),
                objectsWritten=int(item.get("objectsWritten", {}).get("N", "0")),
                consecutiveFailures=int(item.get("failures", {}).get("N", "0")),
                parkedUntil=iso_timestamp(parked) if parked else None,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise _corrupt("delivery status", item, exc) from None

    def health(self, tenant_id: str, endpoint_id: str) -> Health:
        item = self._db.get_item(
            TableName=self._table,
            Key=status_key(tenant_id, endpoint_id),
            ProjectionExpression="failures, parkedUntil, probeUntil",
        ).get("Item")
        return _health(item or {})

    def record_flush(self, tenant_id: str, endpoint_id: str, *, key: str, events: int, objects: int, at: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=status_key(tenant_id, endpoint_id),
            UpdateExpression=(
                "SET lastFlushAt = :at, lastObjectKey = :key, failures = :zero "
                "ADD eventsWritten :e, objectsWritten :o REMOVE parkedUntil, probeUntil"
            ),
            ExpressionAttributeValues={
                ":at": _s(at),
                ":key": _s(key),
                ":e": {"N": str(events)},
                ":o": {"N": str(objects)},
                ":zero": {"N": "0"},
            },
        )

    def record_failure(self, tenant_id: str, endpoint_id: str, *, message: str, at: str, health: Health | None) -> None:
        values: dict[str, Any] = {":m": _s(message[:1000]), ":at": _s(at)}
        update = "SET lastError = :m, lastErrorAt = :at"
        if health is not None:
            update += ", failures = :failures"
            values[":failures"] = {"N": str(health.failures)}
            if health.parked_until:
                update += ", parkedUntil = :park REMOVE probeUntil"
                values[":park"] = _number(health.parked_until)
        self._db.update_item(
            TableName=self._table,
            Key=status_key(tenant_id, endpoint_id),
            UpdateExpression=update,
            ExpressionAttributeValues=values,
        )

    def take_probe(self, tenant_id: str, endpoint_id: str, *, now: float, until: float) -> bool:
        return applied(
            lambda: self._db.update_item(
                TableName=self._table,
                Key=status_key(tenant_id, endpoint_id),
                UpdateExpression="SET probeUntil = :until",
                ConditionExpression="parkedUntil <= :now AND (attribute_not_exists(probeUntil) OR probeUntil <= :now)",
                ExpressionAttributeValues={":now": _number(now), ":until": _number(until)},
            )
        )

    def release_probe(self, tenant_id: str, endpoint_id: str) -> None:
        self._db.update_item(
            TableName=self._table, Key=status_key(tenant_id, endpoint_id), UpdateExpression="REMOVE probeUntil"
        )


def _health(item: dict[str, Any]) -> Health:
    def number(name: str) -> float:
        return float(item.get(name, {}).get("N", "0"))

    return Health(
        failures=int(number("failures")), parked_until=number("parkedUntil"), probe_until=number("probeUntil")
    )
