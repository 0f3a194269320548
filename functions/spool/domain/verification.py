"""Verify, the api's side (POST /api/v1/endpoints/{id}/verify): who may verify what, how often and how many at once.

The probe itself runs in the verify function (handlers/verify.py, `EndpointService.verify`), which runs with the
sink's role, the only one that decrypts credentials. Three limits keep verification from costing other tenants
anything (each a 429 naming it, with Retry-After):
- `verifyInterval`: one verification per endpoint per VERIFY_INTERVAL_SECONDS, so one endpoint never has two
  probes in flight and a client looping on verify holds at most one function at a time;
- `verifyTenantConcurrency`: at most VERIFY_TENANT_CONCURRENCY verifications of one tenant at once (that many
  slots, each held until its verification ends, or at most as long as the api waits for one), so one tenant with
  many endpoints behind slow stores cannot hold every verify function;
- `verifyConcurrency`: the verify function's reserved concurrency, all tenants together; when every one is busy,
  Lambda refuses the Invoke and the verifier raises `RateLimited`.
A refused verification counts against none of the limits it did not reach: what it took is given back.
"""

from __future__ import annotations

import math
from typing import Any

from spool.domain import limits
from spool.domain.endpoints import EndpointService
from spool.domain.errors import RateLimited
from spool.domain.ports import RateGate, Verifier

INTERVAL_LIMIT = "verifyInterval"
TENANT_LIMIT = "verifyTenantConcurrency"
CONCURRENCY_LIMIT = "verifyConcurrency"
# How long a tenant's slot is held at most: as long as the api waits for the verify function.
SLOT_SECONDS = limits.VERIFY_TIMEOUT_SECONDS + limits.VERIFY_COLD_START_SECONDS


class Verification:
    def __init__(
        self,
        endpoints: EndpointService,
        gate: RateGate,
        verifier: Verifier,
        interval_seconds: int = limits.VERIFY_INTERVAL_SECONDS,
        tenant_concurrency: int = limits.VERIFY_TENANT_CONCURRENCY,
    ) -> None:
        self.endpoints = endpoints
        self.gate = gate
        self.verifier = verifier
        self.interval_seconds = interval_seconds
        self.tenant_concurrency = tenant_concurrency

    def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        """The verify function's answer for this endpoint of this tenant (404 for an id it cannot reach, before
        any limit is counted)."""
        self.endpoints.get(tenant_id, endpoint_id)
        window = f"{tenant_id}#{endpoint_id}"
        wait = self.gate.take(window, self.interval_seconds)
        if wait is not None:
            raise RateLimited(
                f"{INTERVAL_LIMIT}: one verification per endpoint every {self.interval_seconds} seconds",
                limit=INTERVAL_LIMIT,
                retry_after=math.ceil(wait),
            )
        try:
            slot = self._tenant_slot(tenant_id)
        except RateLimited:
            self.gate.give_back(window)
            raise
        try:
            return self.verifier.verify(tenant_id, endpoint_id)
        except RateLimited:
            self.gate.give_back(window)
            raise
        finally:
            self.gate.give_back(slot)

    def _tenant_slot(self, tenant_id: str) -> str:
        """One of the tenant's slots, taken; RateLimited when all are held."""
        waits: list[float] = []
        for n in range(self.tenant_concurrency):
            slot = f"{tenant_id}#slot-{n}"
            wait = self.gate.take(slot, SLOT_SECONDS)
            if wait is None:
                return slot
            waits.append(wait)
        raise RateLimited(
            f"{TENANT_LIMIT}: at most {self.tenant_concurrency} verifications of one tenant at once",
            limit=TENANT_LIMIT,
            retry_after=math.ceil(min(waits, default=SLOT_SECONDS)),
        )


def busy() -> RateLimited:
    """Every verify function is busy (the reserved concurrency is used up)."""
    return RateLimited(
        f"{CONCURRENCY_LIMIT}: every verification slot is busy; retry shortly",
        limit=CONCURRENCY_LIMIT,
        retry_after=limits.VERIFY_BUSY_RETRY_SECONDS,
    )
