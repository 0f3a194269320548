"""The api Lambda: API Gateway HTTP API (payload v2) -> Powertools resolver -> domain services.

Every error leaves as `{"error": {"code", "message", "fields": [{"field", "message"}]}}`; domain exceptions
are mapped to statuses here and nowhere else. A client's mistake is a 4xx naming the field; a fault of the
service (a stored item that does not parse, a failing dependency, a bug) is a 500, or a 503 when a dependency
is throttled or unavailable, with the request's `requestId` and nothing of the cause: that is logged, without
values.
"""

from __future__ import annotations

import base64
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from spool.domain import limits
from spool.domain.base import build_validators
from spool.domain.errors import (
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceFault,
    SpoolError,
    Unauthorized,
)
from spool.handlers import snapstart
from spool.handlers.routes import deps, endpoints, events
from spool.handlers.wiring import ApiServices, api_services
from spool.observability import logger, metrics, share_log_config, traced
from spool.observability import prime as prime_observability


class _Unparseable(Exception):
    """The request body is JSON that Python's parser refuses other than by a syntax error (400)."""


def _parse_body(text: str) -> Any:
    """Powertools' body parser. Only here is a ValueError the client's: elsewhere it is a fault (500)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise  # Powertools turns it into a `json_invalid` RequestValidationError
    except ValueError:  # e.g. an integer of more than 4300 digits
        raise _Unparseable("the body could not be parsed as JSON") from None
    except RecursionError:
        raise _Unparseable("the body nests too deeply") from None


app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=_parse_body)

_STATUS: dict[type[SpoolError], int] = {
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    InvalidInput: 422,
    LimitExceeded: 422,
    RateLimited: 429,
}
_BODY_METHODS = {"POST", "PATCH", "PUT"}

# AWS error codes of a dependency that is throttling or briefly unavailable (botocore's retry lists and the
# service-unavailable family): the request may succeed if retried, so the answer is 503.
_UNAVAILABLE_CODES = frozenset(
    {
        "BandwidthLimitExceeded",
        "DependencyTimeoutException",
        "EC2ThrottledException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerErrorException",
        "InternalServiceError",
        "InternalServiceErrorException",
        "KMSInternalException",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionInProgressException",
    }
)
_UNAVAILABLE_HTTP = frozenset({429, 500, 502, 503, 504})
_INTERNAL = (500, "internal_error", "something went wrong on our side; the request can be retried")
_UNAVAILABLE = (503, "service_unavailable", "a service Spool depends on is busy or unavailable; retry shortly")
RETRY_AFTER_SECONDS = 1


def error(
    status: int,
    code: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=_body(app.current_event.raw_event, status, code, message, fields),
        headers=headers or _fault_headers(status),
    )


def _body(
    event: dict[str, Any], status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if fields:
        detail["fields"] = fields
    request_id = (event.get("requestContext") or {}).get("requestId")
    # A fault is reported with the request's id, which finds its log lines (their correlation_id). 4xx answers
    # do without: the client can fix those alone, and equal answers stay byte-equal (404 for another tenant's
    # id and for an unknown one).
    if status >= 500 and isinstance(request_id, str):
        detail["requestId"] = request_id
    return {"error": detail}


def _fault_headers(status: int) -> dict[str, str] | None:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None


def _fault(exc: BaseException) -> tuple[int, str, str]:
    """Log a fault of the service and choose its answer: 503 when a dependency throttles or is unreachable
    (here or as the cause of a wrapping error, e.g. Powertools Idempotency's), 500 otherwise.

    Logged: exception types, AWS error codes and the safe detail of a `ServiceFault`; never a message, since
    those of botocore and pydantic errors can quote what was sent or stored."""
    # Imported here: faults are rare, and botocore is otherwise first loaded by the services (wiring.py).
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotocoreConnectionError

    chain = _chain(exc)
    extra: dict[str, Any] = {"errorType": type(exc).__name__}
    if len(chain) > 1:
        extra["causes"] = [type(e).__name__ for e in chain[1:]]
    unavailable = False
    for cause in chain:
        if isinstance(cause, ServiceFault):
            extra["detail"] = cause.detail
        elif isinstance(cause, ClientError):
            aws_code = cause.response.get("Error", {}).get("Code")
            http_status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            extra |= {"awsErrorCode": aws_code, "awsOperation": cause.operation_name, "awsHttpStatus": http_status}
            unavailable = unavailable or aws_code in _UNAVAILABLE_CODES or http_status in _UNAVAILABLE_HTTP
        elif isinstance(cause, (BotocoreConnectionError, HTTPClientError)):  # refused, reset, timed out
            unavailable = True
    if unavailable:
        logger.warning("dependency unavailable", extra=extra)
        return _UNAVAILABLE
    logger.error("service fault" if isinstance(exc, ServiceFault) else "unhandled error", extra=extra)
    return _INTERNAL


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, as Python's traceback would show them."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def gate(event: dict[str, Any], services: Callable[[], ApiServices]) -> dict[str, Any] | None:
    """Checks that must come before Powertools parses and validates the body: 401, then 415, 413 and 400.
    The answer when one fails; None when the request may go on to the resolver.

    Powertools runs its validation before any user middleware, so these cannot be a middleware: a client
    without a key must not learn the schema, and a wrong content type must not reach the JSON parser. This is
    the request's only API-key check: an admitted request carries the services and its tenant to the routes
    in the resolver's context (routes/deps.py).
    """
    path = event.get("rawPath", "")
    if not path.startswith("/api/") or path == "/api/v1/openapi.json":
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        built = services()
        tenant = built.tenants.authenticate(headers.get("x-api-key"))
    except Unauthorized as exc:
        return _raw_error(event, 401, exc.code, exc.message)
    except Exception as exc:  # the key store or the pepper's secret failed: a fault, answered like the resolver's
        return _raw_error(event, *_fault(exc))
    refused = _check_body(event, headers)
    if refused is None:
        # Only now: the resolver clears its context after resolving, and a refused request never gets there.
        app.append_context(**deps.request_context(built, tenant))
    return refused


def _check_body(event: dict[str, Any], headers: dict[str, str]) -> dict[str, Any] | None:
    """415, 413, 400 or 422 for a body that must not reach Powertools' parser; None when it may."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    body = event.get("body")
    if method not in _BODY_METHODS or not body:
        return None
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _raw_error(event, 415, "unsupported_media_type", "send the body as application/json")
    # Media types are case-insensitive; Powertools compares them case-sensitively.
    event["headers"] = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    event["headers"]["content-type"] = "application/json"
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if len(raw) > limits.REQUEST_MAX_BYTES:
        return _raw_error(event, 413, "payload_too_large", f"the request body is over {limits.REQUEST_MAX_BYTES} bytes")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return _raw_error(event, 400, "malformed_json", "the body is not UTF-8")
    first = text.lstrip(" \t\r\n")[:1]
    if first != "{":
        # Powertools would take the first element of a JSON array as the body; only objects are valid here.
        if first and first in '["-0123456789tfn':
            return _raw_error(event, 422, "validation_error", "the body must be a JSON object")
        return _raw_error(event, 400, "malformed_json", "the body is not valid JSON")
    return None


def _raw_error(event: dict[str, Any], status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **(_fault_headers(status) or {})},
        "body": json.dumps(_body(event, status, code, message)),
        "isBase64Encoded": False,
    }


