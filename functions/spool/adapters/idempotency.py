"""Safe retries of event ingest with Powertools Idempotency (records in the Spool table).

Two ways for a client to make a retry safe:
- an `Idempotency-Key` header: the whole request is answered once; a retry within the window gets the same
  ids and `createdAt` back and queues nothing; the same key with a different body is a 422;
- a client-supplied event `id`: each such event is accepted once per tenant within the window; a retry gets
  the original `createdAt`.
Records expire after `expires_after_seconds` (default 1 hour).

A request that asks for neither goes straight to `Ingest.accept`, and Powertools Idempotency (with the
DynamoDB persistence layer, which imports boto3 and jmespath) is imported only by the first request that does
ask (adapters/idempotency_records.py): most requests never need it, and its import was about a fifth of the
api's cold start (make bench, B3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spool.domain.events import Accepted, EventIn
from spool.domain.ingest import Ingest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

    from spool.adapters.idempotency_records import OnceIngest

Records = Callable[[], "BasePersistenceLayer"]


def table_records(client: Any, table_name: str) -> Records:
    """The records in the Spool table, each in its own partition (adapters/dynamo.py); built on first use."""

    def build() -> BasePersistenceLayer:
        from spool.adapters.idempotency_records import SpreadRecords  # Powertools Idempotency: only when needed

        return SpreadRecords(client, table_name)

    return build


class IdempotentIngest:
    """`Ingest` with the two idempotency rules above. `records` makes the persistence layer (a class such as
    tests' `MemoryIdempotencyStore` will do); it is called by the first request that asks for idempotency."""

    def __init__(self, ingest: Ingest, records: Records, expires_after_seconds: int = 3600) -> None:
        self._ingest = ingest
        self._records = records
        self._expires_after_seconds = expires_after_seconds
        self._once: OnceIngest | None = None
        self._context: Any = None

    def bind(self, context: Any) -> None:
        """Tell Powertools the invocation's deadline: a request that dies midway then stays "in progress" only
        until its Lambda timeout, not for the whole hour, and a retry after that goes through."""
        self._context = context
        if self._once is not None and context is not None:
            self._once.bind(context)

    def accept(self, tenant_id: str, events: list[EventIn], idempotency_key: str | None = None) -> list[Accepted]:
        if not idempotency_key and not any(event.id for event in events):
            return self._ingest.accept(tenant_id, events)
        return self._idempotent().accept(tenant_id, events, idempotency_key)

    def _idempotent(self) -> OnceIngest:
        if self._once is None:
            from spool.adapters.idempotency_records import OnceIngest  # Powertools Idempotency: only when needed

            self._once = OnceIngest(self._ingest, self._records(), self._expires_after_seconds)
            if self._context is not None:
                self._once.bind(self._context)
        return self._once
