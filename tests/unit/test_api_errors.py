"""The error model (issue 3, item 2): one JSON shape, the right 4xx for every kind of bad request, no 5xx.

Every error is `{"error": {"code", "message", "fields"?, "requestId"?}}` with `fields` a list of
`{"field", "message"}`; 5xx answers carry the request's `requestId` (tests/unit/test_server_faults.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from spool.domain import limits
from spool.domain.naming import ndjson_line
from spool.handlers import api
from spool.local.lambda_context import FakeContext
from tests.conftest import load_event, spec_body
from tests.unit.conftest import ApiHarness, Reply

ENDPOINTS = "/api/v1/endpoints"
EVENTS = "/api/v1/events"
EVENT = {"eventType": "order.created", "payload": {"orderId": "ord_1"}}


def assert_error(reply: Reply, status: int, code: str | None = None) -> dict[str, Any]:
    """The reply is `status` with the one error shape; returns the `error` object."""
    assert reply.status == status, reply.text
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    body = reply.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert set(error) <= {"code", "message", "fields", "requestId"}
    if status >= 500:
        assert isinstance(error.get("requestId"), str)
        assert error["requestId"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    for entry in error.get("fields", []):
        assert set(entry) == {"field", "message"}
        assert isinstance(entry["field"], str)
        assert isinstance(entry["message"], str)
    if code is not None:
        assert error["code"] == code
    return error


def assert_client_error(reply: Reply) -> None:
    assert 400 <= reply.status < 500, reply.text
    assert_error(reply, reply.status)


def field_names(error: dict[str, Any]) -> list[str]:
    return [f["field"] for f in error.get("fields", [])]


def create_endpoint(harness: ApiHarness) -> str:
    reply = harness.call("POST", ENDPOINTS, spec_body())
    assert reply.status == 201, reply.text
    endpoint_id: str = reply.json()["id"]
    return endpoint_id


# --- 400 malformed JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{bad", b'{"url": ', b"{} trailing", b"   ", b"{'single': 'quotes'}", b'{"a":1,}', b"\xef\xbb\xbf{}"],
    ids=["garbage", "truncated", "trailing", "whitespace", "single-quotes", "trailing-comma", "bom"],
)
@pytest.mark.parametrize("path", [ENDPOINTS, EVENTS])
def test_malformed_json_answers_400(harness: ApiHarness, path: str, raw: bytes) -> None:
    assert_error(harness.call("POST", path, raw=raw), 400, "malformed_json")


def test_malformed_json_in_a_patch_answers_400(harness: ApiHarness) -> None:
    endpoint_id = create_endpoint(harness)

    assert_error(harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", raw=b"{bad"), 400, "malformed_json")


@pytest.mark.parametrize(("method", "path"), [("POST", ENDPOINTS), ("POST", EVENTS), ("PATCH", f"{ENDPOINTS}/ep_x")])
def test_empty_body_answers_4xx(harness: ApiHarness, method: str, path: str) -> None:
    assert_client_error(harness.call(method, path, raw=b""))


def test_body_nesting_beyond_the_parser_answers_400(harness: ApiHarness) -> None:
    raw = b'{"a":' * 100_000 + b"1" + b"}" * 100_000

    assert_error(harness.call("POST", ENDPOINTS, raw=raw), 400)


def test_body_that_is_not_utf8_answers_400(harness: ApiHarness) -> None:
    assert_error(harness.call("POST", EVENTS, raw=b'{"eventType": "\xff\xfe", "payload": {}}'), 400)


def test_integer_with_too_many_digits_answers_4xx(harness: ApiHarness) -> None:
    raw = b'{"eventType": "a.b", "payload": {"n": 1' + b"0" * 5000 + b"}}"

    assert_client_error(harness.call("POST", EVENTS, raw=raw))


# --- 401 -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", ENDPOINTS, None),
        ("POST", ENDPOINTS, spec_body()),
        ("GET", f"{ENDPOINTS}/ep_x", None),
        ("PATCH", f"{ENDPOINTS}/ep_x", {"description": "x"}),
        ("DELETE", f"{ENDPOINTS}/ep_x", None),
        ("POST", f"{ENDPOINTS}/ep_x/verify", None),
        ("POST", f"{ENDPOINTS}/ep_x/redrive", None),
        ("POST", EVENTS, EVENT),
    ],
    ids=["list", "create", "get", "patch", "delete", "verify", "redrive", "events"],
)
def test_missing_api_key_answers_401_on_every_route(harness: ApiHarness, method: str, path: str, body: Any) -> None:
    assert_error(harness.call(method, path, body, key=None), 401, "unauthorized")


@pytest.mark.parametrize(
    "key",
    [
        "spool_" + "x" * 43,
        "not-a-spool-key",
        "spool_",
        "spool_" + "x" * 200,
        "Spool_" + "x" * 43,
        "spool_\u00e9\u00e9\u00e9",
        "",
    ],
    ids=["unknown", "wrong-prefix", "bare-prefix", "too-long", "wrong-case", "non-ascii", "empty"],
)
def test_invalid_api_key_answers_401(harness: ApiHarness, key: str) -> None:
    assert_error(harness.call("GET", ENDPOINTS, key=key), 401, "unauthorized")


def test_api_key_of_a_valid_tenant_with_a_suffix_answers_401(harness: ApiHarness) -> None:
    assert_error(harness.call("GET", ENDPOINTS, key=harness.key + "x"), 401)


def test_401_does_not_say_whether_the_key_exists(harness: ApiHarness) -> None:
    unknown = harness.call("GET", ENDPOINTS, key="spool_" + "x" * 43).json()
    malformed = harness.call("GET", ENDPOINTS, key="nonsense").json()

    assert unknown == malformed


@pytest.mark.parametrize("raw", [b"{bad", b'{"unknown": 1}'], ids=["malformed", "invalid"])
def test_missing_api_key_answers_401_before_the_body_is_judged(harness: ApiHarness, raw: bytes) -> None:
    assert_error(harness.call("POST", EVENTS, raw=raw, key=None), 401)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", ENDPOINTS, None), ("POST", ENDPOINTS, spec_body()), ("POST", EVENTS, EVENT)],
    ids=["list", "create", "events"],
)
def test_the_api_key_is_checked_once_per_request(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: Any
) -> None:
    checked: list[str | None] = []
    authenticate = harness.services.tenants.authenticate

    def counting(key: str | None) -> str:
        checked.append(key)
        return authenticate(key)

    monkeypatch.setattr(harness.services.tenants, "authenticate", counting)

    assert harness.call(method, path, body).status in (200, 201, 202)
    assert checked == [harness.key]


def test_a_request_refused_after_its_key_was_accepted_leaves_no_tenant_behind(harness: ApiHarness) -> None:
    refused = harness.call("POST", EVENTS, raw=b'{"eventType": "a.b"}', headers={"content-type": "text/plain"})

    assert_error(refused, 415)
    assert api.app.context == {}


def test_an_answered_request_leaves_no_tenant_behind(harness: ApiHarness) -> None:
    assert harness.call("GET", ENDPOINTS).status == 200
    assert api.app.context == {}


def test_health_and_openapi_need_no_key(harness: ApiHarness) -> None:
    assert harness.call("GET", "/health", key=None).status == 200
    openapi = harness.call("GET", "/api/v1/openapi.json", key=None)
    assert openapi.status == 200
    assert "/api/v1/endpoints" in openapi.json()["paths"]


# --- 404 -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing"),
        ("GET", "/api/v2/endpoints"),
        ("GET", "/"),
        ("PUT", ENDPOINTS),
        ("POST", f"{ENDPOINTS}/ep_x/unknown-action"),
        ("GET", f"{ENDPOINTS}/ep_x/verify"),
    ],
)
def test_unknown_route_answers_404(harness: ApiHarness, method: str, path: str) -> None:
    assert_error(harness.call(method, path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"description": "x"}),
        ("DELETE", "", None),
        ("POST", "/verify", None),
        ("POST", "/redrive", None),
    ],
    ids=["get", "patch", "delete", "verify", "redrive"],
)
@pytest.mark.parametrize("endpoint_id", ["ep_00000000000000000000000000ab", "nonsense", "%F0%9F%98%80"])
def test_unknown_endpoint_id_answers_404(
    harness: ApiHarness, method: str, suffix: str, body: Any, endpoint_id: str
) -> None:
    assert_error(harness.call(method, f"{ENDPOINTS}/{endpoint_id}{suffix}", body), 404, "not_found")


def test_endpoint_id_over_64_characters_answers_4xx(harness: ApiHarness) -> None:
    assert_client_error(harness.call("GET", f"{ENDPOINTS}/{'a' * 65}"))


# --- 409 -------------------------------------------------------------------------------------------------------


def test_patch_racing_another_patch_answers_409(harness: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint_id = create_endpoint(harness)
    stale = harness.repo.endpoints[(harness.tenant_id, endpoint_id)]
    assert harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"description": "first"}).status == 200
    # The second writer read the endpoint before the first one wrote.
    monkeypatch.setattr(harness.repo, "get_endpoint", lambda tenant_id, endpoint_id: stale)

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"description": "second"})

    assert_error(reply, 409, "conflict")
    assert harness.repo.endpoints[(harness.tenant_id, endpoint_id)].description == "first"


def test_patch_racing_a_delete_answers_409(harness: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint_id = create_endpoint(harness)
    active = harness.repo.endpoints[(harness.tenant_id, endpoint_id)]
    assert harness.call("DELETE", f"{ENDPOINTS}/{endpoint_id}").status == 204
    monkeypatch.setattr(harness.repo, "get_endpoint", lambda tenant_id, endpoint_id: active)

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"description": "late"})

    assert_error(reply, 409, "conflict")
    assert harness.repo.endpoints[(harness.tenant_id, endpoint_id)].status == "deleted"


# --- 413 -------------------------------------------------------------------------------------------------------


def test_request_body_over_the_limit_answers_413(harness: ApiHarness) -> None:
    events = [{"eventType": "a.b", "payload": {"x": "y" * 100_000}}] * (limits.REQUEST_MAX_BYTES // 100_000 + 1)

    assert_error(harness.call("POST", EVENTS, {"events": events}), 413, "payload_too_large")
    assert harness.queue.sent == []


@pytest.mark.parametrize(
    "raw",
    [b"{" + b"x" * (limits.REQUEST_MAX_BYTES + 1), b'{"bad": "' + b"x" * (limits.REQUEST_MAX_BYTES + 1) + b'"}'],
    ids=["malformed", "invalid"],
)
def test_request_body_over_the_limit_answers_413_whatever_it_contains(harness: ApiHarness, raw: bytes) -> None:
    assert_error(harness.call("POST", EVENTS, raw=raw), 413)


def _event_with_line_of(size: int) -> dict[str, Any]:
    """An event whose NDJSON line is `size` bytes (createdAt always has the same length)."""
    empty = ndjson_line("e1", "a.b", {"x": ""}, "2026-04-14T10:30:00.000Z")
    return {"id": "e1", "eventType": "a.b", "payload": {"x": "y" * (size - len(empty.encode()))}}


def test_event_line_at_the_limit_is_accepted(harness: ApiHarness) -> None:
    reply = harness.call("POST", EVENTS, _event_with_line_of(limits.EVENT_MAX_BYTES))

    assert reply.status == 202, reply.text[:300]


def test_single_event_over_the_limit_answers_413_naming_payload(harness: ApiHarness) -> None:
    error = assert_error(harness.call("POST", EVENTS, _event_with_line_of(limits.EVENT_MAX_BYTES + 1)), 413)

    assert field_names(error) == ["payload"]
    assert harness.queue.sent == []


def test_one_oversized_event_in_a_batch_rejects_the_whole_batch(harness: ApiHarness) -> None:
    create_endpoint(harness)
    batch = {"events": [EVENT, _event_with_line_of(limits.EVENT_MAX_BYTES + 1), EVENT]}

    assert_error(harness.call("POST", EVENTS, batch), 413)
    assert harness.queue.sent == []


def test_multibyte_characters_count_as_bytes_toward_the_event_limit(harness: ApiHarness) -> None:
    # Each "é" is one character but two bytes of the UTF-8 line.
    payload = {"x": "é" * (limits.EVENT_MAX_BYTES // 2)}

    assert_error(harness.call("POST", EVENTS, {"eventType": "a.b", "payload": payload}), 413)


# --- 415 -------------------------------------------------------------------------------------------------------


def test_body_without_content_type_answers_415(harness: ApiHarness) -> None:
    assert_error(harness.call("POST", EVENTS, EVENT, headers={"content-type": ""}), 415, "unsupported_media_type")


def test_json_with_a_charset_parameter_is_accepted(harness: ApiHarness) -> None:
    reply = harness.call("POST", EVENTS, EVENT, headers={"content-type": "application/json; charset=utf-8"})

    assert reply.status == 202, reply.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/octet-stream"])
def test_body_of_another_content_type_answers_415(harness: ApiHarness, content_type: str) -> None:
    reply = harness.call("POST", EVENTS, EVENT, headers={"content-type": content_type})

    assert_error(reply, 415, "unsupported_media_type")


def test_form_encoded_body_answers_415(harness: ApiHarness) -> None:
    reply = harness.call(
        "POST", EVENTS, raw=b"eventType=a.b", headers={"content-type": "application/x-www-form-urlencoded"}
    )

    assert_error(reply, 415, "unsupported_media_type")


def test_json_content_type_in_upper_case_is_accepted(harness: ApiHarness) -> None:
    reply = harness.call("POST", EVENTS, EVENT, headers={"content-type": "Application/JSON"})

    assert reply.status == 202, reply.text


# --- 422 -------------------------------------------------------------------------------------------------------


def test_validation_error_names_the_nested_field_path(harness: ApiHarness) -> None:
    error = assert_error(harness.call("POST", ENDPOINTS, spec_body(batchSize=0)), 422, "validation_error")

    assert field_names(error) == ["storageConfig.batchSize"]


def test_validation_error_names_the_list_index(harness: ApiHarness) -> None:
    body = spec_body()
    body["eventTypes"] = ["order.*", "bad pattern"]

    assert field_names(assert_error(harness.call("POST", ENDPOINTS, body), 422)) == ["eventTypes.1"]


def test_domain_validation_error_names_the_field(harness: ApiHarness) -> None:
    body = spec_body()
    body["url"] = "s3://another-bucket/events/"

    assert field_names(assert_error(harness.call("POST", ENDPOINTS, body), 422, "validation_error")) == ["url"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"eventType": "a.b", "payload": []}, "payload"),
        ({"events": [{"eventType": "a.b", "payload": []}]}, "events.0.payload"),
    ],
    ids=["single", "batch"],
)
def test_event_validation_error_names_the_field_as_sent(harness: ApiHarness, body: Any, field: str) -> None:
    assert field_names(assert_error(harness.call("POST", EVENTS, body), 422)) == [field]


@pytest.mark.parametrize("name", ["bucket", "provider"])
def test_patch_clearing_a_required_storage_field_names_it_with_its_path(harness: ApiHarness, name: str) -> None:
    endpoint_id = create_endpoint(harness)

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"storageConfig": {name: None}})

    assert field_names(assert_error(reply, 422)) == [f"storageConfig.{name}"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=-1", "limit=1.5"])
def test_bad_page_size_answers_422_naming_limit(harness: ApiHarness, query: str) -> None:
    assert field_names(assert_error(harness.call("GET", f"{ENDPOINTS}?{query}"), 422)) == ["query.limit"]


# --- unexpected errors -----------------------------------------------------------------------------------------


def test_unexpected_error_answers_a_generic_500_without_its_message(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail wJalrXUtnFEMI")

    monkeypatch.setattr(harness.services.endpoints, "list", explode)

    reply = harness.call("GET", ENDPOINTS)

    assert_error(reply, 500, "internal_error")
    assert "wJalrXUtnFEMI" not in reply.text
    assert "wJalrXUtnFEMI" not in capfd.readouterr().out


# --- no 5xx for any client input -------------------------------------------------------------------------------

ODD_BODIES: list[Any] = [
    None,
    [],
    [spec_body()],
    "string",
    0,
    -1.5,
    True,
    {},
    {"storageConfig": None},
    {"storageConfig": []},
    {"storageConfig": "s3"},
    {"eventTypes": {"a": 1}},
    {"url": None, "deliveryMode": None, "eventTypes": None, "storageConfig": None},
    {"url": ["s3://b/"]},
    {"url": {"href": "s3://b/"}},
    spec_body(batchSize=[100]),
    spec_body(batchSize={"n": 1}),
    spec_body(prefix=["events/"]),
    spec_body(endpoint=9000),
    spec_body(accessKeyId=123456),
    spec_body(secretAccessKey={"value": "x"}),
    spec_body(region="\u202eus-east-1"),
    spec_body(bucket="\u200bbucket"),
    spec_body(prefix="évènements/"),
    spec_body(prefix="\ud800/"),
    spec_body(bucket="\udfff"),
    spec_body(endpoint="http://\ud800/"),
    spec_body(endpoint="http://例え.テスト:9000"),
    spec_body(endpoint="http://" + "a" * 300 + ".example"),
    spec_body(endpoint="http://" + "a" * 3000),
    {**spec_body(), "description": "\ud800"},
    {**spec_body(), "description": "\x00😀\u202e"},
    {**spec_body(), "eventTypes": ["\ud800"]},
    {**spec_body(), "eventTypes": [None]},
    {**spec_body(), "eventTypes": [[]]},
    {**spec_body(), "eventTypes": ["a"] * 100_000},
    {**spec_body(), "url": "s3://\ud800/events/"},
    {**spec_body(), "url": "s3://my-webhook-archive/\x00/"},
    {**spec_body(), "url": "s3://my-webhook-archive:notaport/events/"},
    {"a" * 10_000: 1},
    {"\ud800": 1},
]


@pytest.mark.parametrize("body", ODD_BODIES, ids=[f"body{i}" for i in range(len(ODD_BODIES))])
def test_odd_endpoint_body_answers_4xx_or_201_not_5xx(harness: ApiHarness, body: Any) -> None:
    reply = harness.call("POST", ENDPOINTS, raw=json.dumps(body).encode())

    assert reply.status < 500, reply.text
    if reply.status >= 400:
        assert_error(reply, reply.status)


def test_array_around_an_endpoint_body_answers_422(harness: ApiHarness) -> None:
    assert_error(harness.call("POST", ENDPOINTS, [spec_body()]), 422)
    assert harness.repo.endpoints == {}


def test_array_of_events_answers_422_instead_of_accepting_only_the_first(harness: ApiHarness) -> None:
    create_endpoint(harness)
    first = {"eventType": "order.created", "payload": {"n": 1}}
    second = {"eventType": "order.created", "payload": {"n": 2}}

    reply = harness.call("POST", EVENTS, [first, second])

    assert_error(reply, 422)
    assert harness.queue.sent == []


@pytest.mark.parametrize("body", ODD_BODIES, ids=[f"body{i}" for i in range(len(ODD_BODIES))])
def test_odd_patch_body_answers_4xx_or_200_not_5xx(harness: ApiHarness, body: Any) -> None:
    endpoint_id = create_endpoint(harness)
    patch = body if not isinstance(body, dict) else {k: v for k, v in body.items() if k != "deliveryMode"}

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", raw=json.dumps(patch).encode())

    assert reply.status < 500, reply.text


ODD_EVENTS: list[Any] = [
    None,
    [],
    [EVENT],
    "event",
    1,
    {},
    {"events": None},
    {"events": []},
    {"events": {}},
    {"events": [None]},
    {"events": [[]]},
    {"events": "x"},
    {"events": [EVENT], "eventType": "a.b"},
    {"eventType": None, "payload": {}},
    {"eventType": 1, "payload": {}},
    {"eventType": "a.b", "payload": None},
    {"eventType": "a.b", "payload": "text"},
    {"eventType": "a.b", "payload": [1, 2]},
    {"eventType": "a.b"},
    {"payload": {}},
    {"eventType": "a.b", "payload": {}, "id": ""},
    {"eventType": "a.b", "payload": {}, "id": "x" * 65},
    {"eventType": "a.b", "payload": {}, "id": "has space"},
    {"eventType": "a.b", "payload": {}, "id": 7},
    {"eventType": "a.b", "payload": {}, "id": "\ud800"},
    {"eventType": "\ud800", "payload": {}},
    {"eventType": "a" * 10_000, "payload": {}},
    {"eventType": "order.*", "payload": {}},
    {"eventType": "a.b", "payload": {}, "extra": True},
    {"eventType": "a.b", "payload": {"k" * 1000: "v"}},
    {"eventType": "a.b", "payload": {"x": "\x00😀\u202e\ufeff"}},
]


@pytest.mark.parametrize("body", ODD_EVENTS, ids=[f"body{i}" for i in range(len(ODD_EVENTS))])
def test_odd_event_body_answers_4xx_or_202_not_5xx(harness: ApiHarness, body: Any) -> None:
    reply = harness.call("POST", EVENTS, raw=json.dumps(body).encode())

    assert reply.status < 500, reply.text
    if reply.status >= 400:
        assert_error(reply, reply.status)


def test_payload_nested_beyond_the_limit_answers_422(harness: ApiHarness) -> None:
    depth = limits.PAYLOAD_MAX_DEPTH + 1
    raw = b'{"eventType": "a.b", "payload": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"

    assert_error(harness.call("POST", EVENTS, raw=raw), 422)


def test_payload_nested_thousands_deep_answers_4xx(harness: ApiHarness) -> None:
    raw = b'{"eventType": "a.b", "payload": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}"

    assert_client_error(harness.call("POST", EVENTS, raw=raw))


def test_payload_nested_at_the_limit_is_accepted(harness: ApiHarness) -> None:
    depth = limits.PAYLOAD_MAX_DEPTH - 1  # the payload object itself is level 1
    raw = b'{"eventType": "a.b", "payload": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"

    assert harness.call("POST", EVENTS, raw=raw).status == 202


@pytest.mark.parametrize("raw_payload", [b'{"x": "\\ud800"}', b'{"\\udfff": 1}'], ids=["value", "key"])
def test_lone_surrogate_in_payload_answers_4xx(harness: ApiHarness, raw_payload: bytes) -> None:
    raw = b'{"eventType": "a.b", "payload": ' + raw_payload + b"}"

    assert_client_error(harness.call("POST", EVENTS, raw=raw))


def test_sample_api_gateway_event_from_events_dir_is_answered(harness: ApiHarness) -> None:
    harness.services.tenants.adopt_key(harness.tenant_id, "spool_sample-key-used-only-in-unit-tests-0000000000")

    result = harness.handler(load_event("apigw_create_endpoint.json"), FakeContext("spool-api"))

    assert result["statusCode"] == 201, result["body"]
    assert json.loads(result["body"])["storageConfig"]["credentialsConfigured"] is True
