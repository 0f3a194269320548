"""The sink's `VisibilityPort` on SQS: hold-back and back-off by changing received messages' visibility."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from spool.adapters.sqs_batches import chunks

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_log = logging.getLogger(__name__)


class SqsVisibility:
    """Implements `VisibilityPort`: ChangeMessageVisibilityBatch calls of at most 10 messages, best effort."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def change_visibility(self, changes: list[tuple[str, int]]) -> None:
        for chunk in chunks(changes):
            response = self._sqs.change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                    for i, (handle, seconds) in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                # The message then comes back at the queue's default visibility timeout: later than wanted,
                # never lost.
                _log.warning("visibility change failed for %d messages", len(response["Failed"]))