app.include_router(endpoints.router, prefix="/api/v1")
app.include_router(events.router, prefix="/api/v1")


@functools.cache
def openapi_json() -> str:
    """The OpenAPI document (GET /api/v1/openapi.json, `make openapi`), made on first use: Powertools' OpenAPI
    models, which only the document needs, were a fifth of the api's import time (make bench, B3)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    app.configure_openapi(
        title="Spool API",
        version="1.0.0",
        summary="Webhook storage sink delivery: events in, batched NDJSON objects out.",
        security_schemes={"apiKey": APIKey(name="X-API-Key", in_=APIKeyIn.header)},
    )
    return app.get_openapi_json_schema()


@app.get("/health", include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@app.exception_handler(RequestValidationError)
def handle_validation(exc: RequestValidationError) -> Response[Any]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error(400, "malformed_json", "the body is not valid JSON")
    # Only location and message: pydantic's `input` would echo what the client sent, secrets included.
    fields = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in errors]
    return error(422, "validation_error", "the request does not match the schema", fields)


@app.exception_handler(SpoolError)
def handle_domain_error(exc: SpoolError) -> Response[Any]:
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
    fields = [{"field": exc.field, "message": exc.message}] if exc.field else None
    # A limit's answer says when to come back (its message names the limit).
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error(status, exc.code, exc.message if not exc.field else f"{exc.field}: {exc.message}", fields, headers)


@app.exception_handler(_Unparseable)
def handle_unparseable(exc: _Unparseable) -> Response[Any]:
    return error(400, "malformed_json", str(exc))


@app.not_found
def handle_not_found(_: NotFoundError) -> Response[Any]:
    return error(404, "not_found", "no such route")


@app.exception_handler([ServiceFault, Exception])
def handle_fault(exc: Exception) -> Response[Any]:
    # Client mistakes arrive as the errors mapped above (gate(), Powertools' validation, the body parser, domain
    # errors); anything else is the service's fault, whatever its type: a stray ValueError or pydantic
    # ValidationError from stored data or a dependency's reply is a 500, never a 4xx.
    return error(*_fault(exc))


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    if parts and parts[0] in ("single", "batch"):  # tags of the events body's two shapes
        parts = parts[1:]
    return ".".join(parts) or "body"


share_log_config()


def log_request(event: dict[str, Any], response: dict[str, Any], seconds: float) -> None:
    """The request's one line, at DEBUG: written only in sampled invocations (observability.py). Method, path
    and status, never headers or the query string (X-API-Key, a cursor)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    logger.debug(
        "request",
        extra={
            "method": http.get("method"),
            "path": event.get("rawPath"),
            "status": response.get("statusCode"),
            "durationMs": round(seconds * 1000, 1),
        },
    )


