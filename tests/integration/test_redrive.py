"""Redrive keeps tenants apart (issue 20, item 7): a redrive never hides another tenant's messages from that
tenant's own redrive, and `complete: true` means none of the chosen messages are left in the DLQ. On the local
runtime's emulator (SQS and the table), with queues of the test's own."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from spool.adapters.redrive import ScanLease, belonging_to, redrive
from spool.domain import messages as fmt
from spool.domain.naming import ndjson_line
from spool.local.runtime import LocalRuntime


@pytest.fixture
def queues(runtime: LocalRuntime) -> tuple[Any, str, str]:
    sqs = runtime.client("sqs")
    run = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"redrive-dlq-{run}")["QueueUrl"]
    queue = sqs.create_queue(QueueName=f"redrive-in-{run}")["QueueUrl"]
    return sqs, dlq, queue


@pytest.fixture
def lease(runtime: LocalRuntime) -> ScanLease:
    assert runtime.resources is not None
    return ScanLease(runtime.client("dynamodb"), runtime.resources.table_name)


def dead_letters(sqs: Any, dlq: str, tenant: str, endpoint: str, count: int) -> None:
    for n in range(count):
        line = ndjson_line(f"evt_{tenant}_{n}", "order.created", {}, "2026-04-14T10:30:00.000Z")
        bundle = fmt.bundles(tenant, endpoint, [line])[0]
        sqs.send_message(QueueUrl=dlq, MessageBody=bundle.body, MessageAttributes=fmt.sqs_attributes(bundle))


def owners(sqs: Any, url: str) -> list[str]:
    """The tenants of every message in `url` (received, then made visible again)."""
    found: dict[str, str] = {}
    for _ in range(20):
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=5
        ).get("Messages", [])
        for m in batch:
            found[m["MessageId"]] = fmt.owner(fmt.api_attributes(m))[0]
        if not batch:
            break
    return sorted(found.values())


def test_a_redrive_under_way_does_not_hide_another_tenants_messages_from_its_redrive(
    queues: tuple[Any, str, str], lease: ScanLease
) -> None:
    sqs, dlq, queue = queues
    dead_letters(sqs, dlq, "ten_a", "ep_a", 25)
    dead_letters(sqs, dlq, "ten_b", "ep_b", 5)
    slow_a = belonging_to("ten_a", None)
    a_started = threading.Event()

    def keep_a(tenant: str, endpoint: str) -> bool:
        a_started.set()
        time.sleep(0.05)  # A's scan takes a while: it holds what it received meanwhile
        return slow_a(tenant, endpoint)

    a_result: list[tuple[int, bool]] = []
    a = threading.Thread(target=lambda: a_result.append(redrive(sqs, dlq, queue, keep_a, lease, seconds=20)))
    a.start()
    assert a_started.wait(10)

    moved_b, complete_b = redrive(sqs, dlq, queue, belonging_to("ten_b", None), lease, seconds=20)
    a.join(30)

    assert (moved_b, complete_b) == (5, True)
    assert a_result == [(25, True)]
    assert owners(sqs, queue).count("ten_b") == 5


def test_complete_is_false_while_another_scan_holds_the_dlq_past_the_time_limit(
    queues: tuple[Any, str, str], lease: ScanLease
) -> None:
    sqs, dlq, queue = queues
    dead_letters(sqs, dlq, "ten_b", "ep_b", 2)
    assert lease.acquire("someone-else", 60)
    try:
        moved, complete = redrive(sqs, dlq, queue, belonging_to("ten_b", None), lease, seconds=2)
    finally:
        lease.release("someone-else")

    assert (moved, complete) == (0, False)
    assert redrive(sqs, dlq, queue, belonging_to("ten_b", None), lease, seconds=20) == (2, True)


def test_redriven_messages_keep_their_tenants_fair_queue_group(queues: tuple[Any, str, str], lease: ScanLease) -> None:
    sqs, dlq, queue = queues
    dead_letters(sqs, dlq, "ten_c", "ep_c", 1)

    redrive(sqs, dlq, queue, belonging_to("ten_c", None), lease, seconds=20)

    [message] = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert message["Attributes"]["MessageGroupId"] == "ten_c"
