"""The store clients' HTTP: a total deadline on every call, and connections to the addresses that were checked.

**Deadlines.** botocore's `connect_timeout` and `read_timeout` bound one socket operation each, not a call: a
store that sends its answer one byte a second keeps a PutObject open for ever. urllib3's `Timeout(total=...)`
is no better (its documentation: the read and total timeouts "only measure the time between read operations on
the socket"), and `HTTPResponse.shutdown()` exists only once the headers are in. So `with_deadlines` gives every
call of a client a deadline, set when the call starts (botocore's `provide-client-params` event, once per call)
and kept in botocore's request context, which every attempt of the call shares. `DeadlineSession`, the
client's HTTP session, enforces it on each attempt:

- no time left: `DeadlineExceeded` at once, without sending; otherwise the attempt's connect timeout and its
  read timeout (botocore's per-request `read_timeout` context override) are cut to the time left;
- a watchdog thread shuts the attempt's sockets down (`socket.shutdown`, through a duplicate of the descriptor,
  so TLS sockets are cut too, even mid-handshake) when the deadline passes: a blocked read or write returns at
  once, and the attempt is `DeadlineExceeded` whatever urllib3 made of the cut (with botocore's
  `enforce_content_length=False` a cut body could otherwise pass for a whole one);
- name resolution runs in a thread of its own and is abandoned at the deadline (`getaddrinfo` has no timeout,
  and a tenant's DNS server may be as slow as its store).

The only time outside an attempt is botocore's back-off before a second attempt (at most 1 s with two
attempts), so a call ends at its deadline or within that second after it.

**Pinned addresses.** With `addresses` (a store at a custom `endpoint`), each new connection resolves the host
and checks every address with the endpoint policy (domain/urlpolicy.py: `UrlPolicy.addresses`), then connects
to a checked address; a refused or unresolvable name is a `StoreError`. urllib3 uses the name, never the
socket's address, for SNI, the certificate check and the Host header, so those keep the name. urllib3 has no
resolver hook: the connection classes replace `_new_conn`, the one place it opens a socket.

Store connections never go through an HTTP(S) proxy from the environment: a proxy would resolve the name
itself, after the check.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from botocore.awsrequest import AWSHTTPConnection, AWSHTTPConnectionPool, AWSHTTPSConnection, AWSHTTPSConnectionPool
from botocore.httpsession import URLLib3Session
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from spool.domain.errors import DeadlineExceeded, InvalidInput, StoreError

# A host name -> the checked addresses to connect to, in order; raises InvalidInput when the name is refused.
Addresses = Callable[[str], list[str]]
# (operation name, the call's parameters) -> the call's total deadline in seconds.
CallSeconds = Callable[[str, dict[str, Any]], float]

_CONTEXT_KEY = "spool_deadline"  # a call's `Deadline` in botocore's request context
_HANDLER_ID = "spool-store-deadline"


@dataclass(frozen=True)
class Deadline:
    """When a call must be over (time.monotonic()), and the seconds it was given."""

    at: float
    seconds: float

    @classmethod
    def start(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def left(self) -> float:
        return self.at - time.monotonic()


class Watchdog:
    """One daemon thread that runs actions at their times (time.monotonic()) unless cancelled before."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._tickets = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, action: Callable[[], None]) -> int:
        with self._wake:
            ticket = next(self._tickets)
            heapq.heappush(self._due, (at, ticket, action))
            self._live.add(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="spool-store-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
        return ticket

    def cancel(self, ticket: int) -> None:
        with self._wake:
            self._live.discard(ticket)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._due and self._due[0][1] not in self._live:
                    heapq.heappop(self._due)  # cancelled
                if not self._due:
                    self._wake.wait()
                    continue
                at, ticket, action = self._due[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._due)
                self._live.discard(ticket)
            action()


WATCHDOG = Watchdog()


class _Refused(Exception):
    """Raised inside urllib3 when the policy refuses the host; the session turns it into a StoreError."""


class _OutOfTime(Exception):
    """Raised inside urllib3 when resolving the host outlasts the deadline."""


class _Attempt:
    """One HTTP attempt of a call, as its connections see it: the deadline, the address check, the sockets the
    watchdog shuts down when the deadline passes, and what happened."""

    def __init__(self, deadline: Deadline, addresses: Addresses | None) -> None:
        self.deadline = deadline
        self.addresses = addresses
        self.cut = False
        self.refused: str | None = None
        self._lock = threading.Lock()
        self._watched: dict[int, socket.socket] = {}  # descriptor -> our duplicate of it

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock` at the deadline. A duplicate of its descriptor is kept (shutdown acts on the connection,
        whichever descriptor names it): a TLS wrapper takes the plain socket's descriptor over, and the
        duplicate stays valid through that and until the attempt ends."""
        fd = sock.fileno()
        with self._lock:
            if fd < 0 or fd in self._watched:
                return
            duplicate = socket.socket(fileno=os.dup(fd))
            self._watched[fd] = duplicate
            cut = self.cut
        if cut:
            _shut(duplicate)

    def cut_now(self) -> None:
        """The watchdog's action: mark the attempt cut and shut its sockets down."""
        with self._lock:
            self.cut = True
            for duplicate in self._watched.values():
                _shut(duplicate)

    def end(self) -> None:
        with self._lock:
            for duplicate in self._watched.values():
                duplicate.close()
            self._watched.clear()

    def resolve(self, host: str) -> list[str]:
        """The addresses to connect to: checked by the policy when pinned, else every address of the name.
        Waits no longer than the deadline."""
        lookup = self.addresses or _addresses_of
        answer: list[list[str] | BaseException] = []

        def run() -> None:
            try:
                answer.append(lookup(host))
            except BaseException as exc:  # handed to the waiting thread
                answer.append(exc)

        thread = threading.Thread(target=run, name="spool-store-resolve", daemon=True)
        thread.start()
        thread.join(max(self.deadline.left(), 0.0))
        if not answer:
            self.cut = True
            raise _OutOfTime
        found = answer[0]
        if isinstance(found, InvalidInput):
            self.refused = found.message
            raise _Refused(found.message)
        if isinstance(found, BaseException):
            raise found
        return found


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side, or never connected
        sock.shutdown(socket.SHUT_RDWR)


def _addresses_of(host: str) -> list[str]:
    """Every address of `host`, unchecked (Amazon S3 and AWS STS): resolution still bounded by the deadline."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("spool_store_attempt", default=None)


class _DeadlineConnection:
    """Mixin for botocore's connection classes: the socket of a new connection is opened here (resolved,
    checked, pinned, bounded by the deadline) and every connection an attempt uses is watched."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    sock: Any

    def _new_conn(self) -> socket.socket:
        attempt = _ATTEMPT.get()
        if attempt is None:  # not sent by a DeadlineSession (never the case for Spool's clients)
            return super()._new_conn()  # type: ignore[misc]
        try:
            addresses = attempt.resolve(self.host.strip("[]"))
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc  # type: ignore[arg-type]
        timeout = _cut(self.timeout, attempt.deadline)
        failure: OSError | None = None
        for address in addresses:
            try:
                sock = create_connection(
                    (address, self.port),
                    timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                failure = exc
                continue
            try:
                attempt.watch(sock)
            except OSError:
                sock.close()  # no descriptor left to watch it with: never use a socket the deadline cannot cut
                raise
            return sock
        if isinstance(failure, TimeoutError):
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. (connect timeout={timeout})")
        raise NewConnectionError(self, f"Failed to establish a new connection: {failure}")  # type: ignore[arg-type]

    def request(self, *args: Any, **kwargs: Any) -> None:
        attempt = _ATTEMPT.get()
        if attempt is not None and self.sock is not None:  # a connection from the pool: watch it for this attempt
            attempt.watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _cut(timeout: Any, deadline: Deadline) -> float:
    left = max(deadline.left(), 0.001)
    return min(float(timeout), left) if isinstance(timeout, int | float) else left


# botocore's stubs type AWSConnection's overrides unlike urllib3's; the classes mix as botocore's own do.
class _HTTPConnection(_DeadlineConnection, AWSHTTPConnection):  # type: ignore[misc]
    pass


class _HTTPSConnection(_DeadlineConnection, AWSHTTPSConnection):  # type: ignore[misc]
    pass


class _HTTPPool(AWSHTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(AWSHTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineSession(URLLib3Session):
    """botocore's HTTP session with the call's deadline enforced on every attempt (see the module docstring).

    `what` names the service in `DeadlineExceeded` ("store", "AWS STS"); `addresses`, when given, pins every
    new connection to addresses it returns; `fallback_seconds` bounds an attempt whose call carries no
    deadline (a request sent without `with_deadlines`' hook)."""

    def __init__(
        self,
        *,
        what: str,
        connect_timeout: float,
        read_timeout: float,
        fallback_seconds: float,
        addresses: Addresses | None = None,
        max_pool_connections: int = 10,
        verify: bool | str = True,
        watchdog: Watchdog = WATCHDOG,
    ) -> None:
        # botocore's stubs say bool and int; URLLib3Session takes a CA bundle path and a (connect, read) pair.
        parent: Any = super()
        parent.__init__(
            verify=verify,
            proxies={},
            timeout=(connect_timeout, read_timeout),
            max_pool_connections=max_pool_connections,
        )
        # botocore has no parameter for the pools' connection classes: these are the two attributes
        # URLLib3Session's own __init__ sets them with.
        pools = {"http": _HTTPPool, "https": _HTTPSPool}
        self._pool_classes_by_scheme = pools
        cast(Any, self)._manager.pool_classes_by_scheme = pools
        self._what = what
        self._read_timeout = read_timeout
        self._fallback_seconds = fallback_seconds
        self._addresses = addresses
        self._watchdog = watchdog

    def send(self, request: Any) -> Any:
        context = request.context if isinstance(getattr(request, "context", None), dict) else {}
        deadline = context.get(_CONTEXT_KEY) or Deadline.start(self._fallback_seconds)
        left = deadline.left()
        if left <= 0:
            raise DeadlineExceeded.after(deadline.seconds, self._what)
        context["read_timeout"] = min(self._read_timeout, left)  # botocore's per-request read timeout
        request.context = context
        attempt = _Attempt(deadline, self._addresses)
        ticket = self._watchdog.arm(deadline.at, attempt.cut_now)
        token = _ATTEMPT.set(attempt)
        try:
            response = super().send(request)
        except Exception:
            # A timeout cut to the time left may fire a moment before the watchdog does: the deadline it is.
            if attempt.cut or deadline.left() <= 0:
                raise DeadlineExceeded.after(deadline.seconds, self._what) from None
            if attempt.refused is not None:
                raise StoreError(f"endpoint refused: {attempt.refused}") from None
            raise
        finally:
            _ATTEMPT.reset(token)
            self._watchdog.cancel(ticket)
            attempt.end()
        if attempt.cut:
            raise DeadlineExceeded.after(deadline.seconds, self._what)
        return response


def with_deadlines[C](
    client: C,
    seconds: CallSeconds,
    *,
    what: str,
    addresses: Addresses | None = None,
    watchdog: Watchdog = WATCHDOG,
) -> C:
    """`client`, its every call given a total deadline of `seconds(operation, params)` and its HTTP session a
    `DeadlineSession` (with `addresses`: connections pinned to checked addresses). A client that has one
    already keeps it. Returns the client."""
    meta: Any = getattr(client, "meta")  # noqa: B009 - mypy's stubs of a client have meta, not its type
    endpoint: Any = getattr(client, "_endpoint")  # noqa: B009
    if isinstance(endpoint.http_session, DeadlineSession):
        return client

    def start(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context[_CONTEXT_KEY] = Deadline.start(seconds(model.name, params))

    meta.events.register("provide-client-params", start, unique_id=_HANDLER_ID)
    config = meta.config
    replaced = endpoint.http_session
    # botocore gives a client no way to choose its HTTP session (its EndpointCreator always builds a
    # URLLib3Session): the endpoint's is replaced. TLS verification stays what botocore resolved for the client
    # (AWS_CA_BUNDLE, `verify=`); before-send hooks (moto, Stubber, tests) still answer before any session.
    endpoint.http_session = DeadlineSession(
        what=what,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        fallback_seconds=seconds("", {}),
        addresses=addresses,
        max_pool_connections=config.max_pool_connections,
        verify=getattr(replaced, "_verify", True),
        watchdog=watchdog,
    )
    replaced.close()
    return client


def body_seconds(per_call: Callable[[int], float]) -> CallSeconds:
    """A `CallSeconds` from a deadline per body size (domain/limits.py: store_call_seconds): a call's body is
    its `Body` parameter (PutObject's), else nothing."""

    def seconds(_operation: str, params: dict[str, Any]) -> float:
        body = params.get("Body")
        return per_call(len(body) if isinstance(body, bytes | bytearray) else 0)

    return seconds


def fixed_seconds(value: float) -> CallSeconds:
    """A `CallSeconds` that gives every call `value` seconds."""
    return lambda _operation, _params: value
