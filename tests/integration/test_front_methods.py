"""The local front passes every HTTP method to the api handler, as API Gateway's catch-all `$default` route
does (infra/spool_infra/api.py): a method no route takes is the resolver's JSON 404, never http.server's own
501 HTML page."""

from __future__ import annotations

import json
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest

from spool.local.runtime import LocalRuntime


def send(runtime: LocalRuntime, method: str, target: str, key: str | None) -> tuple[int, str, str]:
    """One request with exactly this method and request target (http.client sends both as given)."""
    url = urlsplit(runtime.api_url)
    connection = HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        connection.putrequest(method, target)
        if key is not None:
            connection.putheader("X-API-Key", key)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        reply = connection.getresponse()
        body = reply.read()
        return reply.status, reply.getheader("content-type") or "", body.decode()
    finally:
        connection.close()


def assert_json_error(status: int, content_type: str, text: str, code: str) -> None:
    assert content_type.startswith("application/json"), f"{status} {content_type}: {text[:200]}"
    body: Any = json.loads(text)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert body["error"]["code"] == code and body["error"]["message"]
    assert 400 <= status < 500


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "FOO", "PROPFIND"])
def test_a_method_no_route_takes_is_a_json_404(runtime: LocalRuntime, method: str) -> None:
    status, content_type, body = send(runtime, method, "/api/v1/endpoints", runtime.api_key)
    assert status == 404
    assert_json_error(status, content_type, body, "not_found")


@pytest.mark.parametrize("method", ["TRACE", "FOO"])
def test_an_unknown_method_on_an_endpoint_path_is_a_json_404(runtime: LocalRuntime, method: str) -> None:
    status, content_type, body = send(runtime, method, "/api/v1/endpoints/ep_000000000000000000000000", runtime.api_key)
    assert status == 404
    assert_json_error(status, content_type, body, "not_found")


def test_an_unknown_method_without_a_key_is_refused_like_any_other(runtime: LocalRuntime) -> None:
    status, content_type, body = send(runtime, "TRACE", "/api/v1/endpoints", None)
    assert status == 401
    assert_json_error(status, content_type, body, "unauthorized")


def test_connect_to_an_authority_is_a_json_404_and_not_a_tunnel(runtime: LocalRuntime) -> None:
    url = urlsplit(runtime.api_url)
    status, content_type, body = send(runtime, "CONNECT", f"{url.hostname}:{url.port}", None)
    assert status == 404
    assert_json_error(status, content_type, body, "not_found")


def test_the_connection_still_serves_requests_after_an_unknown_method(runtime: LocalRuntime) -> None:
    url = urlsplit(runtime.api_url)
    connection = HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        for method in ("FOO", "GET"):
            connection.request(method, "/api/v1/endpoints", headers={"X-API-Key": runtime.api_key})
            reply = connection.getresponse()
            reply.read()
        assert reply.status == 200
    finally:
        connection.close()
