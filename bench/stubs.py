"""Inputs and in-memory stand-ins that the subject and the reference runs share.

The project's own fakes (tests/fakes.py) stand in for DynamoDB, KMS and the queue ports; the two stand-ins
here replace the object store and the boto3 SQS client with the least work that keeps their contract, so
neither side of a comparison pays for the stub more than the other.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tests.fakes import FakeCipher, FakeLedger, FakeQueue, FakeRateGate, FakeRepo, MemoryIdempotencyStore

from spool.adapters.idempotency import IdempotentIngest
from spool.adapters.sqs_queue import SqsQueue
from spool.domain import limits
from spool.domain.cache import TtlCache
from spool.domain.credentials import Credentials
from spool.domain.delivery import EndpointDirectory, Sink
from spool.domain.endpoints import EndpointService
from spool.domain.ingest import Ingest, RoutingCache
from spool.domain.messages import ENDPOINT as ENDPOINT_ATTR
from spool.domain.messages import LINES as LINES_ATTR
from spool.domain.messages import TENANT as TENANT_ATTR
from spool.domain.models import Endpoint
from spool.domain.naming import iso_timestamp, ndjson_line
from spool.domain.storage import StorageSettings
from spool.domain.tenants import Tenants
from spool.domain.urlpolicy import UrlPolicy
from spool.domain.verification import Verification
from spool.handlers.wiring import ApiServices

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/spool-ingest"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:spool-ingest"
TENANT = "ten_0000000000000bench0000000000"
PEPPER = b"bench-pepper"
EVENT_BYTES = 1024  # "about 1 KB": the NDJSON line of each synthetic event


@dataclass
class CountingStore:
    """ObjectStore that keeps names and sizes (bodies only when asked), so repeated runs do not grow memory."""

    keep_bodies: bool = False
    keys: set[str] = field(default_factory=set)
    bodies: dict[str, bytes] = field(default_factory=dict)
    puts: int = 0
    bytes_written: int = 0

    def put_new(
        self, key: str, body: bytes, *, content_type: str, content_encoding: str | None, sha256: str | None = None
    ) -> bool:
        self.puts += 1
        if key in self.keys:
            return False
        self.keys.add(key)
        self.bytes_written += len(body)
        if self.keep_bodies:
            self.bodies[key] = body
        return True

    def delete(self, key: str) -> None:
        self.keys.discard(key)
        self.bodies.pop(key, None)

    def factory(self, settings: StorageSettings, credentials: Credentials | None) -> CountingStore:
        """The StoreFactory the sink's EndpointDirectory calls: every endpoint writes here."""
        return self


@dataclass
class StubSqsClient:
    """The boto3 SQS client's `send_message_batch`, accepting every entry (the adapter reads only `Failed`)."""

    keep_entries: bool = False
    requests: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    lines: int = 0  # event lines in the bodies (a bundle holds many)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests += 1
        self.count += len(Entries)
        self.lines += sum(e["MessageBody"].count("\n") + 1 for e in Entries)
        if self.keep_entries:
            self.entries.extend(Entries)
        return {"Failed": []}


class Unused:
    """Verifier and redriver: not on any benchmarked path."""

    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def redrive(self, tenant_id: str | None, endpoint_id: str | None) -> int:
        raise NotImplementedError


