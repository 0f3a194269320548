"""Per-endpoint batching through the local runtime with 5 pollers (issue: data plane, done-when)."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from spool.local.runtime import LocalRuntime
from tests.conftest import spec_body
from tests.servers import Api, Schedule, endpoint_drained, read_objects, wait_until


def endpoint_body(prefix: str, *, batch_size: int, interval: int) -> dict[str, Any]:
    body = spec_body(endpoint=None, prefix=prefix, batchSize=batch_size, flushIntervalSeconds=interval)
    body["url"] = f"s3://my-webhook-archive/{prefix}"
    return body


def test_seven_separate_events_give_one_object_within_five_seconds(
    api: Api, emulator_s3: Any, runtime: LocalRuntime
) -> None:
    prefix = "batching-seven/"
    endpoint = api.create_endpoint(endpoint_body(prefix, batch_size=100, interval=2))
    started = time.monotonic()
    accepted = [api.send("order.created", {"n": n}) for n in range(7)]

    objects = wait_until(lambda: read_objects(emulator_s3, "my-webhook-archive", prefix), timeout=5, what="the object")
    assert time.monotonic() - started <= 5
    # Nothing else is still to come (no message in flight, no flush trigger delayed): the one object is all.
    wait_until(lambda: endpoint_drained(runtime, endpoint["id"]), timeout=30, what="the endpoint's messages")
    objects = read_objects(emulator_s3, "my-webhook-archive", prefix)
    assert len(objects) == 1
    lines = next(iter(objects.values()))
    assert sorted(line["id"] for line in lines) == sorted(a["id"] for a in accepted)


def test_ten_thousand_events_at_a_steady_rate_give_full_objects_and_lose_nothing(api: Api, emulator_s3: Any) -> None:
    prefix = "batching-10k/"
    total, batch_size, interval, seconds = 10_000, 100, 15, 20
    api.create_endpoint(endpoint_body(prefix, batch_size=batch_size, interval=interval))
    accepted: list[str] = []
    lock = threading.Lock()
    schedule = Schedule()

    def sender(worker: int, workers: int) -> None:
        # 50 events per request, requests spread evenly over `seconds`.
        per_request = 50
        requests_total = total // per_request // workers
        for n in schedule.spread(requests_total, seconds):
            events = [
                {"eventType": "order.created", "payload": {"w": worker, "n": n, "i": i}} for i in range(per_request)
            ]
            ids = [e["id"] for e in api.send_batch(events)]
            with lock:
                accepted.extend(ids)

    workers = [threading.Thread(target=schedule.sender(sender), args=(w, 4)) for w in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert len(accepted) == total

    def all_written() -> dict[str, list[dict[str, Any]]] | None:
        objects = read_objects(emulator_s3, "my-webhook-archive", prefix)
        return objects if sum(len(v) for v in objects.values()) >= total else None

    objects = wait_until(all_written, timeout=interval + 30, interval=1.0, what="all 10,000 events")
    written = [line["id"] for lines in objects.values() for line in lines]
    sizes = sorted(len(lines) for lines in objects.values())
    print(
        f"\n10k events: {len(objects)} objects (ideal {math.ceil(total / batch_size)}); partial sizes:",
        [n for n in sizes if n < batch_size],
    )
    assert len(objects) <= 105
    assert max(len(lines) for lines in objects.values()) <= batch_size
    seen: dict[str, list[str]] = {}
    for key, lines in objects.items():
        for line in lines:
            seen.setdefault(line["id"], []).append(f"{key} ({len(lines)} lines)")
    duplicated = {event_id: keys for event_id, keys in seen.items() if len(keys) > 1}
    assert not duplicated, f"{len(duplicated)} duplicated lines, e.g. {list(duplicated.items())[:3]}"
    assert set(written) == set(accepted), "lost or unknown lines"
