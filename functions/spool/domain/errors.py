"""Domain exceptions. The API maps them to HTTP in one place (handlers/api.py)."""

from __future__ import annotations

from pydantic import ValidationError


class SpoolError(Exception):
    """Base of every error Spool reports to a client. `code` is stable, `message` is safe to show."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(SpoolError):
    code = "not_found"


class Unauthorized(SpoolError):
    code = "unauthorized"


class Conflict(SpoolError):
    code = "conflict"


class InvalidInput(SpoolError):
    """A value is well-formed JSON but breaks a rule; `field` names it (e.g. `storageConfig.bucket`)."""

    code = "validation_error"


class PayloadTooLarge(SpoolError):
    code = "payload_too_large"


class StoreError(SpoolError):
    """A write to a tenant's store failed. The message never contains credentials."""

    code = "store_error"


class ServiceFault(SpoolError):
    """A fault of the service, not of the request: a stored item that does not parse, a reply of another part
    of Spool that is not what it should be. The API answers 500 with a generic message; `detail` is for the
    log only and holds names, locations and error types, never stored or sent values (they may be secrets)."""

    code = "internal_error"

    def __init__(self, message: str, *, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class CorruptRecord(ServiceFault):
    """A stored item does not parse as the model it should hold."""


def describe(exc: BaseException) -> dict[str, object]:
    """What went wrong, safe to log: the error type, and for pydantic errors where and which rule failed.

    Messages of pydantic and botocore errors can quote the input, so they are never included."""
    detail: dict[str, object] = {"errorType": type(exc).__name__}
    if isinstance(exc, ValidationError):
        detail["problems"] = [
            {"loc": ".".join(str(p) for p in e["loc"]), "type": e["type"]} for e in exc.errors(include_input=False)
        ]
    elif isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        detail["missing"] = exc.args[0]
    return detail
