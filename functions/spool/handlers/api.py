"""The api Lambda: API Gateway HTTP API (payload v2) -> Powertools resolver -> domain services.

Every error leaves as `{"error": {"code", "message", "fields": [{"field", "message"}]}}`; domain exceptions
are mapped to statuses here and nowhere else.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from spool.domain import limits
from spool.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    SpoolError,
    Unauthorized,
)
from spool.handlers.routes import deps, endpoints, events
from spool.observability import logger, metrics, share_log_config, tracer

app = APIGatewayHttpResolver(enable_validation=True)
deps._request_source.append(app)

_STATUS: dict[type[SpoolError], int] = {
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    InvalidInput: 422,
}
_BODY_METHODS = {"POST", "PATCH", "PUT"}


def error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body={"error": body})


def gate(event: dict[str, Any]) -> dict[str, Any] | None:
    """Checks that must come before Powertools parses and validates the body: 401, then 415, 413 and 400.

    Powertools runs its validation before any user middleware, so these cannot be a middleware: a client
    without a key must not learn the schema, and a wrong content type must not reach the JSON parser.
    """
    path = event.get("rawPath", "")
    if not path.startswith("/api/") or path == "/api/v1/openapi.json":
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        app.dependency_overrides.get(deps.services, deps.services)().tenants.authenticate(headers.get("x-api-key"))
    except Unauthorized as exc:
        return _raw_error(401, exc.code, exc.message)
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    body = event.get("body")
    if method not in _BODY_METHODS or not body:
        return None
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _raw_error(415, "unsupported_media_type", "send the body as application/json")
    # Media types are case-insensitive; Powertools compares them case-sensitively.
    event["headers"] = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    event["headers"]["content-type"] = "application/json"
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if len(raw) > limits.REQUEST_MAX_BYTES:
        return _raw_error(413, "payload_too_large", f"the request body is over {limits.REQUEST_MAX_BYTES} bytes")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return _raw_error(400, "malformed_json", "the body is not UTF-8")
    first = text.lstrip(" \t\r\n")[:1]
    if first != "{":
        # Powertools would take the first element of a JSON array as the body; only objects are valid here.
        if first and first in '["-0123456789tfn':
            return _raw_error(422, "validation_error", "the body must be a JSON object")
        return _raw_error(400, "malformed_json", "the body is not valid JSON")
    return None


def _raw_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps({"error": {"code": code, "message": message}}),
        "isBase64Encoded": False,
    }


app.include_router(endpoints.router, prefix="/api/v1")
app.include_router(events.router, prefix="/api/v1")
app.configure_openapi(
    title="Spool API",
    version="1.0.0",
    summary="Webhook storage sink delivery: events in, batched NDJSON objects out.",
    security_schemes={"apiKey": APIKey(name="X-API-Key", in_=APIKeyIn.header)},
)


@app.get("/health", include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=app.get_openapi_json_schema())


@app.exception_handler(RequestValidationError)
def handle_validation(exc: RequestValidationError) -> Response[Any]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error(400, "malformed_json", "the body is not valid JSON")
    # Only location and message: pydantic's `input` would echo what the client sent, secrets included.
    fields = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in errors]
    return error(422, "validation_error", "the request does not match the schema", fields)


@app.exception_handler(ValidationError)
def handle_domain_validation(exc: ValidationError) -> Response[Any]:
    fields = [{"field": _field(("body", *e["loc"])), "message": e["msg"]} for e in exc.errors()]
    return error(422, "validation_error", "the request does not match the schema", fields)


@app.exception_handler(SpoolError)
def handle_domain_error(exc: SpoolError) -> Response[Any]:
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
    fields = [{"field": exc.field, "message": exc.message}] if exc.field else None
    return error(status, exc.code, exc.message if not exc.field else f"{exc.field}: {exc.message}", fields)


@app.exception_handler(IdempotencyValidationError)
def handle_key_reuse(_: IdempotencyValidationError) -> Response[Any]:
    return error(
        422,
        "idempotency_key_reused",
        "this Idempotency-Key (or event id) was used with a different body",
        [{"field": "Idempotency-Key", "message": "was used before with a different body"}],
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def handle_in_progress(_: IdempotencyAlreadyInProgressError) -> Response[Any]:
    return error(409, "request_in_progress", "the same request is still being processed; retry shortly")


@app.exception_handler(ValueError)
def handle_unparseable(_: ValueError) -> Response[Any]:
    # json.loads raises plain ValueError for, e.g., integers longer than 4300 digits.
    return error(400, "malformed_json", "the body could not be parsed as JSON")


@app.exception_handler(RecursionError)
def handle_too_deep(_: RecursionError) -> Response[Any]:
    return error(400, "malformed_json", "the body nests too deeply")


@app.not_found
def handle_not_found(_: NotFoundError) -> Response[Any]:
    return error(404, "not_found", "no such route")


@app.exception_handler(Exception)
def handle_unexpected(exc: Exception) -> Response[Any]:
    # The type only: messages of unexpected errors are not known to be free of secrets.
    logger.error("unhandled error", extra={"errorType": type(exc).__name__})
    return error(500, "internal_error", "something went wrong on our side; the request can be retried")


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    if parts and parts[0] in ("single", "batch"):  # tags of the events body's two shapes
        parts = parts[1:]
    return ".".join(parts) or "body"


share_log_config()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return gate(event) or app.resolve(event, context)


if __name__ == "__main__" and sys.argv[1:] == ["openapi"]:
    print(json.dumps(json.loads(app.get_openapi_json_schema()), indent=2, sort_keys=True))
