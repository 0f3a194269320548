"""Faults survived with nothing lost (SPEC: Guarantees), through the local runtime.

Every case ends with the same accounting: once the endpoint is quiet, accepted ids == ids in storage + ids in
the DLQ; a redrive (the one documented manual step) only if something reached the DLQ; then every accepted id
is in storage, the staging area is empty, and duplicates are counted. The runtime's retries are fast (base
1 s, cap 2 s, maxReceiveCount 4), so a fault of ten seconds is enough to reach the DLQ.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from spool.domain.messages import ENDPOINT as ENDPOINT_ATTR
from spool.domain.messages import TENANT as TENANT_ATTR
from spool.handlers.wiring import SinkServices
from spool.local.front import to_event
from spool.local.lambda_context import FakeContext
from spool.local.poller import to_lambda_record
from spool.local.runtime import EXAMPLE_BUCKET, LocalRuntime
from spool.names import IDEMPOTENCY_KEY_PREFIX
from tests.reliability.faults import AwsFaults, Put, StoreProxy, restart_pollers, tracked_puts
from tests.reliability.ledger import Books, Tracked, line_id, read_lines, report
from tests.servers import Api, Seaweed, poll, wait_until

FLUSH_SECONDS = 1


def endpoint_body(
    name: str,
    bucket: str,
    *,
    endpoint: str | None,
    credentials: tuple[str, str],
    batch: int,
    interval: int = FLUSH_SECONDS,
) -> dict[str, Any]:
    prefix = f"{name}-{uuid.uuid4().hex[:6]}/"
    config: dict[str, Any] = {
        "provider": "s3",
        "bucket": bucket,
        "prefix": prefix,
        "region": "us-east-1",
        "accessKeyId": credentials[0],
        "secretAccessKey": credentials[1],
        "batchSize": batch,
        "flushIntervalSeconds": interval,
    }
    if endpoint:
        config["endpoint"] = endpoint
    return {
        "url": f"s3://{bucket}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": [f"rel.{name}.{uuid.uuid4().hex[:6]}"],
        "storageConfig": config,
    }


def tracked(api: Api, books: Books, s3: Any, body: dict[str, Any]) -> Tracked:
    created = api.create_endpoint(body)
    config = body["storageConfig"]
    return Tracked(
        api,
        books,
        s3,
        config["bucket"],
        config["prefix"],
        created["id"],
        config["flushIntervalSeconds"],
        body["eventTypes"][0],
    )


def on_emulator(
    api: Api, books: Books, s3: Any, name: str, *, batch: int = 5, interval: int = FLUSH_SECONDS
) -> Tracked:
    """An endpoint on the runtime's own S3 (moto accepts any credentials)."""
    creds = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    body = endpoint_body(name, EXAMPLE_BUCKET, endpoint=None, credentials=creds, batch=batch, interval=interval)
    return tracked(api, books, s3, body)


def behind_proxy(api: Api, books: Books, seaweed: Seaweed, proxy: StoreProxy, name: str, *, batch: int = 5) -> Tracked:
    """An endpoint on SeaweedFS (which checks signatures), reached through the fault-injecting proxy."""
    bucket = f"rel-{name}-{uuid.uuid4().hex[:6]}"
    seaweed.client().create_bucket(Bucket=bucket)
    body = endpoint_body(
        name, bucket, endpoint=proxy.url, credentials=(seaweed.access_key, seaweed.secret_key), batch=batch
    )
    return tracked(api, books, seaweed.client(), body)


def status(api: Api, endpoint_id: str) -> dict[str, Any]:
    return dict(api.call("GET", f"/api/v1/endpoints/{endpoint_id}").json().get("delivery") or {})


@pytest.mark.parametrize(
    ("status_code", "code", "message"),
    [
        (503, "SlowDown", "Please reduce your request rate."),
        (500, "InternalError", "We encountered an internal error."),
    ],
    ids=["503-SlowDown", "500-InternalError"],
)
def test_store_errors_for_a_while_are_retried_without_loss_or_a_manual_step(
    tenant: Api, books: Books, seaweed: Seaweed, proxy: StoreProxy, status_code: int, code: str, message: str
) -> None:
    endpoint = behind_proxy(tenant, books, seaweed, proxy, f"store{status_code}")
    proxy.fail(status_code, code, message)
    endpoint.send(12)

    # Two write attempts fail (each is two requests: botocore retries once), then the store recovers.
    wait_until(lambda: proxy.count("injected") >= 4, timeout=20, what="failed writes")
    proxy.heal()
    recovery = endpoint.recover()

    report(f"store {status_code} {code}", recovery, injected=proxy.count("injected"))
    assert recovery.final.balanced
    assert recovery.redriven == 0
    assert recovery.final.duplicates == 0


