"""Nothing is written where it must not go (SPEC: Guarantees): `local` paths stay below the configured root,
symlinks included, and `endpoint` URLs cannot aim the sink at cloud metadata, link-local or (outside the local
runtime) private addresses."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from spool.adapters.idempotency import IdempotentIngest
from spool.adapters.stores import Stores
from spool.domain.credentials import Credentials
from spool.domain.endpoints import EndpointService
from spool.domain.errors import StoreError
from spool.domain.ingest import Ingest
from spool.domain.storage import StorageSettings
from spool.domain.tenants import Tenants
from spool.domain.urlpolicy import UrlPolicy, resolve
from spool.domain.verification import Verification
from spool.handlers import api as api_handler
from spool.handlers.wiring import ApiServices
from spool.local.front import to_event
from spool.local.lambda_context import FakeContext
from spool.local.runtime import LocalRuntime
from tests.fakes import FakeCipher, FakeQueue, FakeRateGate, FakeRepo, MemoryIdempotencyStore
from tests.integration.conftest import Api, wait_until
from tests.reliability.ledger import Books, LocalDirectory, Tracked, report
from tests.unit.conftest import FakeRedriver, FakeVerifier


@pytest.fixture(scope="module")
def root(runtime: LocalRuntime) -> Path:
    """The local provider's root in the runtime (SPOOL_LOCAL_ROOT)."""
    return (Path(runtime.settings.state_dir) / "data").resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    place = tmp_path / "outside-the-root"
    place.mkdir()
    return place


def local_body(directory: str, prefix: str, event_type: str = "escape.test") -> dict[str, Any]:
    return {
        "url": f"local://{directory}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": [event_type],
        "storageConfig": {
            "provider": "local",
            "bucket": directory,
            "prefix": prefix,
            "batchSize": 100,
            "flushIntervalSeconds": 1,
        },
    }


def refused_naming(reply: Any, field: str) -> None:
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    named = [f["field"] for f in error.get("fields", [])] + [error["message"]]
    assert any(field in text for text in named), error


@pytest.mark.parametrize(
    ("url", "directory", "prefix", "field"),
    [
        ("local://escape/../outside/", "escape", "../outside/", "storageConfig.prefix"),
        ("local://escape/a/../../outside/", "escape", "a/../../outside/", "storageConfig.prefix"),
        ("local://escape//etc/", "escape", "/etc/", "storageConfig.prefix"),
        ("local://escape/./x/", "escape", "./x/", "storageConfig.prefix"),
        ("local://escape/..%2f/", "escape", "..%2f/", "storageConfig.prefix"),
        ("local://escape/..\\x/", "escape", "..\\x/", "storageConfig.prefix"),
        ("local://../x/", "..", "x/", "storageConfig.bucket"),
        ("local://etc%2fpasswd/x/", "etc/passwd", "x/", "storageConfig.bucket"),
        ("local:///etc/passwd", "escape", "x/", "url"),
    ],
    ids=["dotdot", "nested dotdot", "absolute", "dot", "encoded", "backslash", "dotdot dir", "slash dir", "no dir"],
)
def test_a_local_path_leaving_the_root_is_refused(
    tenant: Api, url: str, directory: str, prefix: str, field: str
) -> None:
    body = local_body(directory, prefix) | {"url": url}
    reply = tenant.call("POST", "/api/v1/endpoints", body)

    refused_naming(reply, field)


def test_a_symlink_planted_as_the_directory_is_refused(tenant: Api, root: Path, outside: Path) -> None:
    name = f"link-{uuid.uuid4().hex[:6]}"
    (root / name).symlink_to(outside, target_is_directory=True)

    refused_naming(tenant.call("POST", "/api/v1/endpoints", local_body(name, "x/")), "storageConfig")


def test_a_symlink_planted_as_the_prefix_is_refused(tenant: Api, root: Path, outside: Path) -> None:
    name = f"dir-{uuid.uuid4().hex[:6]}"
    (root / name).mkdir()
    (root / name / "p").symlink_to(outside, target_is_directory=True)

    refused_naming(tenant.call("POST", "/api/v1/endpoints", local_body(name, "p/")), "storageConfig")


def test_a_symlink_planted_after_creation_never_leads_a_write_outside_and_loses_nothing(
    tenant: Api, root: Path, outside: Path, books: Books
) -> None:
    name = f"late-{uuid.uuid4().hex[:6]}"
    event_type = f"escape.{uuid.uuid4().hex[:6]}"
    created = tenant.create_endpoint(local_body(name, "p/", event_type))
    # The sink creates the date directory; plant it first (today's and tomorrow's, in case of midnight).
    today = dt.datetime.now(dt.UTC).date()
    for day in (today, today + dt.timedelta(days=1)):
        (root / name / "p").mkdir(parents=True, exist_ok=True)
        (root / name / "p" / day.isoformat()).symlink_to(outside, target_is_directory=True)
    endpoint = Tracked(tenant, books, LocalDirectory(root), name, "p/", created["id"], 1, event_type)
    endpoint.send(3)

    wait_until(lambda: _delivery(tenant, created["id"]).get("lastError"), timeout=15, what="a refused write")
    assert list(outside.iterdir()) == []

    for day in (today, today + dt.timedelta(days=1)):
        (root / name / "p" / day.isoformat()).unlink()
    recovery = endpoint.recover()

    report("symlink planted under the root", recovery)
    assert recovery.final.balanced
    assert list(outside.iterdir()) == []


def _delivery(api: Api, endpoint_id: str) -> dict[str, Any]:
    return dict(api.call("GET", f"/api/v1/endpoints/{endpoint_id}").json().get("delivery") or {})


