"""Pollers that call the sink handler the way Lambda's SQS event source mapping does.

Each poller receives on its own, gathers a batch until BatchSize, the 6 MB invocation payload cap or its
batching window (counted from the first message) is reached, invokes the handler with an SQS event in
Lambda's format, then deletes the messages that are not reported in `batchItemFailures`. A handler that
raises fails the whole batch (nothing is deleted). Reported failures keep whatever visibility the handler
gave them; the queue's redrive policy moves a message to the DLQ after maxReceiveCount receives.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spool.adapters.retry import until_done
from spool.adapters.sqs_batches import chunks
from spool.local.lambda_context import FakeContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
PAYLOAD_CAP_BYTES = 6 * 1024 * 1024
_RECEIVE = 10  # SQS's most per ReceiveMessage


@dataclass
class PollerConfig:
    batch_size: int = 1000
    window_seconds: float = 1.0
    pollers: int = 5
    region: str = "us-east-1"


@dataclass
class PollerStats:
    invocations: int = 0
    records: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def to_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", "local"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "0"),
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _size(message: dict[str, Any]) -> int:
    return len(message["Body"].encode()) + len(json.dumps(message.get("MessageAttributes", {}))) + 512


class SqsPoller:
    """Several poller threads on one queue, each batching on its own."""

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, config: PollerConfig) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._handler = handler
        self._config = config
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = PollerStats()

    def start(self) -> None:
        for n in range(self._config.pollers):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        carry: list[dict[str, Any]] = []
        while not self._stop.is_set():
            try:
                batch, carry = self._gather(carry)
                if batch:
                    self._invoke(batch)
            except Exception:  # the emulator went away or hiccupped: back off, as the real poller does
                with self.stats.lock:
                    self.stats.errors += 1
                self._stop.wait(1.0)

    def _gather(self, batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        size = sum(_size(m) for m in batch)
        deadline = time.monotonic() + self._config.window_seconds if batch else None
        while not self._stop.is_set():
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if deadline is not None and remaining <= 0:
                return batch, []
            wanted = min(_RECEIVE, self._config.batch_size - len(batch))
            messages = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=max(0, min(1, int(remaining))),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages and deadline is None:
                continue
            if messages and deadline is None:
                deadline = time.monotonic() + self._config.window_seconds
            for i, message in enumerate(messages):
                if size + _size(message) > PAYLOAD_CAP_BYTES and batch:
                    return batch, messages[i:]
                batch.append(message)
                size += _size(message)
            if len(batch) >= self._config.batch_size or self._config.window_seconds == 0:
                return batch, []
            if not messages:
                self._stop.wait(0.05)
        return batch, []

    def _invoke(self, batch: list[dict[str, Any]]) -> None:
        event = {"Records": [to_lambda_record(m, self._arn, self._config.region) for m in batch]}
        with self.stats.lock:
            self.stats.invocations += 1
            self.stats.records += len(batch)
        try:
            response = self._handler(event, FakeContext("spool-sink", timeout_seconds=60))
        except Exception:
            # Like Lambda: the whole batch comes back after the visibility timeout.
            with self.stats.lock:
                self.stats.errors += 1
            return
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        done = [m for m in batch if m["MessageId"] not in failed]
        for chunk in chunks(done):  # DeleteMessageBatch takes SQS's batch limit
            self._delete(chunk)

    def _delete(self, chunk: list[dict[str, Any]]) -> None:
        """Acknowledge, retrying as the real poller does: a lost delete would deliver the batch again."""

        def delete(entries: list[dict[str, str]]) -> list[dict[str, str]]:
            try:
                response = self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)
            except Exception:  # any failure of the call (botocore's retries spent): the whole chunk goes again
                return entries
            failed = {f["Id"] for f in response.get("Failed", [])}
            return [e for e in entries if e["Id"] in failed]

        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)]
        if until_done(delete, entries, attempts=5):
            with self.stats.lock:
                self.stats.errors += 1
