"""What Spool's SQS adapters share: SQS's batch limit, chunking to it, and a SendMessageBatch that retries the
entries SQS refuses. The adapters: sqs_queue.py (routed events), sqs_triggers.py (flush triggers),
sqs_visibility.py (hold-back and back-off); moving messages back from the DLQ is redrive.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spool.adapters.retry import until_done

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BATCH_LIMIT = 10  # SQS's limit per SendMessageBatch / ChangeMessageVisibilityBatch / DeleteMessageBatch


class QueueSendError(RuntimeError):
    """Some messages could not be enqueued after retries; the request fails, so the client retries it."""


def chunks(items: list[Any], size: int = BATCH_LIMIT) -> list[list[Any]]:
    """`items` in runs of at most `size` (one batch call each)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def send_entries(client: SQSClient, queue_url: str, entries: list[dict[str, Any]]) -> None:
    """SendMessageBatch of at most 10 entries; entries SQS refuses are sent again (adapters/retry.py)."""

    def send(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = client.send_message_batch(QueueUrl=queue_url, Entries=pending)  # type: ignore[arg-type]
        failed = {f["Id"] for f in response.get("Failed", [])}
        return [e for e in pending if e["Id"] in failed]

    left = until_done(send, entries)
    if left:
        raise QueueSendError(f"{len(left)} messages could not be enqueued")