# --- endpoint URLs ------------------------------------------------------------------------------------
REFUSED_ANYWHERE = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254",
    "https://169.254.170.2",  # ECS task metadata
    "https://[fd00:ec2::254]",
    "https://[fe80::1]",
    "https://[fe80::1%25eth0]",
    "https://[::ffff:169.254.169.254]",
    "https://100.100.100.200",
    "https://metadata.google.internal",
    "https://METADATA.GOOGLE.INTERNAL.",
    "https://instance-data",
    "https://2852039166",  # 169.254.169.254 as one decimal number
    "https://0xa9fea9fe",  # ... in hex
    "https://0251.0376.0251.0376",  # ... in octal
    "https://169.254.43518",  # ... in the a.b.c form
    "https://0.0.0.0",
    "https://0",
    "https://[::]",
    "https://224.0.0.1",
    "ftp://s3.amazonaws.com",
    "file:///etc/passwd",
    "https://user:pass@s3.amazonaws.com",
    "https://s3.amazonaws.com/?x=1",
]
REFUSED_OUTSIDE_LOCAL = [
    "http://s3.amazonaws.com",
    "https://127.0.0.1:9000",
    "https://127.1",
    "https://localhost",
    "https://[::1]",
    "https://10.0.0.5",
    "https://172.16.0.1",
    "https://192.168.1.10",
    "https://[fd12:3456::1]",
]


PUBLIC_NAME = "s3.us-east-1.amazonaws.com"


def resolver(host: str) -> list[str]:
    """The real resolver (numeric forms such as 2852039166 included), except for the one public name the
    tests accept: this machine may have no DNS, and a name that does not resolve is refused."""
    return ["52.216.0.1"] if host == PUBLIC_NAME else resolve(host)


@pytest.fixture
def strict_api() -> Any:
    """The real api handler with the rules a deployment on AWS has (https only, no loopback or private
    addresses) and the real resolver; in-memory fakes behind it."""
    repo = FakeRepo()
    policy = UrlPolicy(allow_insecure=False, resolver=resolver)
    endpoints = EndpointService(repo, FakeCipher(), policy, local_root=None, status=repo)
    services = ApiServices(
        tenants=Tenants(repo, lambda: b"strict-pepper"),
        endpoints=endpoints,
        ingest=IdempotentIngest(Ingest(repo, FakeQueue()), MemoryIdempotencyStore),
        verification=Verification(endpoints, FakeRateGate(), FakeVerifier()),
        redriver=FakeRedriver(),
    )
    _, key = services.tenants.create_tenant("strict")
    handler = api_handler.make_handler(lambda: services)

    def call(method: str, path: str, body: Any) -> Any:
        headers = {"x-api-key": key, "content-type": "application/json"}
        event = to_event(method, path, headers, json.dumps(body).encode(), "127.0.0.1")
        result = handler(event, FakeContext("spool-api"))
        return _Reply(int(result["statusCode"]), result.get("body") or "")

    return call


class _Reply:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text = status, text

    def json(self) -> Any:
        return json.loads(self.text)


def s3_body(endpoint: str) -> dict[str, Any]:
    return {
        "url": "s3://archive/events/",
        "deliveryMode": "storage",
        "eventTypes": ["*"],
        "storageConfig": {
            "provider": "s3",
            "bucket": "archive",
            "prefix": "events/",
            "region": "us-east-1",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "endpoint": endpoint,
        },
    }


@pytest.mark.parametrize("url", REFUSED_ANYWHERE + REFUSED_OUTSIDE_LOCAL)
def test_an_endpoint_url_aimed_inward_is_refused_outside_the_local_runtime(strict_api: Any, url: str) -> None:
    refused_naming(strict_api("POST", "/api/v1/endpoints", s3_body(url)), "storageConfig.endpoint")


def test_a_public_https_endpoint_url_is_accepted_outside_the_local_runtime(strict_api: Any) -> None:
    reply = strict_api("POST", "/api/v1/endpoints", s3_body(f"https://{PUBLIC_NAME}"))
    assert reply.status_code == 201, reply.text


def test_patching_an_endpoint_url_inward_is_refused_outside_the_local_runtime(strict_api: Any) -> None:
    created = strict_api("POST", "/api/v1/endpoints", s3_body(f"https://{PUBLIC_NAME}")).json()
    patch = {"storageConfig": {"endpoint": "https://169.254.169.254"}}

    refused_naming(strict_api("PATCH", f"/api/v1/endpoints/{created['id']}", patch), "storageConfig.endpoint")


@pytest.mark.parametrize("url", REFUSED_ANYWHERE)
def test_metadata_and_link_local_urls_are_refused_in_the_local_runtime_too(tenant: Api, url: str) -> None:
    refused_naming(tenant.call("POST", "/api/v1/endpoints", s3_body(url)), "storageConfig.endpoint")


def test_the_sink_checks_the_url_again_when_the_name_now_resolves_to_metadata() -> None:
    # DNS rebinding: accepted while the name resolved elsewhere; refused when the sink connects (every new
    # connection resolves and checks again: tests/integration/test_store_http.py).
    stores = Stores(UrlPolicy(allow_insecure=False, resolver=lambda _: ["169.254.169.254"]), local_root=None)
    settings = StorageSettings(provider="s3", bucket="archive", region="us-east-1", endpoint="https://store.example")
    credentials = Credentials(accessKeyId="AKIAIOSFODNN7EXAMPLE", secretAccessKey="wJalrXUtnFEMI/K7MDENG")
    store = stores(settings, credentials)

    with pytest.raises(StoreError, match="endpoint refused: points at a link-local or cloud metadata address"):
        store.put_new("x.ndjson", b"{}\n", content_type="application/x-ndjson", content_encoding=None)