def test_a_store_unreachable_for_ten_seconds_loses_nothing_and_recovers_with_a_redrive(
    tenant: Api, books: Books, seaweed: Seaweed, proxy: StoreProxy
) -> None:
    endpoint = behind_proxy(tenant, books, seaweed, proxy, "unreachable")
    proxy.down()
    started = time.monotonic()
    endpoint.send(12)

    wait_until(
        lambda: time.monotonic() - started >= 10 and status(tenant, endpoint.endpoint_id).get("lastError"),
        timeout=30,
        what="ten seconds of failed deliveries",
    )
    assert "unreachable" in status(tenant, endpoint.endpoint_id)["lastError"]
    proxy.heal()
    recovery = endpoint.recover()

    report("store unreachable 10 s", recovery)
    assert recovery.final.balanced
    assert recovery.final.duplicates == 0


def test_revoked_store_credentials_lose_nothing_once_restored(
    tenant: Api, books: Books, seaweed: Seaweed, proxy: StoreProxy
) -> None:
    endpoint = behind_proxy(tenant, books, seaweed, proxy, "revoked")
    proxy.fail(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    endpoint.send(12)

    # One bundle of 12 events: one write per receive, and botocore does not retry a 403.
    wait_until(lambda: proxy.count("injected") >= 3, timeout=20, what="three refused writes")
    error = wait_until(lambda: status(tenant, endpoint.endpoint_id).get("lastError"), timeout=5, what="lastError")
    assert "InvalidAccessKeyId" in error
    assert seaweed.access_key not in error  # the store echoed the key id; Spool does not repeat it
    proxy.heal()
    recovery = endpoint.recover()

    report("credentials revoked, restored", recovery)
    assert recovery.final.balanced
    assert recovery.final.duplicates == 0


def test_kms_throttling_delays_delivery_but_loses_nothing(
    tenant: Api, books: Books, emulator_s3: Any, sink: SinkServices
) -> None:
    endpoint = on_emulator(tenant, books, emulator_s3, "kms")
    assert sink.clients is not None
    kms = sink.clients.kms
    # Two deliveries fail to decrypt the credentials, each after botocore's three attempts.
    faults = AwsFaults(kms, "ThrottlingException", operations={"Decrypt"}, match=endpoint.endpoint_id, limit=6)
    with faults:
        endpoint.send(12)
        wait_until(lambda: faults.count() >= 6, timeout=30, what="throttled Decrypt calls")
    recovery = endpoint.recover()

    report("KMS throttling", recovery, injected=faults.count())
    assert recovery.final.balanced
    assert recovery.final.duplicates == 0


def test_dynamodb_throttling_delays_delivery_but_loses_nothing(
    tenant: Api, books: Books, emulator_s3: Any, sink: SinkServices
) -> None:
    endpoint = on_emulator(tenant, books, emulator_s3, "dynamodb")
    assert sink.clients is not None
    db = sink.clients.dynamodb
    # Two calls fail, each after botocore's four attempts; the rest go through.
    faults = AwsFaults(db, "ProvisionedThroughputExceededException", match=endpoint.endpoint_id, limit=8)
    with faults:
        endpoint.send(12)
        wait_until(lambda: faults.count() >= 8, timeout=30, what="two throttled DynamoDB calls")
    recovery = endpoint.recover()

    report("DynamoDB throttling", recovery, injected=faults.count())
    assert recovery.final.balanced
    assert recovery.final.duplicates == 0


def test_a_throttled_staging_cleanup_after_a_flush_does_not_write_lines_twice(
    tenant: Api, books: Books, emulator_s3: Any, sink: SinkServices
) -> None:
    # Held for certain: with a 1 s interval, a sink that sees the events more than about 1.5 s after they were
    # accepted (a busy machine) writes them at once (planner.hold_until), and then nothing staged is removed.
    endpoint = on_emulator(tenant, books, emulator_s3, "cleanup", batch=100, interval=3)
    assert sink.clients is not None
    staging = sink.clients.s3
    # The first removal of the flushed lines fails (botocore's three attempts), after the object was written.
    faults = AwsFaults(
        staging, "SlowDown", "Please reduce your request rate.", 503, {"DeleteObject"}, endpoint.endpoint_id, 3
    )
    with faults:
        endpoint.send(5)
        wait_until(lambda: faults.count() >= 3, timeout=20, what="a failed removal of staged lines")
    recovery = endpoint.recover()

    report("staging throttled after a flush", recovery, injected=faults.count())
    assert recovery.final.balanced
    # The flush marks the items it wrote before removing them, so the retried trigger does not write them again.
    assert recovery.final.duplicates == 0


def test_a_flush_lease_left_by_a_dead_sink_delays_the_flush_without_a_manual_step(
    tenant: Api, books: Books, emulator_s3: Any, sink: SinkServices
) -> None:
    endpoint = on_emulator(tenant, books, emulator_s3, "lease", batch=100)
    # A sink that died in the middle of a flush (say, a Lambda timeout while its store hung) never released
    # its lease; it expires after LEASE_SECONDS (120 s), shortened to 20 s here. Every flush time of the next
    # ten seconds is taken, so whichever the held events are staged for is.
    now = int(time.time())
    for flush_at in range(now, now + 10):
        assert sink.sink.leases.acquire(endpoint.endpoint_id, flush_at, "a-sink-that-died", 20)
    endpoint.send(3)
    recovery = endpoint.recover(settle=60)

    report("flush lease left by a dead sink", recovery)
    assert recovery.final.balanced
    assert recovery.final.duplicates == 0
    assert recovery.redriven == 0


class SinkKilled(RuntimeError):
    """The execution environment died (the poller sees the invocation fail)."""


class _Dies(BaseException):
    """Raised inside the sink right after a PutObject succeeded: passes every `except Exception`, so nothing
    after the put runs (no ledger confirmation, no clean-up), as when the process dies there."""


def test_a_sink_killed_right_after_the_put_before_anything_else_writes_nothing_twice(
    runtime: LocalRuntime, tenant: Api, books: Books, emulator_s3: Any, sink: SinkServices
) -> None:
    endpoint = on_emulator(tenant, books, emulator_s3, "crashput", batch=1)
    sqs = runtime.client("sqs")
    assert runtime.resources is not None
    put_then_died: list[str] = []
    stores = sink.stores
    assert stores is not None
    build = stores.build

    def dying(settings: Any, credentials: Any) -> Any:
        store = build(settings, credentials)
        if settings.prefix != endpoint.prefix:
            return store
        put = store.put_new

        def put_new(key: str, body: bytes, **kwargs: Any) -> bool:
            written = bool(put(key, body, **kwargs))
            if written and not put_then_died:
                put_then_died.append(key)
                raise _Dies
            return written

        store.put_new = put_new  # type: ignore[method-assign]
        return store

    def handler(event: dict[str, Any], context: Any) -> Any:
        assert runtime.sink_handler is not None
        try:
            return runtime.sink_handler(event, context)
        except _Dies:
            records = event["Records"]  # back after 1 s rather than the queue's 60 s visibility
            for start in range(0, len(records), 10):
                sqs.change_message_visibility_batch(
                    QueueUrl=runtime.resources.queue_url,  # type: ignore[union-attr]
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 1}
                        for i, r in enumerate(records[start : start + 10])
                    ],
                )
            raise SinkKilled("died right after a PutObject") from None

    stores.build = dying
    sink.sink.directory.forget(runtime.tenant_id, endpoint.endpoint_id)
    restart_pollers(runtime, handler)
    try:
        endpoint.send(5)
        wait_until(lambda: put_then_died, timeout=15, what="a put and the sink dying")
    finally:
        restart_pollers(runtime)
        stores.build = build
    recovery = endpoint.recover()

    report("sink killed right after PutObject, before anything else", recovery)
    assert recovery.final.balanced
    assert recovery.final.duplicates == 0


