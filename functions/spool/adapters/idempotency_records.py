"""Everything that imports Powertools Idempotency, loaded only by the first request that asks for idempotency
(adapters/idempotency.py has the rules and decides when).

`SpreadRecords` keeps the records in the Spool table, each in a partition of its own: Powertools' composite-key
layout puts every record under one static partition key (`static_pk_value`), one hot partition for all
tenants' idempotent traffic, capped by DynamoDB at 1,000 writes a second. Here the partition key is
`IDEMPOTENCY#{idempotency key}` (the function's name and a hash of the request) and the sort key a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from spool.domain.errors import InProgress, KeyReused
from spool.domain.events import Accepted, AcceptedEvent, EventIn
from spool.domain.ingest import Ingest
from spool.names import (
    IDEMPOTENCY_KEY_PREFIX,
    IDEMPOTENCY_SORT_KEY,
    TABLE_PARTITION_KEY,
    TABLE_SORT_KEY,
    TABLE_TTL_ATTRIBUTE,
)


class SpreadRecords(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB persistence layer with one partition per record (see the module docstring)."""

    def __init__(self, client: Any, table_name: str) -> None:
        super().__init__(
            table_name=table_name,
            key_attr=TABLE_PARTITION_KEY,
            sort_key_attr=TABLE_SORT_KEY,
            static_pk_value=IDEMPOTENCY_SORT_KEY,  # unused: _get_key below builds both keys
            expiry_attr=TABLE_TTL_ATTRIBUTE,
            boto3_client=client,
        )

    def _get_key(self, idempotency_key: str) -> dict[str, Any]:
        return {
            TABLE_PARTITION_KEY: {"S": f"{IDEMPOTENCY_KEY_PREFIX}{idempotency_key}"},
            TABLE_SORT_KEY: {"S": IDEMPOTENCY_SORT_KEY},
        }


class OnceIngest:
    """Wraps `Ingest` with Powertools' `idempotent_function` for both rules; which events are accepted once and
    which always, and that a bad event rejects the request before anything is queued, is
    `Ingest.accept_each_once`'s. Powertools' refusals become domain errors (handlers/api.py maps them)."""

    def __init__(self, ingest: Ingest, store: BasePersistenceLayer, expires_after_seconds: int) -> None:
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
        for config in self._configs:
            config.register_lambda_context(context)

    def accept(self, tenant_id: str, events: list[EventIn], idempotency_key: str | None) -> list[Accepted]:
        try:
            return self._accept(tenant_id, events, idempotency_key)
        except IdempotencyValidationError:
            raise KeyReused("was used before with a different body", field="Idempotency-Key") from None
        except IdempotencyAlreadyInProgressError:
            raise InProgress("the same request is still being processed; retry shortly") from None

    def _accept(self, tenant_id: str, events: list[EventIn], idempotency_key: str | None) -> list[Accepted]:
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
        return [a.model_dump() for a in self._accept(request["tenantId"], events, None)]

    def _accept_event(self, request: dict[str, Any], rendered: AcceptedEvent) -> dict[str, Any]:
        """The first time an event id is seen (within the window): route the event rendered for this request."""
        self._ingest.route(request["tenantId"], [rendered])
        return Accepted(id=rendered.id, createdAt=rendered.createdAt).model_dump()
