"""Fault injection from the test side: nothing in production code knows about it.

- `StoreProxy`: an HTTP proxy on 127.0.0.1 in front of an S3-compatible store (SeaweedFS) that can answer
  with S3 errors (503 SlowDown, 500, 403 InvalidAccessKeyId), refuse connections, or hang.
- `AwsFaults`: answers chosen calls of one boto3 client with an AWS error before they are sent (a botocore
  `before-send` hook), so botocore's own retry logic runs exactly as it would against a throttling service.
- `PutTracker`: wraps the sink's store factory to see which objects each invocation (thread) wrote.
- `restart_pollers`: replaces the local runtime's SQS pollers, as a new Lambda execution environment would.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse, HeadersDict

from spool.handlers.wiring import SinkServices
from spool.local.runtime import LocalRuntime

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
}
_ACCESS_KEY_RE = re.compile(r"Credential=([^/]+)/")


class _Refused(Exception):
    """Close the client's connection without an answer (a reset, as a crashed store gives)."""


class StoreProxy:
    """A fault-injecting HTTP proxy for an S3-compatible store on loopback.

    Modes: `pass` (forward), `error` (answer every request with an S3 error document), `down` (nothing
    listens: connections are refused), `hang` (read the request and never answer it: the connection is reset
    once healed, and the store never sees the request).
    The Host header is forwarded unchanged, so SigV4 signatures made for the proxy's address stay valid.
    Every request is recorded with the access key id of its SigV4 `Credential=` (`seen`): which credentials the
    store was sent.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.mode = "pass"
        self._error: tuple[int, str, str] = (503, "SlowDown", "Please reduce your request rate.")
        self.injected = 0
        self.forwarded = 0
        self._seen: list[tuple[str, str, str]] = []  # (method, path, access key id)
        self._server: ThreadingHTTPServer | None = None
        self._listen(0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- control ---------------------------------------------------------------------------------------
    def fail(self, status: int, code: str, message: str) -> None:
        with self._lock:
            self._error = (status, code, message)
            self.mode = "error"

    def down(self) -> None:
        """Stop listening: the store is unreachable (connection refused)."""
        with self._lock:
            self.mode = "down"
        self._close_listener()

    def hang(self) -> None:
        with self._lock:
            self._released.clear()
            self.mode = "hang"

    def heal(self) -> None:
        with self._lock:
            was_down = self.mode == "down"
            self.mode = "pass"
            self._released.set()
        if was_down:
            self._listen(self.port)

    def stop(self) -> None:
        self._released.set()
        self._close_listener()

    def seen(self) -> list[tuple[str, str, str]]:
        """(method, path, access key id) of every request so far, in order."""
        with self._lock:
            return list(self._seen)

    def count(self, what: str) -> int:
        with self._lock:
            return self.injected if what == "injected" else self.forwarded

    # --- plumbing --------------------------------------------------------------------------------------
    def _listen(self, port: int) -> None:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # idle keep-alive connections must not hold up a restart
        self.port = int(server.server_address[1])
        self._server = server
        threading.Thread(target=server.serve_forever, name=f"store-proxy-{self.port}", daemon=True).start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _note(self, *, injected: bool) -> None:
        with self._lock:
            if injected:
                self.injected += 1
            else:
                self.forwarded += 1


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: StoreProxy
    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        try:
            super().handle()
        except (_Refused, ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        owner = self.owner
        body = self._body()
        found = _ACCESS_KEY_RE.search(self.headers.get("Authorization") or "")
        with owner._lock:
            owner._seen.append((self.command, self.path, found.group(1) if found else ""))
        mode = owner.mode
        if mode == "hang":
            owner._note(injected=True)
            owner._released.wait()
            # Never answered: the client gave up or is still waiting; either way it sees a reset, and the
            # store never sees the request (so a hung write cannot complete behind the client's back).
            raise _Refused
        if mode == "down":
            # Connections made before the listener closed are reset as well.
            owner._note(injected=True)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise _Refused
        if mode == "error":
            owner._note(injected=True)
            self._answer_error()
            return
        owner._note(injected=False)
        self._forward(body)

    def _answer_error(self) -> None:
        status, code, message = self.owner._error
        found = _ACCESS_KEY_RE.search(self.headers.get("Authorization") or "")
        # Like S3, an InvalidAccessKeyId answer echoes the key id it was given.
        echo = f"<AWSAccessKeyId>{found.group(1)}</AWSAccessKeyId>" if found and status == 403 else ""
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>{echo}"
            f"<RequestId>{uuid.uuid4().hex[:16]}</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(self, body: bytes) -> None:
        upstream = HTTPConnection(*self.owner._upstream, timeout=30)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", response.getheader("Content-Length") or "0")
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class AwsFaults:
    """Answers matching calls of one boto3 client with an AWS error (JSON protocol: DynamoDB, KMS; XML: S3).

    Each attempt botocore makes counts: in its standard retry mode a call makes 3 attempts (4 for DynamoDB)
    before the error reaches the caller."""

    client: Any
    code: str
    message: str = "Rate exceeded"
    status: int = 400
    operations: set[str] | None = None
    match: str | None = None
    limit: int | None = None  # answer this many calls with the error, then let calls through again
    injected: int = 0
    operations_hit: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _id: str = field(default_factory=lambda: f"spool-fault-{uuid.uuid4().hex}")

    def _before_send(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        if self.operations is not None and operation not in self.operations:
            return None
        body = request.body or b""
        # JSON protocols name the item in the body; S3 names the object in the URL.
        text = request.url + (body.decode(errors="replace") if isinstance(body, bytes) else str(body))
        if self.match is not None and self.match not in text:
            return None
        with self._lock:
            if self.limit is not None and self.injected >= self.limit:
                return None
            self.injected += 1
            self.operations_hit.append(operation)
        if self.client.meta.service_model.protocol == "rest-xml":  # S3
            payload = f"<Error><Code>{self.code}</Code><Message>{self.message}</Message></Error>".encode()
            headers = HeadersDict({"Content-Type": "application/xml", "x-amz-request-id": uuid.uuid4().hex})
        else:
            payload = json.dumps({"__type": self.code, "message": self.message}).encode()
            headers = HeadersDict({"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": uuid.uuid4().hex})
        return AWSResponse(request.url, self.status, headers, _Raw(payload))

    def __enter__(self) -> AwsFaults:
        service = self.client.meta.service_model.service_id.hyphenize()
        self.client.meta.events.register(f"before-send.{service}", self._before_send, unique_id=self._id)
        return self

    def __exit__(self, *_: Any) -> None:
        service = self.client.meta.service_model.service_id.hyphenize()
        self.client.meta.events.unregister(f"before-send.{service}", unique_id=self._id)

    def count(self) -> int:
        with self._lock:
            return self.injected


@dataclass(frozen=True)
class Put:
    bucket: str
    key: str
    lines: int
    at: float  # when the put returned (time.time()): the store has the object from then on


class _TrackedStore:
    def __init__(self, inner: Any, bucket: str, tracker: PutTracker) -> None:
        self._inner = inner
        self._bucket = bucket
        self._tracker = tracker

    def put_new(
        self, key: str, body: bytes, *, content_type: str, content_encoding: str | None, sha256: str | None = None
    ) -> bool:
        written = bool(
            self._inner.put_new(key, body, content_type=content_type, content_encoding=content_encoding, sha256=sha256)
        )
        if written:
            self._tracker.record(Put(self._bucket, key, body.count(b"\n"), time.time()))
        return written

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def holds(self, key: str, sha256: str) -> bool | None:
        held: bool | None = self._inner.holds(key, sha256)
        return held


class PutTracker:
    """A store factory wrapper that records every object written, per thread (one invocation at a time)."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self._local = threading.local()
        self._lock = threading.Lock()
        self.all: list[Put] = []

    def __call__(self, settings: Any, credentials: Any) -> _TrackedStore:
        return _TrackedStore(self.inner(settings, credentials), settings.bucket, self)

    def record(self, put: Put) -> None:
        with self._lock:
            self.all.append(put)
        if getattr(self._local, "puts", None) is not None:
            self._local.puts.append(put)

    @contextmanager
    def invocation(self) -> Iterator[list[Put]]:
        self._local.puts = []
        try:
            yield self._local.puts
        finally:
            self._local.puts = None


@contextmanager
def tracked_puts(sink_services: SinkServices) -> Iterator[PutTracker]:
    """Wrap the sink's store factory (`SinkServices.stores`) in a `PutTracker`: stores built from now on (for
    endpoints not in the sink's endpoint cache yet) are tracked."""
    stores = sink_services.stores
    assert stores is not None
    tracker = PutTracker(stores.build)
    stores.build = tracker
    try:
        yield tracker
    finally:
        stores.build = tracker.inner


def restart_pollers(runtime: LocalRuntime, handler: Callable[[dict[str, Any], Any], Any] | None = None) -> None:
    """Stop the runtime's pollers and start new ones (with `handler`, or the sink handler), as Lambda does
    when an execution environment dies: messages in flight come back after their visibility timeout."""
    runtime.restart_pollers(handler)
