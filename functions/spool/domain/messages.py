"""The ingest queue's message format, owned here: the api encodes, the sink decodes, redrive reads the owner.

Two kinds of message travel on the ingest queue (and, after maxReceiveCount receives, sit in the DLQ):

- **An event bundle**: the lines of one request's events for one endpoint, in order, joined by `\\n` (a line is
  compact JSON, so it never holds a newline). Attributes `tenantId`, `endpointId` and `lines` (how many lines
  the body holds, so the sink cuts objects without scanning it; a message without it is odd and goes to the
  DLQ). One request that matches an endpoint is one message for it (split only where a message would pass
  SQS's 256 KiB limit), so a request of 100 events costs one SendMessage entry per matching endpoint, not 100.
- **A flush trigger**: attributes `tenantId`, `endpointId`, `kind` = `flush` and `flushAt` = the flush time
  (Unix seconds); the body only describes it for a person reading the queue.
- **A seal trigger** (endpoints with manifests): `kind` = `seal`, `flushAt` = when the folders of one time
  window may be sealed, `window` = the window's start (Unix seconds).

No other module knows the attribute names: `sqs_attributes` writes them, `decode`, `decode_lambda_record` and
`owner` read them.

Every message is sent with the tenant's id as its `MessageGroupId` (`fair_group`): the ingest queue is a standard
queue, on which a group id makes it an SQS *fair queue*. When one tenant's messages pile up (a flood, or a store
that fails and sends them back), SQS hands the other tenants' messages to the consumers first, so their dwell
time stays low. It changes nothing else: no ordering, no deduplication, no throughput limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from spool.domain.naming import order_key

TENANT, ENDPOINT, KIND, FLUSH_AT, LINES = "tenantId", "endpointId", "kind", "flushAt", "lines"
# Set by a redrive: when the message was first sent (Unix seconds), so its lines keep the flush they belong to.
FIRST_ATTEMPT = "firstAttempt"
FLUSH: Final = "flush"
SEAL: Final = "seal"
WINDOW = "window"
Kind = Literal["event", "flush", "seal"]
# SQS's limit for one message, body and attributes together (and for one SendMessageBatch call in total).
MESSAGE_MAX_BYTES = 256 * 1024
# Room kept for the attributes: names, data types and values (ids are short) with a wide margin.
ATTRIBUTES_RESERVE_BYTES = 1024
BUNDLE_MAX_BYTES = MESSAGE_MAX_BYTES - ATTRIBUTES_RESERVE_BYTES
# SendMessageBatch's most entries per call.
BATCH_MAX_ENTRIES = 10


@dataclass(frozen=True)
class Message:
    """One message of the ingest queue: an event bundle (`kind` event, its lines joined by `\\n` in the body), a
    flush trigger or a seal trigger; as the api and the sink send it, and as the sink decodes it (`decode`)."""

    tenant_id: str
    endpoint_id: str
    body: str = ""  # a received trigger's is left empty: it only describes the trigger for a person
    kind: Kind = "event"
    flush_at: int = 0  # a trigger's time
    line_count: int = 0  # a bundle's lines (attribute `lines`; 0 without one: not a bundle)
    window: int = 0  # a seal trigger's window start
    delay_seconds: int = 0  # sent: how long SQS keeps it from the consumers
    first_attempt: float | None = None  # received: when a redriven message was first sent (`firstAttempt`)

    @property
    def lines(self) -> list[str]:
        return self.body.split("\n") if self.kind == "event" else []

    @property
    def size(self) -> int:
        """Bytes SQS counts: the body and each attribute's name, data type and value."""
        return len(self.body.encode()) + sum(
            len(name) + len(data_type) + len(value) for name, (data_type, value) in _attributes(self).items()
        )


def bundles(tenant_id: str, endpoint_id: str, lines: list[str]) -> list[Message]:
    """`lines` in acceptance order (`naming.order_key`: one request's events share their createdAt, so this is
    the order of their ids) as as few bundles as SQS's size limit allows. The sink relies on every bundle being in
    that order: it orders whole bundles by their first and last lines and looks inside only where two overlap. A
    line is at most `limits.EVENT_MAX_BYTES`, which is below BUNDLE_MAX_BYTES, so every line fits in a bundle of
    its own."""
    found: list[Message] = []
    current: list[str] = []
    size = 0
    for line in sorted(lines, key=order_key):
        cost = len(line.encode()) + (1 if current else 0)
        if current and size + cost > BUNDLE_MAX_BYTES:
            found.append(Message(tenant_id, endpoint_id, "\n".join(current), line_count=len(current)))
            current, size, cost = [], 0, len(line.encode())
        current.append(line)
        size += cost
    if current:
        found.append(Message(tenant_id, endpoint_id, "\n".join(current), line_count=len(current)))
    return found


def flush_trigger(tenant_id: str, endpoint_id: str, flush_at: int, delay_seconds: int) -> Message:
    return Message(
        tenant_id,
        endpoint_id,
        f"flush {endpoint_id} at {flush_at}",
        kind=FLUSH,
        flush_at=flush_at,
        delay_seconds=delay_seconds,
    )