def test_a_sink_killed_after_its_invocation_before_the_acknowledgement_writes_nothing_twice(
    runtime: LocalRuntime, tenant: Api, books: Books, emulator_s3: Any, sink: SinkServices
) -> None:
    # One event per object: each message is written by the invocation that receives it, so the batch the
    # sink dies with was written in full and every line of it comes back.
    endpoint = on_emulator(tenant, books, emulator_s3, "killed", batch=1)
    sqs = runtime.client("sqs")
    assert runtime.resources is not None
    killed: list[Put] = []

    with tracked_puts(sink) as tracker:

        def dies_after_its_first_write(event: dict[str, Any], context: Any) -> Any:
            with tracker.invocation() as puts:
                assert runtime.sink_handler is not None
                result = runtime.sink_handler(event, context)
            if not killed and any(p.key.startswith(endpoint.prefix) for p in puts):
                killed.extend(p for p in puts if p.key.startswith(endpoint.prefix))
                # Nothing is acknowledged; the batch comes back after the queue's visibility timeout (60 s in
                # the runtime), shortened to 1 s here to keep the test quick.
                records = event["Records"]
                for start in range(0, len(records), 10):
                    sqs.change_message_visibility_batch(
                        QueueUrl=runtime.resources.queue_url,  # type: ignore[union-attr]
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 1}
                            for i, r in enumerate(records[start : start + 10])
                        ],
                    )
                raise SinkKilled("killed after PutObject, before the batch was acknowledged")
            return result

        restart_pollers(runtime, dies_after_its_first_write)
        try:
            endpoint.send(5)
            wait_until(lambda: killed, timeout=15, what="the sink to write and die")
        finally:
            restart_pollers(runtime)  # a fresh execution environment takes over
        recovery = endpoint.recover()

    lines_in_killed_write = sum(p.lines for p in killed)
    report("sink killed after PutObject", recovery, lines_in_killed_write=lines_in_killed_write)
    assert recovery.final.balanced
    assert recovery.redriven == 0
    # Written once: the messages come back, the ledger says their lines are in an object, none is written again
    # (until 2026-12-07 the lines of the write the sink died after were written twice).
    assert lines_in_killed_write > 0
    assert recovery.final.duplicates == 0


