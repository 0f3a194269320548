"""SnapStart hooks (handlers/snapstart.py): what runs before the snapshot calls no AWS API, and what runs after a
restore makes Python's random state differ per environment."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from spool.config import ApiSettings, SinkSettings, VerifySettings
from spool.domain import events, models
from spool.handlers import api, sink, snapstart, verify
from spool.handlers.wiring import build_api, build_sink, build_verify

COMMON = {"table_name": "spool", "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest"}


def recording_session(calls: list[str]) -> boto3.session.Session:
    """A session whose every AWS call is recorded and refused before anything is sent."""
    session = boto3.session.Session(
        aws_access_key_id="AKIAPRIMETEST0000000", aws_secret_access_key="prime", region_name="us-east-1"
    )

    def refuse(request: Any, **_: Any) -> None:
        calls.append(request.url)
        raise AssertionError(f"an AWS call before the snapshot: {request.url}")

    session.events.register("before-send", refuse)
    return session


def test_priming_the_api_builds_its_services_and_validators_without_calling_aws() -> None:
    calls: list[str] = []
    settings = ApiSettings(
        **COMMON,
        kms_key_id="key",
        pepper_secret_id="pepper",
        dlq_url="https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        verify_function_name="verify",
        sink_role_arn="arn:aws:iam::123456789012:role/sink",
    )
    services = build_api(settings, recording_session(calls))
    api.prime(lambda: services)
    assert calls == []
    assert type(events.EventIn.__pydantic_validator__).__name__ == "SchemaValidator"


def test_priming_the_sink_builds_its_services_without_calling_aws() -> None:
    calls: list[str] = []
    settings = SinkSettings(**COMMON, staging_bucket="staging")
    services = build_sink(settings, recording_session(calls))
    sink.prime(lambda: services)
    assert calls == []
    assert type(models.Endpoint.__pydantic_validator__).__name__ == "SchemaValidator"


def test_priming_verify_builds_its_services_without_calling_aws() -> None:
    calls: list[str] = []
    services = build_verify(VerifySettings(table_name="spool"), recording_session(calls))
    verify.prime(lambda: services)
    assert calls == []


@pytest.fixture
def lambda_hooks(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Callable[[], None]]]:
    """Lambda's snapshot_restore_py, as the Python 3.12+ runtimes provide it."""
    registered: dict[str, list[Callable[[], None]]] = {"before": [], "after": []}
    module = types.ModuleType("snapshot_restore_py")
    module.register_before_snapshot = registered["before"].append  # type: ignore[attr-defined]
    module.register_after_restore = registered["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    return registered


def test_hooks_are_registered_where_the_runtime_has_them(lambda_hooks: dict[str, list[Any]]) -> None:
    primed: list[bool] = []
    assert snapstart.install(lambda: primed.append(True))
    assert len(lambda_hooks["before"]) == 1
    assert lambda_hooks["after"] == [snapstart.after_restore]
    lambda_hooks["before"][0]()
    assert primed == [True]


def test_nothing_is_registered_without_the_runtime_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)
    assert not snapstart.install(lambda: None)


def test_a_failing_prime_does_not_fail_the_snapshot(lambda_hooks: dict[str, list[Any]]) -> None:
    def fail() -> None:
        raise RuntimeError("no region")

    snapstart.install(fail)
    lambda_hooks["before"][0]()  # logged, not raised: the first request builds what is missing


def test_environments_restored_from_one_snapshot_draw_different_random_numbers() -> None:
    random.seed(7)
    snapshot = random.getstate()
    draws = []
    for _ in range(2):  # two environments resumed from the same snapshot
        random.setstate(snapshot)
        snapstart.after_restore()
        draws.append([random.random() for _ in range(3)])
    assert draws[0] != draws[1]
