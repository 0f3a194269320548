"""Hostile tenants (issue 20): a tenant whose store drips its answer one byte a second and never finishes, and a
tenant whose store refuses every connection, beside healthy tenants, all sending through the local runtime with
its pollers. The healthy endpoints' events land within `flushIntervalSeconds` + 3 s (p99), none lost or
duplicated; the hostile endpoints' events are written once their store recovers or are in the DLQ, and their
`lastError` says why. The same mix at the soak's rate is `make soak-hostile` (tests/reliability/soak.py).

An event has landed when the put of its object returns (`faults.tracked_puts`): the store has it then, S3
being strongly consistent for reads after a put. The store's own listing is still what the lost/duplicated
check reads, and every healthy object it lists must be one the tracker saw put. A watcher that listed the
bucket every 0.25 s measured the same plus its own polling, and its listings and reads were a good part of the
load on the emulator, which shares one core with the runtime here: the observer slowed what it observed."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pytest

from spool.domain import messages as fmt
from spool.domain.delivery import EndpointOutcome
from spool.local.runtime import EXAMPLE_BUCKET, LocalRuntime
from tests.drip import DripServer
from tests.reliability.faults import Put, StoreProxy, tracked_puts
from tests.reliability.ledger import FIGURES, Books, Tracked, line_id, read_lines
from tests.reliability.soak import named_for, percentile
from tests.servers import Api, Schedule, Seaweed, poll, wait_until

SECONDS = 30  # of traffic
EVERY = 0.5  # one event per tenant this often
HEALTHY = 3
BATCH, INTERVAL = 5, 2


def tenant(runtime: LocalRuntime, name: str) -> Api:
    _, key = runtime.admin.create_tenant(f"{name}-{uuid.uuid4().hex[:6]}")
    return Api(runtime.api_url, key)


def endpoint(api: Api, event_type: str, bucket: str, prefix: str, **store: str) -> str:
    body = {
        "url": f"s3://{bucket}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": [event_type],
        "storageConfig": {
            "provider": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "region": "us-east-1",
            "accessKeyId": store.pop("accessKeyId", "AKIAHOSTILEHOSTILE01"),
            "secretAccessKey": store.pop("secretAccessKey", "hostile-secret-access-key-01"),
            "batchSize": BATCH,
            "flushIntervalSeconds": INTERVAL,
            **store,
        },
    }
    return str(api.create_endpoint(body)["id"])


def epoch(created_at: str) -> float:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


class Deliveries:
    """The sink's deliveries per endpoint, as it reported them: what a late healthy event's assertion names."""

    def __init__(self, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, float, EndpointOutcome]] = []
        self.lease_waits: list[tuple[str, int]] = []
        sink = runtime.sink_services.sink
        deliver = sink._deliver_endpoint

        def recorded(tenant_id: str, endpoint_id: str, *args: Any) -> Any:
            started = time.monotonic()
            outcome, handed_back = deliver(tenant_id, endpoint_id, *args)
            self.seen.append((endpoint_id, time.monotonic() - started, outcome))
            # Flush triggers handed back with the lease taken (not busy, parked or out of time), and for how long.
            if not (outcome.busy or outcome.parked or outcome.deferred):
                self.lease_waits += [(endpoint_id, s) for r, s in handed_back if r.kind == fmt.FLUSH and s > 0]
            return outcome, handed_back

        monkeypatch.setattr(sink, "_deliver_endpoint", recorded)

    def summary(self, endpoint_ids: Iterable[str]) -> str:
        wanted = set(endpoint_ids)
        mine = [(seconds, outcome) for endpoint_id, seconds, outcome in self.seen if endpoint_id in wanted]
        return (
            f"{len(mine)} deliveries, longest {max((s for s, _ in mine), default=0):.1f} s, "
            f"busy hand-backs {sum(o.busy > 0 for _, o in mine)}, parked {sum(o.parked > 0 for _, o in mine)}, "
            f"failed {sum(o.failed > 0 for _, o in mine)} {sorted({o.error for _, o in mine if o.error})}, "
            f"flush triggers back for a taken lease {[s for e, s in self.lease_waits if e in wanted]} s"
        )


def test_a_dripping_and_a_refusing_store_never_delay_or_fail_other_tenants(
    runtime: LocalRuntime, books: Books, emulator_s3: Any, seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:6]
    deliveries = Deliveries(runtime, monkeypatch)
    drip = DripServer()
    proxy = StoreProxy(seaweed.url)
    hostile: list[str] = []
    ours = f"hostile-{run}/"
    # Every object the sink puts from here on, with when its put returned (before the healthy stores are built).
    with tracked_puts(runtime.sink_services) as tracker:
        try:
            seaweed.client().create_bucket(Bucket=f"refused-{run}")
            dripping, refusing = tenant(runtime, "dripping"), tenant(runtime, "refusing")
            drip_id = endpoint(dripping, "hostile.drip", f"drip-{run}", "d/", endpoint=drip.url)
            refused_id = endpoint(
                refusing,
                "hostile.refused",
                f"refused-{run}",
                "r/",
                endpoint=proxy.url,
                accessKeyId=seaweed.access_key,
                secretAccessKey=seaweed.secret_key,
            )
            hostile += [drip_id, refused_id]
            proxy.down()
            healthy = [tenant(runtime, f"healthy{n}") for n in range(HEALTHY)]
            healthy_endpoints = [
                endpoint(api, f"healthy.h{n}", EXAMPLE_BUCKET, f"hostile-{run}/h{n}/") for n, api in enumerate(healthy)
            ]

            # Every tenant sends one event every half second, side by side.
            accepted: dict[str, dict[str, float]] = {
                name: {} for name in ["drip", "refused", *map(str, range(HEALTHY))]
            }
            senders = [("drip", dripping, "hostile.drip"), ("refused", refusing, "hostile.refused")]
            senders += [(str(n), api, f"healthy.h{n}") for n, api in enumerate(healthy)]
            schedule = Schedule()

            def send(name: str, api: Api, event_type: str) -> None:
                for n in schedule.spread(int(SECONDS / EVERY), SECONDS):
                    reply = api.send(event_type, {"n": n})
                    accepted[name][reply["id"]] = epoch(reply["createdAt"])

            threads = [threading.Thread(target=schedule.sender(send), args=s, daemon=True) for s in senders]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            proxy.heal()  # the refusing store comes back; the dripping one never does

            healthy_ids = {i: at for n in range(HEALTHY) for i, at in accepted[str(n)].items()}

            def puts() -> list[Put]:  # the healthy objects put, with when
                return [p for p in tracker.all if p.key.startswith(ours)]

            # Every healthy line put (a duplicate would count twice, and fails the count of copies below).
            wait_until(
                lambda: sum(p.lines for p in puts()) >= len(healthy_ids),
                timeout=INTERVAL + 30,
                what="every healthy event",
            )

            # Healthy: every event once, in objects the store lists and the tracker saw put; on time.
            objects = read_lines(emulator_s3, EXAMPLE_BUCKET, ours)
            put_at = {p.key: p.at for p in puts()}
            assert set(objects) == set(put_at)
            copies = Counter(line_id(line) for lines in objects.values() for line in lines)
            assert set(copies) == set(healthy_ids)
            assert max(copies.values()) == 1
            landed = {line_id(line): put_at[key] for key, lines in objects.items() for line in lines}
            # The flush time an object is named for (`{timestamp}-{batch}.ndjson`): what its events waited for.
            named = {line_id(line): named_for(key) for key, lines in objects.items() for line in lines}
            latencies = sorted(landed[i] - at for i, at in healthy_ids.items())
            p99 = percentile(latencies, 99)
            late = (
                f"healthy p99 {p99:.1f} s, max {latencies[-1]:.1f} s (p99 to the flush time "
                f"{percentile([named[i] - at for i, at in healthy_ids.items()], 99):.1f} s, "
                f"from it to the put {percentile([landed[i] - named[i] for i in healthy_ids], 99):.1f} s)"
            )
            summary = deliveries.summary(healthy_endpoints)
            FIGURES.append({"case": "hostile tenants", "healthy": late, "deliveries": summary})
            assert p99 <= INTERVAL + 3, f"{late}; their deliveries: {summary}"

            # Hostile: written once the store is back, or in the DLQ; the status says why.
            drip_books = Tracked(dripping, books, None, f"drip-{run}", "d/", drip_id, INTERVAL, "hostile.drip")
            drip_books.accepted = list(accepted["drip"])
            refused_books = Tracked(
                refusing, books, seaweed.client(), f"refused-{run}", "r/", refused_id, INTERVAL, "hostile.refused"
            )
            refused_books.accepted = list(accepted["refused"])

            def drip_accounted() -> bool:
                dead = books.ledger(
                    drip_books.accepted, emulator_s3, EXAMPLE_BUCKET, "nothing/", drip_id, INTERVAL
                ).dead
                return set(drip_books.accepted) <= dead

            def refused_accounted() -> bool:
                ledger = refused_books.ledger()
                return not ledger.lost and ledger.duplicates == 0

            wait_until(drip_accounted, timeout=120, interval=1.0, what="the dripping store's events in the DLQ")
            wait_until(
                refused_accounted, timeout=120, interval=1.0, what="the refusing store's events written or in the DLQ"
            )
            drip_status = dripping.call("GET", f"/api/v1/endpoints/{drip_id}").json()["delivery"]
            assert "deadline exceeded" in drip_status["lastError"]
            refused_status = refusing.call("GET", f"/api/v1/endpoints/{refused_id}").json()["delivery"]
            assert refused_status["lastError"]
            assert poll(lambda: not books.in_queue(drip_id), timeout=30)
        finally:
            drip.stop()
            proxy.stop()
            # Other tests count the shared DLQ: leave nothing of these endpoints there.
            books.remove_from_dlq(lambda m: fmt.owner(fmt.api_attributes(m))[1] in hostile)
