"""Lines a sink before S3 staging held back as DynamoDB items: read and removed, never written any more.

Until this version a held remainder was staged as items `B#{endpointId}#{time} / {holder}#{n}` (zlib
compressed in `z`, plain in `lines` before that) with `#WRITTEN#...` markers. A stack upgraded while lines
were held still has those items and their flush triggers in the queue; the flush reads them beside the S3
staging objects (adapters/staging.py), so an upgrade loses nothing held. The items expire through the table's
TTL 15 days after they were staged; this reader can go once no deployment older than this one is that recent.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from spool.adapters.dynamo import PK, SK
from spool.adapters.leases import LEASE_SK, lease_pk
from spool.adapters.retry import until_done
from spool.domain.ports import StagedBundle

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WRITTEN_SK_PREFIX = "#WRITTEN#"
STAGED_ATTRIBUTE = "z"


def staged_lines(item: dict[str, Any]) -> list[str]:
    """The lines of a staging item, compressed or (written before compression) plain."""
    if STAGED_ATTRIBUTE in item:
        return zlib.decompress(item[STAGED_ATTRIBUTE]["B"]).decode().split("\n")
    return str(item["lines"]["S"]).split("\n")


def _pk(endpoint_id: str, flush_at: int) -> dict[str, str]:
    return {"S": lease_pk(endpoint_id, flush_at)}


class StagedItems:
    """The staging items of one flush time, for `S3Staging` to read and remove."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def bundles(self, endpoint_id: str, flush_at: int) -> list[StagedBundle]:
        found: list[StagedBundle] = []
        written: set[str] = set()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": f"{PK} = :pk",
            "ExpressionAttributeValues": {":pk": _pk(endpoint_id, flush_at)},
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                sk = item[SK]["S"]
                if sk.startswith(WRITTEN_SK_PREFIX):
                    written.update(item["ids"]["SS"])
                    found.append(StagedBundle(item_id=sk, lines=[], written=True))
                elif sk != LEASE_SK:
                    found.append(StagedBundle(item_id=sk, lines=staged_lines(item)))
            if "LastEvaluatedKey" not in page:
                return [StagedBundle(b.item_id, b.lines, b.written or b.item_id in written) for b in found]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def remove(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> None:
        pk = _pk(endpoint_id, flush_at)
        for start in range(0, len(item_ids), 25):
            requests: list[Any] = [
                {"DeleteRequest": {"Key": {PK: pk, SK: {"S": item_id}}}} for item_id in item_ids[start : start + 25]
            ]
            # BatchWriteItem reports throttled deletes as unprocessed instead of failing; botocore's retry
            # config does not cover those (adapters/retry.py). What is left stays: its lines are marked
            # written, and the TTL removes it.
            until_done(self._delete, {self._table: requests}, attempts=8)

    def _delete(self, pending: dict[str, Any]) -> dict[str, Any]:
        return dict(self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {})
