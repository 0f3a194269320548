"""Staging items in DynamoDB (adapters/dynamo.py): held lines are stored compressed, and read back as written;
items staged before compression still read."""

from __future__ import annotations

from spool.adapters.dynamo import STAGED_ATTRIBUTE, DynamoRepository, staged_lines
from spool.domain.naming import ndjson_line
from tests.fakes import FakeDynamoClient


def order(n: int) -> str:
    payload = {"orderId": f"ord_{n:06d}", "customer": {"id": f"cus_{n % 97}", "country": "DE"}, "total": n * 7}
    payload["items"] = [{"sku": f"sku-{n % 13}-{i}", "qty": i + 1, "price": 1999} for i in range(8)]
    return ndjson_line(f"evt_{n:028x}", "order.created", payload, "2026-04-14T10:30:00.000Z")


def test_staged_lines_are_stored_compressed_and_read_back_in_order() -> None:
    client = FakeDynamoClient()
    lines = [order(n) for n in range(300)]

    [item_id] = DynamoRepository(client, "t").stage("ten_a", "ep_a", 1_776_000_000, "holder", lines)

    item = client.items[("B#ep_a#1776000000", item_id)]
    assert "lines" not in item
    assert staged_lines(item) == lines
    raw = sum(len(line.encode()) + 1 for line in lines)
    assert len(item[STAGED_ATTRIBUTE]["B"]) * 4 < raw  # what DynamoDB bills per KB, written and deleted


def test_an_item_staged_before_compression_still_reads() -> None:
    assert staged_lines({"lines": {"S": "a\nb"}}) == ["a", "b"]
