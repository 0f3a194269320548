"""/api/v1/endpoints: create, list, get, patch, delete, verify, redrive, and the AWS role to create."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import ValidationError

from spool.domain import limits
from spool.domain.errors import ServiceFault, describe
from spool.domain.models import EndpointCreate, EndpointOut, EndpointPage, EndpointPatch, RedriveResult, VerifyResult
from spool.domain.roles import AwsRole
from spool.handlers.routes.deps import Services, TenantId, tenant_route

router = Router()

EndpointId = Annotated[str, Path(min_length=1, max_length=64, description="An endpoint id (ep_...)")]


@tenant_route(router.post, "/endpoints", answer=(201, "The endpoint was created"))
def create_endpoint(body: EndpointCreate, svc: Services, tenant: TenantId) -> Response[EndpointOut]:
    """Create a storage endpoint"""
    created = svc.endpoints.create(tenant, body)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=created,
        headers={"Location": f"/api/v1/endpoints/{created.id}"},
    )


@tenant_route(router.get, "/endpoints", answer=(200, "A page of endpoints"))
def list_endpoints(
    svc: Services,
    tenant: TenantId,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EndpointPage:
    """List endpoints, oldest first (cursor pagination)"""
    return svc.endpoints.list(tenant, limit, cursor)


@tenant_route(router.get, "/endpoints/<endpoint_id>", answer=(200, "The endpoint"))
def get_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> EndpointOut:
    """Get an endpoint and its delivery status"""
    return svc.endpoints.get(tenant, endpoint_id)


@tenant_route(router.patch, "/endpoints/<endpoint_id>", answer=(200, "The changed endpoint"))
def patch_endpoint(endpoint_id: EndpointId, body: EndpointPatch, svc: Services, tenant: TenantId) -> EndpointOut:
    """Change an endpoint (partial update)"""
    return svc.endpoints.patch(tenant, endpoint_id, body)


@tenant_route(
    router.delete, "/endpoints/<endpoint_id>", answer=(204, "Deleted; events accepted before are still written")
)
def delete_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> Response[None]:
    """Delete an endpoint"""
    svc.endpoints.delete(tenant, endpoint_id)
    return Response(status_code=204, body=None)


@tenant_route(router.post, "/endpoints/<endpoint_id>/verify", answer=(200, "What the store answered"))
def verify_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> VerifyResult:
    """Write and remove a probe object with the stored credentials"""
    reply = svc.verification.verify(tenant, endpoint_id)
    try:
        return VerifyResult.model_validate(reply)
    except ValidationError as exc:  # the verify function answered something else: its fault, not the client's
        raise ServiceFault("the verification answer was malformed", detail=describe(exc)) from None


@tenant_route(
    router.get,
    "/endpoints/<endpoint_id>/aws-role",
    answer=(200, "Trust and permission policies, and one template with both"),
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
    """The IAM role to create in your AWS account for Spool to assume: policies and a CloudFormation template"""
    return svc.endpoints.aws_role(tenant, endpoint_id, kmsKeyArn)


@tenant_route(router.post, "/endpoints/<endpoint_id>/redrive", answer=(200, "How many messages were moved"))
def redrive_endpoint(endpoint_id: EndpointId, svc: Services, tenant: TenantId) -> RedriveResult:
    """Move this endpoint's messages from the dead-letter queue back for delivery"""
    svc.endpoints.get(tenant, endpoint_id)
    moved, complete = svc.redriver.redrive(tenant, endpoint_id)
    return RedriveResult(moved=moved, complete=complete)
