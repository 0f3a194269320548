"""Redrive: move dead-lettered messages of one tenant or endpoint back to the ingest queue (the admin CLI's
`redrive` and the API's POST /api/v1/redrive)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spool.adapters.sqs_batches import BATCH_LIMIT, send_entries
from spool.adapters.sqs_visibility import SqsVisibility
from spool.domain import messages as fmt

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# A redrive from the API stops after this long (the API function has 28 s); the answer says whether to call again.
API_REDRIVE_SECONDS = 20.0


class SqsRedriver:
    """Implements `Redriver` for the api: a redrive bounded by API_REDRIVE_SECONDS."""

    def __init__(self, client: SQSClient, dlq_url: str, queue_url: str) -> None:
        self._sqs = client
        self._dlq = dlq_url
        self._queue = queue_url

    def redrive(self, tenant_id: str | None, endpoint_id: str | None) -> tuple[int, bool]:
        return redrive(
            self._sqs, self._dlq, self._queue, belonging_to(tenant_id, endpoint_id), seconds=API_REDRIVE_SECONDS
        )


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
    passed_over: list[str] = []
    try:
        return _redrive(sqs, dlq_url, queue_url, keep, max_messages, seconds, passed_over)
    finally:
        # Messages of other endpoints were only looked at: make them visible again at once, so another
        # redrive (another tenant's, say) can move them right away.
        SqsVisibility(sqs, dlq_url).change_visibility([(handle, 0) for handle in passed_over])


def _redrive(
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
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
            MaxNumberOfMessages=BATCH_LIMIT,
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
                send_entries(
                    sqs,
                    queue_url,
                    [
                        {"Id": str(i), "MessageBody": m["Body"], "MessageAttributes": m.get("MessageAttributes", {})}
                        for i, m in enumerate(batch)
                    ],
                )
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chosen)],
            )
            moved += len(chosen)
    return moved, False
