"""The verify Lambda: `{"spool": "verify", "tenantId", "endpointId"}` from the api -> write and remove a probe
object with the endpoint's stored credentials (or its role) -> what the store said.

A function of its own, from the api's code asset, so its reserved concurrency caps how many probes run at once
(the stack's verifyReservedConcurrency; a throttled Invoke is the api's 429) and its timeout bounds each
(domain/limits.py, VERIFY_TIMEOUT_SECONDS). It runs with the sink's role: the only role that may decrypt store
credentials, and the principal tenants' roles trust (docs/infrastructure.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from spool.handlers import snapstart
from spool.handlers.wiring import VerifyServices, verify_services
from spool.observability import prime as prime_observability
from spool.observability import share_log_config, sink_logger, traced

share_log_config()


def make_handler(services: Callable[[], VerifyServices]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The verify entry point over the services `services()` returns (built on first use)."""

    @sink_logger.inject_lambda_context
    @traced
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        built = services()
        return built.endpoints.verify(event["tenantId"], event["endpointId"], built.stores)

    return lambda_handler


lambda_handler = make_handler(verify_services)


def prime(services: Callable[[], VerifyServices] = verify_services) -> None:
    """Before a SnapStart snapshot (handlers/snapstart.py): the services and their clients and the Tracer. No
    AWS call: the endpoint and its credentials are read by the invocation, after the restore."""
    services()
    prime_observability()


snapstart.install(prime)
