"""The endpoint API end to end over fakes: create, list, get, patch, delete, verify, redrive; tenant isolation;
credentials that never leave encrypted storage (SPEC: API, Guarantees; issue 3 items 1, 4, 5)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from spool.domain import ids, limits
from spool.domain.credentials import Credentials
from spool.domain.endpoints import EndpointService, encryption_context
from spool.domain.errors import NotFound
from spool.observability import logger as powertools_logger
from tests.conftest import SPEC_BODY, spec_body
from tests.fakes import FakeStores, MemoryStore
from tests.unit.conftest import ApiHarness, FakeRedriver, FakeVerifier, Reply
from tests.unit.test_api_errors import field_names

ENDPOINTS = "/api/v1/endpoints"
EVENTS = "/api/v1/events"
ACCESS_KEY_ID = SPEC_BODY["storageConfig"]["accessKeyId"]
SECRET_ACCESS_KEY = SPEC_BODY["storageConfig"]["secretAccessKey"]
NEW_ACCESS_KEY_ID = "AKIAROTATEDKEY000001"
NEW_SECRET = "rotated/Secret+Value/ForPatchTests0000001"
ID_RE = re.compile(r"^ep_[0-9a-f]{28}$")


def secret_fragments(*secrets: str) -> list[str]:
    """Each secret and its first and last eight characters: no part of a secret may leak."""
    return [part for secret in secrets for part in (secret, secret[:8], secret[-8:])]


SECRET_PARTS = secret_fragments(ACCESS_KEY_ID, SECRET_ACCESS_KEY, NEW_ACCESS_KEY_ID, NEW_SECRET)


def assert_no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text, f"secret fragment {part!r} leaked"
    assert "accessKeyId" not in text
    assert "secretAccessKey" not in text


@pytest.fixture
def ordered_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every new id its own millisecond, so creation order is the id order the store sorts by."""
    ticks = iter(range(10**6))
    monkeypatch.setattr(ids, "time", SimpleNamespace(time=lambda: 1_776_162_600 + next(ticks) / 1000))


def create(harness: ApiHarness, body: dict[str, Any] | None = None, key: str = "default") -> dict[str, Any]:
    reply = harness.call("POST", ENDPOINTS, body or spec_body(), key=key)
    assert reply.status == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def typed(event_type: str) -> dict[str, Any]:
    return {"eventType": event_type, "payload": {"n": 1}}


def local_body() -> dict[str, Any]:
    return {
        "url": "local://archive/events/",
        "deliveryMode": "storage",
        "eventTypes": ["*"],
        "storageConfig": {"provider": "local", "bucket": "archive", "prefix": "events/"},
    }


def stored(harness: ApiHarness, endpoint_id: str, tenant_id: str | None = None) -> Any:
    return harness.repo.endpoints[(tenant_id or harness.tenant_id, endpoint_id)]


def decrypted(harness: ApiHarness, endpoint_id: str) -> dict[str, str]:
    endpoint = stored(harness, endpoint_id)
    result: dict[str, str] = json.loads(
        harness.cipher.decrypt(endpoint.credentials, encryption_context(endpoint.tenantId, endpoint.id))
    )
    return result


def patch(harness: ApiHarness, endpoint_id: str, body: Any) -> Reply:
    return harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", body)


def ok(reply: Reply, status: int = 200) -> dict[str, Any]:
    assert reply.status == status, reply.text
    result: dict[str, Any] = reply.json()
    return result


def page_ids(harness: ApiHarness, query: str = "", key: str = "default") -> tuple[list[str], str | None]:
    page = ok(harness.call("GET", f"{ENDPOINTS}{query}", key=key))
    return [item["id"] for item in page["items"]], page["nextCursor"]


# --- create ----------------------------------------------------------------------------------------------------


def test_create_answers_201_with_a_location_of_the_new_endpoint(harness: ApiHarness) -> None:
    reply = harness.call("POST", ENDPOINTS, spec_body())

    assert reply.status == 201, reply.text
    assert reply.headers["Location"] == f"{ENDPOINTS}/{reply.json()['id']}"


