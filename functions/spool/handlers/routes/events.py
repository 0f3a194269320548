"""/api/v1/events: accept one event or a batch."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from pydantic import Discriminator, Tag

from spool.domain.events import Accepted, AcceptedBatch, EventBatchIn, EventIn
from spool.handlers.routes.deps import Services, TenantId, tenant_route
from spool.names import METRIC_EVENTS_ACCEPTED
from spool.observability import metrics

router = Router()


def _shape(body: object) -> str:
    return "batch" if isinstance(body, dict) and "events" in body else "single"


EventsBody = Annotated[
    Annotated[EventIn, Tag("single")] | Annotated[EventBatchIn, Tag("batch")],
    Discriminator(_shape),
    Body(description='One event, or `{"events": [...]}` for a batch'),
]


@tenant_route(router.post, "/events", answer=(202, "Accepted: the ids and createdAt of the events, in order"))
def send_events(
    body: EventsBody,
    svc: Services,
    tenant: TenantId,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=128,
            description="Makes a retry of this request safe for an hour",
        ),
    ] = None,
) -> Response[Accepted | AcceptedBatch]:
    """Send one event or a batch of events"""
    events = body.events if isinstance(body, EventBatchIn) else [body]
    svc.ingest.bind(router.lambda_context)
    accepted = svc.ingest.accept(tenant, events, idempotency_key)
    metrics.add_metric(name=METRIC_EVENTS_ACCEPTED, unit="Count", value=len(accepted))
    result: Accepted | AcceptedBatch = AcceptedBatch(events=accepted) if isinstance(body, EventBatchIn) else accepted[0]
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=result)
