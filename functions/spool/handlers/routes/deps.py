"""Dependencies shared by the routes: the services and the caller's tenant (from X-API-Key)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

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
