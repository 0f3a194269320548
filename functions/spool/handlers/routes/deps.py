"""Dependencies shared by the routes: the services and the caller's tenant.

The api handler authenticates X-API-Key once, before Powertools validates the request (handlers/api.py:gate),
and puts the services it was built with and the tenant in the resolver's request context (`request_context`);
the routes read both from there, so nothing here checks the key again or knows where the services come from.

The route modules keep their annotations as objects (no `from __future__ import annotations`): Powertools reads
a route's and its dependencies' signatures on every request and compiles string annotations each time (13
`compile` calls per events request, make bench B2).
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Depends, Request
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from spool.domain.errors import ErrorBody
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
    429: _error("A limit was reached (its name opens the message); retry after `Retry-After` seconds"),
    500: _error("A fault of the service (never the client's input); carries `requestId`"),
    503: _error("A dependency is throttled or unavailable; retry after `Retry-After` seconds"),
}
SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]


def tenant_route[F: Callable[..., Any]](
    method: Callable[..., Callable[[F], F]], rule: str, *, answer: tuple[int, str]
) -> Callable[[F], F]:
    """`method` (a Router's `get`, `post`, ...) registering a route of the tenant API: it needs X-API-Key, and
    the OpenAPI document gives the route's docstring as its summary and lists its success answer (`answer`'s
    status and description; Powertools takes the body's schema from the return type) beside the error answers
    every such route can give."""
    status, description = answer

    def register(route: F) -> F:
        summary = inspect.getdoc(route)
        if not summary:
            raise TypeError(f"{route.__name__} needs a docstring: it is the route's summary in the OpenAPI document")
        responses = {status: {"description": description}, **ERRORS}
        return method(rule, summary=summary, security=SECURITY, responses=responses)(route)

    return register