def test_a_poison_message_goes_to_the_dlq_without_holding_up_other_events(
    runtime: LocalRuntime, tenant: Api, books: Books, emulator_s3: Any
) -> None:
    endpoint = on_emulator(tenant, books, emulator_s3, "poison", batch=100)
    marker = f"poison-{uuid.uuid4().hex}"
    assert runtime.resources is not None
    runtime.client("sqs").send_message(QueueUrl=runtime.resources.queue_url, MessageBody=marker)
    started = time.monotonic()
    endpoint.send(5)

    wait_until(endpoint.written, timeout=FLUSH_SECONDS + 9, what="the healthy events, on time")
    on_time = time.monotonic() - started
    wait_until(lambda: [m for m in books.dlq() if m["Body"] == marker], timeout=30, what="the poison in the DLQ")
    recovery = endpoint.recover()
    removed = books.remove_from_dlq(lambda m: m["Body"] == marker)

    report("poison message", recovery, healthy_written_after_s=round(on_time, 1), poison_in_dlq=removed)
    assert recovery.final.balanced
    assert recovery.redriven == 0
    assert recovery.final.duplicates == 0
    assert removed == 1


def test_a_message_that_is_not_an_event_line_never_reaches_storage(
    runtime: LocalRuntime, tenant: Api, books: Books, emulator_s3: Any
) -> None:
    endpoint = on_emulator(tenant, books, emulator_s3, "forged", batch=100)
    tenant_id = runtime.api_services.tenants.authenticate(tenant.key)
    forged = f'not an event {uuid.uuid4().hex}\n{{"id":"evt_forged","eventType":"x","payload":{{}}}}'
    assert runtime.resources is not None
    runtime.client("sqs").send_message(
        QueueUrl=runtime.resources.queue_url,
        MessageBody=forged,
        MessageAttributes={
            TENANT_ATTR: {"DataType": "String", "StringValue": tenant_id},
            ENDPOINT_ATTR: {"DataType": "String", "StringValue": endpoint.endpoint_id},
        },
    )
    endpoint.send(3)

    def settled() -> bool:
        lines = [line for lines in read_lines(emulator_s3, EXAMPLE_BUCKET, endpoint.prefix).values() for line in lines]
        in_dlq = any(m["Body"] == forged for m in books.dlq())
        return len(lines) >= 3 and (in_dlq or any("evt_forged" in line for line in lines))

    wait_until(settled, timeout=30, what="the forged message to be written or dead-lettered")
    dead_lettered = books.remove_from_dlq(lambda m: m["Body"] == forged)
    lines = [line for lines in read_lines(emulator_s3, EXAMPLE_BUCKET, endpoint.prefix).values() for line in lines]

    assert sorted(line_id(line) for line in lines) == sorted(endpoint.accepted)
    assert dead_lettered == 1


def test_a_hanging_store_does_not_delay_another_endpoints_events_in_the_same_invocation(
    runtime: LocalRuntime, tenant: Api, books: Books, emulator_s3: Any, seaweed: Seaweed, proxy: StoreProxy
) -> None:
    slow = behind_proxy(tenant, books, seaweed, proxy, "hanging", batch=1)
    fast = on_emulator(tenant, books, emulator_s3, "beside", batch=1)
    assert runtime.resources is not None
    queue = Invocation(runtime)
    runtime.stop_pollers()  # the test plays the poller, to put both endpoints in one invocation, slow first
    try:
        slow.send(1)
        fast.send(1)
        queue.receive({slow.endpoint_id: 1, fast.endpoint_id: 1})
        queue.order(first=slow.endpoint_id)
        proxy.hang()
        queue.start()
        on_time = bool(poll(fast.written, timeout=5))
        proxy.heal()
        queue.finish()
    finally:
        restart_pollers(runtime)
    for endpoint in (slow, fast):
        assert endpoint.recover().final.balanced
    assert on_time, "the healthy endpoint waited for the hanging store"


