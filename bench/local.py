"""B4, B5 and B6 through the local runtime: embedded moto server, the HTTP front and 5 SQS pollers that
batch like Lambda's event source mapping, running the real handlers.

Each benchmark runs in a process of its own (`python -m bench.local b4|b5|b6 OUT.json [--quick]`), so its
environment, emulator state and benchmark-only patches (hold-back switched off in B4, call counting in B6)
cannot leak into another benchmark or into the parent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import threading
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from bench.common import deployed, percentile
from bench.stubs import payload
from spool.domain.manifests import is_manifest
from spool.local.runtime import EXAMPLE_BUCKET, POWERTOOLS_ENVIRONMENT, LocalRuntime, LocalSettings, free_port

TENANT_CREDENTIALS = {"accessKeyId": "AKIABENCHMARK0000001", "secretAccessKey": "bench-secret-access-key-000001"}


# --- the runtime and a client -------------------------------------------------------------------------
def start(state: str, *, batch_size: int, window: float, pollers: int = 5) -> LocalRuntime:
    env = LocalSettings.environment(
        port=free_port(),
        aws_port=free_port(),
        state_dir=state,
        pollers=pollers,
        batch_size=batch_size,
        window_seconds=window,
    )
    runtime = LocalRuntime(LocalSettings.from_env(env)).start()
    deadline = time.monotonic() + 30
    while not requests.get(runtime.api_url + "/health", timeout=5).ok:
        if time.monotonic() > deadline:
            raise RuntimeError("the local runtime did not answer /health")
        time.sleep(0.2)
    return runtime


class Client:
    """The tenant's side: one keep-alive HTTP session per sending thread."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.base = runtime.api_url
        self.headers = {"X-API-Key": runtime.api_key, "Content-Type": "application/json"}
        self._local = threading.local()

    def post(self, path: str, body: bytes) -> dict[str, Any]:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        reply = session.post(self.base + path, data=body, headers=self.headers, timeout=60)
        if reply.status_code not in (201, 202):
            raise RuntimeError(f"POST {path}: {reply.status_code} {reply.text[:300]}")
        return dict(reply.json())

    def create_endpoint(self, prefix: str, *, batch_size: int, interval: int, **storage: Any) -> str:
        body = {
            "url": f"s3://{EXAMPLE_BUCKET}/{prefix}",
            "deliveryMode": "storage",
            "eventTypes": ["order.*"],
            "storageConfig": {
                "provider": "s3",
                "bucket": EXAMPLE_BUCKET,
                "prefix": prefix,
                "region": "us-east-1",
                **TENANT_CREDENTIALS,
                "batchSize": batch_size,
                "flushIntervalSeconds": interval,
                **storage,
            },
        }
        return str(self.post("/api/v1/endpoints", json.dumps(body).encode())["id"])

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Every endpoint of the tenant matching a type gets the event: a finished run's endpoint must go."""
        reply = requests.delete(f"{self.base}/api/v1/endpoints/{endpoint_id}", headers=self.headers, timeout=30)
        if reply.status_code != 204:
            raise RuntimeError(f"DELETE endpoint: {reply.status_code} {reply.text[:300]}")


def batch_bodies(events: int, per_request: int) -> list[bytes]:
    """Request bodies of `per_request` ~1 KB events (a single event's body when per_request is 1)."""
    bodies = []
    for start in range(0, events, per_request):
        items = [{"eventType": "order.created", "payload": payload(n)} for n in range(start, start + per_request)]
        bodies.append(json.dumps(items[0] if per_request == 1 else {"events": items}).encode())
    return bodies


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def send_steady(client: Client, bodies: list[bytes], seconds: float, workers: int) -> dict[str, Any]:
    """POST the bodies at evenly spaced times over `seconds` from `workers` threads.

    Returns the accepted events (id -> createdAt as epoch seconds) and how late the sending ran, so a rate
    the machine could not keep up is visible in the results.
    """
    accepted: dict[str, float] = {}
    late = [0.0]
    failures: list[Exception] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def worker(first: int) -> None:
        try:
            for index in range(first, len(bodies), workers):
                due = start + index * seconds / len(bodies)
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load, not waiting for a result
                answer = client.post("/api/v1/events", bodies[index])
                events = answer.get("events", [answer])
                with lock:
                    late[0] = max(late[0], time.monotonic() - due)
                    accepted.update((e["id"], epoch(e["createdAt"])) for e in events)
        except Exception as exc:  # reported below: figures from a partial run would mislead
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), name=f"bench-sender-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"sending failed: {failures[0]!r}")
    return {"accepted": accepted, "seconds": round(time.monotonic() - start, 2), "max_late_s": round(late[0], 2)}


