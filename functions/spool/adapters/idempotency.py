"""Safe retries of event ingest with Powertools Idempotency (records in the Spool table).

Two ways for a client to make a retry safe:
- an `Idempotency-Key` header: the whole request is answered once; a retry within the window gets the same
  ids and `createdAt` back and queues nothing; the same key with a different body is a 422;
- a client-supplied event `id`: each such event is accepted once per tenant within the window; a retry gets
  the original `createdAt`.
Records expire after `expires_after_seconds` (default 1 hour).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from spool.domain.ingest import Ingest, render
from spool.domain.models import Accepted, EventIn


class IdempotentIngest:
    """Wraps `Ingest.accept` with the two idempotency rules above."""

    def __init__(self, ingest: Ingest, store: BasePersistenceLayer, expires_after_seconds: int = 3600) -> None:
        self._ingest = ingest

        self._configs: list[IdempotencyConfig] = []

        def once_per(key_path: str, payload_path: str, function: Callable[..., Any]) -> Callable[..., Any]:
            config = IdempotencyConfig(
                event_key_jmespath=key_path,
                payload_validation_jmespath=payload_path,
                expires_after_seconds=expires_after_seconds,
                raise_on_no_idempotency_key=True,
            )
            self._configs.append(config)
            return idempotent_function(data_keyword_argument="request", persistence_store=store, config=config)(
                function
            )

        self._by_request = once_per("[tenantId, key]", "events", self._accept_request)
        self._by_event = once_per("[tenantId, event.id]", "event", self._accept_event)

    def bind(self, context: Any) -> None:
        """Tell Powertools the invocation's deadline: a request that dies midway then stays "in progress" only
        until its Lambda timeout, not for the whole hour, and a retry after that goes through."""
        if context is not None:
            for config in self._configs:
                config.register_lambda_context(context)

    def accept(self, tenant_id: str, events: list[EventIn], idempotency_key: str | None = None) -> list[Accepted]:
        if idempotency_key:
            request: dict[str, Any] = {
                "tenantId": tenant_id,
                "key": idempotency_key,
                "events": [e.model_dump(mode="json") for e in events],
            }
            return [Accepted.model_validate(a) for a in self._by_request(request=request)]
        if not any(e.id for e in events):
            return self._ingest.accept(tenant_id, events)
        for event in events:  # reject the whole request before anything is queued, as a plain one would be
            render(event, 0.0)
        plain = [e for e in events if not e.id]
        fresh = iter(self._ingest.accept(tenant_id, plain) if plain else [])
        results: list[Accepted] = []
        for event in events:
            if event.id:
                one = {"tenantId": tenant_id, "event": event.model_dump(mode="json")}
                results.append(Accepted.model_validate(self._by_event(request=one)))
            else:
                results.append(next(fresh))
        return results

    def _accept_request(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        events = [EventIn.model_validate(e) for e in request["events"]]
        return [a.model_dump() for a in self.accept(request["tenantId"], events)]

    def _accept_event(self, request: dict[str, Any]) -> dict[str, Any]:
        accepted = self._ingest.accept(request["tenantId"], [EventIn.model_validate(request["event"])])
        return accepted[0].model_dump()