def seal_trigger(tenant_id: str, endpoint_id: str, window: int, seal_at: int, delay_seconds: int) -> Message:
    return Message(
        tenant_id,
        endpoint_id,
        f"seal {endpoint_id} window {window} at {seal_at}",
        kind=SEAL,
        flush_at=seal_at,
        delay_seconds=delay_seconds,
        window=window,
    )


def send_batches[M](messages: list[M], size: Callable[[M], int]) -> Iterator[list[M]]:
    """Messages grouped for SendMessageBatch: at most 10 entries and 256 KiB in all per call. `size` gives a
    message's bytes (an Message's `size`; for messages redrive received, their body and attributes)."""
    batch: list[M] = []
    total = 0
    for message in messages:
        cost = size(message)
        if batch and (len(batch) == BATCH_MAX_ENTRIES or total + cost > MESSAGE_MAX_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(message)
        total += cost
    if batch:
        yield batch


def _attributes(message: Message) -> dict[str, tuple[str, str]]:
    found = {TENANT: ("String", message.tenant_id), ENDPOINT: ("String", message.endpoint_id)}
    if message.kind in (FLUSH, SEAL):
        found[KIND] = ("String", message.kind)
        found[FLUSH_AT] = ("Number", str(message.flush_at))
        if message.kind == SEAL:
            found[WINDOW] = ("Number", str(message.window))
    elif message.line_count:
        found[LINES] = ("Number", str(message.line_count))
    return found


def fair_group(tenant_id: str) -> dict[str, str]:
    """The SendMessage parameter that puts a message of `tenant_id` in its tenant's fair-queue group (none for a
    message without a tenant: SQS takes no empty group id)."""
    return {"MessageGroupId": tenant_id} if tenant_id else {}


def sqs_attributes(message: Message) -> dict[str, dict[str, str]]:
    """The message's attributes as SQS's SendMessage takes them."""
    return {name: {"DataType": t, "StringValue": v} for name, (t, v) in _attributes(message).items()}


def decode(body: str, attributes: Mapping[str, str]) -> Message:
    """A received message from its body and its attributes' string values. A message without Spool's
    attributes decodes with empty ids: it cannot be routed and fails until it reaches the DLQ."""
    get = attributes.get
    return _decoded(
        body, get(TENANT), get(ENDPOINT), get(KIND), get(FLUSH_AT), get(LINES), get(FIRST_ATTEMPT), get(WINDOW)
    )


def decode_lambda_record(record: Mapping[str, Any]) -> Message:
    """`decode` for a record of a Lambda SQS event, each attribute read where it is (`messageAttributes.<name>.
    stringValue`) rather than through a dict of string values built first: the sink decodes every record
    (docs/benchmarks.md, "Measurements behind the code")."""
    raw = record.get("messageAttributes") or _NO_ATTRIBUTES

    def value(name: str) -> str | None:
        return (raw.get(name) or _NO_ATTRIBUTES).get("stringValue")

    return _decoded(
        record["body"],
        value(TENANT),
        value(ENDPOINT),
        value(KIND),
        value(FLUSH_AT),
        value(LINES),
        value(FIRST_ATTEMPT),
        value(WINDOW),
    )


_NO_ATTRIBUTES: Mapping[str, Any] = {}


def _decoded(
    body: str,
    tenant_id: str | None,
    endpoint_id: str | None,
    kind: str | None,
    flush_at: str | None,
    lines: str | None,
    first_attempt: str | None = None,
    window: str | None = None,
) -> Message:
    first = float(first_attempt) if first_attempt and first_attempt.replace(".", "", 1).isdigit() else None
    if kind in (FLUSH, SEAL):
        at = int(flush_at) if flush_at and flush_at.isdigit() else 0
        start = int(window) if window and window.isdigit() else 0
        which: Kind = FLUSH if kind == FLUSH else SEAL
        return Message(tenant_id or "", endpoint_id or "", kind=which, flush_at=at, first_attempt=first, window=start)
    count = int(lines) if lines and lines.isdigit() else 0
    return Message(tenant_id or "", endpoint_id or "", body, line_count=count, first_attempt=first)


def redriven(attributes: Mapping[str, Any], sent_ms: str | None) -> dict[str, Any]:
    """A dead-lettered message's attributes (as ReceiveMessage returns them) for its re-send: as they were, with
    `firstAttempt` set to when it was first sent (SQS keeps a message's SentTimestamp when it moves it to the
    DLQ), unless an earlier redrive set it already."""
    found = dict(attributes)
    if FIRST_ATTEMPT not in found and sent_ms and sent_ms.isdigit():
        found[FIRST_ATTEMPT] = {"DataType": "Number", "StringValue": str(int(sent_ms) / 1000)}
    return found


def owner(attributes: Mapping[str, str]) -> tuple[str, str]:
    """(tenant id, endpoint id) of a message, from its attributes' string values."""
    return attributes.get(TENANT, ""), attributes.get(ENDPOINT, "")


def api_attributes(message: Mapping[str, Any]) -> dict[str, str]:
    """String values of a message's attributes as ReceiveMessage returns them (`MessageAttributes.*.StringValue`)."""
    return _string_values(message.get("MessageAttributes"), "StringValue")


def _string_values(raw: Mapping[str, Any] | None, key: str) -> dict[str, str]:
    return {name: str((value or {}).get(key) or "") for name, value in (raw or {}).items()}
