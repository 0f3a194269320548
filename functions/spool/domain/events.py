"""Events: the bodies of `POST /api/v1/events` (one event or a batch), their answers, and an accepted event ready to
route (its NDJSON line rendered once, domain/ingest.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from spool.domain import limits
from spool.domain.fields import STRICT, EventId, EventType, Payload


class EventIn(BaseModel):
    """One event. `id` is optional; when given, a retry with the same id is accepted once."""

    model_config = STRICT

    id: EventId | None = None
    eventType: EventType
    payload: Payload


class EventBatchIn(BaseModel):
    model_config = STRICT

    events: Annotated[list[EventIn], Field(min_length=1, max_length=limits.BATCH_MAX_EVENTS)]


class Accepted(BaseModel):
    id: str
    createdAt: str


class AcceptedBatch(BaseModel):
    events: list[Accepted]


class AcceptedEvent(BaseModel):
    """An accepted event, ready to route: its NDJSON line is rendered once, at the API."""

    id: str
    eventType: str
    createdAt: str
    acceptedAt: float
    line: str
