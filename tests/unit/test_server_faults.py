"""Faults of the service are 5xx, never 4xx (issue 10, item 3; SPEC: Errors).

A stored item that does not parse, a malformed reply from the sink, a stray exception inside a service: 500.
A throttled or unreachable dependency: 503 with Retry-After. Both have the one error shape plus the request's
`requestId`, and nothing of the cause in the body; the cause is logged without values. Client mistakes stay
4xx: the line is drawn by where an error comes from (the request's parsing and validation, or stored data and
dependencies), not by its type.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import BaseModel

from spool.adapters.endpoint_table import DynamoEndpoints
from spool.adapters.status_table import DynamoStatus, status_key
from spool.observability import logger as powertools_logger
from tests.conftest import spec_body
from tests.fakes import FakeDynamoClient, MemoryIdempotencyStore
from tests.unit.conftest import ApiHarness, Reply
from tests.unit.test_api_errors import assert_error, field_names

ENDPOINTS = "/api/v1/endpoints"
EVENTS = "/api/v1/events"
# Stored or sent along with the fault: must reach neither the client nor the log.
CANARY = "canary-wJalrXUtnFEMI-0d1f"
INTERNAL_STATUS = (500, "internal_error")


@dataclass
class Logs:
    """What Powertools' Logger wrote, from the start of the test (at DEBUG)."""

    buffer: io.StringIO

    def text(self) -> str:
        return self.buffer.getvalue()

    def line(self, message: str) -> dict[str, Any]:
        """The one JSON line with this message."""
        lines = [json.loads(line) for line in self.text().splitlines() if line.startswith("{")]
        found = [line for line in lines if line.get("message") == message]
        assert len(found) == 1, lines
        return found[0]


@pytest.fixture
def logs() -> Iterator[Logs]:
    # Its handler keeps the stream it was created with, out of capsys' and capfd's reach.
    handler = powertools_logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    stream, level = handler.setStream(buffer), powertools_logger.log_level
    powertools_logger.setLevel(logging.DEBUG)
    yield Logs(buffer)
    powertools_logger.setLevel(level)
    handler.setStream(stream)


def assert_fault(reply: Reply, status: int, code: str) -> dict[str, Any]:
    """A 5xx with the one error shape, the request's id, and a message that gives nothing away."""
    error = assert_error(reply, status, code)
    assert set(error) == {"code", "message", "requestId"}
    assert CANARY not in reply.text
    for internal in ("Validation", "Error", "Exception", "Throttl", "Dynamo", "item", "doc", "Traceback"):
        assert internal not in error["message"], error["message"]
    return error


def throttled(code: str, http_status: int = 400, operation: str = "GetItem") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"rate exceeded for {CANARY}"},
            "ResponseMetadata": {"HTTPStatusCode": http_status},
        },
        operation,
    )


# --- a stored endpoint item that does not parse: 500, not 422 ------------------------------------------------


@pytest.fixture
def dynamo(harness: ApiHarness) -> FakeDynamoClient:
    """The endpoint service reads and writes through the real DynamoDB adapter (over an in-memory client)."""
    client = FakeDynamoClient()
    harness.services.endpoints.repo = DynamoEndpoints(client, "spool")
    harness.services.endpoints.status = DynamoStatus(client, "spool")
    return client


def stored_endpoint(harness: ApiHarness) -> str:
    reply = harness.call("POST", ENDPOINTS, spec_body())
    assert reply.status == 201, reply.text
    endpoint_id: str = reply.json()["id"]
    return endpoint_id


def corrupt_doc(item: dict[str, Any], how: str) -> None:
    doc = json.loads(item["doc"]["S"])
    if how == "field-of-the-wrong-type":
        doc["storage"]["batchSize"] = CANARY
    elif how == "field-missing":
        del doc["eventTypes"]
    elif how == "unknown-provider":
        doc["storage"]["provider"] = CANARY
    if how == "not-json":
        item["doc"] = {"S": "{" + CANARY}
    elif how == "not-an-object":
        item["doc"] = {"S": json.dumps([CANARY])}
    elif how == "attribute-missing":
        del item["doc"]
    elif how == "status-of-the-wrong-type":
        item["status"] = {"N": "1"}
    else:
        item["doc"] = {"S": json.dumps(doc)}