def payload(n: int, size: int = EVENT_BYTES) -> dict[str, Any]:
    """An order-like payload whose NDJSON line is about `size` bytes. Ids, tokens and amounts vary the way real
    webhook payloads do (hex ids, e-mail addresses, prices), so compression sees realistic data: zlib takes
    these lines to about a quarter of their size, as it does real webhook JSON (a repeated filler compressed
    30x and made staging look cheaper than it is)."""

    def token(*parts: object) -> str:
        return hashlib.sha256("-".join(map(str, parts)).encode()).hexdigest()

    body: dict[str, Any] = {
        "orderId": f"ord_{token(n)[:24]}",
        "customer": {"id": f"cus_{token('c', n % 997)[:16]}", "email": f"{token('e', n)[:10]}@example.com"},
        "currency": "EUR",
        "items": [],
    }
    overhead = len(ndjson_line("evt_" + "0" * 28, "order.created", body, iso_timestamp(0.0)))
    i = 0
    while overhead < size - 120:
        digest = token(n, i)
        item = {"sku": f"sku_{digest[:8]}", "qty": 1 + int(digest[8], 16) % 5, "priceCents": int(digest[9:14], 16)}
        body["items"].append(item)
        overhead += len(json.dumps(item, separators=(",", ":"))) + 1
        i += 1
    body["note"] = ""
    room = size - len(ndjson_line("evt_" + "0" * 28, "order.created", body, iso_timestamp(0.0)))
    body["note"] = "".join(token("note", n, k) for k in range(room // 64 + 1))[: max(0, room)]
    return body


def endpoint(
    endpoint_id: str, *, batch_size: int, tenant_id: str = TENANT, interval: int = 60, parquet: bool = False
) -> Endpoint:
    """A storage endpoint; `parquet` makes it write Parquet (snappy, the default codec) instead of NDJSON."""
    stamp = iso_timestamp(time.time() - 3600)
    return Endpoint(
        id=endpoint_id,
        tenantId=tenant_id,
        url=f"s3://bench-bucket/{endpoint_id}/",
        eventTypes=["order.*"],
        storage=StorageSettings(
            provider="s3",
            bucket="bench-bucket",
            prefix=f"{endpoint_id}/",
            region="us-east-1",
            batchSize=batch_size,
            flushIntervalSeconds=interval,
            format="parquet" if parquet else "ndjson",
        ),
        createdAt=stamp,
        updatedAt=stamp,
    )


def sqs_record(n: int, endpoint_id: str, line: str, sent_ms: int, tenant_id: str = TENANT) -> dict[str, Any]:
    """One record of an SQS event as Lambda's event source mapping delivers it."""

    def attribute(value: str, data_type: str = "String") -> dict[str, Any]:
        return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": data_type}

    return {
        "messageId": f"{n:08x}-5f1c-4e0a-9a7b-{n:012x}",
        "receiptHandle": "AQEB" + f"{n:08x}" * 20,
        "body": line,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(sent_ms),
            "SenderId": "AROAEXAMPLE:spool-api",
            "ApproximateFirstReceiveTimestamp": str(sent_ms + 5),
        },
        "messageAttributes": {
            TENANT_ATTR: attribute(tenant_id),
            ENDPOINT_ATTR: attribute(endpoint_id),
            LINES_ATTR: attribute(str(line.count("\n") + 1), "Number"),  # as the api sends a bundle
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def sqs_event(count: int, endpoint_ids: list[str], *, per_message: int = 1) -> dict[str, Any]:
    """`count` ~1 KB events spread round-robin over the endpoints, accepted a millisecond apart, as bundles of
    `per_message` lines per endpoint (domain/messages.py; 1 is one event per message)."""
    start_ms = int(time.time() * 1000) - count
    pending: dict[str, list[str]] = {e: [] for e in endpoint_ids}
    records = []
    for n in range(count):
        created = iso_timestamp((start_ms + n) / 1000)
        endpoint_id = endpoint_ids[n % len(endpoint_ids)]
        pending[endpoint_id].append(ndjson_line(f"evt_{n:028x}", "order.created", payload(n), created))
        if len(pending[endpoint_id]) == per_message:
            records.append(sqs_record(len(records), endpoint_id, "\n".join(pending[endpoint_id]), start_ms + n))
            pending[endpoint_id] = []
    for endpoint_id, lines in pending.items():
        if lines:
            records.append(sqs_record(len(records), endpoint_id, "\n".join(lines), start_ms + count))
    return {"Records": records}


def sink_services(endpoints: list[Endpoint], store: CountingStore) -> tuple[Any, FakeRepo, FakeQueue]:
    """The sink's services as wiring.build_sink makes them, over fakes and the counting store (only `sink` is
    on the benchmarked path)."""
    repo, queue, cipher = FakeRepo(), FakeQueue(), FakeCipher()
    for item in endpoints:
        repo.create_endpoint(item)
    sink = Sink(
        directory=EndpointDirectory(repo, cipher, store.factory),
        status=repo,
        visibility=queue,
        staging=repo,
        triggers=queue,
        leases=repo,
        ledger=FakeLedger(),
    )
    return SimpleNamespace(sink=sink), repo, queue


@dataclass
class ApiRig:
    services: ApiServices
    repo: FakeRepo
    sqs: StubSqsClient
    tenant_id: str
    api_key: str


def api_services(sqs: StubSqsClient, endpoints: int = 1) -> ApiRig:
    """The api's services as wiring.build_api makes them, over fakes and the stub SQS client."""
    repo, cipher = FakeRepo(), FakeCipher()
    routed = RoutingCache(repo, TtlCache(limits.ROUTING_CACHE_TENANTS, limits.ROUTING_CACHE_SECONDS))
    service = EndpointService(routed, cipher, UrlPolicy(allow_insecure=True))
    services = ApiServices(
        tenants=Tenants(repo, lambda: PEPPER),
        endpoints=service,
        ingest=IdempotentIngest(Ingest(routed, SqsQueue(sqs, QUEUE_URL)), MemoryIdempotencyStore),
        verification=Verification(service, FakeRateGate(), Unused()),
        redriver=Unused(),
    )
    tenant, api_key = services.tenants.create_tenant("bench")
    for n in range(endpoints):
        repo.create_endpoint(endpoint(f"ep_{n:028x}", batch_size=100, tenant_id=tenant.id))
    return ApiRig(services, repo, sqs, tenant.id, api_key)


def events_body(count: int) -> bytes:
    """A batch ingest body of `count` ~1 KB events."""
    return json.dumps(
        {"events": [{"eventType": "order.created", "payload": payload(n)} for n in range(count)]}
    ).encode()
