"""`make soak-hostile`: the soak (tests/reliability/soak.py: 300 events/s for 60 s over 20 endpoints through the local
runtime) with two hostile tenants beside it: one whose store answers one byte a second and never finishes
(tests/drip.py), one whose store refuses every connection. Each hostile tenant sends 10 events/s. Prints the
soak's JSON summary, where `lost`, `in_dlq`, `duplicates` and `end_to_end_s` are the healthy endpoints' (end to
end: from an event's createdAt to when the store wrote its object, by the object's LastModified, which the
emulator keeps in whole seconds, plus one second: an upper bound; `lost`: neither written nor in the DLQ), and
a `hostile` object with each hostile endpoint's `events`, `written`, `in_dlq` and `lost` once every hostile
message has reached the DLQ (the runtime runs with 4 receives before the DLQ, so that takes minutes, not half an
hour). Exit status 0 only when the healthy endpoints lost, dead-lettered and duplicated nothing, their events
landed within 15 s, and no hostile event was lost.

Knobs: the soak's (SPOOL_SOAK_*), and SPOOL_SOAK_HOSTILE_RATE (events/s per hostile tenant, 10).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from spool.domain import messages as fmt
from spool.local.runtime import RuntimeDescription
from tests.drip import DripServer
from tests.reliability import soak
from tests.servers import Schedule, poll

HOSTILE_RATE = int(os.environ.get("SPOOL_SOAK_HOSTILE_RATE", "10"))
MAX_RECEIVES = 4
HEALTHY_MAX_SECONDS = 15
# After sending, how long the run leaves the emulator to the runtime before it reads what was written.
QUIET_SECONDS = HEALTHY_MAX_SECONDS + 10


@dataclass
class Hostile:
    name: str
    key: str
    endpoint_id: str
    event_type: str
    accepted: list[str] = field(default_factory=list)


def admin_tenant(runtime: soak.Runtime, name: str) -> str:
    """A tenant made with the admin CLI against the running runtime; its API key."""
    done = subprocess.run(
        [sys.executable, "-m", "spool.cli", "admin", "tenant", "create", name],
        env={**os.environ, "SPOOL_DEV_STATE_DIR": str(runtime.state)},
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout.strip().splitlines()[-1])["apiKey"])


def hostile_endpoint(runtime: soak.Runtime, name: str, store_url: str) -> Hostile:
    key = admin_tenant(runtime, f"hostile-{name}")
    event_type = f"hostile.{name}"
    body = {
        "url": f"s3://hostile-{name}/events/",
        "deliveryMode": "storage",
        "eventTypes": [event_type],
        "storageConfig": {
            "provider": "s3",
            "bucket": f"hostile-{name}",
            "prefix": "events/",
            "region": "us-east-1",
            "endpoint": store_url,
            "accessKeyId": "AKIAHOSTILEHOSTILE01",
            "secretAccessKey": "hostile-secret-access-key-01",
            "batchSize": soak.BATCH_SIZE,
            "flushIntervalSeconds": soak.FLUSH_SECONDS,
        },
    }
    reply = requests.post(f"{runtime.api_url}/api/v1/endpoints", json=body, headers={"X-API-Key": key}, timeout=30)
    reply.raise_for_status()
    return Hostile(name, key, reply.json()["id"], event_type)


def send_hostile(runtime: soak.Runtime, tenants: list[Hostile], schedule: Schedule) -> list[threading.Thread]:
    per_request = max(1, HOSTILE_RATE // 2)  # two requests a second

    def one(tenant: Hostile) -> None:
        session = requests.Session()
        for n in schedule.spread(soak.SECONDS * 2, soak.SECONDS):
            events = [{"eventType": tenant.event_type, "payload": {"n": n, "i": i}} for i in range(per_request)]
            reply = session.post(
                f"{runtime.api_url}/api/v1/events",
                json={"events": events},
                headers={"X-API-Key": tenant.key},
                timeout=30,
            )
            if reply.status_code == 202:
                tenant.accepted.extend(e["id"] for e in reply.json()["events"])

    threads = [threading.Thread(target=schedule.sender(one), args=(t,), daemon=True) for t in tenants]
    for thread in threads:
        thread.start()
    return threads


def dead_lettered(runtime: soak.Runtime, endpoint_ids: set[str]) -> dict[str, set[str]]:
    """Event ids of the given endpoints in the DLQ: bundles' lines, and for flush triggers the lines staged for
    their flush time (and the next, which a flush takes with it). Receives every DLQ message once (nothing else
    consumes the DLQ here) and leaves them in flight."""
    sqs, s3 = runtime.client("sqs"), runtime.client("s3")
    staging = RuntimeDescription.model_validate_json((runtime.state / RuntimeDescription.FILE_NAME).read_text())
    staging_bucket = staging.stagingBucket
    found: dict[str, set[str]] = {e: set() for e in endpoint_ids}
    while True:
        batch = sqs.receive_message(
            QueueUrl=runtime.dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
            VisibilityTimeout=300,
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            decoded = fmt.decode(message["Body"], fmt.api_attributes(message))
            if decoded.endpoint_id not in found:
                continue
            if decoded.kind == fmt.FLUSH:
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=staging_bucket, Prefix=f"{decoded.endpoint_id}/"
                ):
                    for item in page.get("Contents", []):
                        body = s3.get_object(Bucket=staging_bucket, Key=item["Key"])["Body"].read().decode()
                        found[decoded.endpoint_id] |= {json.loads(line)["id"] for line in body.split("\n") if line}
            elif decoded.kind == "event":
                found[decoded.endpoint_id] |= {json.loads(line)["id"] for line in decoded.lines}


def healthy_endpoint_ids(runtime: soak.Runtime, endpoints: list[tuple[str, str]]) -> list[str]:
    """The ids of the soak's endpoints (the dev tenant's, by their prefixes)."""
    listed = requests.get(f"{runtime.api_url}/api/v1/endpoints?limit=100", headers=soak.headers(runtime), timeout=30)
    by_prefix = {e["storageConfig"]["prefix"]: e["id"] for e in listed.json()["items"]}
    return [by_prefix[prefix] for _, prefix in endpoints]


def main() -> int:
    run = uuid.uuid4().hex[:8]
    print(
        f"soak-hostile: {soak.RATE} events/s for {soak.SECONDS} s over {soak.ENDPOINTS} endpoints, plus a dripping "
        f"and a refusing store's tenants at {HOSTILE_RATE} events/s each",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="spool-soak-hostile-") as temp:
        emulator, aws_url = soak.start_emulator(Path(temp))
        drip = DripServer()
        refusing = socket.socket()  # bound, never listening: every connection is refused
        refusing.bind(("127.0.0.1", 0))
        try:
            runtime = soak.start(Path(temp), aws_url, max_receive_count=MAX_RECEIVES)
            try:
                return hostile_soak(runtime, run, drip.url, f"http://127.0.0.1:{refusing.getsockname()[1]}")
            finally:
                soak.stop(runtime.process)
        finally:
            drip.stop()
            refusing.close()
            soak.stop(emulator)


def hostile_soak(runtime: soak.Runtime, run: str, drip_url: str, refusing_url: str) -> int:
    endpoints = soak.create_endpoints(runtime, run)
    tenants = [hostile_endpoint(runtime, "drip", drip_url), hostile_endpoint(runtime, "refused", refusing_url)]
    s3, sqs = runtime.client("s3"), runtime.client("sqs")
    storage = soak.Storage()
    schedule = Schedule()
    hostile_threads = send_hostile(runtime, tenants, schedule)
    load = soak.send(runtime, endpoints)
    for thread in hostile_threads:
        thread.join()
    print(
        f"sent for {load.seconds:.1f} s; waiting for the healthy endpoints, then the hostile ones' DLQ ...", flush=True
    )
    # Nothing is asked of the emulator while the runtime works: a listing of the run's 1,100 objects takes it
    # about 0.7 s (measured on an idle machine), and the runtime's own calls wait meanwhile. When each object
    # was written is the store's own record (LastModified), read afterwards; the last events should be written
    # by the time this quiet spell ends, and the polls below find any that are not.
    time.sleep(QUIET_SECONDS)

    def all_written() -> bool:
        storage.read(s3, run)
        return storage.missing(load) == 0

    poll(all_written, timeout=soak.FLUSH_SECONDS + 180, interval=2.0)
    # Every message settled: healthy ones written, hostile ones (after their receives) in the DLQ.
    poll(lambda: soak.queue_empty(sqs, runtime.queue_url), timeout=900, interval=2.0)
    storage.read(s3, run)

    written = {i for counts in storage.lines.values() for i in counts}
    accepted = {i for ids in load.accepted.values() for i in ids}
    duplicates = sum(c - 1 for counts in storage.lines.values() for c in counts.values())
    end_to_end = [storage.stored_at[i] - storage.created_at[i] for i in written if i in storage.created_at]
    # As `make soak` measures it: to the flush time the object is named for (its flush's first attempt, or for
    # held lines the time they were held for: a lower bound, as a late flush trigger does not move it).
    named = [storage.written_at[i] - storage.created_at[i] for i in written if i in storage.created_at]
    healthy_ids = healthy_endpoint_ids(runtime, endpoints)
    dead = dead_lettered(runtime, {t.endpoint_id for t in tenants} | set(healthy_ids))
    # A healthy event the runtime dead-lettered (its messages handed back until the queue's receives ran out) is
    # not lost, but not written either: counted apart, and a failure of the run like a lost one.
    healthy_dead = set().union(*(dead[i] for i in healthy_ids)) & accepted
    hostile: dict[str, Any] = {}
    for tenant in tenants:
        written_hostile: set[str] = set()  # neither store ever takes a write
        in_dlq = dead[tenant.endpoint_id] & set(tenant.accepted)
        hostile[tenant.name] = {
            "events": len(tenant.accepted),
            "written": len(written_hostile),
            "in_dlq": len(in_dlq),
            "lost": len(set(tenant.accepted) - written_hostile - in_dlq),
        }
        status = requests.get(
            f"{runtime.api_url}/api/v1/endpoints/{tenant.endpoint_id}", headers={"X-API-Key": tenant.key}, timeout=30
        ).json()["delivery"]
        hostile[tenant.name]["lastError"] = (status or {}).get("lastError")
    figures = {
        "target_events_per_s": soak.RATE,
        "seconds": soak.SECONDS,
        "endpoints": soak.ENDPOINTS,
        "accepted": len(accepted),
        "written": len(written),
        "lost": len(accepted - written - healthy_dead),
        "in_dlq": len(healthy_dead - written),
        "duplicates": duplicates,
        "objects": storage.objects,
        "end_to_end_s": spread(end_to_end),
        "named_s": spread(named),
        "sent_s": round(load.seconds, 1),
        "http_errors": sum(n for status, n in load.statuses.items() if status != "202"),
        "hostile": hostile,
    }
    print(json.dumps(figures))
    ok = (
        figures["lost"] == 0
        and figures["in_dlq"] == 0
        and duplicates == 0
        and figures["end_to_end_s"]["max"] <= HEALTHY_MAX_SECONDS
        and all(h["lost"] == 0 for h in hostile.values())
    )
    print("soak-hostile: OK" if ok else "soak-hostile: FAILED")
    return 0 if ok else 1


def spread(seconds: list[float]) -> dict[str, float]:
    return {
        "p50": round(soak.percentile(seconds, 50), 1),
        "p99": round(soak.percentile(seconds, 99), 1),
        "max": round(max(seconds, default=0), 1),
    }


if __name__ == "__main__":
    sys.exit(main())
