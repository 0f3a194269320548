"""Domain exceptions. The API maps them to HTTP in one place (handlers/api.py)."""

from __future__ import annotations


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
