"""Domain exceptions, and the body every error is answered with (`ErrorBody`). The API maps the exceptions to
HTTP in one place (handlers/api.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, ValidationError
from pydantic_core import ErrorDetails

from spool.domain.base import Model


class SpoolError(Exception):
    """Base of every error Spool reports to a client. `code` is stable, `message` is safe to show.

    A subclass names its code in its class line (`class NotFound(SpoolError, code="not_found")`); one that
    names none keeps its parent's."""

    code: ClassVar[str] = "error"

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(SpoolError, code="not_found"):
    """An id the caller cannot reach: unknown, deleted, or another tenant's (all answered alike)."""


class Unauthorized(SpoolError, code="unauthorized"):
    """No X-API-Key, or one that is unknown or revoked."""


class Conflict(SpoolError, code="conflict"):
    """The request does not fit the item as it is: a change that lost a race with another, or a question the
    endpoint cannot answer (an aws-role of an endpoint with access keys)."""


class InvalidInput(SpoolError, code="validation_error"):
    """A value is well-formed JSON but breaks a rule; `field` names it (e.g. `storageConfig.bucket`)."""


class LimitExceeded(SpoolError, code="limit_exceeded"):
    """A per-tenant limit is reached (docs/api.md, Limits); the message names the limit and its value."""


class KeyReused(InvalidInput, code="idempotency_key_reused"):
    """An Idempotency-Key (or a client-supplied event id) sent again within its window with a different body."""


class InProgress(Conflict, code="request_in_progress"):
    """The first request with the same Idempotency-Key (or event id) is still being processed."""


class PayloadTooLarge(SpoolError, code="payload_too_large"):
    """An event over its size limit as an NDJSON line."""


class RateLimited(SpoolError, code="rate_limited"):
    """A limit on how often or how many at once (429): `limit` names it, `retry_after` is when to try again (s)."""

    def __init__(self, message: str, *, limit: str, retry_after: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = max(1, retry_after)


class StoreError(SpoolError, code="store_error"):
    """A write to a tenant's store failed. The message never contains credentials."""


class DeadlineExceeded(StoreError):
    """A store call, or AWS STS's AssumeRole for a role endpoint, did not finish within its total deadline
    (domain/limits.py: store_call_seconds): the store is down, too slow, or drips its answer. `seconds` is the
    deadline that was exceeded, when known; `after` builds the error with the message the store clients use."""

    def __init__(self, message: str, *, seconds: float | None = None, by_store: bool = True) -> None:
        super().__init__(message)
        self.seconds = seconds
        # False when AWS STS, not the tenant's store, ran out of time: not the endpoint's doing, so the sink
        # counts it as a failure but does not park the endpoint for it at once (domain/health.py).
        self.by_store = by_store

    @classmethod
    def after(cls, seconds: float, what: str = "store") -> DeadlineExceeded:
        """The error of a call to `what` that did not finish within `seconds`: it names nothing else."""
        message = f"{what} did not answer within {seconds:g} s (deadline exceeded)"
        return cls(message, seconds=seconds, by_store=what == "store")


class ServiceFault(SpoolError, code="internal_error"):
    """A fault of the service, not of the request: a stored item that does not parse, a reply of another part
    of Spool that is not what it should be. The API answers 500 with a generic message; `detail` is for the
    log only and holds names, locations and error types, never stored or sent values (they may be secrets)."""

    def __init__(self, message: str, *, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class CorruptRecord(ServiceFault):
    """A stored item does not parse as the model it should hold."""


def location(error: ErrorDetails) -> str:
    """Where a pydantic error is, as a dotted path: `storageConfig.batchSize`, `events.0.eventType`."""
    return ".".join(str(part) for part in error["loc"])


def describe(exc: BaseException) -> dict[str, object]:
    """What went wrong, safe to log: the error type, and for pydantic errors where and which rule failed.

    Messages of pydantic and botocore errors can quote the input, so they are never included."""
    detail: dict[str, object] = {"errorType": type(exc).__name__}
    if isinstance(exc, ValidationError):
        detail["problems"] = [{"loc": location(e), "type": e["type"]} for e in exc.errors(include_input=False)]
    elif isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        detail["missing"] = exc.args[0]
    return detail


class ErrorField(Model):
    field: str
    message: str


class ErrorDetail(Model):
    code: str
    message: str
    fields: list[ErrorField] | None = None
    requestId: str | None = Field(
        default=None, description="On 5xx answers: the request's id (API Gateway's), to quote when reporting it"
    )


class ErrorBody(Model):
    """Every error the API answers: `{"error": {"code", "message", "fields"?, "requestId"?}}`."""

    error: ErrorDetail
