"""The ledger of written objects in the Spool table: one item per object, `W#{endpointId}` / `{entry id}` (layout:
adapters/dynamo.py), recorded before the object's put, confirmed after it, dropped when it failed; marked with
the manifest epoch that lists it. A retry reads it to leave out the lines an earlier attempt wrote; a sealer
reads it to list a folder's objects (docs/delivery.md: written once, sealed partitions)."""

from __future__ import annotations

import time
import zlib
from typing import Any

from spool.adapters.dynamo import PK, SK, TTL, TableAdapter, item_key
from spool.adapters.dynamo import string as _s
from spool.domain.ports import LedgerEntry, Segment, entry_time
from spool.names import LEDGER_KEY_PREFIX

# As long as a message can live (the queue's and the DLQ's 14 days) and a day more: a redrive still finds them.
ENTRY_RETENTION_SECONDS = 15 * 24 * 3600


def _pk(endpoint_id: str) -> str:
    return f"{LEDGER_KEY_PREFIX}{endpoint_id}"


def _number(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 3))}


def pack(segments: tuple[Segment, ...]) -> bytes:
    """Segments as compressed text: a single-event object of a thousand messages is a thousand message ids."""
    return zlib.compress("\n".join(f"{s}\t{start}\t{count}" for s, start, count in segments).encode(), 6)


def unpack(blob: bytes) -> tuple[Segment, ...]:
    text = zlib.decompress(blob).decode()
    found: list[Segment] = []
    for row in text.split("\n") if text else []:
        source, start, count = row.rsplit("\t", 2)
        found.append((source, int(start), int(count)))
    return tuple(found)


class DynamoLedger(TableAdapter):
    """Implements `Ledger`."""

    def record(self, endpoint_id: str, entry: LedgerEntry) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                PK: _s(_pk(endpoint_id)),
                SK: _s(entry.entry_id),
                "key": _s(entry.key),
                "flushedAt": _number(entry.flushed_at),
                "deadline": _number(entry.deadline),
                "bytes": {"N": str(entry.bytes)},
                "events": {"N": str(entry.events)},
                "sha256": _s(entry.sha256),
                "firstCreatedAt": _s(entry.first_created_at),
                "lastCreatedAt": _s(entry.last_created_at),
                "firstId": _s(entry.first_id),
                "lastId": _s(entry.last_id),
                "segments": {"B": pack(entry.segments)},
                "written": {"BOOL": entry.written},
                "epoch": {"N": str(entry.epoch)},
                "sealedAt": _number(entry.sealed_at),
                TTL: {"N": str(int(time.time()) + ENTRY_RETENTION_SECONDS)},
            },
        )

    def confirm(self, endpoint_id: str, entry_id: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=item_key(_pk(endpoint_id), entry_id),
            UpdateExpression="SET written = :true",
            ConditionExpression=f"attribute_exists({PK})",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    def drop(self, endpoint_id: str, entry_id: str) -> None:
        self._db.delete_item(TableName=self._table, Key=item_key(_pk(endpoint_id), entry_id))

    def since(self, endpoint_id: str, after: float) -> list[LedgerEntry]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"{PK} = :pk AND {SK} >= :after",
            "ExpressionAttributeValues": {":pk": _s(_pk(endpoint_id)), ":after": _s(entry_time(after))},
            "ConsistentRead": True,
        }
        found: list[LedgerEntry] = []
        while True:
            page = self._db.query(**kwargs)
            found.extend(_entry(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def listed(self, endpoint_id: str, entry_ids: list[str], epoch: int, sealed_at: float) -> None:
        for entry_id in entry_ids:
            self._db.update_item(
                TableName=self._table,
                Key=item_key(_pk(endpoint_id), entry_id),
                UpdateExpression="SET epoch = :epoch, sealedAt = :at",
                ExpressionAttributeValues={":epoch": {"N": str(epoch)}, ":at": _number(sealed_at)},
            )


def _entry(item: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        entry_id=item[SK]["S"],
        key=item["key"]["S"],
        flushed_at=float(item["flushedAt"]["N"]),
        deadline=float(item["deadline"]["N"]),
        bytes=int(item["bytes"]["N"]),
        events=int(item["events"]["N"]),
        sha256=item["sha256"]["S"],
        first_created_at=item["firstCreatedAt"]["S"],
        last_created_at=item["lastCreatedAt"]["S"],
        first_id=item["firstId"]["S"],
        last_id=item["lastId"]["S"],
        segments=unpack(item["segments"]["B"]),
        written=item["written"]["BOOL"],
        epoch=int(item["epoch"]["N"]),
        sealed_at=float(item.get("sealedAt", {}).get("N", "0")),
    )