CORRUPTIONS = [
    "field-of-the-wrong-type",
    "field-missing",
    "unknown-provider",
    "not-json",
    "not-an-object",
    "attribute-missing",
    "status-of-the-wrong-type",
]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_get_of_a_stored_endpoint_that_does_not_parse_answers_500(
    harness: ApiHarness, dynamo: FakeDynamoClient, how: str
) -> None:
    endpoint_id = stored_endpoint(harness)
    corrupt_doc(dynamo.item(harness.tenant_id, f"EP#{endpoint_id}"), how)

    assert_fault(harness.call("GET", f"{ENDPOINTS}/{endpoint_id}"), *INTERNAL_STATUS)


def test_patch_of_a_stored_endpoint_that_does_not_parse_answers_500_and_writes_nothing(
    harness: ApiHarness, dynamo: FakeDynamoClient
) -> None:
    endpoint_id = stored_endpoint(harness)
    item = dynamo.item(harness.tenant_id, f"EP#{endpoint_id}")
    corrupt_doc(item, "field-of-the-wrong-type")
    before = json.dumps(item, default=repr)

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"description": "changed"})

    assert_fault(reply, *INTERNAL_STATUS)
    assert json.dumps(dynamo.item(harness.tenant_id, f"EP#{endpoint_id}"), default=repr) == before


def test_list_with_one_stored_endpoint_that_does_not_parse_answers_500(
    harness: ApiHarness, dynamo: FakeDynamoClient
) -> None:
    stored_endpoint(harness)
    broken = stored_endpoint(harness)
    corrupt_doc(dynamo.item(harness.tenant_id, f"EP#{broken}"), "field-missing")

    assert_fault(harness.call("GET", ENDPOINTS), *INTERNAL_STATUS)


def test_verify_and_delete_of_a_stored_endpoint_that_does_not_parse_answer_500(
    harness: ApiHarness, dynamo: FakeDynamoClient
) -> None:
    endpoint_id = stored_endpoint(harness)
    corrupt_doc(dynamo.item(harness.tenant_id, f"EP#{endpoint_id}"), "unknown-provider")

    assert_fault(harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify"), *INTERNAL_STATUS)
    assert_fault(harness.call("DELETE", f"{ENDPOINTS}/{endpoint_id}"), *INTERNAL_STATUS)


def test_a_delivery_status_that_does_not_parse_answers_500(harness: ApiHarness, dynamo: FakeDynamoClient) -> None:
    endpoint_id = stored_endpoint(harness)
    key = status_key(harness.tenant_id, endpoint_id)
    dynamo.items[(key["pk"]["S"], key["sk"]["S"])] = {**key, "eventsWritten": {"N": CANARY}}

    assert_fault(harness.call("GET", f"{ENDPOINTS}/{endpoint_id}"), *INTERNAL_STATUS)


def test_the_corrupt_item_is_logged_by_key_location_and_rule_without_its_values(
    harness: ApiHarness, dynamo: FakeDynamoClient, logs: Logs
) -> None:
    endpoint_id = stored_endpoint(harness)
    corrupt_doc(dynamo.item(harness.tenant_id, f"EP#{endpoint_id}"), "field-of-the-wrong-type")

    reply = harness.call("GET", f"{ENDPOINTS}/{endpoint_id}")

    line = logs.line("service fault")
    assert line["level"] == "ERROR"
    assert line["correlation_id"] == reply.json()["error"]["requestId"]
    assert line["detail"] == {
        "record": "endpoint",
        "pk": f"T#{harness.tenant_id}",
        "sk": f"EP#{endpoint_id}",
        "errorType": "ValidationError",
        "problems": [{"loc": "storage.batchSize", "type": "int_type"}],
    }
    assert CANARY not in logs.text()


def test_an_unparseable_doc_is_logged_by_error_type_without_its_text(
    harness: ApiHarness, dynamo: FakeDynamoClient, logs: Logs
) -> None:
    endpoint_id = stored_endpoint(harness)
    corrupt_doc(dynamo.item(harness.tenant_id, f"EP#{endpoint_id}"), "not-json")

    harness.call("GET", f"{ENDPOINTS}/{endpoint_id}")

    assert logs.line("service fault")["detail"]["errorType"] == "JSONDecodeError"
    assert CANARY not in logs.text()


# --- a malformed reply from the sink's verify: 500, not 422 ----------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [None, "ok", [True], {}, {"ok": CANARY}, {"ok": True, "elapsedMs": CANARY}, {"ok": True, "probeKey": 7}],
    ids=["null", "string", "list", "empty", "ok-not-bool", "elapsed-not-int", "probe-key-not-string"],
)
def test_a_malformed_verify_reply_answers_500(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch, logs: Logs, answer: Any
) -> None:
    endpoint_id = stored_endpoint(harness)
    monkeypatch.setattr(harness.services.verification.verifier, "verify", lambda tenant_id, endpoint_id: answer)

    assert_fault(harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify"), *INTERNAL_STATUS)
    assert logs.line("service fault")["detail"]["errorType"] == "ValidationError"
    assert CANARY not in logs.text()


def test_a_well_formed_verify_reply_still_answers_200(harness: ApiHarness) -> None:
    endpoint_id = stored_endpoint(harness)

    assert harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify").json() == {
        "ok": True,
        "probeKey": "probe",
        "elapsedMs": None,
        "error": None,
    }


