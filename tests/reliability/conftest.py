"""Reliability and security suite fixtures. The local runtime and SeaweedFS are the session fixtures of
tests/servers.py (shared with the integration tier, one of each per process). The suite works as a tenant of
its own, so its events reach only its own endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from spool.handlers.wiring import SinkServices
from spool.local.runtime import LocalRuntime
from tests.reliability.faults import StoreProxy
from tests.reliability.ledger import FIGURES, Books
from tests.servers import Api, Seaweed


@pytest.fixture(scope="session")
def tenant(runtime: LocalRuntime) -> Api:
    """A tenant of its own for the suite, talking to the runtime over HTTP."""
    _, key = runtime.admin.create_tenant("reliability")
    return Api(runtime.api_url, key)


@pytest.fixture(scope="session")
def sink(runtime: LocalRuntime) -> SinkServices:
    """The live sink services the runtime's pollers call (faults are injected into their clients)."""
    services: SinkServices = runtime.sink_services
    return services


@pytest.fixture(scope="session")
def books(runtime: LocalRuntime) -> Books:
    return Books(runtime)


@pytest.fixture
def proxy(seaweed: Seaweed) -> Iterator[StoreProxy]:
    """A fault-injecting proxy in front of SeaweedFS, healthy at first."""
    store = StoreProxy(seaweed.url)
    try:
        yield store
    finally:
        store.heal()
        store.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for row in FIGURES:
        terminalreporter.write_line(" | ".join(f"{k}: {v}" for k, v in row.items()))
