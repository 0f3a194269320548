"""Redrive: move dead-lettered messages of one tenant or endpoint back to the ingest queue (the admin CLI's
`redrive` and the API's POST /api/v1/endpoints/{id}/redrive).

SQS's StartMessageMoveTask moves a whole queue, and SQS cannot receive one endpoint's messages only; so a redrive
*scans* the DLQ: it receives every message, re-sends the chosen ones and deletes them, and keeps the others in
flight until the scan ends, so that its receives reach every message once (a message made visible again at once
would be received again and again, and the scan would never see the rest). Two rules keep tenants apart:

- **One scan at a time.** A scan holds the DLQ's scan lease (one conditional item in the Spool table, `Q#dlq`);
  another redrive waits for it (within its own time limit) instead of scanning beside it, where each would hide
  the other's messages. Every message a scan holds comes back visible when it ends (or, if the scanner dies,
  when the visibility it was given runs out, which is before its lease does).
- **`complete` means it.** A scan answers complete only when a long-polled receive, made while it held the lease,
  found nothing left: no message of the DLQ is then unseen, so none of the chosen endpoint's remains. Otherwise
  (its time ran out, or another scan held the lease all that while) it answers `complete: false`, and calling
  again goes on.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from spool.adapters.dynamo import PK, SK, TTL, TableAdapter, item_key
from spool.adapters.dynamo import string as _s
from spool.adapters.sqs_batches import BATCH_LIMIT, send_entries
from spool.adapters.sqs_visibility import SqsVisibility
from spool.domain import messages as fmt
from spool.names import REDRIVE_LEASE_KEY_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# A redrive from the API stops after this long (the API function has 28 s); the answer says whether to call again.
API_REDRIVE_SECONDS = 20.0
# One pass of the admin CLI's redrive; it calls again until the scan is complete.
CLI_PASS_SECONDS = 120.0
# Messages a scan holds stay in flight this long past the scan's own time limit, in case the scanner dies; its
# lease lasts longer still, so the next scan starts when they are visible again.
HOLD_MARGIN_SECONDS = 30
LEASE_MARGIN_SECONDS = 60
# How often a redrive that found the scan lease taken looks again.
LEASE_POLL_SECONDS = 0.5
# The long poll that confirms nothing is left (a short receive samples only some of SQS's servers).
CONFIRM_WAIT_SECONDS = 1


class ScanLease(TableAdapter):
    """The DLQ's scan lease: one conditional item (layout: adapters/dynamo.py)."""

    KEY = (f"{REDRIVE_LEASE_KEY_PREFIX}dlq", "LEASE")

    def acquire(self, owner: str, seconds: float) -> bool:
        now = time.time()
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    PK: _s(self.KEY[0]),
                    SK: _s(self.KEY[1]),
                    "owner": _s(owner),
                    "leaseUntil": {"N": str(round(now + seconds, 3))},
                    TTL: {"N": str(int(now + seconds) + 3600)},
                },
                ConditionExpression=f"attribute_not_exists({PK}) OR leaseUntil < :now",
                ExpressionAttributeValues={":now": {"N": str(round(now, 3))}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, owner: str) -> None:
        with contextlib.suppress(ClientError):  # not ours any more: it expired and another scan took it
            self._db.delete_item(
                TableName=self._table,
                Key=item_key(*self.KEY),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )


class SqsRedriver:
    """Implements `Redriver` for the api: a redrive bounded by API_REDRIVE_SECONDS."""

    def __init__(self, client: SQSClient, dlq_url: str, queue_url: str, lease: ScanLease) -> None:
        self._sqs = client
        self._dlq = dlq_url
        self._queue = queue_url
        self._lease = lease

    def redrive(self, tenant_id: str | None, endpoint_id: str | None) -> tuple[int, bool]:
        keep = belonging_to(tenant_id, endpoint_id)
        return redrive(self._sqs, self._dlq, self._queue, keep, self._lease, seconds=API_REDRIVE_SECONDS)


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
    lease: ScanLease,
    *,
    seconds: float,
    max_messages: int = 100_000,
) -> tuple[int, bool]:
    """Move DLQ messages for which `keep(tenantId, endpointId)` holds back to the ingest queue, within `seconds`.

    A message is deleted from the DLQ only after it was re-sent, so a crash in between duplicates it (the line's
    id lets readers drop it) and never loses it. Returns (messages moved, whether the scan is complete: see the
    module docstring); it can simply be called again."""
    deadline = time.monotonic() + seconds
    owner = uuid.uuid4().hex
    while not lease.acquire(owner, seconds + HOLD_MARGIN_SECONDS + LEASE_MARGIN_SECONDS):
        if time.monotonic() + LEASE_POLL_SECONDS > deadline:
            return 0, False
        time.sleep(LEASE_POLL_SECONDS)
    held: list[str] = []
    try:
        return _scan(sqs, dlq_url, queue_url, keep, deadline, max_messages, held)
    finally:
        # Messages of other endpoints were only looked at: visible again at once for the next scan.
        SqsVisibility(sqs, dlq_url).change_visibility([(handle, 0) for handle in held])
        lease.release(owner)


def _scan(
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    keep: Callable[[str, str], bool],
    deadline: float,
    max_messages: int,
    held: list[str],
) -> tuple[int, bool]:
    moved = 0
    confirming = False
    while moved < max_messages:
        left = deadline - time.monotonic()
        if left <= CONFIRM_WAIT_SECONDS:
            return moved, False
        received = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=BATCH_LIMIT,
            MessageAttributeNames=["All"],
            AttributeNames=["SentTimestamp"],
            VisibilityTimeout=int(left) + HOLD_MARGIN_SECONDS,
            WaitTimeSeconds=CONFIRM_WAIT_SECONDS if confirming else 0,
        ).get("Messages", [])
        if not received:
            if confirming:
                return moved, True
            confirming = True
            continue
        confirming = False
        chosen: list[Any] = []
        for message in received:
            if keep(*fmt.owner(fmt.api_attributes(message))):
                chosen.append(message)
            else:
                held.append(message["ReceiptHandle"])
        if chosen:
            _move(sqs, dlq_url, queue_url, chosen)
            moved += len(chosen)
    return moved, False


def _move(sqs: SQSClient, dlq_url: str, queue_url: str, chosen: list[Any]) -> None:
    """Re-send `chosen` to the ingest queue as they were (body, attributes, the tenant's fair-queue group), with
    when they were first sent (so their lines keep the flush they belong to, planner.Write), then delete them
    from the DLQ."""

    def received_size(m: Any) -> int:
        return len(m["Body"].encode()) + fmt.ATTRIBUTES_RESERVE_BYTES

    # Bundles can be up to 256 KiB each, which is also the limit of one SendMessageBatch in all.
    for batch in fmt.send_batches(chosen, size=received_size):
        send_entries(
            sqs,
            queue_url,
            [
                {
                    "Id": str(i),
                    "MessageBody": m["Body"],
                    "MessageAttributes": fmt.redriven(
                        m.get("MessageAttributes", {}), m.get("Attributes", {}).get("SentTimestamp")
                    ),
                    **fmt.fair_group(fmt.owner(fmt.api_attributes(m))[0]),
                }
                for i, m in enumerate(batch)
            ],
        )
    sqs.delete_message_batch(
        QueueUrl=dlq_url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chosen)],
    )
