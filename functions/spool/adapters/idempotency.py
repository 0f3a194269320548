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

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from spool.domain.events import Accepted, AcceptedEvent, EventIn
from spool.domain.ingest import Ingest
from spool.names import IDEMPOTENCY_PARTITION, TABLE_PARTITION_KEY, TABLE_SORT_KEY, TABLE_TTL_ATTRIBUTE


def table_records(client: Any, table_name: str) -> DynamoDBPersistenceLayer:
    """Idempotency records in the Spool table, under their own partition (adapters/dynamo.py)."""
    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr=TABLE_PARTITION_KEY,
        sort_key_attr=TABLE_SORT_KEY,
        static_pk_value=IDEMPOTENCY_PARTITION,
        expiry_attr=TABLE_TTL_ATTRIBUTE,
        boto3_client=client,
    )


class IdempotentIngest:
    """Wraps `Ingest` with the two idempotency rules above; which events are accepted once and which always,
    and that a bad event rejects the request before anything is queued, is `Ingest.accept_each_once`'s."""

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

        def once(event: EventIn, rendered: AcceptedEvent) -> Accepted:
            one = {"tenantId": tenant_id, "event": event.model_dump(mode="json")}
            return Accepted.model_validate(self._by_event(request=one, rendered=rendered))

        return self._ingest.accept_each_once(tenant_id, events, once)

    def _accept_request(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        events = [EventIn.model_validate(e) for e in request["events"]]
        return [a.model_dump() for a in self.accept(request["tenantId"], events)]

    def _accept_event(self, request: dict[str, Any], rendered: AcceptedEvent) -> dict[str, Any]:
        """The first time an event id is seen (within the window): route the event rendered for this request."""
        self._ingest.route(request["tenantId"], [rendered])
        return Accepted(id=rendered.id, createdAt=rendered.createdAt).model_dump()
