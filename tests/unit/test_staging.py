"""Hold-back staging (adapters/staging.py) against moto's S3 and DynamoDB: what is staged reads back as
written, written markers keep lines from being written twice, and lines an older sink staged as DynamoDB
items (adapters/staged_items.py) are still found and removed, so an upgrade loses nothing held."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spool.adapters.staged_items import StagedItems
from spool.adapters.staging import S3Staging, staging_prefix
from spool.domain.naming import ndjson_line

BUCKET, TABLE, FLUSH_AT = "staging", "spool", 1_776_000_000


def order(n: int) -> str:
    return ndjson_line(f"evt_{n:028x}", "order.created", {"orderId": f"ord_{n:06d}"}, "2026-04-14T10:30:00.000Z")


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, db


@pytest.fixture
def staging(aws: tuple[Any, Any]) -> S3Staging:
    s3, db = aws
    return S3Staging(s3, BUCKET, StagedItems(db, TABLE))


def read(staging: S3Staging, endpoint_id: str, flush_at: int) -> list[Any]:
    """What a flush reads for one time: the listing, then the objects listed (and older items)."""
    return staging.bundles(endpoint_id, flush_at, staging.staged_ids(endpoint_id).get(flush_at, []))


def keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_a_held_remainder_is_one_object_under_its_flush_time_and_reads_back_in_order(
    staging: S3Staging, aws: tuple[Any, Any]
) -> None:
    lines = [order(n) for n in range(300)]

    [item_id] = staging.stage("ten_a", "ep_a", FLUSH_AT, "holder", lines)

    assert keys(aws[0]) == [item_id]
    assert item_id.startswith(staging_prefix("ep_a", FLUSH_AT))
    [bundle] = read(staging, "ep_a", FLUSH_AT)
    assert (bundle.item_id, bundle.lines, bundle.written) == (item_id, lines, False)
    assert read(staging, "ep_a", FLUSH_AT + 60) == []
    assert read(staging, "ep_b", FLUSH_AT) == []


def test_marked_objects_read_as_written_and_removing_them_leaves_nothing(
    staging: S3Staging, aws: tuple[Any, Any]
) -> None:
    first = staging.stage("ten_a", "ep_a", FLUSH_AT, "h1", [order(1)])
    second = staging.stage("ten_a", "ep_a", FLUSH_AT, "h2", [order(2)])

    marker = staging.mark_written("ep_a", FLUSH_AT, first)

    found = {b.item_id: b for b in read(staging, "ep_a", FLUSH_AT)}
    assert found[first[0]].written and not found[second[0]].written
    assert found[marker].written and found[marker].lines == []
    staging.remove("ep_a", FLUSH_AT, [*first, *second, marker])
    assert keys(aws[0]) == []


def put_legacy_item(db: Any, sk: str, lines: list[str], *, compressed: bool = True) -> None:
    body = "\n".join(lines)
    value = {"z": {"B": zlib.compress(body.encode())}} if compressed else {"lines": {"S": body}}
    db.put_item(TableName=TABLE, Item={"pk": {"S": f"B#ep_a#{FLUSH_AT}"}, "sk": {"S": sk}, **value})


def test_lines_an_older_sink_staged_in_dynamodb_are_read_with_the_objects_and_removed(
    staging: S3Staging, aws: tuple[Any, Any]
) -> None:
    s3, db = aws
    put_legacy_item(db, "old#0000", [order(1), order(2)])
    put_legacy_item(db, "older#0000", [order(3)], compressed=False)  # staged before compression
    db.put_item(TableName=TABLE, Item={"pk": {"S": f"B#ep_a#{FLUSH_AT}"}, "sk": {"S": "#LEASE"}})
    new = staging.stage("ten_a", "ep_a", FLUSH_AT, "h1", [order(4)])

    found = read(staging, "ep_a", FLUSH_AT)

    assert sorted(line for b in found for line in b.lines) == sorted(order(n) for n in (1, 2, 3, 4))
    assert {b.item_id for b in found} == {"old#0000", "older#0000", *new}  # the lease is not a bundle
    staging.remove("ep_a", FLUSH_AT, [b.item_id for b in found])
    assert keys(s3) == []
    left = db.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"B#ep_a#{FLUSH_AT}"}},
    )["Items"]
    assert [item["sk"]["S"] for item in left] == ["#LEASE"]


def test_a_written_marker_covers_older_items_too(staging: S3Staging, aws: tuple[Any, Any]) -> None:
    put_legacy_item(aws[1], "old#0000", [order(1)])
    staging.mark_written("ep_a", FLUSH_AT, ["old#0000"])

    [old] = [b for b in read(staging, "ep_a", FLUSH_AT) if b.item_id == "old#0000"]

    assert old.written


def test_one_listing_gives_every_flush_time_of_the_endpoint_and_nothing_of_another(staging: S3Staging) -> None:
    later = staging.stage("ten_a", "ep_a", FLUSH_AT + 60, "h1", [order(1)])
    first = staging.stage("ten_a", "ep_a", FLUSH_AT, "h2", [order(2)]) + staging.stage(
        "ten_a", "ep_a", FLUSH_AT, "h3", [order(3)]
    )
    staging.stage("ten_a", "ep_ab", FLUSH_AT + 5, "h4", [order(4)])  # another endpoint whose id starts alike

    listed = staging.staged_ids("ep_a")

    assert {t: sorted(ids) for t, ids in listed.items()} == {FLUSH_AT: sorted(first), FLUSH_AT + 60: later}
    assert staging.staged_ids("ep_c") == {}
