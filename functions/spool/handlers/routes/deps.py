"""Dependencies shared by the routes: the services and the caller's tenant.

The api handler authenticates X-API-Key once, before Powertools validates the request (handlers/api.py:gate),
and puts the services it was built with and the tenant in the resolver's request context (`request_context`);
the routes read both from there, so nothing here checks the key again or knows where the services come from.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Depends, Request
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from spool.domain.models import ErrorBody
from spool.handlers.wiring import ApiServices

# Keys of the resolver's request context; only this module reads or writes them.
_SERVICES = "spool.services"
_TENANT = "spool.tenantId"


def request_context(services: ApiServices, tenant_id: str) -> dict[str, Any]:
    """What an authenticated request carries to its route (for `app.append_context`)."""
    return {_SERVICES: services, _TENANT: tenant_id}


def services(request: Request) -> ApiServices:
    svc: ApiServices = request.context[_SERVICES]
    return svc


def tenant_id(request: Request) -> str:
    """The tenant whose X-API-Key the gate accepted for this request."""
    tenant: str = request.context[_TENANT]
    return tenant


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
