"""An HTTP front on 127.0.0.1 that turns each request into an API Gateway HTTP API (payload v2) event, calls
the api handler in-process and writes its response back, like API Gateway does."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from spool.local.lambda_context import FakeContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
# API Gateway HTTP APIs accept request bodies up to 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024


def to_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    url = urlsplit(target)
    now = time.time()
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    query = parse_qsl(url.query, keep_blank_values=True)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        joined: dict[str, str] = {}
        for name, value in query:
            joined[name] = f"{joined[name]},{value}" if name in joined else value
        event["queryStringParameters"] = joined
    if body:
        event["body"] = text
    return event


class ApiFront(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        self.handler = handler
        # One request at a time through the handler, as in one Lambda execution environment: Powertools'
        # resolver keeps the current request in module state, so overlapping calls would see each other's
        # event (and tenant). Connections are still accepted and read in parallel.
        self.invoke_lock = threading.Lock()
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiFront
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            return
        body = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        event = to_event(self.command, self.path, headers, body, self.client_address[0])
        try:
            with self.server.invoke_lock:
                result = self.server.handler(event, FakeContext("spool-api"))
        except Exception:  # API Gateway answers 500 when the integration fails
            self._reply(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
            return
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        reply_headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        self._reply(int(result.get("statusCode", 200)), reply_headers, data, result.get("cookies") or [])

    def _reply(self, status: int, headers: dict[str, str], data: bytes, cookies: list[str] | None = None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name not in ("content-length", "connection"):
                self.send_header(name, value)
        for cookie in cookies or []:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server dispatches a request to `do_<METHOD>` and answers 501 (HTML) when there is none. API
        # Gateway's catch-all `$default` route hands every method to the function (TRACE, CONNECT, made-up
        # ones), so every method goes to the handler and the answer is the API's own (a JSON 404).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def log_message(self, format: str, *args: Any) -> None:
        pass