class Invocation:
    """One sink invocation assembled by hand, acknowledged the way the poller does it."""

    def __init__(self, runtime: LocalRuntime) -> None:
        assert runtime.resources is not None
        self._runtime = runtime
        self._sqs = runtime.client("sqs")
        self._url = runtime.resources.queue_url
        attributes = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])
        self._arn = attributes["Attributes"]["QueueArn"]
        self.messages: list[dict[str, Any]] = []
        self._result: dict[str, Any] = {}
        self._thread: threading.Thread | None = None

    def receive(self, wanted: dict[str, int]) -> None:
        """Receive until `wanted` (endpoint id -> messages) is in hand; other messages go straight back."""

        def complete() -> bool:
            for message in self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=120,
            ).get("Messages", []):
                if _endpoint_of(message) in wanted:
                    self.messages.append(message)
                else:
                    self._sqs.change_message_visibility(
                        QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            have = [_endpoint_of(m) for m in self.messages]
            return all(have.count(endpoint) >= count for endpoint, count in wanted.items())

        wait_until(complete, timeout=15, interval=0, what="the endpoints' messages")

    def order(self, *, first: str) -> None:
        self.messages.sort(key=lambda m: _endpoint_of(m) != first)

    def start(self) -> None:
        event = {"Records": [to_lambda_record(m, self._arn, "us-east-1") for m in self.messages]}

        def run() -> None:
            assert self._runtime.sink_handler is not None
            self._result = self._runtime.sink_handler(event, FakeContext("spool-sink", timeout_seconds=120))

        self._thread = threading.Thread(target=run, name="hand-made-invocation", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        assert self._thread is not None
        self._thread.join(90)
        failed = {f["itemIdentifier"] for f in self._result.get("batchItemFailures", [])}
        for message in self.messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])


def _endpoint_of(message: dict[str, Any]) -> str:
    return str(message.get("MessageAttributes", {}).get(ENDPOINT_ATTR, {}).get("StringValue", ""))


class ApiKilled(BaseException):
    """The api function's environment died mid-request (a timeout, say): no `except Exception` runs."""


def test_an_api_call_that_dies_midway_does_not_block_its_idempotency_key_for_an_hour(
    runtime: LocalRuntime, tenant: Api, books: Books, emulator_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime.resources is not None
    endpoint = on_emulator(tenant, books, emulator_s3, "retry")
    clients = runtime.api_services.clients

    def dies(**_: Any) -> None:
        raise ApiKilled

    # The api's SQS client dies on sending the accepted event: after the idempotency record is written.
    monkeypatch.setattr(clients.sqs, "send_message_batch", dies)
    key = f"retry-{uuid.uuid4().hex}"
    event = to_event(
        "POST",
        "/api/v1/events",
        {"x-api-key": tenant.key, "content-type": "application/json", "idempotency-key": key},
        json.dumps({"eventType": endpoint.event_type, "payload": {}}).encode(),
        "127.0.0.1",
    )
    started = time.time()
    assert runtime.api_handler is not None
    with pytest.raises(ApiKilled):
        runtime.api_handler(event, FakeContext("spool-api", timeout_seconds=28))
    monkeypatch.undo()
    records = [
        item
        for item in _idempotency_records(runtime)
        if item.get("status", {}).get("S") == "INPROGRESS" and float(item.get("expiresAt", {}).get("N", 0)) > started
    ]
    for item in records:
        runtime.client("dynamodb").delete_item(
            TableName=runtime.resources.table_name, Key={"pk": item["pk"], "sk": item["sk"]}
        )

    assert len(records) == 1
    # Powertools frees an in-progress key when the invocation's time is up, if it was told the deadline.
    deadline = records[0].get("in_progress_expiration", {}).get("N")
    assert deadline is not None, "the key stays in progress until the record expires (1 h): retries answer 409"
    assert float(deadline) / 1000 <= started + 30


def _idempotency_records(runtime: LocalRuntime) -> list[dict[str, Any]]:
    assert runtime.resources is not None
    found: list[dict[str, Any]] = []
    # Each record has a partition of its own (adapters/idempotency_records.py): a scan finds them all.
    for page in (
        runtime.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=runtime.resources.table_name,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": IDEMPOTENCY_KEY_PREFIX}},
        )
    ):
        found.extend(page.get("Items", []))
    return found
