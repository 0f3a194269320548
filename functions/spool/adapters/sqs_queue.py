"""The domain's `Queue` on SQS: routed events, as bundles, to the ingest queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spool.adapters.sqs_batches import send_entries
from spool.domain import messages as fmt

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsQueue:
    """Implements `Queue`: every message sent in SendMessageBatch calls, or `QueueSendError`."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, messages: list[fmt.Message]) -> None:
        for batch in fmt.send_batches(messages, size=lambda m: m.size):
            send_entries(
                self._sqs,
                self._url,
                [
                    {
                        "Id": str(i),
                        "MessageBody": m.body,
                        "MessageAttributes": fmt.sqs_attributes(m),
                        **fmt.fair_group(m.tenant_id),
                    }
                    for i, m in enumerate(batch)
                ],
            )
