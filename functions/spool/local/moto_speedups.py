"""moto inside the local runtime: speed-ups (its request dispatch, its SQS backend) and atomic conditional writes.

moto's server picks the backend for every request under one lock, and on the way lists moto's package
directory (about 180 entries, a stat call each) and tries its URL patterns one by one; the answer depends only on
the host it inferred, so it is kept per host (about a fifth of every emulator call's time, measured with 8
threads of GetObject: 12.7 ms -> 9.6 ms a call).

Every error moto answers (a refused conditional write, a missing key: the sink's leases and ledger make many)
looks up its service's name by building a botocore Session and listing botocore's data directory (a stat call
per service); the name depends only on moto's package name, so it is kept per package. In a `make soak` run it
was a third of the emulator's request time (docs/benchmarks.md, "Measurements behind the code").

moto's SQS is written for correctness on small queues: every ReceiveMessage recomputes all queue attributes
(three scans of the queue) once per returned message, time checks go through datetime, and every deleted
receipt handle costs two scans. At a few hundred messages in flight that is tens of milliseconds per call,
and the local runtime's pollers fall behind a few hundred events per second. These patches keep moto's
behaviour (visibility, delays, receive counts, redrive to the DLQ, retention) and only remove the repeated
work. They are applied to the embedded server only, never to Lambda code.

They also serialise receives, deletes and visibility changes: moto's server answers each request in its own
thread and its ReceiveMessage has no lock, so two pollers receiving at the same instant could both be handed
the same message, which real SQS (practically) never does. Long polling waits outside the lock.

Conditional writes are made atomic, as they are on AWS. moto checks a condition and then writes, in two steps
with no lock between them: S3's PutObject with If-None-Match or If-Match (an object's name taken by two sinks
at once: both puts succeed and the second replaces the first, which S3 refuses with a 412) and DynamoDB's writes
with a ConditionExpression (two sinks taking one flush lease). Spool's written-once and lease logic rests on
those conditions, so a race there lost events in `make soak` (the lines of the replaced object) once Python
switched threads often enough to hit the gap. Each is now one step under a lock of its service.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from moto.sqs import models
from moto.sqs.exceptions import ReceiptHandleIsInvalid

_applied = False


def _now_ms() -> float:
    return time.time() * 1000


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True

    def visible(self: Any) -> bool:
        return bool(_now_ms() > self.visible_at)

    def delayed(self: Any) -> bool:
        return bool(_now_ms() < self.delayed_until)

    def valid_for_retention(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time())

    def delete_many(queue: Any, handles: set[str]) -> set[str]:
        """Delete every message that ever had one of `handles` in one pass; return the handles matched."""
        matched: set[str] = set()
        kept = []
        for message in queue._messages:
            hit = handles.intersection(message.all_receipt_handles)
            if hit:
                matched |= hit
                queue.pending_messages.discard(message)
                queue.deleted_messages.update(message.all_receipt_handles)
                continue
            kept.append(message)
        queue._messages = kept
        return matched

    def delete_message_batch(self: Any, queue_name: str, receipts: list[dict[str, Any]]) -> Any:
        queue = self.get_queue(queue_name)
        handles = {r["ReceiptHandle"] for r in receipts}
        already = handles & queue.deleted_messages
        matched = delete_many(queue, handles - already) | already
        success, errors = [], []
        for receipt in receipts:
            if receipt["ReceiptHandle"] in matched:
                success.append(receipt["Id"])
            else:
                errors.append(
                    {
                        "Id": receipt["Id"],
                        "SenderFault": True,
                        "Code": "ReceiptHandleIsInvalid",
                        "Message": f"The input receipt handle {receipt['ReceiptHandle']!r} is not valid.",
                    }
                )
        return success, errors

    def delete_message(self: Any, queue_name: str, receipt_handle: str) -> None:
        queue = self.get_queue(queue_name)
        if receipt_handle in queue.deleted_messages:
            return
        if not delete_many(queue, {receipt_handle}):
            raise ReceiptHandleIsInvalid()

    lock = threading.RLock()
    original_receive = models.SQSBackend.receive_message
    original_change = models.SQSBackend.change_message_visibility

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.time() + wait_seconds_timeout
        while True:
            with lock:
                found = original_receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.time()
            if found or remaining <= 0:
                return found
            queue = self.get_queue(queue_name)
            with queue._messages_lock:
                queue._messages_lock.wait(min(1.0, remaining))

    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        with lock:
            original_change(self, queue_name, receipt_handle, visibility_timeout)

    def locked(function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return function(*args, **kwargs)

        return call

    _dispatch_once_per_host()
    _error_service_names_once()
    _atomic_conditional_writes()
    models.SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    models.SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]
    delete_message_batch = locked(delete_message_batch)
    delete_message = locked(delete_message)
    models.Message.visible = property(visible)  # type: ignore[method-assign,assignment]
    models.Message.delayed = property(delayed)  # type: ignore[method-assign,assignment]
    models.SQSBackend.is_message_valid_based_on_retention_period = valid_for_retention  # type: ignore[method-assign]
    models.SQSBackend.delete_message_batch = delete_message_batch  # type: ignore[method-assign]
    models.SQSBackend.delete_message = delete_message  # type: ignore[method-assign]


def _error_service_names_once() -> None:
    import functools

    from moto.core import utils

    # moto.core.errors calls it as `utils.service_name_from_moto_package_name`, so replacing the attribute is enough.
    utils.service_name_from_moto_package_name = functools.cache(utils.service_name_from_moto_package_name)


def _dispatch_once_per_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        # Called under the dispatcher's own lock (get_application), so the dict needs none of its own.
        if host not in found:
            found[host] = original(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _atomic_conditional_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3.responses import S3Response

    s3_lock = threading.Lock()
    put_object = S3Response.put_object

    def conditional_put_object(self: Any) -> Any:
        # The check (responses.py) and the write (the backend) happen in this one method.
        if "If-None-Match" in self.headers or "If-Match" in self.headers:
            with s3_lock:
                return put_object(self)
        return put_object(self)

    S3Response.put_object = conditional_put_object  # type: ignore[method-assign]

    # Every write, conditional or not: an unconditional write between another's check and write breaks it too.
    table_lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def write(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with table_lock:
                return _original(*args, **kwargs)

        setattr(DynamoDBBackend, name, write)
