"""SQS adapter: send routed events and flush triggers to the ingest queue, and change visibility for hold-back
and back-off. Moving messages back from the DLQ is adapters/redrive.py."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from spool.adapters.retry import until_done
from spool.domain import messages as fmt
from spool.domain.ports import OutgoingMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_log = logging.getLogger(__name__)
BATCH_LIMIT = 10  # SQS's limit per SendMessageBatch / ChangeMessageVisibilityBatch / DeleteMessageBatch


class QueueSendError(RuntimeError):
    """Some messages could not be enqueued after retries; the request fails, so the client retries it."""


def _chunks(items: list[Any], size: int = BATCH_LIMIT) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SqsQueue:
    """Implements the domain's `Queue`, the sink's `Triggers` and its `VisibilityPort` (one queue, three uses)."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, messages: list[OutgoingMessage]) -> None:
        for batch in fmt.send_batches(messages, size=lambda m: m.size):
            self.send_entries(
                [
                    {"Id": str(i), "MessageBody": m.body, "MessageAttributes": fmt.sqs_attributes(m)}
                    for i, m in enumerate(batch)
                ]
            )

    def send_entries(self, entries: list[dict[str, Any]]) -> None:
        """SendMessageBatch of at most 10 entries; entries SQS refuses are sent again (adapters/retry.py)."""

        def send(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
            response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=pending)  # type: ignore[arg-type]
            failed = {f["Id"] for f in response.get("Failed", [])}
            return [e for e in pending if e["Id"] in failed]

        left = until_done(send, entries)
        if left:
            raise QueueSendError(f"{len(left)} messages could not be enqueued")

    def send_flush(self, tenant_id: str, endpoint_id: str, boundary: int, delay_seconds: int) -> None:
        trigger = fmt.flush_trigger(tenant_id, endpoint_id, boundary, delay_seconds)
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=trigger.body,
            DelaySeconds=trigger.delay_seconds,
            MessageAttributes=fmt.sqs_attributes(trigger),  # type: ignore[arg-type]
        )

    def change_visibility(self, changes: list[tuple[str, int]]) -> None:
        for chunk in _chunks(changes):
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
