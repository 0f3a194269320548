"""A tenant sees and touches only its own endpoints and events; keys are checked on every route, and a revoked
key stops working once the key cache has expired (SPEC: Guarantees; docs/api.md)."""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from spool.domain import limits
from spool.domain.messages import ENDPOINT as ENDPOINT_ATTR
from spool.domain.messages import TENANT as TENANT_ATTR
from spool.local.runtime import EXAMPLE_BUCKET, LocalRuntime
from tests.integration.conftest import Api, wait_until
from tests.reliability.ledger import Books, read_lines

ROUTES = [
    ("GET", "/api/v1/endpoints/{id}", None),
    ("PATCH", "/api/v1/endpoints/{id}", {"description": "taken over"}),
    ("DELETE", "/api/v1/endpoints/{id}", None),
    ("POST", "/api/v1/endpoints/{id}/verify", None),
    ("POST", "/api/v1/endpoints/{id}/redrive", None),
    ("GET", "/api/v1/endpoints/{id}/aws-role", None),
]
EVERY_ROUTE = [
    ("POST", "/api/v1/endpoints", {"url": "s3://b/"}),
    ("GET", "/api/v1/endpoints", None),
    *ROUTES,
    ("POST", "/api/v1/events", {"eventType": "a.b", "payload": {}}),
]


@dataclass
class Tenant:
    id: str
    api: Api


@dataclass
class TwoTenants:
    a: Tenant
    b: Tenant
    a_endpoint: dict[str, Any]
    b_endpoint: dict[str, Any]
    event_type: str


def endpoint_body(prefix: str, event_type: str) -> dict[str, Any]:
    return {
        "url": f"s3://{EXAMPLE_BUCKET}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": [event_type],
        "description": "the owner's",
        "storageConfig": {
            "provider": "s3",
            "bucket": EXAMPLE_BUCKET,
            "prefix": prefix,
            "region": "us-east-1",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "flushIntervalSeconds": 1,
        },
    }


def new_tenant(runtime: LocalRuntime, name: str) -> Tenant:
    tenant, key = runtime.admin.create_tenant(name)
    return Tenant(tenant.id, Api(runtime.api_url, key))


@pytest.fixture(scope="module")
def two(runtime: LocalRuntime) -> TwoTenants:
    a, b = new_tenant(runtime, "isolation-a"), new_tenant(runtime, "isolation-b")
    event_type = f"iso.{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    a_endpoint = a.api.create_endpoint(endpoint_body(f"iso-{run}-a/", event_type))
    b_endpoint = b.api.create_endpoint(endpoint_body(f"iso-{run}-b/", event_type))
    return TwoTenants(a, b, a_endpoint, b_endpoint, event_type)