def make_handler(services: Callable[[], ApiServices]) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The api entry point over the services `services()` returns (called once per authenticated request;
    production's are built on first use). Tests and the local runtime pass their own."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @metrics.log_metrics
    @traced
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        started = time.perf_counter()
        response = gate(event, services) or app.resolve(event, context)
        log_request(event, response, time.perf_counter() - started)
        return response

    return lambda_handler


lambda_handler = make_handler(api_services)

# A health check through the resolver: its event parsing, routing and response path, with no AWS call.
_PRIMING_EVENT = {
    "version": "2.0",
    "rawPath": "/health",
    "rawQueryString": "",
    "headers": {},
    "requestContext": {"http": {"method": "GET", "path": "/health"}, "requestId": "prime", "stage": "$default"},
    "isBase64Encoded": False,
}


def prime(services: Callable[[], ApiServices] = api_services) -> None:
    """Before a SnapStart snapshot (handlers/snapstart.py): the services and their clients, the Tracer, every
    model's validator and the resolver's request path, so a restored environment's first request does only
    its own work. No AWS call: the pepper and the endpoints are read by requests, after the restore."""
    services()
    prime_observability()
    build_validators()
    app.resolve(dict(_PRIMING_EVENT), None)  # type: ignore[arg-type]


snapstart.install(prime)


if __name__ == "__main__" and sys.argv[1:] == ["openapi"]:
    print(json.dumps(json.loads(openapi_json()), indent=2, sort_keys=True))
