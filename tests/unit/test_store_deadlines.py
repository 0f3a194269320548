"""Store calls' total deadlines without sockets (issue 20, "Hard deadlines"): the figures the sink plans with
(domain/limits.py), the error a call that reaches its deadline raises, and that every call of a store client
carries its deadline (adapters/store_http.py). The deadlines against real sockets and a dripping store are in
tests/integration/test_store_http.py."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict

from spool.adapters.store_http import Deadline, DeadlineSession, Watchdog
from spool.adapters.stores import Stores
from spool.domain import limits
from spool.domain.credentials import Credentials
from spool.domain.errors import DeadlineExceeded, StoreError
from spool.domain.storage import StorageSettings
from spool.domain.urlpolicy import UrlPolicy

MIB = 1024 * 1024
KEYS = Credentials(accessKeyId="AKIAIOSFODNN7EXAMPLE", secretAccessKey="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def test_a_store_call_without_a_body_has_the_base_deadline() -> None:
    assert limits.store_call_seconds() == limits.store_call_seconds(0) == limits.STORE_CALL_SECONDS == 10


def test_a_puts_deadline_grows_with_its_body_and_is_capped() -> None:
    assert limits.store_call_seconds(6 * MIB) == 13
    assert limits.store_call_seconds(MIB) > limits.store_call_seconds(1024) > limits.store_call_seconds(0)
    assert limits.store_call_seconds(100 * MIB) == limits.STORE_CALL_MAX_SECONDS == 60
    assert limits.store_call_seconds(5 * 1024 * MIB) == 60


def test_one_attempt_fits_twice_in_a_small_calls_deadline() -> None:
    # A dead connection (connect timeout) or a silent store (read timeout) leaves time for a second attempt.
    assert limits.STORE_CONNECT_SECONDS + limits.STORE_READ_SECONDS < limits.STORE_CALL_SECONDS
    assert limits.STORE_ATTEMPTS == 2


def test_verify_answers_within_api_gateways_30_seconds() -> None:
    # The ExternalId probe, the probe's put (its AssumeRole runs inside it) and the delete.
    assert limits.STS_CALL_SECONDS + 2 * limits.VERIFY_CALL_SECONDS < 25
    assert limits.STS_CALL_SECONDS <= limits.VERIFY_CALL_SECONDS <= limits.STORE_CALL_SECONDS


def test_the_reserve_figure_is_the_deadline_of_a_put_of_one_invocations_payload() -> None:
    assert limits.store_call_seconds(6 * MIB) == 13


def test_deadline_exceeded_is_a_store_error_naming_the_deadline() -> None:
    error = DeadlineExceeded.after(13.0)

    assert isinstance(error, StoreError)
    assert error.code == "store_error"
    assert error.message == "store did not answer within 13 s (deadline exceeded)"
    assert error.seconds == 13.0
    assert DeadlineExceeded.after(5.0, "AWS STS").message == "AWS STS did not answer within 5 s (deadline exceeded)"


def test_deadline_exceeded_can_be_raised_with_a_message_alone() -> None:
    error = DeadlineExceeded("store did not answer within 10 s (deadline exceeded)")

    assert error.message == "store did not answer within 10 s (deadline exceeded)"
    assert error.seconds is None


# --- every call carries its deadline -----------------------------------------------------------------------


ERROR = b"<Error><Code>InternalError</Code><Message>try again</Message></Error>"


def answered_store(*statuses: int, **stores: Any) -> tuple[Any, list[tuple[str, Deadline]]]:
    """An S3 store built by `Stores` whose requests are answered by a before-send hook (no socket): `statuses`
    in turn (500 with S3's error document), then 200; each request's method and deadline are kept."""
    sent: list[tuple[str, Deadline]] = []
    answers = iter(statuses)
    settings = StorageSettings(provider="s3", bucket="archive", region="us-east-1", endpoint="https://store.example")
    store = Stores(UrlPolicy(resolver=lambda _: ["93.184.216.34"]), None, **stores)(settings, KEYS)
    client = store._s3  # type: ignore[attr-defined]

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append((request.method, request.context["spool_deadline"]))
        status = next(answers, 200)
        body = ERROR if status >= 500 else b""
        headers = HeadersDict({"ETag": '"e"', "Content-Length": str(len(body))})
        return AWSResponse(request.url, status, headers, _Body(body))

    client.meta.events.register("before-send.s3", answer)
    assert isinstance(client._endpoint.http_session, DeadlineSession)
    return store, sent


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def test_every_store_call_carries_a_deadline_sized_for_its_body() -> None:
    store, sent = answered_store()
    body = b"x" * (4 * MIB)

    store.put_new("events/a", body, content_type="application/x-ndjson", content_encoding=None)
    store.delete("events/a")

    [(put, put_deadline), (delete, delete_deadline)] = sent
    assert (put, delete) == ("PUT", "DELETE")
    assert put_deadline.seconds == limits.store_call_seconds(len(body)) == 12
    assert delete_deadline.seconds == limits.STORE_CALL_SECONDS


def test_verifys_store_calls_carry_the_verify_deadline() -> None:
    store, sent = answered_store(verifying=True)

    store.put_new("events/.spool-verify-x", b"probe\n", content_type="text/plain", content_encoding=None)

    assert sent[0][1].seconds == limits.VERIFY_CALL_SECONDS


def test_a_deadline_is_set_once_per_call_and_shared_by_its_attempts() -> None:
    store, sent = answered_store(500)

    assert store.put_new("events/b", b"x", content_type="text/plain", content_encoding=None) is True

    [(first, deadline), (second, again)] = sent
    assert first == second == "PUT"
    assert again is deadline


# --- the watchdog --------------------------------------------------------------------------------------------


def test_the_watchdog_runs_an_action_at_its_time_and_not_a_cancelled_one() -> None:
    watchdog = Watchdog()
    ran: list[str] = []
    done = threading.Event()
    start = time.monotonic()

    cancelled = watchdog.arm(start + 0.05, lambda: ran.append("cancelled"))
    watchdog.arm(start + 0.1, lambda: (ran.append("due"), done.set()))
    watchdog.cancel(cancelled)

    assert done.wait(5)
    assert ran == ["due"]
    assert time.monotonic() - start >= 0.1


def test_the_watchdog_runs_an_earlier_action_armed_later_first() -> None:
    watchdog = Watchdog()
    ran: list[str] = []
    done = threading.Event()
    start = time.monotonic()

    watchdog.arm(start + 0.3, lambda: (ran.append("late"), done.set()))
    watchdog.arm(start + 0.05, lambda: ran.append("early"))

    assert done.wait(5)
    assert ran == ["early", "late"]


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_call_with_no_time_left_is_refused_before_anything_is_sent(seconds: float) -> None:
    session = DeadlineSession(what="store", connect_timeout=1, read_timeout=1, fallback_seconds=1)

    context = {"spool_deadline": Deadline(time.monotonic() + seconds, 10.0)}
    request = AWSPreparedRequest("PUT", "http://192.0.2.1:9/never", {}, b"x", False, context)

    with pytest.raises(DeadlineExceeded, match="within 10 s"):
        session.send(request)
