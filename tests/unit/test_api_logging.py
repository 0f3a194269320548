"""What the api writes to its log (observability.py): warnings and errors always, one debug line per request only
in the invocations Powertools' sampling picks, its metrics (EMF); never an API key or a credential.

`pytest -s tests/unit/test_api_logging.py -k bytes` prints the bytes logged per single-event request."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spool import observability
from spool.observability import logger as powertools_logger
from tests.conftest import SPEC_BODY, spec_body
from tests.unit.conftest import ApiHarness

EVENTS = "/api/v1/events"
REQUESTS = 200
CREDENTIALS = (SPEC_BODY["storageConfig"]["accessKeyId"], SPEC_BODY["storageConfig"]["secretAccessKey"])
# One EMF document (EventsAccepted) per accepting request is the unsampled budget; a second line of any kind
# would pass it.
UNSAMPLED_BYTES_PER_REQUEST = 256


@pytest.fixture
def log_output(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[str]]]:
    """The api's log as CloudWatch would get it: the Logger's JSON lines and stdout (Powertools Metrics prints
    its EMF documents there, read through capsys). The Logger's handler keeps the stream it was created with,
    out of capsys' reach, so it writes to a buffer of its own here."""
    handler = powertools_logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    logged, printed = io.StringIO(), io.StringIO()
    stream = handler.setStream(logged)

    def lines() -> list[str]:
        printed.write(capsys.readouterr().out)
        return (logged.getvalue() + printed.getvalue()).splitlines()

    try:
        yield lines
    finally:
        handler.setStream(stream)


@pytest.fixture
def sample() -> Iterator[Callable[[float], None]]:
    """Let Powertools' sampling pick this share of the following invocations. It decides again on every warm
    invocation, but only while the rate is not 0, hence the explicit decision here."""

    def choose(rate: float) -> None:
        powertools_logger.sampling_rate = rate
        powertools_logger.refresh_sample_rate_calculation()

    yield choose
    choose(observability.DEBUG_SAMPLE_RATE)


def send_single_events(harness: ApiHarness, count: int) -> None:
    for n in range(count):
        reply = harness.call("POST", EVENTS, {"eventType": "order.created", "payload": {"orderId": f"ord_{n}"}})
        assert reply.status == 202, reply.text


def messages(lines: list[str]) -> list[dict[str, Any]]:
    return [parsed for parsed in map(json.loads, lines) if "_aws" not in parsed]


def test_the_default_sample_rate_is_one_invocation_in_a_hundred() -> None:
    assert observability.DEBUG_SAMPLE_RATE == 0.01
    assert powertools_logger.sampling_rate == observability.DEBUG_SAMPLE_RATE


def test_an_unsampled_single_event_request_logs_only_its_metrics(
    harness: ApiHarness, sample: Callable[[float], None], log_output: Callable[[], list[str]]
) -> None:
    sample(0.0)
    before = len(log_output())

    send_single_events(harness, REQUESTS)

    lines = log_output()[before:]
    assert messages(lines) == []
    assert len(lines) == REQUESTS  # one EMF document each
    assert all(json.loads(line)["EventsAccepted"] == [1.0] for line in lines)


def test_bytes_logged_per_single_event_request(
    harness: ApiHarness,
    sample: Callable[[float], None],
    log_output: Callable[[], list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures: dict[float, float] = {}
    for rate in (0.0, 1.0):
        sample(rate)
        before = len(log_output())
        send_single_events(harness, REQUESTS)
        logged = log_output()[before:]
        figures[rate] = sum(len(line.encode()) + 1 for line in logged) / REQUESTS
    expected = figures[0.0] + observability.DEBUG_SAMPLE_RATE * (figures[1.0] - figures[0.0])
    report = (
        f"\nbytes logged per single-event request ({REQUESTS} requests): unsampled {figures[0.0]:.0f}, "
        f"sampled {figures[1.0]:.0f}, expected at the default rate {expected:.1f}\n"
    )
    with capsys.disabled():
        sys.stdout.write(report)

    assert figures[0.0] <= UNSAMPLED_BYTES_PER_REQUEST
    assert figures[0.0] < figures[1.0]


def test_a_sampled_request_logs_one_debug_line_with_method_path_and_status(
    harness: ApiHarness, sample: Callable[[float], None], log_output: Callable[[], list[str]]
) -> None:
    sample(1.0)
    before = len(log_output())

    send_single_events(harness, 1)

    [line] = messages(log_output()[before:])
    assert line["level"] == "DEBUG"
    assert line["message"] == "request"
    assert (line["method"], line["path"], line["status"]) == ("POST", EVENTS, 202)
    assert isinstance(line["durationMs"], float)


def test_a_fault_is_logged_in_an_unsampled_invocation(
    harness: ApiHarness,
    sample: Callable[[float], None],
    log_output: Callable[[], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample(0.0)

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the queue is gone")

    monkeypatch.setattr(harness.services.ingest, "accept", failing)
    assert harness.call("POST", EVENTS, {"eventType": "order.created", "payload": {}}).status == 500

    [line] = messages(log_output())
    assert (line["level"], line["message"], line["errorType"]) == ("ERROR", "unhandled error", "RuntimeError")


def test_no_key_or_credential_is_logged_when_every_invocation_is_sampled(
    harness: ApiHarness,
    sample: Callable[[float], None],
    log_output: Callable[[], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample(1.0)
    wrong_key = "spool_" + "w" * 43
    endpoint = harness.call("POST", "/api/v1/endpoints", spec_body())
    assert endpoint.status == 201, endpoint.text
    harness.call("PATCH", f"/api/v1/endpoints/{endpoint.json()['id']}", {"storageConfig": spec_body()["storageConfig"]})
    harness.call("GET", "/api/v1/endpoints?limit=1")
    harness.call("GET", "/api/v1/endpoints", key=wrong_key)
    harness.call("POST", "/api/v1/endpoints", spec_body(batchSize=0))
    send_single_events(harness, 3)

    def leaky(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"queue refused {harness.key} {CREDENTIALS[1]}")

    monkeypatch.setattr(harness.services.ingest, "accept", leaky)
    assert harness.call("POST", EVENTS, {"eventType": "order.created", "payload": {}}).status == 500

    logged = "\n".join(log_output())
    assert sum(line["message"] == "request" for line in messages(log_output())) == 9, "not every request was logged"
    for secret in (harness.key, wrong_key, *CREDENTIALS):
        assert secret not in logged