def test_create_returns_the_request_fields_at_the_top_level_less_credentials(harness: ApiHarness) -> None:
    created = create(harness, {**spec_body(), "description": "archive"})

    assert ID_RE.match(created["id"])
    assert created["url"] == SPEC_BODY["url"]
    assert created["deliveryMode"] == "storage"
    assert created["eventTypes"] == ["order.*"]
    assert created["description"] == "archive"
    assert created["status"] == "active"
    expected = {k: v for k, v in SPEC_BODY["storageConfig"].items() if k not in ("accessKeyId", "secretAccessKey")}
    assert {k: created["storageConfig"][k] for k in expected} == expected
    assert created["storageConfig"]["credentialsConfigured"] is True
    assert "accessKeyId" not in created["storageConfig"]
    assert "secretAccessKey" not in created["storageConfig"]


def test_create_sets_created_and_updated_at_to_the_same_utc_time(harness: ApiHarness) -> None:
    created = create(harness)

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created["createdAt"])
    assert created["updatedAt"] == created["createdAt"]


def test_two_creates_give_two_endpoints_with_distinct_ids(harness: ApiHarness) -> None:
    assert create(harness)["id"] != create(harness)["id"]


def test_get_returns_what_create_returned(harness: ApiHarness) -> None:
    created = create(harness)

    got = ok(harness.call("GET", f"{ENDPOINTS}/{created['id']}"))

    assert {k: v for k, v in got.items() if k != "delivery"} == {k: v for k, v in created.items() if k != "delivery"}