# --- stray exceptions inside a service: 500, whatever their type -------------------------------------------------


class _Stored(BaseModel):
    count: int


def _stray_validation_error() -> Exception:
    try:
        _Stored.model_validate({"count": CANARY})
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "stray",
    [
        ValueError(CANARY),
        json.JSONDecodeError(CANARY, "{", 0),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, CANARY),
        RecursionError(CANARY),
        _stray_validation_error(),
        KeyError(CANARY),
    ],
    ids=["ValueError", "JSONDecodeError", "UnicodeDecodeError", "RecursionError", "ValidationError", "KeyError"],
)
@pytest.mark.parametrize(
    ("service", "method", "path", "body"),
    [
        ("endpoints.get", "GET", f"{ENDPOINTS}/ep_x", None),
        ("endpoints.list", "GET", ENDPOINTS, None),
        ("endpoints.patch", "PATCH", f"{ENDPOINTS}/ep_x", {"description": "x"}),
        ("endpoints.create", "POST", ENDPOINTS, spec_body()),
        ("ingest.accept", "POST", EVENTS, {"eventType": "a.b", "payload": {}}),
    ],
    ids=["get", "list", "patch", "create", "events"],
)
def test_a_stray_exception_inside_a_service_answers_500_without_its_message(
    harness: ApiHarness,
    monkeypatch: pytest.MonkeyPatch,
    logs: Logs,
    stray: Exception,
    service: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    owner, name = service.split(".")

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise stray

    monkeypatch.setattr(getattr(harness.services, owner), name, explode)

    assert_fault(harness.call(method, path, body), *INTERNAL_STATUS)
    assert logs.line("unhandled error")["errorType"] == type(stray).__name__
    assert CANARY not in logs.text()


def test_a_stray_value_error_in_the_key_check_answers_500(harness: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(key_hash: str) -> Any:
        raise ValueError(CANARY)

    monkeypatch.setattr(harness.repo, "find_key", explode)
    _, key = harness.new_tenant()

    assert_fault(harness.call("GET", ENDPOINTS, key=key), *INTERNAL_STATUS)


# --- a throttled or unreachable dependency: 503 ------------------------------------------------------------------


UNAVAILABLE = [
    throttled("ThrottlingException"),
    throttled("ProvisionedThroughputExceededException"),
    throttled("RequestLimitExceeded"),
    throttled("ServiceUnavailable", 503),
    throttled("InternalServerError", 500),
    throttled("SomethingNew", 503),
    throttled("TooManyRequestsException", 429, "Invoke"),
    EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ConnectTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ConnectionClosedError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
]
UNAVAILABLE_IDS = [
    "ThrottlingException",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalServerError",
    "unknown-code-with-503",
    "TooManyRequests-429",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
]


@pytest.mark.parametrize("failure", UNAVAILABLE, ids=UNAVAILABLE_IDS)
def test_a_throttled_or_unreachable_dependency_answers_503_with_retry_after(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    endpoint_id = stored_endpoint(harness)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(harness.repo, "get_endpoint", fail)

    reply = harness.call("GET", f"{ENDPOINTS}/{endpoint_id}")

    assert_fault(reply, 503, "service_unavailable")
    assert reply.headers.get("Retry-After") == "1"


def test_a_throttled_call_is_logged_with_its_aws_code_and_not_its_message(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch, logs: Logs
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise throttled("ProvisionedThroughputExceededException", operation="Query")

    monkeypatch.setattr(harness.repo, "list_endpoints", fail)

    reply = harness.call("GET", ENDPOINTS)

    line = logs.line("dependency unavailable")
    assert line["awsErrorCode"] == "ProvisionedThroughputExceededException"
    assert line["awsOperation"] == "Query"
    assert line["correlation_id"] == reply.json()["error"]["requestId"]
    assert CANARY not in logs.text()


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException", "ResourceNotFoundException"])
def test_a_dependency_refusing_for_another_reason_answers_500(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise throttled(code)

    monkeypatch.setattr(harness.repo, "list_endpoints", fail)

    assert_fault(harness.call("GET", ENDPOINTS), *INTERNAL_STATUS)


def test_a_throttled_idempotency_store_answers_503(harness: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    # Powertools wraps the store's error in IdempotencyPersistenceLayerError: the cause decides.
    def fail(self: MemoryIdempotencyStore, data_record: Any) -> None:
        raise throttled("ProvisionedThroughputExceededException", operation="PutItem")

    monkeypatch.setattr(MemoryIdempotencyStore, "_put_record", fail)

    reply = harness.call("POST", EVENTS, {"eventType": "a.b", "payload": {}}, headers={"idempotency-key": "k1"})

    assert_fault(reply, 503, "service_unavailable")
    assert harness.queue.sent == []


def test_a_throttled_key_lookup_answers_503_before_the_route_runs(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(key_hash: str) -> Any:
        raise throttled("ThrottlingException")

    monkeypatch.setattr(harness.repo, "find_key", fail)
    _, key = harness.new_tenant()  # not yet in the key cache

    reply = harness.call("POST", EVENTS, {"eventType": "a.b", "payload": {}}, key=key)

    assert_fault(reply, 503, "service_unavailable")
    assert reply.headers.get("Retry-After") == "1"


# --- client mistakes stay 4xx, with the field named ---------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", EVENTS), ("POST", ENDPOINTS), ("PATCH", f"{ENDPOINTS}/ep_x")])
def test_an_integer_too_long_for_the_json_parser_is_still_400_malformed_json(
    harness: ApiHarness, method: str, path: str
) -> None:
    raw = b'{"description": 1' + b"0" * 5000 + b"}"

    error = assert_error(harness.call(method, path, raw=raw), 400, "malformed_json")
    assert "requestId" not in error


@pytest.mark.parametrize("depth", [33, 100, 500, 900, 1000, 1100, 5000, 100_000])
def test_a_deeply_nested_payload_is_a_4xx_at_every_depth(harness: ApiHarness, depth: int) -> None:
    raw = b'{"eventType": "a.b", "payload": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"

    reply = harness.call("POST", EVENTS, raw=raw)

    assert 400 <= reply.status < 500, reply.text
    assert_error(reply, reply.status)


@pytest.mark.parametrize("name", ["prefix", "batchSize", "flushIntervalSeconds", "compression"])
@pytest.mark.parametrize("alongside", [{}, {"bucket": "other-bucket"}], ids=["alone", "with-bucket"])
def test_patching_a_field_that_always_has_a_value_to_null_is_422_naming_it(
    harness: ApiHarness, name: str, alongside: dict[str, Any]
) -> None:
    endpoint_id = stored_endpoint(harness)

    reply = harness.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", {"storageConfig": {name: None, **alongside}})

    assert field_names(assert_error(reply, 422, "validation_error")) == [f"storageConfig.{name}"]
