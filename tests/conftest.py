"""Shared test helpers: sample events from events/, and the SPEC's example bodies."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.drip import drip_store
from tests.servers import (
    EMULATORS,
    api,
    call_log,
    emulator,
    emulator_s3,
    runtime,
    seaweed,
    tenant_account,
    trust_policies,
)

if TYPE_CHECKING:
    from tests.infra.infra_synth import Synth, SynthFactory

# The servers' session fixtures, shared by the integration and reliability tiers; `drip_store` (tests/drip.py) is
# a store that drips its answers, one per test.
__all__ = [
    "api",
    "call_log",
    "drip_store",
    "emulator",
    "emulator_s3",
    "runtime",
    "seaweed",
    "tenant_account",
    "trust_policies",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--emulator",
        choices=tuple(EMULATORS),
        default="moto",
        help="the local runtime's AWS emulator: its embedded moto server (default) or LocalStack on the host "
        "(make test-localstack)",
    )


EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def seed_key(prefix: str, flushed_at: float, batch: int, *, gzip: bool = False) -> str:
    """The SPEC's object name, written out here as the reference for the sink's (domain/keys.py renders it):
    `{prefix}{date}/{timestamp}-{batch}.ndjson`, the UTC date and Unix seconds of the flush, `batch` from 001."""
    when = datetime.fromtimestamp(flushed_at, UTC)
    return f"{prefix}{when:%Y-%m-%d}/{int(flushed_at)}-{batch:03d}.ndjson" + (".gz" if gzip else "")


def ndjson_body(lines: list[str]) -> bytes:
    """The SPEC's object body: every line followed by a newline, UTF-8."""
    return ("\n".join(lines) + "\n").encode()


def load_event(name: str) -> dict[str, Any]:
    """A sample Lambda event from events/ (a fresh copy each call)."""
    return json.loads((EVENTS_DIR / name).read_text())


SPEC_BODY: dict[str, Any] = {
    "url": "s3://my-webhook-archive/events/",
    "deliveryMode": "storage",
    "eventTypes": ["order.*"],
    "storageConfig": {
        "provider": "s3",
        "bucket": "my-webhook-archive",
        "prefix": "events/",
        "region": "us-east-1",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "endpoint": "http://minio:9000",
        "batchSize": 100,
        "flushIntervalSeconds": 60,
    },
}


def spec_body(**storage: Any) -> dict[str, Any]:
    """The SPEC's endpoint body; keyword arguments replace storageConfig fields (None removes one)."""
    body = copy.deepcopy(SPEC_BODY)
    for name, value in storage.items():
        if value is None:
            body["storageConfig"].pop(name, None)
        else:
            body["storageConfig"][name] = value
    return body


@pytest.fixture
def spec_endpoint_body() -> dict[str, Any]:
    return spec_body()


@pytest.fixture(scope="session")
def synth_with(tmp_path_factory: pytest.TempPathFactory) -> SynthFactory:
    """Synthesize the CDK app with extra context; each distinct context once per session (the infra tier's
    assertions and the integration tier's grant check share it)."""
    from tests.infra.infra_synth import Synth

    cache: dict[str, Synth] = {}

    def make(context: dict[str, Any]) -> Synth:
        key = json.dumps(context, sort_keys=True)
        if key not in cache:
            cache[key] = Synth(tmp_path_factory.mktemp("cdk.out"), context)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def synth(synth_with: SynthFactory) -> Synth:
    return synth_with({})


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.iam import REPORT

    if REPORT:
        terminalreporter.section("grant check (tests/integration/test_grants.py)")
        for line in REPORT:
            terminalreporter.write_line(line)
