"""SQS adapter: send routed events to the ingest queue, change visibility for hold-back and back-off, and
move messages from the DLQ back (redrive)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spool.domain import messages as fmt
from spool.domain.ports import OutgoingMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_log = logging.getLogger(__name__)
_BATCH = 10  # SQS's limit per SendMessageBatch / ChangeMessageVisibilityBatch / DeleteMessageBatch
_SEND_ATTEMPTS = 4


class QueueSendError(RuntimeError):
    """Some messages could not be enqueued after retries; the request fails, so the client retries it."""


def _chunks(items: list[Any], size: int = _BATCH) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SqsQueue:
    """Implements the domain's `Queue` and the sink's `VisibilityPort`."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, messages: list[OutgoingMessage]) -> None:
        for batch in fmt.send_batches(messages, size=lambda m: m.size):
            self._send_entries(
                [
                    {"Id": str(i), "MessageBody": m.body, "MessageAttributes": fmt.sqs_attributes(m)}
                    for i, m in enumerate(batch)
                ]
            )

    def _send_entries(self, entries: list[dict[str, Any]]) -> None:
        for _ in range(_SEND_ATTEMPTS):
            response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[arg-type]
            failed = {f["Id"] for f in response.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed]
            if not entries:
                return
        raise QueueSendError(f"{len(entries)} messages could not be enqueued")

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


def belonging_to(tenant_id: str | None, endpoint_id: str | None) -> Callable[[str, str], bool]:
    """The redrive filter: messages of this tenant and endpoint (None: any)."""

    def keep(tenant: str, endpoint: str) -> bool:
        return (tenant_id is None or tenant == tenant_id) and (endpoint_id is None or endpoint == endpoint_id)

    return keep


def redrive(
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    keep: Callable[[str, str], bool],
    *,
    max_messages: int = 100_000,
    seconds: float | None = None,
) -> tuple[int, bool]:
    """Move DLQ messages for which `keep(tenantId, endpointId)` holds back to the ingest queue.

    SQS's StartMessageMoveTask moves a whole queue; this reads and re-sends instead, so one endpoint's
    messages can be picked. A message is deleted from the DLQ only after it was re-sent, so a crash in
    between duplicates it (the line's id lets readers drop it) and never loses it. Messages of other
    endpoints stay invisible for a short time and then reappear in the DLQ unchanged.

    Returns (messages moved, whether the DLQ was drained of matching messages); it stops early after
    `seconds` (an API call has a deadline) or `max_messages`, and can simply be called again.
    """
    ingest = SqsQueue(sqs, queue_url)
    passed_over: list[str] = []
    try:
        return _redrive(sqs, dlq_url, ingest, keep, max_messages, seconds, passed_over)
    finally:
        # Messages of other endpoints were only looked at: make them visible again at once, so another
        # redrive (another tenant's, say) can move them right away.
        SqsQueue(sqs, dlq_url).change_visibility([(handle, 0) for handle in passed_over])


def _redrive(
    sqs: SQSClient,
    dlq_url: str,
    ingest: SqsQueue,
    keep: Callable[[str, str], bool],
    max_messages: int,
    seconds: float | None,
    passed_over: list[str],
) -> tuple[int, bool]:
    moved = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    while moved < max_messages:
        if deadline is not None and time.monotonic() > deadline:
            return moved, False
        response = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=_BATCH,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
            WaitTimeSeconds=0,
        )
        received = response.get("Messages", [])
        if not received:
            return moved, True
        chosen: list[Any] = []
        others: list[Any] = []
        for message in received:
            tenant, endpoint = fmt.owner(fmt.api_attributes(message))
            (chosen if keep(tenant, endpoint) else others).append(message)
        passed_over.extend(m["ReceiptHandle"] for m in others)
        if chosen:

            def received_size(m: Any) -> int:
                return len(m["Body"].encode()) + fmt.ATTRIBUTES_RESERVE_BYTES

            # Bundles can be up to 256 KiB each, which is also the limit of one SendMessageBatch in all.
            for batch in fmt.send_batches(chosen, size=received_size):
                ingest._send_entries(
                    [
                        {"Id": str(i), "MessageBody": m["Body"], "MessageAttributes": m.get("MessageAttributes", {})}
                        for i, m in enumerate(batch)
                    ]
                )
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chosen)],
            )
            moved += len(chosen)
    return moved, False
