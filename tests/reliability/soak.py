"""`make soak`: a sustained ingest through the local runtime, then an account of every accepted event.

Starts the AWS emulator (moto server) and `python -m spool.local` (HTTP front, 5 SQS pollers, the real handlers;
pointed at that emulator) in processes of their own, on free ports and a temporary state directory; creates 20
endpoints on the emulator's S3 (batchSize 100, flushIntervalSeconds 5); sends 300 events/s for 60 s spread
evenly over them (batch requests of 25 events, paced by a schedule, from several threads with keep-alive
connections); waits until everything is written; prints the figures and stops both processes. The pollers
batch for 5 s, as the deployed event source mapping does. Exit status 0 only when there were no errors and
nothing was lost or misrouted.

Knobs (environment): SPOOL_SOAK_RATE (events/s, 300), SPOOL_SOAK_SECONDS (60), SPOOL_SOAK_ENDPOINTS (20),
SPOOL_SOAK_EVENTS_PER_REQUEST (25), SPOOL_SOAK_WORKERS (8), SPOOL_SOAK_WINDOW_SECONDS (5).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import requests

from spool.local.runtime import EXAMPLE_BUCKET, LocalSettings, RuntimeDescription, free_port
from tests.servers import Schedule, poll, wait_until

RATE = int(os.environ.get("SPOOL_SOAK_RATE", "300"))
SECONDS = int(os.environ.get("SPOOL_SOAK_SECONDS", "60"))
ENDPOINTS = int(os.environ.get("SPOOL_SOAK_ENDPOINTS", "20"))
PER_REQUEST = int(os.environ.get("SPOOL_SOAK_EVENTS_PER_REQUEST", "25"))
WORKERS = int(os.environ.get("SPOOL_SOAK_WORKERS", "8"))
BATCH_SIZE, FLUSH_SECONDS = 100, 5


@dataclass
class Runtime:
    process: subprocess.Popen[bytes]
    state: Path
    api_url: str
    aws_url: str
    key: str
    dlq_url: str
    queue_url: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.aws_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


# The emulator in a process of its own (it stands in for AWS, so its CPU is not Spool's), with the local
# runtime's SQS speed-ups (spool/local/moto_speedups.py) and two more that a sustained load needs:
# - moto's request dispatcher lists its own package directory (about 170 isdir calls) under a global lock on
#   every request, though the list never changes;
# - every SendMessage reads the queue's attributes, which counts the whole queue three times (visible, in
#   flight, delayed): the counts are kept for half a second (SQS documents them as approximate).
EMULATOR = """
import logging, sys, threading, time
from moto import backends
from moto.server import ThreadedMotoServer
from moto.sqs import models
from spool.local import moto_speedups

moto_speedups.apply()
modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: modules

def approximate(name):
    count = getattr(models.Queue, name).fget

    def cached(self):
        now, hit = time.monotonic(), self.__dict__.get("_spool_" + name)
        if hit is None or now - hit[0] > 0.5:
            hit = self.__dict__["_spool_" + name] = (now, count(self))
        return hit[1]

    setattr(models.Queue, name, property(cached))

for name in ("approximate_number_of_messages", "approximate_number_of_messages_not_visible",
             "approximate_number_of_messages_delayed"):
    approximate(name)
