"""Verify, the api's side (POST /api/v1/endpoints/{id}/verify): who may verify what, and how often.

The probe itself runs in the verify function (handlers/verify.py, `EndpointService.verify`), the only other place
besides the sink that decrypts credentials. Two limits keep verification from costing other tenants anything:
- one verification per endpoint per VERIFY_INTERVAL_SECONDS (a 429 naming the limit, with Retry-After), so one
  endpoint never has two probes in flight and a client looping on verify holds at most one function at a time;
- the verify function's reserved concurrency: when every one is busy, Lambda refuses the Invoke and the verifier
  raises `RateLimited` (429); the endpoint's window is given back, as no probe ran.
"""

from __future__ import annotations

import math
from typing import Any

from spool.domain import limits
from spool.domain.endpoints import EndpointService
from spool.domain.errors import RateLimited
from spool.domain.ports import RateGate, Verifier

INTERVAL_LIMIT = "verifyInterval"
CONCURRENCY_LIMIT = "verifyConcurrency"


class Verification:
    def __init__(
        self,
        endpoints: EndpointService,
        gate: RateGate,
        verifier: Verifier,
        interval_seconds: int = limits.VERIFY_INTERVAL_SECONDS,
    ) -> None:
        self.endpoints = endpoints
        self.gate = gate
        self.verifier = verifier
        self.interval_seconds = interval_seconds

    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        """The verify function's answer for this endpoint of this tenant (404 for an id it cannot reach, before
        any limit is counted)."""
        self.endpoints.get(tenant_id, endpoint_id)
        key = f"{tenant_id}#{endpoint_id}"
        wait = self.gate.take(key, self.interval_seconds)
        if wait is not None:
            raise RateLimited(
                f"{INTERVAL_LIMIT}: one verification per endpoint every {self.interval_seconds} seconds",
                limit=INTERVAL_LIMIT,
                retry_after=math.ceil(wait),
            )
        try:
            return self.verifier.verify(tenant_id, endpoint_id)
        except RateLimited:
            self.gate.give_back(key)
            raise


def busy() -> RateLimited:
    """Every verify function is busy (the reserved concurrency is used up)."""
    return RateLimited(
        f"{CONCURRENCY_LIMIT}: every verification slot is busy; retry shortly",
        limit=CONCURRENCY_LIMIT,
        retry_after=limits.VERIFY_BUSY_RETRY_SECONDS,
    )