def test_get_shows_the_delivery_status_the_sink_recorded(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    harness.repo.record_flush(harness.tenant_id, endpoint_id, key="events/k.ndjson", events=3, objects=1, at="t")

    delivery = ok(harness.call("GET", f"{ENDPOINTS}/{endpoint_id}"))["delivery"]

    assert delivery["eventsWritten"] == 3
    assert delivery["lastObjectKey"] == "events/k.ndjson"


# --- credentials -----------------------------------------------------------------------------------------------


def test_only_ciphertext_of_the_credentials_is_stored(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    endpoint = stored(harness, endpoint_id)

    assert isinstance(endpoint.credentials, bytes)
    assert_no_secret(endpoint.model_dump_json(exclude={"credentials"}))
    assert decrypted(harness, endpoint_id) == {"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET_ACCESS_KEY}


def test_credentials_are_sealed_under_a_context_bound_to_tenant_and_endpoint(harness: ApiHarness) -> None:
    first, second = create(harness)["id"], create(harness)["id"]
    blob = stored(harness, first).credentials

    with pytest.raises(PermissionError):
        harness.cipher.decrypt(blob, encryption_context(harness.tenant_id, second))
    with pytest.raises(PermissionError):
        harness.cipher.decrypt(blob, encryption_context("ten_other", first))


def test_credentials_never_appear_in_create_get_list_patch_or_verify_responses(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    replies = [
        harness.call("POST", ENDPOINTS, spec_body()),
        harness.call("GET", f"{ENDPOINTS}/{endpoint_id}"),
        harness.call("GET", ENDPOINTS),
        patch(harness, endpoint_id, {"description": "x"}),
        patch(
            harness, endpoint_id, {"storageConfig": {"accessKeyId": NEW_ACCESS_KEY_ID, "secretAccessKey": NEW_SECRET}}
        ),
        harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify"),
    ]

    for reply in replies:
        assert reply.status < 300, reply.text
        assert_no_secret(reply.text)


@pytest.mark.parametrize(
    "body",
    [
        spec_body(batchSize=0),
        spec_body(bucket="Bad_Bucket"),
        spec_body(flushIntervalSecond=1),
        spec_body(secretAccessKey=SECRET_ACCESS_KEY * 7),
        spec_body(accessKeyId=ACCESS_KEY_ID * 7),
        spec_body(endpoint="http://169.254.169.254"),
        {**spec_body(), "url": "s3://another-bucket/events/"},
        {**spec_body(), "eventTypes": []},
        {**spec_body(), "unknown": SECRET_ACCESS_KEY},
    ],
    ids=["range", "bucket", "typo", "long-secret", "long-key", "metadata", "url", "event-types", "unknown-field"],
)
def test_credentials_never_appear_in_a_422_for_a_body_that_contains_them(harness: ApiHarness, body: Any) -> None:
    reply = harness.call("POST", ENDPOINTS, body)

    assert reply.status == 422, reply.text
    for part in SECRET_PARTS:
        assert part not in reply.text


def test_credentials_never_appear_in_a_422_for_a_bad_patch_that_contains_them(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    reply = patch(harness, endpoint_id, {"storageConfig": {"secretAccessKey": NEW_SECRET, "batchSize": 0}})

    assert reply.status == 422
    assert_no_secret(reply.text.replace('"storageConfig.batchSize"', ""))


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """Everything logged at DEBUG and above: standard log records with their extras, and the JSON lines
    Powertools' Logger writes (its handler keeps the stream it was created with, out of capsys' reach)."""
    caplog.set_level(logging.DEBUG)
    handler = powertools_logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    stream, level = handler.setStream(buffer), powertools_logger.log_level
    powertools_logger.setLevel(logging.DEBUG)

    def text() -> str:
        records = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
        return "\n".join([buffer.getvalue(), caplog.text, records])

    yield text
    powertools_logger.setLevel(level)
    handler.setStream(stream)


def test_credentials_never_appear_in_captured_logs(
    harness: ApiHarness, all_logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def leaky_failure(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"store said no to {ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}")

    endpoint_id = create(harness)["id"]
    harness.call("GET", f"{ENDPOINTS}/{endpoint_id}")
    harness.call("GET", ENDPOINTS)
    patch(harness, endpoint_id, {"storageConfig": {"accessKeyId": NEW_ACCESS_KEY_ID, "secretAccessKey": NEW_SECRET}})
    patch(harness, endpoint_id, {"storageConfig": {"secretAccessKey": NEW_SECRET}})
    harness.call("POST", ENDPOINTS, spec_body(batchSize=0))
    harness.call("POST", ENDPOINTS, raw=json.dumps(spec_body()).encode()[:-5])
    harness.call("POST", ENDPOINTS, spec_body(), headers={"content-type": "text/plain"})
    harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify")
    monkeypatch.setattr(harness.services.ingest, "accept", leaky_failure)
    assert harness.call("POST", EVENTS, typed("order.created")).status == 500

    logged = all_logs()
    assert "Calling API Route Handler" in logged, "the request bodies were not logged at all: a vacuous check"
    assert '"level":"ERROR"' in logged, "Powertools' JSON log lines were not captured"
    for part in SECRET_PARTS:
        assert part not in logged


# --- list and pagination ---------------------------------------------------------------------------------------


def test_list_of_a_tenant_without_endpoints_is_empty(harness: ApiHarness) -> None:
    assert ok(harness.call("GET", ENDPOINTS)) == {"items": [], "nextCursor": None}


@pytest.mark.usefixtures("ordered_ids")
def test_pages_walk_every_endpoint_once_in_creation_order(harness: ApiHarness) -> None:
    created = [create(harness)["id"] for _ in range(7)]
    seen: list[str] = []
    query = "?limit=3"

    while True:
        items, cursor = page_ids(harness, query)
        assert len(items) <= 3
        seen += items
        if cursor is None:
            break
        query = f"?limit=3&cursor={cursor}"

    assert seen == created


@pytest.mark.usefixtures("ordered_ids")
def test_list_order_is_the_same_on_every_call(harness: ApiHarness) -> None:
    for _ in range(5):
        create(harness)

    assert page_ids(harness) == page_ids(harness)


def test_endpoints_created_in_the_same_millisecond_list_in_creation_order(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ids, "time", SimpleNamespace(time=lambda: 1_776_162_600.0))
    created = [create(harness)["id"] for _ in range(12)]

    assert page_ids(harness, "?limit=100")[0] == created


def test_page_of_exactly_the_remaining_endpoints_has_no_next_cursor(harness: ApiHarness) -> None:
    for _ in range(3):
        create(harness)

    items, cursor = page_ids(harness, "?limit=3")

    assert len(items) == 3
    assert cursor is None


def test_default_page_size_is_the_documented_one(harness: ApiHarness) -> None:
    for _ in range(limits.PAGE_SIZE_DEFAULT + 1):
        create(harness)

    items, cursor = page_ids(harness)

    assert len(items) == limits.PAGE_SIZE_DEFAULT
    assert cursor is not None


@pytest.mark.parametrize("limit", [1, limits.PAGE_SIZE_MAX])
def test_page_size_at_its_bounds_is_accepted(harness: ApiHarness, limit: int) -> None:
    create(harness)

    assert len(page_ids(harness, f"?limit={limit}")[0]) == 1


@pytest.mark.parametrize("limit", [0, limits.PAGE_SIZE_MAX + 1])
def test_page_size_outside_its_bounds_answers_422(harness: ApiHarness, limit: int) -> None:
    assert harness.call("GET", f"{ENDPOINTS}?limit={limit}").status == 422


@pytest.mark.parametrize(
    "cursor",
    ["zzz", "not-a-cursor!", "ZXBfMTIz", "%FF%FE", "a" * 200, "====", "ZXBfWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWA"],
    ids=["garbage", "punctuation", "short-id", "bytes", "long", "padding-only", "non-hex-id"],
)
def test_cursor_this_api_did_not_return_answers_4xx(harness: ApiHarness, cursor: str) -> None:
    reply = harness.call("GET", f"{ENDPOINTS}?cursor={cursor}")

    assert 400 <= reply.status < 500, reply.text
    assert reply.json()["error"]["code"] == "validation_error"


@pytest.mark.usefixtures("ordered_ids")
def test_deleting_an_endpoint_between_pages_skips_nothing_else(harness: ApiHarness) -> None:
    created = [create(harness)["id"] for _ in range(5)]
    first, cursor = page_ids(harness, "?limit=2")
    harness.call("DELETE", f"{ENDPOINTS}/{first[-1]}")

    rest, _ = page_ids(harness, f"?limit=10&cursor={cursor}")

    assert first + rest == created


@pytest.mark.usefixtures("ordered_ids")
def test_endpoint_created_between_pages_appears_on_a_later_page(harness: ApiHarness) -> None:
    created = [create(harness)["id"] for _ in range(3)]
    first, cursor = page_ids(harness, "?limit=2")
    late = create(harness)["id"]

    rest, _ = page_ids(harness, f"?limit=10&cursor={cursor}")

    assert first + rest == [*created, late]


def test_list_items_carry_no_credentials_and_match_get(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    item = ok(harness.call("GET", ENDPOINTS))["items"][0]
    got = ok(harness.call("GET", f"{ENDPOINTS}/{endpoint_id}"))

    assert {k: v for k, v in item.items() if k != "delivery"} == {k: v for k, v in got.items() if k != "delivery"}


# --- patch -----------------------------------------------------------------------------------------------------


def test_patch_changes_only_the_given_field(harness: ApiHarness) -> None:
    created = create(harness)

    updated = ok(patch(harness, created["id"], {"storageConfig": {"batchSize": 10}}))

    assert updated["storageConfig"]["batchSize"] == 10
    assert {k: v for k, v in updated["storageConfig"].items() if k != "batchSize"} == {
        k: v for k, v in created["storageConfig"].items() if k != "batchSize"
    }
    assert (updated["url"], updated["eventTypes"], updated["createdAt"]) == (
        created["url"],
        created["eventTypes"],
        created["createdAt"],
    )


def test_patch_moves_updated_at_forward(harness: ApiHarness) -> None:
    created = create(harness)

    first = ok(patch(harness, created["id"], {"description": "a"}))
    second = ok(patch(harness, created["id"], {"description": "b"}))

    assert created["updatedAt"] < first["updatedAt"] < second["updatedAt"]


def test_patch_of_event_types_replaces_the_list(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    assert ok(patch(harness, endpoint_id, {"eventTypes": ["user.*", "invoice.paid"]}))["eventTypes"] == [
        "user.*",
        "invoice.paid",
    ]


def test_patched_event_types_change_routing(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    ok(patch(harness, endpoint_id, {"eventTypes": ["user.*"]}))

    harness.call("POST", EVENTS, {"events": [typed("order.created"), typed("user.created")]})

    assert [json.loads(m.body)["eventType"] for m in harness.queue.sent] == ["user.created"]


def test_empty_patch_changes_nothing_but_updated_at(harness: ApiHarness) -> None:
    created = create(harness)

    updated = ok(patch(harness, created["id"], {}))

    assert {k: v for k, v in updated.items() if k not in ("updatedAt", "delivery")} == {
        k: v for k, v in created.items() if k not in ("updatedAt", "delivery")
    }


def test_patch_without_credentials_keeps_the_stored_ciphertext(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    before = stored(harness, endpoint_id).credentials

    ok(patch(harness, endpoint_id, {"storageConfig": {"prefix": "elsewhere/", "batchSize": 7}}))

    assert stored(harness, endpoint_id).credentials == before


@pytest.mark.parametrize(
    "change",
    [
        {"storageConfig": {"bucket": "attacker-bucket"}},
        {"storageConfig": {"region": "eu-west-1"}},
        {"storageConfig": {"endpoint": "https://attacker.example"}},
        {"url": "s3://attacker-bucket/events/"},
    ],
    ids=["bucket", "region", "endpoint", "url"],
)
def test_patch_that_points_access_keys_elsewhere_must_give_them_again(
    harness: ApiHarness, change: dict[str, Any]
) -> None:
    """A stolen API key must not send the tenant's access keys (signed requests) to another store."""
    endpoint_id = create(harness)["id"]
    before = stored(harness, endpoint_id)

    reply = patch(harness, endpoint_id, change)

    assert reply.status == 422, reply.text
    assert field_names(reply.json()["error"]) == ["storageConfig.accessKeyId"]
    assert stored(harness, endpoint_id) == before


def test_patch_that_points_elsewhere_with_the_keys_again_is_applied(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    keys = {"accessKeyId": NEW_ACCESS_KEY_ID, "secretAccessKey": NEW_SECRET}

    updated = ok(patch(harness, endpoint_id, {"storageConfig": {"bucket": "new-archive", **keys}}))

    assert updated["url"] == "s3://new-archive/events/"
    assert decrypted(harness, endpoint_id) == keys


def test_patch_with_both_credentials_replaces_them(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    updated = ok(
        patch(
            harness, endpoint_id, {"storageConfig": {"accessKeyId": NEW_ACCESS_KEY_ID, "secretAccessKey": NEW_SECRET}}
        )
    )

    assert updated["storageConfig"]["credentialsConfigured"] is True
    assert decrypted(harness, endpoint_id) == {"accessKeyId": NEW_ACCESS_KEY_ID, "secretAccessKey": NEW_SECRET}


@pytest.mark.parametrize(
    "given", [{"accessKeyId": NEW_ACCESS_KEY_ID}, {"secretAccessKey": NEW_SECRET}], ids=["key-id", "secret"]
)
def test_patch_with_one_credential_alone_answers_422_and_keeps_the_old_ones(
    harness: ApiHarness, given: dict[str, str]
) -> None:
    endpoint_id = create(harness)["id"]
    before = stored(harness, endpoint_id)

    reply = patch(harness, endpoint_id, {"storageConfig": given})

    assert reply.status == 422, reply.text
    missing = ({"accessKeyId", "secretAccessKey"} - set(given)).pop()
    assert [f["field"] for f in reply.json()["error"]["fields"]] == [f"storageConfig.{missing}"]
    assert stored(harness, endpoint_id) == before


def test_patch_of_the_url_alone_moves_bucket_and_prefix_with_it(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    config = ok(
        patch(
            harness,
            endpoint_id,
            {
                "url": "s3://new-archive/events/production/",
                "storageConfig": {"accessKeyId": NEW_ACCESS_KEY_ID, "secretAccessKey": NEW_SECRET},
            },
        )
    )["storageConfig"]

    assert (config["bucket"], config["prefix"]) == ("new-archive", "events/production/")


def test_patch_of_the_bucket_alone_moves_the_url_with_it(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    assert ok(
        patch(
            harness,
            endpoint_id,
            {
                "storageConfig": {
                    "bucket": "new-archive",
                    "accessKeyId": NEW_ACCESS_KEY_ID,
                    "secretAccessKey": NEW_SECRET,
                }
            },
        )
    )["url"] == ("s3://new-archive/events/")


def test_patch_of_the_prefix_alone_moves_the_url_with_it(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    assert ok(patch(harness, endpoint_id, {"storageConfig": {"prefix": "archive/2026/"}}))["url"] == (
        "s3://my-webhook-archive/archive/2026/"
    )


def test_patch_of_url_and_bucket_that_agree_is_applied(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    updated = ok(
        patch(
            harness,
            endpoint_id,
            {
                "url": "s3://new-archive/p/",
                "storageConfig": {
                    "bucket": "new-archive",
                    "prefix": "p/",
                    "accessKeyId": NEW_ACCESS_KEY_ID,
                    "secretAccessKey": NEW_SECRET,
                },
            },
        )
    )

    assert (updated["url"], updated["storageConfig"]["bucket"]) == ("s3://new-archive/p/", "new-archive")


def test_patch_of_url_and_bucket_that_disagree_answers_422_naming_url_and_changes_nothing(
    harness: ApiHarness,
) -> None:
    endpoint_id = create(harness)["id"]
    before = stored(harness, endpoint_id)

    reply = patch(harness, endpoint_id, {"url": "s3://one-bucket/events/", "storageConfig": {"bucket": "two-bucket"}})

    assert reply.status == 422
    assert [f["field"] for f in reply.json()["error"]["fields"]] == ["url"]
    assert stored(harness, endpoint_id) == before


def test_patch_that_breaks_a_rule_changes_nothing(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    before = stored(harness, endpoint_id)

    assert patch(harness, endpoint_id, {"eventTypes": ["bad pattern"], "description": "x"}).status == 422
    assert stored(harness, endpoint_id) == before


def test_patch_switching_s3_to_local_drops_the_credentials(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    updated = ok(
        patch(
            harness,
            endpoint_id,
            {
                "url": "local://archive/events/",
                "storageConfig": {"provider": "local", "bucket": "archive", "region": None, "endpoint": None},
            },
        )
    )

    assert updated["storageConfig"]["provider"] == "local"
    assert updated["storageConfig"]["credentialsConfigured"] is False
    assert stored(harness, endpoint_id).credentials is None


def test_patch_switching_s3_to_local_while_keeping_the_region_answers_422(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    reply = patch(harness, endpoint_id, {"url": "local://archive/events/"})

    assert reply.status == 422
    assert [f["field"] for f in reply.json()["error"]["fields"]] == ["storageConfig.region"]


def test_patch_switching_local_to_s3_requires_credentials(harness: ApiHarness) -> None:
    endpoint_id = create(harness, local_body())["id"]
    to_s3 = {
        "url": "s3://my-archive/events/",
        "storageConfig": {"provider": "s3", "bucket": "my-archive", "region": "us-east-1"},
    }

    reply = patch(harness, endpoint_id, to_s3)

    assert reply.status == 422
    assert [f["field"] for f in reply.json()["error"]["fields"]] == ["storageConfig.accessKeyId"]


def test_patch_switching_local_to_s3_with_credentials_seals_them(harness: ApiHarness) -> None:
    endpoint_id = create(harness, local_body())["id"]
    to_s3 = {
        "url": "s3://my-archive/events/",
        "storageConfig": {
            "provider": "s3",
            "bucket": "my-archive",
            "region": "us-east-1",
            "accessKeyId": NEW_ACCESS_KEY_ID,
            "secretAccessKey": NEW_SECRET,
        },
    }

    assert ok(patch(harness, endpoint_id, to_s3))["storageConfig"]["credentialsConfigured"] is True
    assert decrypted(harness, endpoint_id)["secretAccessKey"] == NEW_SECRET


def test_patch_giving_a_local_endpoint_credentials_answers_422(harness: ApiHarness) -> None:
    endpoint_id = create(harness, local_body())["id"]

    reply = patch(
        harness, endpoint_id, {"storageConfig": {"accessKeyId": NEW_ACCESS_KEY_ID, "secretAccessKey": NEW_SECRET}}
    )

    assert reply.status == 422


def test_patch_setting_description_to_null_clears_it(harness: ApiHarness) -> None:
    endpoint_id = create(harness, {**spec_body(), "description": "old"})["id"]

    assert ok(patch(harness, endpoint_id, {"description": None}))["description"] is None


def test_patch_is_seen_by_a_following_get(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    updated = ok(patch(harness, endpoint_id, {"storageConfig": {"flushIntervalSeconds": 5}}))

    got = ok(harness.call("GET", f"{ENDPOINTS}/{endpoint_id}"))

    assert got["storageConfig"]["flushIntervalSeconds"] == 5
    assert got["updatedAt"] == updated["updatedAt"]


# --- delete ----------------------------------------------------------------------------------------------------


def test_delete_answers_204_with_an_empty_body(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    reply = harness.call("DELETE", f"{ENDPOINTS}/{endpoint_id}")

    assert reply.status == 204
    assert reply.text == ""


def test_deleted_endpoint_answers_404_on_get(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    harness.call("DELETE", f"{ENDPOINTS}/{endpoint_id}")

    assert harness.call("GET", f"{ENDPOINTS}/{endpoint_id}").status == 404


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("PATCH", "", {"description": "x"}), ("DELETE", "", None), ("POST", "/verify", None), ("POST", "/redrive", None)],
    ids=["patch", "delete", "verify", "redrive"],
)
def test_deleted_endpoint_answers_404_on_every_other_route(
    harness: ApiHarness, method: str, suffix: str, body: Any
) -> None:
    endpoint_id = create(harness)["id"]
    harness.call("DELETE", f"{ENDPOINTS}/{endpoint_id}")

    assert harness.call(method, f"{ENDPOINTS}/{endpoint_id}{suffix}", body).status == 404


def test_deleted_endpoint_is_no_longer_listed(harness: ApiHarness) -> None:
    kept, gone = create(harness)["id"], create(harness)["id"]
    harness.call("DELETE", f"{ENDPOINTS}/{gone}")

    assert page_ids(harness)[0] == [kept]


def test_deleted_endpoint_gets_no_new_events(harness: ApiHarness) -> None:
    kept, gone = create(harness)["id"], create(harness)["id"]
    harness.call("DELETE", f"{ENDPOINTS}/{gone}")

    assert harness.call("POST", EVENTS, typed("order.created")).status == 202

    assert [m.endpoint_id for m in harness.queue.sent] == [kept]


def test_deleted_endpoint_is_kept_with_its_credentials_for_events_already_accepted(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    harness.call("DELETE", f"{ENDPOINTS}/{endpoint_id}")

    endpoint = harness.repo.get_endpoint(harness.tenant_id, endpoint_id)

    assert endpoint is not None
    assert endpoint.status == "deleted"
    assert endpoint.credentials is not None


# --- verify and redrive ----------------------------------------------------------------------------------------


def test_verify_asks_the_verifier_about_this_endpoint_and_returns_its_answer(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    assert ok(harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify")) == {
        "ok": True,
        "probeKey": "probe",
        "elapsedMs": None,
        "error": None,
    }
    assert isinstance(harness.services.verification.verifier, FakeVerifier)
    assert harness.services.verification.verifier.calls == [(harness.tenant_id, endpoint_id)]


def test_redrive_asks_the_redriver_about_this_endpoint_only(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]

    assert ok(harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/redrive")) == {"moved": 0, "complete": True}
    assert isinstance(harness.services.redriver, FakeRedriver)
    assert harness.services.redriver.calls == [(harness.tenant_id, endpoint_id)]


def test_verify_probe_is_written_with_the_stored_credentials_and_removed(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    stores = FakeStores()

    result = harness.services.endpoints.verify(harness.tenant_id, endpoint_id, stores)

    assert result["ok"] is True
    assert str(result["probeKey"]).startswith("events/.spool-verify-")
    store = stores.stores["my-webhook-archive"]
    assert store.puts == 1
    assert store.objects == {}
    credentials = stores.seen_credentials[0]
    assert isinstance(credentials, Credentials)
    assert credentials.secretAccessKey.get_secret_value() == SECRET_ACCESS_KEY


def test_verify_reports_the_store_error_without_credentials(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    stores = FakeStores(stores={"my-webhook-archive": MemoryStore(fail_with="AccessDenied: wrong key")})

    result = harness.services.endpoints.verify(harness.tenant_id, endpoint_id, stores)

    assert result["ok"] is False
    assert result["error"] == "AccessDenied: wrong key"
    assert_no_secret(json.dumps(result))


def test_verify_of_another_tenants_endpoint_raises_not_found(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    service: EndpointService = harness.services.endpoints

    with pytest.raises(NotFound):
        service.verify("ten_someone_else", endpoint_id, FakeStores())


# --- tenant isolation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"description": "taken over"}),
        ("DELETE", "", None),
        ("POST", "/verify", None),
        ("POST", "/redrive", None),
        ("GET", "/aws-role", None),
    ],
    ids=["get", "patch", "delete", "verify", "redrive", "aws-role"],
)
def test_another_tenants_endpoint_answers_404_and_is_untouched(
    harness: ApiHarness, method: str, suffix: str, body: Any
) -> None:
    endpoint_id = create(harness)["id"]
    before = stored(harness, endpoint_id)
    _, other_key = harness.new_tenant()

    reply = harness.call(method, f"{ENDPOINTS}/{endpoint_id}{suffix}", body, key=other_key)

    assert reply.status == 404, reply.text
    assert reply.json()["error"]["code"] == "not_found"
    assert stored(harness, endpoint_id) == before
    assert isinstance(harness.services.verification.verifier, FakeVerifier)
    assert harness.services.verification.verifier.calls == []
    assert isinstance(harness.services.redriver, FakeRedriver)
    assert harness.services.redriver.calls == []


def test_another_tenants_id_answers_exactly_like_an_unknown_id(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    unknown_id = "ep_" + "0" * 28
    _, other_key = harness.new_tenant()

    theirs = harness.call("GET", f"{ENDPOINTS}/{endpoint_id}", key=other_key).json()
    unknown = harness.call("GET", f"{ENDPOINTS}/{unknown_id}", key=other_key).json()

    assert json.dumps(theirs).replace(endpoint_id, "ID") == json.dumps(unknown).replace(unknown_id, "ID")


def test_list_shows_only_the_callers_endpoints(harness: ApiHarness) -> None:
    mine = create(harness)["id"]
    _, other_key = harness.new_tenant()
    theirs = create(harness, key=other_key)["id"]

    assert page_ids(harness)[0] == [mine]
    assert page_ids(harness, key=other_key)[0] == [theirs]


@pytest.mark.usefixtures("ordered_ids")
def test_a_cursor_cannot_reach_another_tenants_endpoints(harness: ApiHarness) -> None:
    for _ in range(3):
        create(harness)
    _, other_key = harness.new_tenant()
    theirs = create(harness, key=other_key)["id"]
    _, cursor = page_ids(harness, "?limit=1")

    assert page_ids(harness, f"?limit=10&cursor={cursor}", key=other_key)[0] == [theirs]


def test_events_are_routed_only_to_the_senders_endpoints(harness: ApiHarness) -> None:
    mine = create(harness)["id"]
    other_tenant, other_key = harness.new_tenant()
    theirs = create(harness, key=other_key)["id"]

    harness.call("POST", EVENTS, typed("order.created"), key=other_key)

    assert [(m.tenant_id, m.endpoint_id) for m in harness.queue.sent] == [(other_tenant, theirs)]
    assert mine not in [m.endpoint_id for m in harness.queue.sent]
