"""Verify's rate per endpoint in the Spool table: one conditional item per key (layout: adapters/dynamo.py)."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from spool.adapters.dynamo import PK, TTL, TableAdapter, item_key
from spool.names import VERIFY_RATE_KEY_PREFIX

RATE_SK = "RATE"
# The table's TTL removes an item this long after its window ends (TTL deletes lag; the condition reads `until`).
RATE_ITEM_GRACE_SECONDS = 3600


class DynamoRateGate(TableAdapter):
    """Implements `RateGate`: `V#{key}` / RATE holds `until`; a take succeeds when there is none or it has passed."""

    def take(self, key: str, seconds: int) -> float | None:
        now = time.time()
        until = now + seconds
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    **item_key(f"{VERIFY_RATE_KEY_PREFIX}{key}", RATE_SK),
                    "until": {"N": f"{until:.3f}"},
                    TTL: {"N": str(int(until) + RATE_ITEM_GRACE_SECONDS)},
                },
                ConditionExpression=f"attribute_not_exists({PK}) OR #until <= :now",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # The holder's item comes with the refusal (ReturnValuesOnConditionCheckFailure), no second read.
            item: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            held = item.get("until", {}).get("N")
            return max(0.0, float(held) - now) if held else float(seconds)
        return None

    def give_back(self, key: str) -> None:
        self._db.delete_item(TableName=self._table, Key=item_key(f"{VERIFY_RATE_KEY_PREFIX}{key}", RATE_SK))
