"""An endpoint's delivery status: what the sink last did for it (written by the sink through `StatusBook`,
domain/ports.py; answered with the endpoint)."""

from __future__ import annotations

from pydantic import Field

from spool.domain.base import Model


class DeliveryStatus(Model):
    """What the sink last did for an endpoint, and whether it is parked (docs/delivery.md: a bad endpoint is
    contained)."""

    lastFlushAt: str | None = None
    lastObjectKey: str | None = None
    lastError: str | None = None
    lastErrorAt: str | None = None
    eventsWritten: int = 0
    objectsWritten: int = 0
    consecutiveFailures: int = Field(default=0, description="Failed deliveries since the last written object")
    parkedUntil: str | None = Field(
        default=None, description="Deliveries wait until then (or until a probe write succeeds after it)"
    )
