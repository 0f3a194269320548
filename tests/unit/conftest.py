"""Unit-test wiring: the real api handler with in-memory fakes behind it (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from spool.adapters.idempotency import IdempotentIngest
from spool.domain.delivery import EndpointDirectory, Sink
from spool.domain.endpoints import EndpointService
from spool.domain.ingest import Ingest
from spool.domain.tenants import Tenants
from spool.domain.urlpolicy import UrlPolicy
from spool.domain.verification import Verification
from spool.handlers import api
from spool.handlers.wiring import ApiServices
from spool.local.front import to_event
from spool.local.lambda_context import FakeContext
from tests.fakes import FakeCipher, FakeLedger, FakeQueue, FakeRateGate, FakeRepo, FakeStores, MemoryIdempotencyStore

PEPPER = b"unit-test-pepper"
# The deployment's sink role, as the api is given it (SPOOL_SINK_ROLE_ARN).
SINK_ROLE_ARN = "arn:aws:iam::123456789012:role/Spool-unit-SinkRole"


def public_resolver(host: str) -> list[str]:
    """Every name resolves to a public address, except the ones tests aim at private ranges."""
    table = {"metadata.example": ["169.254.169.254"], "private.example": ["10.0.0.5"], "minio": ["10.1.2.3"]}
    return table.get(host, ["93.184.216.34"])


@dataclass
class FakeVerifier:
    calls: list[tuple[str, str]] = field(default_factory=list)

    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        self.calls.append((tenant_id, endpoint_id))
        return {"ok": True, "probeKey": "probe"}


@dataclass
class FakeRedriver:
    calls: list[tuple[str | None, str | None]] = field(default_factory=list)

    def redrive(self, tenant_id: str | None, endpoint_id: str | None) -> tuple[int, bool]:
        self.calls.append((tenant_id, endpoint_id))
        return 0, True


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class ApiHarness:
    """Calls the real api entry point (`api.make_handler`) with HTTP API v2 events; services are backed by fakes."""

    repo: FakeRepo
    queue: FakeQueue
    cipher: FakeCipher
    services: ApiServices
    key: str
    tenant_id: str
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if key == "default":
            sent.setdefault("x-api-key", self.key)
        elif key is not None:
            sent["x-api-key"] = key
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        if data:
            sent.setdefault("content-type", "application/json")
        result = self.handler(to_event(method, path, sent, data, "127.0.0.1"), FakeContext("spool-api"))
        return Reply(int(result["statusCode"]), result.get("headers") or {}, result.get("body") or "")

    def new_tenant(self, name: str = "other") -> tuple[str, str]:
        tenant, key = self.services.tenants.create_tenant(name)
        return tenant.id, key


def build_services(repo: FakeRepo, queue: FakeQueue, cipher: FakeCipher, *, allow_insecure: bool) -> ApiServices:
    policy = UrlPolicy(allow_insecure=allow_insecure, resolver=public_resolver)
    endpoints = EndpointService(
        repo, cipher, policy, local_root="/tmp/spool-unit-root", sink_role_arn=SINK_ROLE_ARN, status=repo
    )
    return ApiServices(
        tenants=Tenants(repo, lambda: PEPPER),
        endpoints=endpoints,
        ingest=IdempotentIngest(Ingest(repo, queue), MemoryIdempotencyStore),
        verification=Verification(endpoints, FakeRateGate(), FakeVerifier()),
        redriver=FakeRedriver(),
    )


@pytest.fixture
def harness_factory() -> Callable[..., ApiHarness]:
    def make(*, allow_insecure: bool = True) -> ApiHarness:
        repo, queue, cipher = FakeRepo(), FakeQueue(), FakeCipher()
        services = build_services(repo, queue, cipher, allow_insecure=allow_insecure)
        tenant, key = services.tenants.create_tenant("acme")
        return ApiHarness(repo, queue, cipher, services, key, tenant.id, api.make_handler(lambda: services))

    return make


@pytest.fixture
def harness(harness_factory: Any) -> ApiHarness:
    """Local-runtime rules: plain http and private addresses allowed (the SPEC example uses http://minio:9000)."""
    return harness_factory(allow_insecure=True)


@pytest.fixture
def strict_harness(harness_factory: Any) -> ApiHarness:
    """AWS rules: https only, no loopback or private store endpoints."""
    return harness_factory(allow_insecure=False)


@dataclass
class SinkHarness:
    repo: FakeRepo
    queue: FakeQueue
    stores: FakeStores
    sink: Sink
    clock: list[float]
    ledger: FakeLedger


@pytest.fixture
def sink_harness() -> SinkHarness:
    repo, queue, cipher, stores, ledger = FakeRepo(), FakeQueue(), FakeCipher(), FakeStores(), FakeLedger()
    clock = [1_776_162_600.0]
    directory = EndpointDirectory(repo, cipher, stores, ttl=30, clock=lambda: clock[0])
    sink = Sink(
        directory, repo, queue, repo, queue, leases=repo, ledger=ledger, clock=lambda: clock[0], retry_base_seconds=10
    )
    return SinkHarness(repo, queue, stores, sink, clock, ledger)
