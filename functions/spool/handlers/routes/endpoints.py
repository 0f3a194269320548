"""/api/v1/endpoints: create, list, get, patch, delete, verify, redrive, and the AWS role to create."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import ValidationError

from spool.domain import limits
from spool.domain.errors import ServiceFault, describe
from spool.domain.models import (
    AwsRole,
    EndpointCreate,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    RedriveResult,
    VerifyResult,
)
from spool.handlers.routes.deps import SECURITY, Services, TenantId, answers

router = Router()

EndpointId = Annotated[str, Path(min_length=1, max_length=64, description="An endpoint id (ep_...)")]


@router.post(
    "/endpoints",
    security=SECURITY,
    summary="Create a storage endpoint",
    responses=answers(201, "The endpoint was created", EndpointOut),
)
def create_endpoint(body: EndpointCreate, svc: Services, tenant: TenantId) -> Response[EndpointOut]:
    created = svc.endpoints.create(tenant, body)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=created,
        headers={"Location": f"/api/v1/endpoints/{created.id}"},
    )


@router.get(
    "/endpoints",
    security=SECURITY,
    summary="List endpoints, oldest first (cursor pagination)",
    responses=answers(200, "A page of endpoints", EndpointPage),
)
def list_endpoints(
    svc: Services,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EndpointPage:
    return svc.endpoints.list(tenant, limit, cursor)


@router.get(
    "/endpoints/<endpoint_id>",
    security=SECURITY,
    summary="Get an endpoint and its delivery status",
    responses=answers(200, "The endpoint", EndpointOut),
)
def get_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> EndpointOut:
    return svc.endpoints.get(tenant, endpoint_id)


@router.patch(
    "/endpoints/<endpoint_id>",
    security=SECURITY,
    summary="Change an endpoint (partial update)",
    responses=answers(200, "The changed endpoint", EndpointOut),
)
def patch_endpoint(endpoint_id: EndpointId, body: EndpointPatch, svc: Services, tenant: TenantId) -> EndpointOut:
    return svc.endpoints.patch(tenant, endpoint_id, body)


@router.delete(
    "/endpoints/<endpoint_id>",
    security=SECURITY,
    summary="Delete an endpoint",
    responses=answers(204, "Deleted; events accepted before are still written"),
)
def delete_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> Response[None]:
    svc.endpoints.delete(tenant, endpoint_id)
    return Response(status_code=204, body=None)


@router.post(
    "/endpoints/<endpoint_id>/verify",
    security=SECURITY,
    summary="Write and remove a probe object with the stored credentials",
    responses=answers(200, "What the store answered", VerifyResult),
)
def verify_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> VerifyResult:
    svc.endpoints.get(tenant, endpoint_id)
    reply = svc.verifier.verify(tenant, endpoint_id)
    try:
        return VerifyResult.model_validate(reply)
    except ValidationError as exc:  # the sink answered something else: its fault, not the client's
        raise ServiceFault("the verification answer was malformed", detail=describe(exc)) from None


@router.get(
    "/endpoints/<endpoint_id>/aws-role",
    security=SECURITY,
    summary="The IAM role to create in your AWS account for Spool to assume: policies and a CloudFormation template",
    responses=answers(200, "Trust and permission policies, and one template with both", AwsRole),
)
def get_aws_role(
    endpoint_id: EndpointId,
    svc: Services,
    tenant: TenantId,
    kmsKeyArn: Annotated[  # the query parameter's name, camelCase like the body's fields
        str | None,
        Query(
            max_length=2048,
            description="The bucket's KMS key, when its default encryption is SSE-KMS with a customer managed key: "
            "the role may then use it (kms:GenerateDataKey through S3)",
        ),
    ] = None,
) -> AwsRole:
    return svc.endpoints.aws_role(tenant, endpoint_id, kmsKeyArn)


@router.post(
    "/endpoints/<endpoint_id>/redrive",
    security=SECURITY,
    summary="Move this endpoint's messages from the dead-letter queue back for delivery",
    responses=answers(200, "How many messages were moved", RedriveResult),
)
def redrive_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> RedriveResult:
    svc.endpoints.get(tenant, endpoint_id)
    moved, complete = svc.redriver.redrive(tenant, endpoint_id)
    return RedriveResult(moved=moved, complete=complete)