def assert_error(reply: Any, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == code and error["message"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_another_tenants_endpoint_answers_404_like_an_unknown_one(
    two: TwoTenants, method: str, path: str, body: Any
) -> None:
    theirs = two.b.api.call(method, path.format(id=two.a_endpoint["id"]), body)
    unknown_id = f"ep_{secrets.token_hex(14)}"
    unknown = two.b.api.call(method, path.format(id=unknown_id), body)

    assert_error(theirs, 404, "not_found")
    assert_error(unknown, 404, "not_found")
    # Same answer apart from the id: nothing tells B that A's endpoint exists.
    assert theirs.text.replace(two.a_endpoint["id"], "ID") == unknown.text.replace(unknown_id, "ID")
    after = two.a.api.call("GET", f"/api/v1/endpoints/{two.a_endpoint['id']}").json()
    assert after["status"] == "active" and after["description"] == "the owner's"
    assert after["updatedAt"] == two.a_endpoint["updatedAt"]


def test_listing_shows_only_the_callers_endpoints_even_with_another_tenants_cursor(two: TwoTenants) -> None:
    listed = two.b.api.call("GET", "/api/v1/endpoints?limit=100").json()
    cursor = two.a.api.call("GET", "/api/v1/endpoints?limit=1").json()["nextCursor"]
    if cursor is None:  # A has one endpoint: make a cursor pointing at it the way the API encodes them
        cursor = _cursor_for(two.a_endpoint["id"])
    paged = two.b.api.call("GET", f"/api/v1/endpoints?limit=100&cursor={cursor}")

    assert [e["id"] for e in listed["items"]] == [two.b_endpoint["id"]]
    assert paged.status_code in (200, 422), paged.text
    if paged.status_code == 200:
        assert two.a_endpoint["id"] not in paged.text


def test_events_reach_only_the_sending_tenants_endpoints(two: TwoTenants, emulator_s3: Any, books: Books) -> None:
    sent = two.b.api.send_batch([{"eventType": two.event_type, "payload": {"n": n}} for n in range(3)])
    a_prefix, b_prefix = two.a_endpoint["storageConfig"]["prefix"], two.b_endpoint["storageConfig"]["prefix"]

    written = wait_until(lambda: read_lines(emulator_s3, EXAMPLE_BUCKET, b_prefix), timeout=10, what="B's object")
    assert sorted(json.loads(line)["id"] for lines in written.values() for line in lines) == sorted(
        e["id"] for e in sent
    )
    for endpoint in (two.a_endpoint, two.b_endpoint):
        wait_until(lambda e=endpoint: not books.in_queue(e["id"]), timeout=20, what="every message handled")
    assert read_lines(emulator_s3, EXAMPLE_BUCKET, a_prefix) == {}


def test_a_redrive_moves_only_the_callers_dead_letters(two: TwoTenants, runtime: LocalRuntime, books: Books) -> None:
    marker = dead_letter(runtime, two.a, two.a_endpoint["id"])

    b_moved = two.b.api.call("POST", f"/api/v1/endpoints/{two.b_endpoint['id']}/redrive").json()
    still_there = [m for m in books.dlq() if marker in m["Body"]]

    assert b_moved["moved"] == 0
    assert len(still_there) == 1
    books.remove_from_dlq(lambda m: marker in m["Body"])


def test_one_tenants_redrive_leaves_another_tenants_dead_letters_redrivable_at_once(
    two: TwoTenants, runtime: LocalRuntime, books: Books
) -> None:
    marker = dead_letter(runtime, two.a, two.a_endpoint["id"])
    two.b.api.call("POST", f"/api/v1/endpoints/{two.b_endpoint['id']}/redrive")

    moved = two.a.api.call("POST", f"/api/v1/endpoints/{two.a_endpoint['id']}/redrive").json()["moved"]
    books.remove_from_dlq(lambda m: marker in m["Body"])

    assert moved >= 1


@pytest.mark.parametrize(("method", "path", "body"), EVERY_ROUTE, ids=[f"{m} {p}" for m, p, _ in EVERY_ROUTE])
@pytest.mark.parametrize("key", [None, "", "not-a-spool-key", "spool_" + "x" * 43, "spool_é" + "x" * 200])
def test_every_route_refuses_a_missing_or_unknown_key_before_reading_the_body(
    runtime: LocalRuntime, method: str, path: str, body: Any, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key.encode("utf-8").decode("latin-1")}
    reply = requests.request(
        method, runtime.api_url + path.format(id="ep_" + "0" * 28), json=body, headers=headers, timeout=10
    )
    assert_error(reply, 401, "unauthorized")


@pytest.fixture
def fresh_key(runtime: LocalRuntime) -> Iterator[tuple[str, str, str]]:
    tenants = runtime.api_services.tenants  # the api's: its key cache reads this clock
    tenant, _ = runtime.admin.create_tenant("revocation")
    record, key = runtime.admin.create_key(tenant.id)
    real_clock = tenants.clock
    try:
        yield tenant.id, record.keyId, key
    finally:
        tenants.clock = real_clock


def test_a_revoked_key_is_refused_once_the_key_cache_has_expired(
    runtime: LocalRuntime, fresh_key: tuple[str, str, str]
) -> None:
    tenant_id, key_id, key = fresh_key
    tenants = runtime.api_services.tenants
    api = Api(runtime.api_url, key)
    real_clock = tenants.clock
    assert api.call("GET", "/api/v1/endpoints").status_code == 200  # the answer is cached from here

    runtime.admin.revoke_key(tenant_id, key_id)
    within = [api.call("GET", "/api/v1/endpoints").status_code]
    tenants.clock = lambda: real_clock() + limits.API_KEY_CACHE_SECONDS - 2
    within.append(api.call("GET", "/api/v1/endpoints").status_code)
    tenants.clock = lambda: real_clock() + limits.API_KEY_CACHE_SECONDS + 0.5
    after = api.call("GET", "/api/v1/endpoints")

    assert within == [200, 200]  # the documented window: a revocation takes effect within the cache TTL
    assert_error(after, 401, "unauthorized")


def test_a_key_revoked_before_its_first_use_is_refused_at_once(
    runtime: LocalRuntime, fresh_key: tuple[str, str, str]
) -> None:
    tenant_id, key_id, key = fresh_key
    runtime.admin.revoke_key(tenant_id, key_id)

    assert_error(Api(runtime.api_url, key).call("GET", "/api/v1/endpoints"), 401, "unauthorized")


def dead_letter(runtime: LocalRuntime, tenant: Tenant, endpoint_id: str) -> str:
    """Put one of `tenant`'s event messages straight into the DLQ; return a marker found in its body."""
    assert runtime.resources is not None
    marker = f"evt_dead{uuid.uuid4().hex[:20]}"
    line = json.dumps({"id": marker, "eventType": "iso.dead", "payload": {}, "createdAt": "2026-01-01T00:00:00.000Z"})
    runtime.client("sqs").send_message(
        QueueUrl=runtime.resources.dlq_url,
        MessageBody=line,
        MessageAttributes={
            TENANT_ATTR: {"DataType": "String", "StringValue": tenant.id},
            ENDPOINT_ATTR: {"DataType": "String", "StringValue": endpoint_id},
        },
    )
    return marker


def _cursor_for(endpoint_id: str) -> str:
    return base64.urlsafe_b64encode(endpoint_id.encode()).decode().rstrip("=")


def test_overlapping_requests_of_two_tenants_each_get_their_own_answer(
    two: TwoTenants, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A's request is held while its key is checked, and B's request is sent in full meanwhile. Powertools keeps
    # the current request and its context (the tenant) in shared state, so overlapping requests must not share
    # a resolver (the front serves one at a time, as one Lambda environment does; B waits for A).
    tenants = runtime.api_services.tenants
    authenticate = tenants.authenticate
    a_inside, release_a = threading.Event(), threading.Event()

    def held(key: str | None) -> str:
        if key == two.a.api.key and not a_inside.is_set():
            a_inside.set()
            release_a.wait(10)
        return authenticate(key)

    monkeypatch.setattr(tenants, "authenticate", held)
    answers: dict[str, Any] = {}
    first = threading.Thread(target=lambda: answers.update(a=two.a.api.call("GET", "/api/v1/endpoints")))
    first.start()
    assert a_inside.wait(10)
    front = urlsplit(two.b.api.base)
    connection = http.client.HTTPConnection(front.hostname or "127.0.0.1", front.port, timeout=30)
    try:
        connection.request("GET", "/api/v1/endpoints", headers={"X-API-Key": two.b.api.key})  # sent, unanswered
        release_a.set()
        reply = connection.getresponse()
        b_status, b_body = reply.status, json.loads(reply.read())
    finally:
        release_a.set()
        connection.close()
    first.join(20)

    assert answers["a"].status_code == 200, answers["a"].text
    assert [e["id"] for e in answers["a"].json()["items"]] == [two.a_endpoint["id"]]
    assert b_status == 200, b_body
    assert [e["id"] for e in b_body["items"]] == [two.b_endpoint["id"]]