logging.getLogger("werkzeug").setLevel(logging.ERROR)
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
threading.Event().wait()
"""


def start_emulator(state: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(state / "emulator.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError("the emulator did not start:\n" + (state / "emulator.log").read_text()[-3000:])
        try:
            return requests.get(url + "/moto-api/", timeout=1) is not None
        except requests.RequestException:
            return False

    wait_until(answers, timeout=30, what="the emulator")
    return process, url


def start(state: Path, aws_url: str, **settings: str | int | float) -> Runtime:
    """The local runtime in a process of its own; `settings` are more LocalSettings fields by name."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        **LocalSettings.environment(
            port=free_port(),
            state_dir=str(state),
            window_seconds=os.environ.get("SPOOL_SOAK_WINDOW_SECONDS", "5"),
            retry_base_seconds=2,
            retry_max_seconds=30,
            **settings,
        ),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore",
    }
    log = open(state / "runtime.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "spool.local"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    described = state / RuntimeDescription.FILE_NAME

    def described_itself() -> bool:
        if process.poll() is not None:
            raise RuntimeError("the local runtime did not start:\n" + (state / "runtime.log").read_text()[-3000:])
        return described.exists()

    wait_until(described_itself, timeout=60, what="the local runtime's runtime.json")
    info = RuntimeDescription.model_validate_json(described.read_text())
    return Runtime(
        process,
        state,
        info.apiUrl,
        info.awsEndpointUrl,
        (state / "dev-api-key").read_text().strip(),
        info.dlqUrl,
        info.queueUrl,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@dataclass
class Load:
    """What the senders saw."""

    accepted: dict[str, list[str]] = field(default_factory=dict)  # endpoint prefix -> ids
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    max_late: float = 0.0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_endpoints(runtime: Runtime, run: str) -> list[tuple[str, str]]:
    """(event type, prefix) per endpoint."""
    made = []
    for n in range(ENDPOINTS):
        event_type, prefix = f"soak.e{n:02d}", f"soak-{run}/e{n:02d}/"
        body = {
            "url": f"s3://{EXAMPLE_BUCKET}/{prefix}",
            "deliveryMode": "storage",
            "eventTypes": [event_type],
            "storageConfig": {
                "provider": "s3",
                "bucket": EXAMPLE_BUCKET,
                "prefix": prefix,
                "region": "us-east-1",
                "accessKeyId": "AKIASOAKSOAKSOAK0001",
                "secretAccessKey": "soak-secret-access-key-0001",
                "batchSize": BATCH_SIZE,
                "flushIntervalSeconds": FLUSH_SECONDS,
            },
        }
        reply = requests.post(f"{runtime.api_url}/api/v1/endpoints", json=body, headers=headers(runtime), timeout=30)
        reply.raise_for_status()
        made.append((event_type, prefix))
    return made


def headers(runtime: Runtime) -> dict[str, str]:
    return {"X-API-Key": runtime.key, "Content-Type": "application/json"}


def send(runtime: Runtime, endpoints: list[tuple[str, str]]) -> Load:
    load = Load(accepted={prefix: [] for _, prefix in endpoints})
    slots = RATE * SECONDS // PER_REQUEST
    interval = PER_REQUEST / RATE
    started = time.monotonic() + 0.5
    schedule = Schedule()

    def worker(first: int) -> None:
        session = requests.Session()
        for slot in range(first, slots, WORKERS):
            late = schedule.pause_until(started + slot * interval)
            if late is None:
                return
            chosen = [endpoints[(slot * PER_REQUEST + i) % len(endpoints)] for i in range(PER_REQUEST)]
            events = [
                {"eventType": t, "payload": {"slot": slot, "i": i, "pad": "x" * 96}} for i, (t, _) in enumerate(chosen)
            ]
            began = time.monotonic()
            try:
                reply = session.post(
                    f"{runtime.api_url}/api/v1/events",
                    data=json.dumps({"events": events}),
                    headers=headers(runtime),
                    timeout=30,
                )
                status = str(reply.status_code)
                ids = [e["id"] for e in reply.json()["events"]] if reply.status_code == 202 else []
                failure = "" if reply.status_code == 202 else f"{status} {reply.text[:300]}"
            except (requests.RequestException, ValueError, KeyError) as exc:
                status, ids, failure = type(exc).__name__, [], f"{type(exc).__name__}: {exc}"[:300]
            took = time.monotonic() - began
            with load.lock:
                if failure:
                    load.failures.append(failure)
                load.statuses[status] += 1
                load.latencies.append(took)
                load.max_late = max(load.max_late, late)
                for (_, prefix), event_id in zip(chosen, ids, strict=False):
                    load.accepted[prefix].append(event_id)

    threads = [threading.Thread(target=schedule.sender(worker), args=(w,), daemon=True) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        schedule.stop()
        raise
    load.seconds = time.monotonic() - started
    return load


@dataclass
class Storage:
    """What the emulator's S3 holds, read incrementally."""

    lines: dict[str, Counter[str]] = field(default_factory=dict)  # prefix -> id -> copies
    written_at: dict[str, float] = field(default_factory=dict)  # id -> the object's flush time (from its key)
    # id -> by when the store had written an object holding it: LastModified, kept in whole seconds (the fraction
    # cut), + 1 s
    stored_at: dict[str, float] = field(default_factory=dict)
    created_at: dict[str, float] = field(default_factory=dict)
    objects: int = 0
    seen: set[str] = field(default_factory=set)

    def read(self, s3: Any, run: str) -> None:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=EXAMPLE_BUCKET, Prefix=f"soak-{run}/"):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key in self.seen:
                    continue
                self.seen.add(key)
                self.objects += 1
                prefix = key.split("/", 2)[0] + "/" + key.split("/", 2)[1] + "/"
                flushed = named_for(key)
                stored = item["LastModified"].timestamp() + 1
                body = s3.get_object(Bucket=EXAMPLE_BUCKET, Key=key)["Body"].read().decode()
                counts = self.lines.setdefault(prefix, Counter())
                for line in body[:-1].split("\n"):
                    event = json.loads(line)
                    counts[event["id"]] += 1
                    self.written_at.setdefault(event["id"], flushed)
                    self.stored_at[event["id"]] = min(stored, self.stored_at.get(event["id"], stored))
                    self.created_at.setdefault(
                        event["id"], datetime.fromisoformat(event["createdAt"].replace("Z", "+00:00")).timestamp()
                    )

    def missing(self, load: Load) -> int:
        return sum(len(set(ids) - set(self.lines.get(prefix, {}))) for prefix, ids in load.accepted.items())


def named_for(key: str) -> int:
    """The flush time (Unix seconds) an object of the default template `{date}/{timestamp}-{batch}` is named for."""
    return int(key.rsplit("/", 1)[1].split("-", 1)[0])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    run = uuid.uuid4().hex[:8]
    print(
        f"soak: {RATE} events/s for {SECONDS} s over {ENDPOINTS} endpoints "
        f"(batchSize {BATCH_SIZE}, flushIntervalSeconds {FLUSH_SECONDS}), {PER_REQUEST} events per request",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="spool-soak-") as temp:
        emulator, aws_url = start_emulator(Path(temp))
        try:
            runtime = start(Path(temp), aws_url)
            try:
                return soak(runtime, run)
            finally:
                stop(runtime.process)
        finally:
            stop(emulator)


def queue_empty(sqs: Any, queue_url: str) -> bool:
    """No message visible, in flight or delayed: nothing more can be written."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    counts = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return all(int(counts.get(name, "0")) == 0 for name in names)


def soak(runtime: Runtime, run: str) -> int:
    endpoints = create_endpoints(runtime, run)
    load = send(runtime, endpoints)
    accepted = sum(len(ids) for ids in load.accepted.values())
    print(f"sent for {load.seconds:.1f} s; waiting for the last flushes ...", flush=True)

    s3, sqs = runtime.client("s3"), runtime.client("sqs")
    storage = Storage()
    sent_done = time.monotonic()

    def all_written() -> bool:
        storage.read(s3, run)
        return storage.missing(load) == 0

    poll(all_written, timeout=FLUSH_SECONDS + 180, interval=1.0)
    drained_after = time.monotonic() - sent_done
    # Anything written late (a duplicate) still counts: read again once nothing is left to deliver.
    poll(lambda: queue_empty(sqs, runtime.queue_url), timeout=FLUSH_SECONDS + 60, interval=1.0)
    storage.read(s3, run)

    written = {i for counts in storage.lines.values() for i in counts}
    all_accepted = {i for ids in load.accepted.values() for i in ids}
    duplicates = sum(c - 1 for counts in storage.lines.values() for c in counts.values())
    lost = len(all_accepted - written)
    misrouted = sum(len(set(counts) - set(load.accepted.get(prefix, []))) for prefix, counts in storage.lines.items())
    end_to_end = [storage.written_at[i] - storage.created_at[i] for i in written if i in storage.created_at]
    dlq = int(
        sqs.get_queue_attributes(QueueUrl=runtime.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )
    delivery_errors = 0
    error_messages: Counter[str] = Counter()
    listed = requests.get(f"{runtime.api_url}/api/v1/endpoints?limit=100", headers=headers(runtime), timeout=30).json()
    for item in listed["items"]:
        detail = requests.get(f"{runtime.api_url}/api/v1/endpoints/{item['id']}", headers=headers(runtime), timeout=30)
        last_error = (detail.json().get("delivery") or {}).get("lastError")
        if last_error:
            delivery_errors += 1
            error_messages[str(last_error)] += 1
    http_errors = sum(n for status, n in load.statuses.items() if status != "202")

    figures = {
        "target_events_per_s": RATE,
        "seconds": SECONDS,
        "endpoints": ENDPOINTS,
        "requests": sum(load.statuses.values()),
        "accepted": accepted,
        "accepted_per_s": round(accepted / load.seconds, 1),
        "http_errors": http_errors,
        "statuses": dict(load.statuses),
        "request_latency_ms": {
            "p50": round(percentile(load.latencies, 50) * 1000, 1),
            "p95": round(percentile(load.latencies, 95) * 1000, 1),
            "p99": round(percentile(load.latencies, 99) * 1000, 1),
            "max": round(max(load.latencies, default=0) * 1000, 1),
        },
        "max_behind_schedule_s": round(load.max_late, 2),
        "written": len(written),
        "lost": lost,
        "duplicates": duplicates,
        "misrouted": misrouted,
        "objects": storage.objects,
        "events_per_object": round(len(written) / storage.objects, 1) if storage.objects else 0,
        "end_to_end_s": {
            "p50": round(percentile(end_to_end, 50), 1),
            "p95": round(percentile(end_to_end, 95), 1),
            "max": round(max(end_to_end, default=0), 1),
        },
        "drained_s_after_last_send": round(drained_after, 1),
        "dlq_messages": dlq,
        "endpoints_with_delivery_errors": delivery_errors,
        "delivery_errors": dict(error_messages),
    }
    print()
    print(
        f"  throughput   {figures['accepted_per_s']} events/s accepted ({accepted} in {figures['requests']} requests)"
    )
    print(f"  errors       {http_errors} HTTP, {delivery_errors} endpoints with delivery errors, {dlq} in the DLQ")
    print(f"  lost         {lost}   duplicates {duplicates}   misrouted {misrouted}")
    print(f"  latency      request p50/p95/p99/max {figures['request_latency_ms']} ms")
    print(f"  end to end   accepted -> written p50/p95/max {figures['end_to_end_s']} s")
    print(f"  objects      {storage.objects} ({figures['events_per_object']} events per object)")
    print(f"  drained      {figures['drained_s_after_last_send']} s after the last request")
    print(json.dumps(figures))
    for failure in load.failures[:5]:
        print(f"  failed request: {failure}")
    problems = [
        line
        for line in (runtime.state / "runtime.log").read_text(errors="replace").splitlines()
        if '"level":"ERROR"' in line or "Traceback" in line or "Error" in line.split(":", 1)[0]
    ]
    for line in problems[:10]:
        print(f"  runtime log: {line[-300:]}")
    ok = http_errors == 0 and lost == 0 and misrouted == 0 and dlq == 0 and delivery_errors == 0
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
