"""Accepting events (SPEC: API; issue 3, item 7): the single and batch forms, ids and createdAt, routing by
eventTypes to every matching storage endpoint, and the count and size limits."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from spool.domain import limits
from spool.domain.errors import PayloadTooLarge
from spool.domain.events import EventIn
from spool.domain.ingest import Ingest, render
from spool.domain.matching import matches, matches_any
from spool.domain.models import Endpoint
from spool.domain.naming import iso_timestamp
from spool.domain.storage import StorageSettings
from tests.conftest import spec_body
from tests.fakes import FakeQueue, FakeRepo
from tests.unit.conftest import ApiHarness

EVENTS = "/api/v1/events"
ENDPOINTS = "/api/v1/endpoints"
START = 1_776_162_600.0
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def event(event_type: str = "order.created", **payload: Any) -> dict[str, Any]:
    return {"eventType": event_type, "payload": payload or {"orderId": "ord_1"}}


def endpoint_for(harness: ApiHarness, *patterns: str) -> str:
    body = spec_body()
    body["eventTypes"] = list(patterns)
    reply = harness.call("POST", ENDPOINTS, body)
    assert reply.status == 201, reply.text
    endpoint_id: str = reply.json()["id"]
    return endpoint_id


def send(harness: ApiHarness, body: Any) -> dict[str, Any]:
    reply = harness.call("POST", EVENTS, body)
    assert reply.status == 202, reply.text
    accepted: dict[str, Any] = reply.json()
    return accepted


def routed(harness: ApiHarness) -> list[tuple[str, str]]:
    """(endpoint id, event type) of every queued message, in order."""
    return [(m.endpoint_id, json.loads(line)["eventType"]) for m in harness.queue.sent for line in m.lines]


def stored_endpoint(endpoint_id: str, patterns: list[str], **changes: Any) -> Endpoint:
    endpoint = Endpoint(
        id=endpoint_id,
        tenantId="ten_a",
        url="s3://bucket-a/",
        eventTypes=patterns,
        storage=StorageSettings(provider="s3", bucket="bucket-a", region="us-east-1"),
        createdAt="2026-04-14T10:30:00.000Z",
        updatedAt="2026-04-14T10:30:00.000Z",
    )
    # model_copy skips validation, so a delivery mode the API would refuse can be stored for the test.
    return endpoint.model_copy(update=changes)


# --- single and batch forms ------------------------------------------------------------------------------------


def test_single_event_answers_202_with_its_id_and_created_at(harness: ApiHarness) -> None:
    accepted = send(harness, event())

    assert set(accepted) == {"id", "createdAt"}
    assert accepted["id"].startswith("evt_")
    assert ISO_RE.match(accepted["createdAt"])


def test_batch_answers_202_with_ids_and_created_at_in_order(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")
    types = ["order.created", "user.created", "order.paid", "invoice.sent"]

    accepted = send(harness, {"events": [event(t) for t in types]})

    assert list(accepted) == ["events"]
    assert [set(a) for a in accepted["events"]] == [{"id", "createdAt"}] * len(types)
    ids = [a["id"] for a in accepted["events"]]
    assert len(set(ids)) == len(types)
    lines = [json.loads(line) for m in harness.queue.sent for line in m.lines]
    assert [(line["id"], line["eventType"]) for line in lines] == list(zip(ids, types, strict=True))


def test_batch_of_one_still_answers_in_the_batch_form(harness: ApiHarness) -> None:
    accepted = send(harness, {"events": [event()]})

    assert len(accepted["events"]) == 1


def test_client_supplied_id_is_the_event_id(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")

    accepted = send(harness, {**event(), "id": "order-42_created"})

    assert accepted["id"] == "order-42_created"
    assert json.loads(harness.queue.sent[0].body)["id"] == "order-42_created"


def test_batch_mixes_client_ids_and_generated_ids_in_order(harness: ApiHarness) -> None:
    accepted = send(harness, {"events": [{**event(), "id": "mine-1"}, event(), {**event(), "id": "mine-3"}]})

    ids = [a["id"] for a in accepted["events"]]
    assert ids[0] == "mine-1"
    assert ids[2] == "mine-3"
    assert ids[1].startswith("evt_")


def test_queued_line_carries_the_answered_id_and_created_at(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")

    accepted = send(harness, event())

    line = json.loads(harness.queue.sent[0].body)
    assert (line["id"], line["createdAt"]) == (accepted["id"], accepted["createdAt"])


def test_queued_line_is_the_spec_ndjson_line_with_the_payload_untouched(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")
    payload = {"orderId": "ord_123", "items": [{"sku": "A", "qty": 2}], "note": "Zoë 🚀", "nested": {"z": 1, "a": None}}

    accepted = send(harness, {"eventType": "order.created", "payload": payload})

    body = harness.queue.sent[0].body
    assert body == (
        f'{{"id":"{accepted["id"]}","eventType":"order.created","payload":'
        f"{json.dumps(payload, separators=(',', ':'), ensure_ascii=False)},"
        f'"createdAt":"{accepted["createdAt"]}"}}'
    )


def test_event_without_matching_endpoints_is_still_accepted(harness: ApiHarness) -> None:
    endpoint_for(harness, "user.*")

    send(harness, event("order.created"))

    assert harness.queue.sent == []


# --- routing by eventTypes -------------------------------------------------------------------------------------


def test_event_goes_to_every_matching_endpoint_once(harness: ApiHarness) -> None:
    star = endpoint_for(harness, "*")
    prefix = endpoint_for(harness, "order.*")
    exact = endpoint_for(harness, "order.created")
    endpoint_for(harness, "user.*")
    endpoint_for(harness, "order.paid")

    send(harness, event("order.created"))

    assert sorted(routed(harness)) == sorted(
        [(star, "order.created"), (prefix, "order.created"), (exact, "order.created")]
    )


def test_endpoint_matching_through_several_patterns_gets_one_message_per_event(harness: ApiHarness) -> None:
    endpoint_id = endpoint_for(harness, "*", "order.*", "order.created")

    send(harness, event("order.created"))

    assert routed(harness) == [(endpoint_id, "order.created")]


def test_batch_routes_each_event_to_its_own_matching_endpoints(harness: ApiHarness) -> None:
    orders = endpoint_for(harness, "order.*")
    users = endpoint_for(harness, "user.*")

    send(harness, {"events": [event("order.created"), event("user.created"), event("invoice.paid")]})

    assert sorted(routed(harness)) == sorted([(orders, "order.created"), (users, "user.created")])


def test_messages_carry_the_senders_tenant_and_the_endpoint(harness: ApiHarness) -> None:
    endpoint_id = endpoint_for(harness, "*")

    send(harness, event())

    [message] = harness.queue.sent
    assert (message.tenant_id, message.endpoint_id) == (harness.tenant_id, endpoint_id)


def test_messages_of_a_batch_keep_the_batch_order(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")
    accepted = send(harness, {"events": [event(f"type{i}.created") for i in range(20)]})

    [bundle] = harness.queue.sent
    assert [json.loads(line)["id"] for line in bundle.lines] == [a["id"] for a in accepted["events"]]


def test_deleted_endpoint_gets_nothing(harness: ApiHarness) -> None:
    kept = endpoint_for(harness, "*")
    gone = endpoint_for(harness, "*")
    assert harness.call("DELETE", f"{ENDPOINTS}/{gone}").status == 204

    send(harness, event())

    assert routed(harness) == [(kept, "order.created")]


def test_non_storage_endpoint_gets_nothing() -> None:
    repo, queue = FakeRepo(), FakeQueue()
    repo.create_endpoint(stored_endpoint("ep_storage", ["*"]))
    repo.create_endpoint(stored_endpoint("ep_http", ["*"], deliveryMode="http"))

    Ingest(repo, queue, clock=lambda: START).accept("ten_a", [EventIn(eventType="a.b", payload={})])

    assert [m.endpoint_id for m in queue.sent] == ["ep_storage"]


def test_deleted_endpoint_in_the_repository_gets_nothing() -> None:
    repo, queue = FakeRepo(), FakeQueue()
    repo.create_endpoint(stored_endpoint("ep_gone", ["*"], status="deleted"))

    Ingest(repo, queue, clock=lambda: START).accept("ten_a", [EventIn(eventType="a.b", payload={})])

    assert queue.sent == []


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("*", "order.created", True),
        ("*", "x", True),
        ("order.*", "order.created", True),
        ("order.*", "order.item.added", True),
        ("order.*", "order", False),
        ("order.*", "orders.created", False),
        ("order.*", "preorder.created", False),
        ("order.item.*", "order.item.added", True),
        ("order.item.*", "order.created", False),
        ("order.created", "order.created", True),
        ("order.created", "order.created.v2", False),
        ("order.created", "Order.Created", False),
        ("order.created", "order", False),
    ],
)
def test_pattern_matching_follows_the_spec(pattern: str, event_type: str, expected: bool) -> None:
    assert matches(pattern, event_type) is expected


def test_matches_any_is_false_for_no_patterns() -> None:
    assert matches_any([], "order.created") is False


# --- limits ----------------------------------------------------------------------------------------------------


def test_batch_at_the_count_limit_is_accepted(harness: ApiHarness) -> None:
    accepted = send(harness, {"events": [event()] * limits.BATCH_MAX_EVENTS})

    assert len(accepted["events"]) == limits.BATCH_MAX_EVENTS


def test_batch_over_the_count_limit_answers_4xx_and_queues_nothing(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")

    reply = harness.call("POST", EVENTS, {"events": [event()] * (limits.BATCH_MAX_EVENTS + 1)})

    assert 400 <= reply.status < 500, reply.text
    assert harness.queue.sent == []


def test_empty_batch_answers_422(harness: ApiHarness) -> None:
    assert harness.call("POST", EVENTS, {"events": []}).status == 422


@pytest.mark.parametrize("event_type", ["order.*", "*", "order created", "", "order..created", "a" * 129])
def test_event_type_that_is_not_a_plain_type_answers_422(harness: ApiHarness, event_type: str) -> None:
    assert harness.call("POST", EVENTS, event(event_type)).status == 422


@pytest.mark.parametrize("event_id", ["", "has space", "x" * 65, "ünïcode", "a/b"])
def test_client_id_of_the_wrong_form_answers_422(harness: ApiHarness, event_id: str) -> None:
    assert harness.call("POST", EVENTS, {**event(), "id": event_id}).status == 422


def test_oversized_event_is_refused_before_anything_is_queued() -> None:
    repo, queue = FakeRepo(), FakeQueue()
    repo.create_endpoint(stored_endpoint("ep_a", ["*"]))
    small = EventIn(eventType="a.b", payload={})
    big = EventIn(eventType="a.b", payload={"x": "y" * limits.EVENT_MAX_BYTES})

    with pytest.raises(PayloadTooLarge):
        Ingest(repo, queue, clock=lambda: START).accept("ten_a", [small, big])

    assert queue.sent == []


def test_queue_failure_answers_5xx_not_202(harness: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint_for(harness, "*")

    def unavailable(messages: Any) -> None:
        raise ConnectionError("sqs unavailable")

    monkeypatch.setattr(harness.queue, "send", unavailable)

    reply = harness.call("POST", EVENTS, event())

    assert reply.status == 500
    assert "id" not in reply.json()


# --- the domain service ----------------------------------------------------------------------------------------


def test_events_of_one_request_share_the_clocks_created_at() -> None:
    accepted = Ingest(FakeRepo(), FakeQueue(), clock=lambda: START + 0.25).accept(
        "ten_a", [EventIn(eventType="a.b", payload={}), EventIn(eventType="c.d", payload={})]
    )

    assert [a.createdAt for a in accepted] == [iso_timestamp(START + 0.25)] * 2


def test_render_keeps_the_accepted_time_for_the_sink() -> None:
    rendered = render(EventIn(eventType="a.b", payload={"k": 1}, id="e1"), START)

    assert rendered.acceptedAt == START
    assert rendered.line == '{"id":"e1","eventType":"a.b","payload":{"k":1},"createdAt":"2026-04-14T10:30:00.000Z"}'


# --- known gaps ------------------------------------------------------------------------------------------------


def test_retry_with_the_same_client_id_is_queued_once(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")
    body = {**event(), "id": "order-42"}

    first, second = send(harness, body), send(harness, body)

    assert first == second
    assert len(harness.queue.sent) == 1


def test_retry_with_the_same_idempotency_key_is_queued_once(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")
    headers = {"idempotency-key": "retry-1"}

    first = harness.call("POST", EVENTS, event(), headers=headers)
    second = harness.call("POST", EVENTS, event(), headers=headers)

    assert first.json() == second.json()
    assert len(harness.queue.sent) == 1


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_number_in_the_payload_is_refused(harness: ApiHarness, literal: bytes) -> None:
    endpoint_for(harness, "*")

    reply = harness.call("POST", EVENTS, raw=b'{"eventType": "a.b", "payload": {"x": ' + literal + b"}}")

    assert 400 <= reply.status < 500, reply.text
    assert harness.queue.sent == []


def test_queued_lines_are_strict_json(harness: ApiHarness) -> None:
    endpoint_for(harness, "*")
    send(harness, {"eventType": "a.b", "payload": {"f": 1.5, "big": 10**30, "neg": -0.0, "e": 1e-7}})

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    line = json.loads(harness.queue.sent[0].body, parse_constant=refuse)
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in line["payload"].values())