class Objects:
    """Objects under a prefix: when each was first listed and which event ids it holds (each read once)."""

    def __init__(self, runtime: LocalRuntime, prefix: str) -> None:
        self.prefix = prefix
        self.s3 = runtime.client("s3")
        self.seen: dict[str, float] = {}
        self.lines: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def list_new(self) -> None:
        now = time.time()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=EXAMPLE_BUCKET, Prefix=self.prefix):
            for item in page.get("Contents", []):
                with self._lock:
                    self.seen.setdefault(item["Key"], now)

    def read_new(self) -> None:
        self.list_new()
        with self._lock:
            unread = [key for key in self.seen if key not in self.lines]
        for key in unread:
            if is_manifest(key):  # a folder's manifest: a list of objects, no events
                with self._lock:
                    self.lines[key] = []
                continue
            body = self.s3.get_object(Bucket=EXAMPLE_BUCKET, Key=key)["Body"].read().decode()
            ids = [json.loads(line)["id"] for line in body.splitlines()]
            with self._lock:
                self.lines[key] = ids

    def data_keys(self) -> list[str]:
        with self._lock:
            return [key for key in self.lines if not is_manifest(key)]

    def manifest_keys(self) -> list[str]:
        with self._lock:
            return [key for key in self.seen if is_manifest(key)]

    def wait_for_manifests(self, timeout: float) -> None:
        """Poll until every folder that holds objects has its `_manifest.json`."""
        deadline = time.monotonic() + timeout
        while True:
            self.list_new()
            with self._lock:
                keys = list(self.seen)
            folders = {key.rsplit("/", 1)[0] for key in keys if not is_manifest(key)}
            if folders and all(f"{folder}/_manifest.json" in keys for folder in folders):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"folders without a manifest after {timeout} s")
            time.sleep(1.0)

    def written(self) -> dict[str, str]:
        """Event id -> the key of the (first) object holding it."""
        found: dict[str, str] = {}
        with self._lock:
            for key, ids in self.lines.items():
                for event_id in ids:
                    found.setdefault(event_id, key)
        return found

    def wait_for(self, ids: set[str], timeout: float) -> float:
        """Poll until every id is in some object; seconds it took."""
        started = time.monotonic()
        while True:
            self.read_new()
            if ids <= self.written().keys():
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                missing = len(ids - self.written().keys())
                raise RuntimeError(f"{missing} of {len(ids)} events not written under {self.prefix} in {timeout}s")
            time.sleep(0.5)

    def summary(self, ids: set[str], batch_size: int) -> dict[str, Any]:
        counts = [len(lines) for lines in self.lines.values()]
        every = [event_id for lines in self.lines.values() for event_id in lines]
        return {
            "objects": len(self.lines),
            "events": len(ids),
            "ideal": -(-len(ids) // batch_size),
            "full_objects": sum(1 for c in counts if c == batch_size),
            "smallest_object": min(counts, default=0),
            "largest_object": max(counts, default=0),
            "duplicate_lines": len(every) - len(set(every)),
            "unknown_lines": len(set(every) - ids),
        }


def queue_drained(runtime: LocalRuntime, timeout: float) -> None:
    """Wait until the ingest queue holds nothing: no visible, in-flight or delayed (flush trigger) messages."""
    assert runtime.resources is not None
    sqs = runtime.client("sqs")
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    deadline = time.monotonic() + timeout
    while True:
        attributes = sqs.get_queue_attributes(QueueUrl=runtime.resources.queue_url, AttributeNames=names)["Attributes"]
        if all(int(attributes.get(name, "0")) == 0 for name in names):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the ingest queue did not drain: {attributes}")
        time.sleep(0.5)


# --- B4 -----------------------------------------------------------------------------------------------
def switch_off_hold_back(runtime: LocalRuntime) -> None:
    """Each invocation writes its remainder at once as a partial object (Sink.hold_back off)."""
    services = runtime.sink_services
    services.sink = dataclasses.replace(services.sink, hold_back=False)


def objects_run(runtime: LocalRuntime, prefix: str, *, events: int, seconds: float, interval: int) -> dict[str, Any]:
    batch_size, per_request = 100, 50
    client = Client(runtime)
    endpoint_id = client.create_endpoint(prefix, batch_size=batch_size, interval=interval)
    objects = Objects(runtime, prefix)
    sent = send_steady(client, batch_bodies(events, per_request), seconds, workers=4)
    ids = set(sent["accepted"])
    waited = objects.wait_for(ids, timeout=interval + 120)
    client.delete_endpoint(endpoint_id)
    time.sleep(2.0)  # anything written late (a duplicate, a stray partial object) would still show up
    objects.read_new()
    summary = objects.summary(ids, batch_size)
    summary["ratio"] = round(summary["objects"] / summary["ideal"], 4)
    summary.update(
        {"send_seconds": sent["seconds"], "max_late_s": sent["max_late_s"], "tail_seconds": round(waited, 1)}
    )
    return summary


def run_b4(quick: bool) -> dict[str, Any]:
    dep = deployed()
    # 250 events/s: what this 2-core machine carries steadily with the whole runtime in one process.
    events, seconds, interval = (2_000, 8.0, 5) if quick else (10_000, 40.0, 15)
    with tempfile.TemporaryDirectory(prefix="spool-bench-b4-") as state:
        runtime = start(state, batch_size=dep.esm_batch_size, window=dep.esm_window_seconds)
        try:
            held = objects_run(runtime, "bench-b4-hold/", events=events, seconds=seconds, interval=interval)
            switch_off_hold_back(runtime)
            unheld = objects_run(runtime, "bench-b4-nohold/", events=events, seconds=seconds, interval=interval)
        finally:
            runtime.stop()
    return {
        "value": held["ratio"],
        "settings": {
            "events": events,
            "batchSize": 100,
            "flushIntervalSeconds": interval,
            "events_per_request": 50,
            "send_seconds": seconds,
            "pollers": 5,
            "esm_batch_size": dep.esm_batch_size,
            "esm_window_seconds": dep.esm_window_seconds,
        },
        "hold_back": held,
        "no_hold_back": unheld,
    }


# --- B5 -----------------------------------------------------------------------------------------------
def run_b5(quick: bool, window: float) -> dict[str, Any]:
    dep = deployed()
    interval, rate, seconds, endpoints = (5, 2.0, 12.0, 3) if quick else (5, 2.0, 45.0, 3)
    with tempfile.TemporaryDirectory(prefix="spool-bench-b5-") as state:
        runtime = start(state, batch_size=dep.esm_batch_size, window=window)
        try:
            client = Client(runtime)
            prefixes = [f"bench-b5/ep{n}/" for n in range(endpoints)]
            for prefix in prefixes:
                client.create_endpoint(prefix, batch_size=100, interval=interval)
            watchers = [Objects(runtime, prefix) for prefix in prefixes]
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    for watcher in watchers:
                        watcher.list_new()
                    stop.wait(0.1)

            watcher_thread = threading.Thread(target=watch, name="bench-watcher", daemon=True)
            watcher_thread.start()
            arrivals = random.Random(5)
            accepted: dict[str, float] = {}
            started = time.monotonic()
            due = started
            while due - started < seconds:
                due += arrivals.expovariate(rate)
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # Poisson arrivals: pacing, not waiting for a result
                answer = client.post("/api/v1/events", batch_bodies(1, 1)[0])
                accepted[answer["id"]] = epoch(answer["createdAt"])
            for watcher in watchers:
                watcher.wait_for(set(accepted), timeout=interval + 4 * window + 60)
            stop.set()
            watcher_thread.join()
        finally:
            runtime.stop()
    latencies = []
    for watcher in watchers:
        where = watcher.written()
        latencies.extend(watcher.seen[where[event_id]] - created for event_id, created in accepted.items())
    p99 = percentile(latencies, 99)
    return {
        "value": round(p99 - interval, 3),
        "p99_minus_interval_s": round(p99 - interval, 3),
        "settings": {
            "flushIntervalSeconds": interval,
            "batchSize": 100,
            "endpoints": endpoints,
            "events": len(accepted),
            "rate_per_second": rate,
            "send_seconds": seconds,
            "pollers": 5,
            "esm_batch_size": dep.esm_batch_size,
            "esm_window_seconds": window,
            "visibility_poll_seconds": 0.1,
        },
        "samples": len(latencies),
        "latency_s": {
            "p50": round(percentile(latencies, 50), 3),
            "p90": round(percentile(latencies, 90), 3),
            "p99": round(p99, 3),
            "max": round(max(latencies), 3),
        },
        "objects": sum(len(w.seen) for w in watchers),
    }


# --- B6 -----------------------------------------------------------------------------------------------
def run_b6(quick: bool) -> dict[str, Any]:
    from bench.calls import Meter
    from bench.cost import firehose_per_million, per_million
    from spool.handlers import api, sink

    dep = deployed()
    meter = Meter()
    meter.install()
    # The runtime builds both entry points with make_handler (over its own services): meter what they make.
    make_api_handler = api.make_handler
    api.make_handler = lambda services: meter.wrap("api", make_api_handler(services))  # type: ignore[assignment]
    make_handler = sink.make_handler
    sink.make_handler = lambda services: meter.wrap("sink", make_handler(services))  # type: ignore[assignment]
    interval = 15
    phases = {
        # name: (events, events per request, seconds, sender threads)
        "batch": (2_000 if quick else 10_000, 100, 8.0 if quick else 30.0, 2),
        "single": (200 if quick else 1_000, 1, 5.0 if quick else 20.0, 4),
        # The batch phase again, with sealed folders of a minute each (the smallest window a template names, so
        # the most seals per event): its cost counts every seal's calls, until every folder has its manifest.
        "manifests": (2_000 if quick else 10_000, 100, 8.0 if quick else 30.0, 2),
    }
    sealed_storage = {"manifests": True, "keyTemplate": "{prefix}{date}/{hour}{minute}/{timestamp}-{batch}"}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="spool-bench-b6-") as state:
        runtime = start(state, batch_size=dep.esm_batch_size, window=dep.esm_window_seconds)
        try:
            client = Client(runtime)
            for name, (events, per_request, seconds, workers) in phases.items():
                prefix = f"bench-b6-{name}/"
                sealed = name == "manifests"
                storage = sealed_storage if sealed else {}
                endpoint_id = client.create_endpoint(prefix, batch_size=1000, interval=interval, **storage)
                bodies = batch_bodies(events, per_request)
                objects = Objects(runtime, prefix)
                meter.reset()
                meter.active = True
                sent = send_steady(client, bodies, seconds, workers)
                objects.wait_for(set(sent["accepted"]), timeout=interval + 120)
                if sealed:
                    # A minute's seal is due at its end + the interval + the window + the 30 s grace.
                    objects.wait_for_manifests(timeout=60 + interval + dep.esm_window_seconds + 30 + 60)
                queue_drained(runtime, timeout=interval + 60)
                meter.active = False
                client.delete_endpoint(endpoint_id)
                line_bytes = _mean_line_bytes(objects, events)
                model = per_million(meter, events, dep)
                firehose = firehose_per_million(line_bytes)
                model.update(
                    {
                        "events": events,
                        "events_per_request": per_request,
                        "send_seconds": sent["seconds"],
                        "max_late_s": sent["max_late_s"],
                        "objects": len(objects.data_keys()),
                        "manifests": len(objects.manifest_keys()),
                        "mean_line_bytes": round(line_bytes, 1),
                        "firehose_usd_per_million": firehose,
                        "ratio_to_firehose": model["total_usd_per_million"] / firehose,
                    }
                )
                results[name] = model
        finally:
            runtime.stop()
    return {
        "value": round(results["batch"]["ratio_to_firehose"], 3),
        "settings": {
            "batchSize": 1000,
            "flushIntervalSeconds": interval,
            "pollers": 5,
            "esm_batch_size": dep.esm_batch_size,
            "esm_window_seconds": dep.esm_window_seconds,
            "api_memory_mb": dep.api_memory_mb,
            "sink_memory_mb": dep.sink_memory_mb,
            "architecture": dep.architecture,
        },
        **results,
    }


def _mean_line_bytes(objects: Objects, events: int) -> float:
    s3 = objects.s3
    total = 0
    for key in objects.data_keys():
        total += int(s3.head_object(Bucket=EXAMPLE_BUCKET, Key=key)["ContentLength"])
    return total / events - 1  # without the newline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local")
    parser.add_argument("benchmark", choices=["b4", "b5", "b6"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--window", type=float, default=1.0, help="B5: the pollers' batching window")
    args = parser.parse_args(argv)
    # This process's entry point: Powertools' settings, as `make dev` gives them.
    for name, value in POWERTOOLS_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # Powertools warns when an api invocation (endpoint creation, /health) adds no metric; expected here.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    if args.benchmark == "b4":
        result = run_b4(args.quick)
    elif args.benchmark == "b5":
        result = run_b5(args.quick, args.window)
    else:
        result = run_b6(args.quick)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
