"""Reliability and security suite fixtures.

The local runtime and SeaweedFS are the integration tier's session fixtures, and there must be one of each per
process: the handler modules are process singletons (their settings and clients come from the environment the
first runtime set). Re-exporting the fixtures would give this directory definitions of its own, which pytest
would run a second time when both tiers are in one session; so `runtime` and `seaweed` here hand over to the
integration tier's definition when that tier was collected too (whichever tier asks first starts it, the
other gets the same instance), and run the same fixture function themselves otherwise. The suite works as a
tenant of its own, so its events reach only its own endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from spool.handlers.wiring import SinkServices
from spool.local.runtime import LocalRuntime
from tests.integration import conftest as integration
from tests.integration.conftest import Api, Seaweed, api, emulator_s3  # noqa: F401
from tests.reliability.faults import StoreProxy
from tests.reliability.ledger import FIGURES, Books

INTEGRATION = "tests/integration"


def _shared(request: pytest.FixtureRequest, name: str) -> tuple[bool, Any]:
    """(True, value) of the integration tier's `name` fixture when that tier is in this session."""
    manager: Any = request._fixturemanager  # type: ignore[attr-defined]
    registered = [
        *getattr(manager, "_arg2node2fixturedefs", {}).get(name, {}).values(),
        *getattr(manager, "_arg2nodeid2fixturedefs", {}).get(name, {}).values(),
    ]
    for fixturedef in (d for defs in registered for d in defs):
        if fixturedef.baseid == INTEGRATION:
            return True, fixturedef.execute(request)
    return False, None


def _own(fixture: Any) -> Any:
    """The function behind an integration fixture, to run it here when that tier is not collected."""
    return getattr(fixture, "_fixture_function", None) or fixture.__wrapped__


@pytest.fixture(scope="session")
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    found, value = _shared(request, "runtime")
    if found:
        yield value
    else:
        yield from _own(integration.runtime)(tmp_path_factory)


@pytest.fixture(scope="session")
def seaweed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    found, value = _shared(request, "seaweed")
    if found:
        yield value
    else:
        yield from _own(integration.seaweed)(tmp_path_factory)


@pytest.fixture(scope="session")
def tenant(runtime: LocalRuntime) -> Api:
    """A tenant of its own for the suite, talking to the runtime over HTTP."""
    _, key = runtime.api_services.tenants.create_tenant("reliability")
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
