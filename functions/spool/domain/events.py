"""Events: the bodies of `POST /api/v1/events` (one event or a batch), their answers, and an accepted event ready to
route (its NDJSON line rendered once, domain/ingest.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from spool.domain import limits
from spool.domain.base import Model
from spool.domain.fields import STRICT, EventId, EventType, Payload


class EventIn(Model):
    """One event. `id` is optional; when given, a retry with the same id is accepted once."""

    model_config = STRICT

    id: EventId | None = None
    eventType: EventType
    payload: Payload

    def __repr__(self) -> str:  # short, for the same reason as EventBatchIn's
        return f"EventIn(id={self.id!r}, eventType={self.eventType!r})"


class EventBatchIn(Model):
    model_config = STRICT

    events: Annotated[list[EventIn], Field(min_length=1, max_length=limits.BATCH_MAX_EVENTS)]

    def __repr__(self) -> str:
        # Powertools formats every route's validated arguments into a debug f-string on every request, whatever
        # the log level (event_handler/api_gateway.py: "Calling API Route Handler"): pydantic's repr of 100
        # events was a sixth of the api's CPU for a batch (make bench, B2).
        return f"EventBatchIn(<{len(self.events)} events>)"


class Accepted(Model):
    id: str
    createdAt: str


class AcceptedBatch(Model):
    events: list[Accepted]


class AcceptedEvent(Model):
    """An accepted event, ready to route: its NDJSON line is rendered once, at the API."""

    id: str
    eventType: str
    createdAt: str
    acceptedAt: float
    line: str
