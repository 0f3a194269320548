"""Powertools Idempotency's records in the Spool table (adapters/idempotency_records.py): one partition each."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from spool.adapters.idempotency import IdempotentIngest, table_records
from spool.domain.events import EventIn
from spool.domain.ingest import Ingest
from spool.names import IDEMPOTENCY_KEY_PREFIX, IDEMPOTENCY_SORT_KEY
from tests.fakes import FakeQueue, FakeRepo


@dataclass
class RecordingDynamo:
    """The item calls Powertools' DynamoDB persistence layer makes, kept by key. A put of a key that exists
    fails as the layer's condition would while the record is live (no record here expires)."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def put_item(self, *, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        key = (Item["pk"]["S"], Item["sk"]["S"])
        if key in self.items:
            error = {"Error": {"Code": "ConditionalCheckFailedException"}, "Item": self.items[key]}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]
        self.items[key] = copy.deepcopy(Item)
        return {}

    def update_item(
        self,
        *,
        TableName: str,
        Key: dict[str, Any],
        ExpressionAttributeNames: dict[str, str],
        ExpressionAttributeValues: dict[str, Any],
        **_: Any,
    ) -> dict[str, Any]:
        item = self.items[(Key["pk"]["S"], Key["sk"]["S"])]
        for name, attribute in ExpressionAttributeNames.items():
            value = ExpressionAttributeValues.get(":" + name.lstrip("#"))
            if value is not None:
                item[attribute] = value
        return {}

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        found = self.items.get((Key["pk"]["S"], Key["sk"]["S"]))
        return {"Item": found} if found else {}

    def delete_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.items.pop((Key["pk"]["S"], Key["sk"]["S"]), None)
        return {}


def ingest_over(client: RecordingDynamo) -> IdempotentIngest:
    return IdempotentIngest(Ingest(FakeRepo(), FakeQueue()), table_records(client, "spool"))


def test_each_idempotency_record_has_a_partition_of_its_own() -> None:
    client = RecordingDynamo()
    ingest = ingest_over(client)
    event = EventIn(eventType="order.created", payload={"n": 1})

    ingest.accept("ten_a", [event], idempotency_key="key-1")
    ingest.accept("ten_a", [event], idempotency_key="key-2")
    ingest.accept("ten_b", [EventIn(id="evt_client_1", eventType="order.created", payload={})])

    partitions = [pk for pk, _ in client.items]
    assert len(partitions) == 3
    assert len(set(partitions)) == 3, "records share a partition key"
    assert all(pk.startswith(IDEMPOTENCY_KEY_PREFIX) for pk in partitions)
    assert {sk for _, sk in client.items} == {IDEMPOTENCY_SORT_KEY}


def test_a_request_without_key_or_event_ids_writes_no_record() -> None:
    client = RecordingDynamo()
    ingest_over(client).accept("ten_a", [EventIn(eventType="order.created", payload={})])
    assert client.items == {}


def test_the_same_key_finds_its_record_again() -> None:
    client = RecordingDynamo()
    ingest = ingest_over(client)
    event = EventIn(eventType="order.created", payload={"n": 1})
    first = ingest.accept("ten_a", [event], idempotency_key="key-1")
    # The record is complete now; a lookup by the same key must reach the same item.
    assert ingest.accept("ten_a", [event], idempotency_key="key-1") == first
