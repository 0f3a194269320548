"""Dependencies shared by the routes: the services and the caller's tenant (from X-API-Key)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from spool.domain.models import ErrorBody
from spool.handlers.wiring import ApiServices, api_services

# Set by api.py to the resolver, so dependencies can read the current request's headers.
_request_source: list[ApiGatewayResolver] = []


def services() -> ApiServices:
    return api_services()


def tenant_id(svc: Annotated[ApiServices, Depends(services)]) -> str:
    event = _request_source[0].current_event
    return svc.tenants.authenticate(event.headers.get("x-api-key"))


Services = Annotated[ApiServices, Depends(services)]
TenantId = Annotated[str, Depends(tenant_id)]


def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


# The error answers every authenticated route can give (the OpenAPI document lists them per route).
ERRORS: dict[int, OpenAPIResponse] = {
    400: _error("Malformed JSON"),
    401: _error("Missing or invalid X-API-Key"),
    404: _error("Unknown id, or another tenant's"),
    409: _error("Conflicting concurrent change"),
    413: _error("Body or event too large"),
    415: _error("Body is not application/json"),
    422: _error("Validation failed; `fields` names each offending field"),
    500: _error("A fault of the service (never the client's input); carries `requestId`"),
    503: _error("A dependency is throttled or unavailable; retry after `Retry-After` seconds"),
}
SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]


def answers(status: int, description: str, model: Any = None) -> dict[int, OpenAPIResponse]:
    """A route's success answer plus the shared error answers, for the OpenAPI document."""
    success: OpenAPIResponse = {"description": description}
    if model is not None:
        success["content"] = {"application/json": {"model": model}}
    return {status: success, **ERRORS}
