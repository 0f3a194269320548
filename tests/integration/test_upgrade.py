"""Upgrading a stack while lines are held: what a sink before S3 staging held as DynamoDB items (with its
flush trigger still in the queue) is written by the new sink, once, and the items are removed."""

from __future__ import annotations

import math
import time
import zlib
from typing import Any

from spool.adapters.sqs_triggers import SqsTriggers
from spool.domain.naming import ndjson_line
from spool.local.runtime import LocalRuntime
from tests.integration.conftest import Api, read_objects, wait_until
from tests.integration.test_batching import endpoint_body

BUCKET = "my-webhook-archive"


def test_lines_held_as_dynamodb_items_before_the_upgrade_are_written_by_their_trigger(
    api: Api, runtime: LocalRuntime, emulator_s3: Any
) -> None:
    assert runtime.resources is not None
    prefix = "upgrade-held/"
    endpoint = api.create_endpoint(endpoint_body(prefix, batch_size=100, interval=2))
    flush_at = math.ceil(time.time() + 2)  # a time the older sink would have picked
    lines = [ndjson_line(f"evt_old{n:025x}", "order.created", {"n": n}, "2026-11-30T10:00:00.000Z") for n in range(3)]
    db = runtime.client("dynamodb")
    # Exactly what the sink before S3 staging wrote: a compressed item and its flush trigger.
    pk = {"S": f"B#{endpoint['id']}#{flush_at}"}
    db.put_item(
        TableName=runtime.resources.table_name,
        Item={
            "pk": pk,
            "sk": {"S": "oldholder#0000"},
            "tenantId": {"S": runtime.tenant_id},
            "z": {"B": zlib.compress("\n".join(lines).encode(), 1)},
            "count": {"N": "3"},
        },
    )
    sqs = runtime.client("sqs")
    SqsTriggers(sqs, runtime.resources.queue_url).send_flush(runtime.tenant_id, endpoint["id"], flush_at, 1)

    objects = wait_until(lambda: read_objects(emulator_s3, BUCKET, prefix), timeout=15, what="the held lines")
    assert sorted(line["id"] for lines in objects.values() for line in lines) == sorted(
        f"evt_old{n:025x}" for n in range(3)
    )

    def items_left() -> list[Any]:
        answer = db.query(
            TableName=runtime.resources.table_name,  # type: ignore[union-attr]
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": pk},
        )
        return [item for item in answer["Items"] if item["sk"]["S"] != "#LEASE"]

    wait_until(lambda: not items_left(), timeout=10, what="the old items removed")
