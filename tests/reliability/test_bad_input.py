"""Bad input gets a clear 4xx with a JSON error body naming the field, never a 5xx (SPEC: Guarantees), over real
HTTP through the local runtime; and odd but valid Unicode lands in storage byte for byte."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from spool.domain import limits
from spool.local.runtime import EXAMPLE_BUCKET
from tests.integration.conftest import Api, wait_until
from tests.reliability.ledger import read_lines

EVENTS, ENDPOINTS = "/api/v1/events", "/api/v1/endpoints"


def event(**fields: Any) -> dict[str, Any]:
    return {"eventType": "order.created", "payload": {"orderId": "ord_1"}} | fields


def endpoint(**config: Any) -> dict[str, Any]:
    storage = {
        "provider": "s3",
        "bucket": EXAMPLE_BUCKET,
        "prefix": "bad-input/",
        "region": "us-east-1",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    } | config
    return {"url": f"s3://{EXAMPLE_BUCKET}/bad-input/", "deliveryMode": "storage", "eventTypes": ["*"]} | {
        "storageConfig": storage
    }


def nested(levels: int) -> str:
    """An event whose payload is `levels` objects, one inside the other."""
    return '{"eventType":"a.b","payload":' + '{"x":' * (levels - 1) + '{"x":1}' + "}" * (levels - 1) + "}"


def raw(value: Any) -> bytes:
    return json.dumps(value).encode()


@dataclass(frozen=True)
class Bad:
    name: str
    method: str
    path: str
    body: bytes | None
    status: int
    code: str
    field: str | None = None
    content_type: str | None = "application/json"


CASES = [
    # size
    Bad(
        "body over 5 MiB", "POST", EVENTS, raw(event(payload={"x": "a" * (6 * 1024 * 1024)})), 413, "payload_too_large"
    ),
    Bad(
        "one event over 256 KiB",
        "POST",
        EVENTS,
        raw(event(payload={"x": "a" * (limits.EVENT_MAX_BYTES + 1)})),
        413,
        "payload_too_large",
        "payload",
    ),
    Bad(
        "batch over 500 events",
        "POST",
        EVENTS,
        raw({"events": [event()] * (limits.BATCH_MAX_EVENTS + 1)}),
        422,
        "validation_error",
        "events",
    ),
    # malformed
    Bad("truncated JSON", "POST", EVENTS, b'{"eventType": "a.b", "payload": {', 400, "malformed_json"),
    Bad("trailing garbage", "POST", EVENTS, raw(event()) + b" trailing", 400, "malformed_json"),
    Bad("JSON array", "POST", EVENTS, raw([event()]), 422, "validation_error"),
    Bad("JSON string", "POST", EVENTS, b'"an event"', 422, "validation_error"),
    Bad("empty object", "POST", EVENTS, b"{}", 422, "validation_error", "eventType"),
    Bad("not UTF-8", "POST", EVENTS, b'{"eventType": "a.b", "payload": {"x": "\xff\xfe"}}', 400, "malformed_json"),
    Bad("UTF-16", "POST", EVENTS, json.dumps(event()).encode("utf-16"), 400, "malformed_json"),
    Bad("byte order mark", "POST", EVENTS, b"\xef\xbb\xbf" + raw(event()), 400, "malformed_json"),
    Bad("NaN", "POST", EVENTS, b'{"eventType": "a.b", "payload": {"x": NaN}}', 422, "validation_error", "payload"),
    Bad("1e999", "POST", EVENTS, b'{"eventType": "a.b", "payload": {"x": 1e999}}', 422, "validation_error", "payload"),
    Bad(
        "5000-digit integer",
        "POST",
        EVENTS,
        b'{"eventType":"a.b","payload":{"x":' + b"9" * 5000 + b"}}",
        400,
        "malformed_json",
    ),
    Bad("unknown field", "POST", EVENTS, raw(event(extra=1)), 422, "validation_error", "extra"),
    Bad("payload not an object", "POST", EVENTS, raw(event(payload=[1, 2])), 422, "validation_error", "payload"),
    # nesting
    Bad(
        "payload 33 levels deep",
        "POST",
        EVENTS,
        nested(limits.PAYLOAD_MAX_DEPTH + 1).encode(),
        422,
        "validation_error",
        "payload",
    ),
    Bad("payload 100,000 levels deep", "POST", EVENTS, nested(100_000).encode(), 400, "malformed_json"),
    Bad(
        "array 1,000,000 levels deep",
        "POST",
        EVENTS,
        b'{"eventType":"a.b","payload":{"x":' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}}",
        400,
        "malformed_json",
    ),
    # odd Unicode where it is not allowed
    Bad(
        "lone surrogate",
        "POST",
        EVENTS,
        b'{"eventType": "a.b", "payload": {"x": "\\ud800"}}',
        422,
        "validation_error",
        "payload",
    ),
    Bad(
        "emoji in eventType",
        "POST",
        EVENTS,
        raw(event(eventType="order.\U0001f4e6")),
        422,
        "validation_error",
        "eventType",
    ),
    Bad(
        "zero-width space in eventType",
        "POST",
        EVENTS,
        raw(event(eventType="order\u200b.created")),
        422,
        "validation_error",
        "eventType",
    ),
    Bad(
        "fullwidth dot in eventType",
        "POST",
        EVENTS,
        raw(event(eventType="order\uff0ecreated")),
        422,
        "validation_error",
        "eventType",
    ),
    Bad(
        "right-to-left override in eventType",
        "POST",
        EVENTS,
        raw(event(eventType="order.\u202edetaerc")),
        422,
        "validation_error",
        "eventType",
    ),
    Bad("NUL in eventType", "POST", EVENTS, raw(event(eventType="order.\u0000")), 422, "validation_error", "eventType"),
    Bad(
        "eventType of 129 characters",
        "POST",
        EVENTS,
        raw(event(eventType="a" * 129)),
        422,
        "validation_error",
        "eventType",
    ),
    Bad("client id with a slash", "POST", EVENTS, raw(event(id="../evt")), 422, "validation_error", "id"),
    # endpoint bodies
    Bad(
        "51 eventTypes",
        "POST",
        ENDPOINTS,
        raw(endpoint() | {"eventTypes": [f"t{n}" for n in range(51)]}),
        422,
        "validation_error",
        "eventTypes",
    ),
    Bad(
        "100,000 eventTypes",
        "POST",
        ENDPOINTS,
        raw(endpoint() | {"eventTypes": [f"t{n}" for n in range(100_000)]}),
        422,
        "validation_error",
        "eventTypes",
    ),
    Bad(
        "repeated eventTypes",
        "POST",
        ENDPOINTS,
        raw(endpoint() | {"eventTypes": ["a.*", "a.*"]}),
        422,
        "validation_error",
        "eventTypes",
    ),
    Bad(
        "eventTypes pattern a.*.b",
        "POST",
        ENDPOINTS,
        raw(endpoint() | {"eventTypes": ["a.*.b"]}),
        422,
        "validation_error",
        "eventTypes",
    ),
    Bad(
        "batchSize as a string",
        "POST",
        ENDPOINTS,
        raw(endpoint(batchSize="100")),
        422,
        "validation_error",
        "storageConfig.batchSize",
    ),
    Bad(
        "batchSize 1.5",
        "POST",
        ENDPOINTS,
        raw(endpoint(batchSize=1.5)),
        422,
        "validation_error",
        "storageConfig.batchSize",
    ),
    Bad(
        "flushIntervalSeconds true",
        "POST",
        ENDPOINTS,
        raw(endpoint(flushIntervalSeconds=True)),
        422,
        "validation_error",
        "storageConfig.flushIntervalSeconds",
    ),
    Bad(
        "batchSize 10,001",
        "POST",
        ENDPOINTS,
        raw(endpoint(batchSize=10_001)),
        422,
        "validation_error",
        "storageConfig.batchSize",
    ),
    Bad(
        "url disagreeing with storageConfig",
        "POST",
        ENDPOINTS,
        raw(endpoint() | {"url": "s3://other/bad-input/"}),
        422,
        "validation_error",
        "url",
    ),
    Bad(
        "unicode bucket",
        "POST",
        ENDPOINTS,
        raw(endpoint(bucket="bücket")),
        422,
        "validation_error",
        "storageConfig.bucket",
    ),
    # content types
    Bad("text/plain", "POST", EVENTS, raw(event()), 415, "unsupported_media_type", content_type="text/plain"),
    Bad("no content type", "POST", EVENTS, raw(event()), 415, "unsupported_media_type", content_type=None),
    Bad(
        "form encoded",
        "POST",
        EVENTS,
        b"eventType=a.b",
        415,
        "unsupported_media_type",
        content_type="application/x-www-form-urlencoded",
    ),
    Bad(
        "multipart",
        "POST",
        ENDPOINTS,
        raw(endpoint()),
        415,
        "unsupported_media_type",
        content_type="multipart/form-data; boundary=x",
    ),
    Bad(
        "json-patch",
        "PATCH",
        ENDPOINTS + "/ep_x",
        raw({}),
        415,
        "unsupported_media_type",
        content_type="application/json-patch+json",
    ),
    # query and path
    Bad("limit not a number", "GET", ENDPOINTS + "?limit=abc", None, 422, "validation_error", "limit"),
    Bad("limit 0", "GET", ENDPOINTS + "?limit=0", None, 422, "validation_error", "limit"),
    Bad("limit 101", "GET", ENDPOINTS + "?limit=101", None, 422, "validation_error", "limit"),
    Bad("cursor not ours", "GET", ENDPOINTS + "?cursor=%F0%9F%92%A5", None, 422, "validation_error", "cursor"),
    Bad(
        "endpoint id of 65 characters", "GET", ENDPOINTS + "/" + "e" * 65, None, 422, "validation_error", "endpoint_id"
    ),
    Bad("endpoint id with odd Unicode", "GET", ENDPOINTS + "/ep_%E2%80%AE%00", None, 404, "not_found"),
    Bad("unknown route", "GET", "/api/v1/nothing-here", None, 404, "not_found"),
    Bad("method without a route", "PUT", EVENTS, raw(event()), 404, "not_found"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_4xx_json_error(tenant: Api, case: Bad) -> None:
    headers = {"X-API-Key": tenant.key}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    started = time.monotonic()
    reply = requests.request(case.method, tenant.base + case.path, data=case.body, headers=headers, timeout=60)
    elapsed = time.monotonic() - started

    assert reply.status_code == case.status, reply.text[:500]
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == case.code
    assert isinstance(error["message"], str) and error["message"]
    if case.field:
        named = [f["field"] for f in error.get("fields", [])] + [error["message"]]
        assert any(case.field in text for text in named), error
    assert elapsed < 10, f"took {elapsed:.1f}s"


def test_a_json_content_type_is_accepted_with_parameters_and_in_any_case(tenant: Api) -> None:
    for content_type in ("application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"):
        reply = requests.post(
            tenant.base + EVENTS,
            data=raw(event()),
            headers={"X-API-Key": tenant.key, "Content-Type": content_type},
            timeout=10,
        )
        assert reply.status_code == 202, (content_type, reply.text)


def test_a_payload_nested_exactly_to_the_limit_is_accepted(tenant: Api) -> None:
    reply = requests.post(
        tenant.base + EVENTS,
        data=nested(limits.PAYLOAD_MAX_DEPTH).encode(),
        headers={"X-API-Key": tenant.key, "Content-Type": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 202, reply.text


ODD_BUT_VALID = {
    "emoji": "\U0001f4e6\U0001f680 \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "cjk": "\u6ce8\u6587\u3057\u307e\u3057\u305f",
    "combining": "e\u0301\u0302\u0303 a\u0308",
    "rtl": "\u05e9\u05dc\u05d5\u05dd \u202e abc \u202c",
    "separators": "line\u2028para\u2029next\u0085end",
    "controls": "nul\u0000 bell\u0007 tab\t newline\n cr\r",
    "nonchars": "\ufffe\uffff\U0010ffff",
    "bom": "\ufeffstart",
    "escaped slash": 'a/b\\c"d',
    "\u00e9\u0301 key": "keys can be odd too",
}


def test_odd_but_valid_unicode_lands_in_storage_unchanged(tenant: Api, emulator_s3: Any) -> None:
    prefix = f"unicode-{uuid.uuid4().hex[:6]}/"
    body = endpoint(prefix=prefix, flushIntervalSeconds=1) | {
        "url": f"s3://{EXAMPLE_BUCKET}/{prefix}",
        "eventTypes": ["unicode.odd"],
    }
    tenant.create_endpoint(body)
    sent = {
        e["id"]: ODD_BUT_VALID for e in tenant.send_batch([{"eventType": "unicode.odd", "payload": ODD_BUT_VALID}] * 3)
    }

    objects = wait_until(lambda: _all_lines(emulator_s3, prefix, len(sent)), timeout=10, what="the object")
    for line in objects:
        stored = json.loads(line)  # each \n-separated line is one JSON document
        assert stored["payload"] == sent[stored["id"]]
    assert sorted(json.loads(line)["id"] for line in objects) == sorted(sent)


def _all_lines(s3: Any, prefix: str, count: int) -> list[str] | None:
    lines = [line for found in read_lines(s3, EXAMPLE_BUCKET, prefix).values() for line in found]
    return lines if len(lines) >= count else None
