"""Hold-back staging (adapters/staging.py) against moto's S3: what is staged reads back as written, and written
markers keep lines from being written twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spool.adapters.staging import S3Staging, staging_prefix
from spool.domain.naming import ndjson_line

BUCKET, FLUSH_AT = "staging", 1_776_000_000


def order(n: int) -> str:
    return ndjson_line(f"evt_{n:028x}", "order.created", {"orderId": f"ord_{n:06d}"}, "2026-04-14T10:30:00.000Z")


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def staging(s3: Any) -> S3Staging:
    return S3Staging(s3, BUCKET)


def read(staging: S3Staging, endpoint_id: str, flush_at: int) -> list[Any]:
    """What a flush reads for one time: the listing, then the objects listed."""
    return staging.bundles(endpoint_id, flush_at, staging.staged_ids(endpoint_id).get(flush_at, []))


def keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_a_held_remainder_is_one_object_under_its_flush_time_and_reads_back_in_order(
    staging: S3Staging, s3: Any
) -> None:
    lines = [order(n) for n in range(300)]

    [item_id] = staging.stage("ten_a", "ep_a", FLUSH_AT, "holder", lines)

    assert keys(s3) == [item_id]
    assert item_id.startswith(staging_prefix("ep_a", FLUSH_AT))
    [bundle] = read(staging, "ep_a", FLUSH_AT)
    assert (bundle.item_id, bundle.lines, bundle.written) == (item_id, lines, False)
    assert read(staging, "ep_a", FLUSH_AT + 60) == []
    assert read(staging, "ep_b", FLUSH_AT) == []


def test_marked_objects_read_as_written_and_removing_them_leaves_nothing(staging: S3Staging, s3: Any) -> None:
    first = staging.stage("ten_a", "ep_a", FLUSH_AT, "h1", [order(1)])
    second = staging.stage("ten_a", "ep_a", FLUSH_AT, "h2", [order(2)])

    marker = staging.mark_written("ep_a", FLUSH_AT, first)

    found = {b.item_id: b for b in read(staging, "ep_a", FLUSH_AT)}
    assert found[first[0]].written and not found[second[0]].written
    assert found[marker].written and found[marker].lines == []
    staging.remove("ep_a", FLUSH_AT, [*first, *second, marker])
    assert keys(s3) == []


def test_one_listing_gives_every_flush_time_of_the_endpoint_and_nothing_of_another(staging: S3Staging) -> None:
    later = staging.stage("ten_a", "ep_a", FLUSH_AT + 60, "h1", [order(1)])
    first = staging.stage("ten_a", "ep_a", FLUSH_AT, "h2", [order(2)]) + staging.stage(
        "ten_a", "ep_a", FLUSH_AT, "h3", [order(3)]
    )
    staging.stage("ten_a", "ep_ab", FLUSH_AT + 5, "h4", [order(4)])  # another endpoint whose id starts alike

    listed = staging.staged_ids("ep_a")

    assert {t: sorted(ids) for t, ids in listed.items()} == {FLUSH_AT: sorted(first), FLUSH_AT + 60: later}
    assert staging.staged_ids("ep_c") == {}


def test_an_object_removed_after_the_listing_is_skipped_not_an_error(staging: S3Staging, s3: Any) -> None:
    # Another flush held the time's lease, wrote the lines and removed them between this flush's one listing and
    # its taking the lease: the lines are in an object, so there is nothing left to read.
    kept = staging.stage("ten_a", "ep_a", 1_000, "h1", ["a"])
    gone = staging.stage("ten_a", "ep_a", 1_000, "h2", ["b"])
    listed = staging.staged_ids("ep_a")[1_000]
    staging.remove("ep_a", 1_000, gone)

    found = staging.bundles("ep_a", 1_000, listed)

    assert [(b.item_id, b.lines) for b in found] == [(kept[0], ["a"])]
