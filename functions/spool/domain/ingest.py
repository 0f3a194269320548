"""Accepting events: render each event's NDJSON line once and route it to every matching storage endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from spool.domain import limits
from spool.domain.cache import TtlCache
from spool.domain.errors import InvalidInput, PayloadTooLarge
from spool.domain.events import Accepted, AcceptedEvent, EventIn
from spool.domain.ids import new_id
from spool.domain.matching import matches_any
from spool.domain.messages import Message, bundles
from spool.domain.models import Endpoint
from spool.domain.naming import iso_timestamp, ndjson_line
from spool.domain.ports import EndpointRepository, Queue

Clock = Callable[[], float]


def render(event: EventIn, now: float, created_at: str | None = None) -> AcceptedEvent:
    """`created_at` is `now` rendered, when the caller has it already (every event of a request shares it)."""
    event_id = event.id or new_id("evt")
    created_at = created_at or iso_timestamp(now)
    try:
        line = ndjson_line(event_id, event.eventType, event.payload, created_at)
        size = len(line.encode())
    except ValueError:  # NaN/Infinity, or a lone surrogate that has no UTF-8 form
        raise InvalidInput("must be JSON without NaN/Infinity and valid Unicode", field="payload") from None
    if size > limits.EVENT_MAX_BYTES:
        raise PayloadTooLarge(
            f"event {event_id} is over {limits.EVENT_MAX_BYTES} bytes as an NDJSON line", field="payload"
        )
    # Built from values rendered here, so not validated again (per event, make bench B2).
    return AcceptedEvent.model_construct(
        id=event_id, eventType=event.eventType, createdAt=created_at, acceptedAt=now, line=line
    )


def _accepted(event: AcceptedEvent) -> Accepted:
    return Accepted.model_construct(id=event.id, createdAt=event.createdAt)


@dataclass
class Ingest:
    repo: EndpointRepository
    queue: Queue
    clock: Clock = time.time

    def accept(self, tenant_id: str, events: list[EventIn]) -> list[Accepted]:
        """Render every event first (so an oversized one rejects the request before anything is queued),
        then enqueue the request's events as one bundle per matching storage endpoint."""
        now = self.clock()
        created_at = iso_timestamp(now)
        rendered = [render(event, now, created_at) for event in events]
        self.route(tenant_id, rendered)
        return [_accepted(e) for e in rendered]

    def accept_each_once(
        self, tenant_id: str, events: list[EventIn], once: Callable[[EventIn, AcceptedEvent], Accepted]
    ) -> list[Accepted]:
        """Like `accept`, but each event with a client-supplied `id` goes to `once` (as sent and as rendered),
        which accepts it at most once per id (the caller's idempotency store) and routes it with `route`.
        Every event is rendered first, so a bad one rejects the whole request before anything is queued; the
        events without an id are routed together, as `accept` would."""
        now = self.clock()
        created_at = iso_timestamp(now)
        rendered = [render(event, now, created_at) for event in events]
        plain = [r for event, r in zip(events, rendered, strict=True) if not event.id]
        if plain:
            self.route(tenant_id, plain)
        return [once(event, r) if event.id else _accepted(r) for event, r in zip(events, rendered, strict=True)]

    def route(self, tenant_id: str, events: list[AcceptedEvent]) -> None:
        """One bundle per matching storage endpoint with the request's lines for it, in order (more only where
        a bundle would pass SQS's size limit)."""
        endpoints = [e for e in self.repo.active_endpoints(tenant_id) if e.deliveryMode == "storage"]
        messages: list[Message] = []
        for endpoint in endpoints:
            lines = [event.line for event in events if matches_any(endpoint.eventTypes, event.eventType)]
            messages.extend(bundles(tenant_id, endpoint.id, lines))
        if messages:
            self.queue.send(messages)


class RoutingCache:
    """An `EndpointRepository` over another whose `active_endpoints` (what ingest routes to) is cached per tenant
    for `ttl` seconds: a single-event request would otherwise read every endpoint of its tenant, a table read per
    event (make bench, B6). Every other call goes through, and this process's own endpoint writes (create,
    replace, delete) forget the tenant's entry at once. Another process (api execution environment) sees a new,
    changed or deleted endpoint within `ttl` (docs/api.md)."""

    def __init__(self, repo: EndpointRepository, cache: TtlCache[str, list[Endpoint]]) -> None:
        self._repo = repo
        self._cache = cache

    def active_endpoints(self, tenant_id: str) -> list[Endpoint]:
        return self._cache.get_or_load(tenant_id, lambda: self._repo.active_endpoints(tenant_id))

    def create_endpoint(self, endpoint: Endpoint) -> None:
        self._cache.forget(endpoint.tenantId)
        self._repo.create_endpoint(endpoint)

    def replace_endpoint(self, endpoint: Endpoint, expected_updated_at: str, *, previous_role: str | None) -> None:
        self._cache.forget(endpoint.tenantId)
        self._repo.replace_endpoint(endpoint, expected_updated_at, previous_role=previous_role)

    def mark_deleted(self, tenant_id: str, endpoint_id: str, at: str, *, role_arn: str | None) -> None:
        self._cache.forget(tenant_id)
        self._repo.mark_deleted(tenant_id, endpoint_id, at, role_arn=role_arn)

    def get_endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        return self._repo.get_endpoint(tenant_id, endpoint_id)

    def list_endpoints(self, tenant_id: str, limit: int, after: str | None) -> tuple[list[Endpoint], str | None]:
        return self._repo.list_endpoints(tenant_id, limit, after)
