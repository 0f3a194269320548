"""Bounded verify: one verification per endpoint per interval, a 429 when the verify function's concurrency is
used up, the api's Lambda client bounded, and the local stand-in refusing an Invoke beyond its concurrency."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from spool.adapters.verifier import INVOKE_CONFIG, LambdaVerifier
from spool.domain import limits
from spool.domain.errors import RateLimited
from spool.domain.verification import busy
from spool.local.invoke import serve_invoke
from tests.fakes import FakeRateGate
from tests.unit.conftest import ApiHarness
from tests.unit.test_endpoints_api import ENDPOINTS, create, ok


def gate(harness: ApiHarness) -> FakeRateGate:
    found = harness.services.verification.gate
    assert isinstance(found, FakeRateGate)
    return found


def test_a_second_verify_of_an_endpoint_within_the_interval_is_a_429_naming_the_limit(harness: ApiHarness) -> None:
    endpoint_id = create(harness)["id"]
    ok(harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify"))
    gate(harness).now += 12

    again = harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify")

    assert again.status == 429
    assert again.headers["Retry-After"] == str(limits.VERIFY_INTERVAL_SECONDS - 12)
    assert again.json()["error"]["code"] == "rate_limited"
    assert again.json()["error"]["message"].startswith("verifyInterval: one verification per endpoint every 30 seconds")
    assert len(harness.services.verification.verifier.calls) == 1  # type: ignore[attr-defined]


def test_the_interval_is_per_endpoint_and_ends(harness: ApiHarness) -> None:
    first, second = create(harness)["id"], create(harness)["id"]
    ok(harness.call("POST", f"{ENDPOINTS}/{first}/verify"))
    ok(harness.call("POST", f"{ENDPOINTS}/{second}/verify"))  # another endpoint: its own window
    gate(harness).now += limits.VERIFY_INTERVAL_SECONDS
    ok(harness.call("POST", f"{ENDPOINTS}/{first}/verify"))


def test_an_unknown_or_other_tenants_endpoint_is_a_404_before_any_limit_counts(harness: ApiHarness) -> None:
    for _ in range(2):
        assert harness.call("POST", f"{ENDPOINTS}/ep_unknown/verify").status == 404
    assert gate(harness).until == {}


def test_a_busy_verify_function_is_a_429_and_gives_the_endpoints_window_back(
    harness: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint_id = create(harness)["id"]

    def throttled(tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        raise busy()

    monkeypatch.setattr(harness.services.verification.verifier, "verify", throttled)
    refused = harness.call("POST", f"{ENDPOINTS}/{endpoint_id}/verify")

    assert refused.status == 429
    assert refused.headers["Retry-After"] == str(limits.VERIFY_BUSY_RETRY_SECONDS)
    assert refused.json()["error"]["message"].startswith("verifyConcurrency:")
    assert gate(harness).until == {}  # no probe ran: the client may come back after Retry-After


def lambda_client() -> Any:
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=INVOKE_CONFIG,
    )


def test_lambdas_throttling_answer_becomes_rate_limited() -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke", service_error_code="TooManyRequestsException", http_status_code=429)
        with pytest.raises(RateLimited) as refused:
            LambdaVerifier(client, "spool-verify").verify("ten_1", "ep_1")
    assert refused.value.limit == "verifyConcurrency"


def test_the_apis_lambda_client_waits_at_most_the_verify_timeout_and_a_cold_start_and_never_retries() -> None:
    assert INVOKE_CONFIG.read_timeout == limits.VERIFY_TIMEOUT_SECONDS + limits.VERIFY_COLD_START_SECONDS
    assert INVOKE_CONFIG.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert INVOKE_CONFIG.connect_timeout + INVOKE_CONFIG.read_timeout < 28  # the api's own timeout
    assert limits.VERIFY_INTERVAL_SECONDS >= limits.VERIFY_TIMEOUT_SECONDS  # one probe per endpoint in flight


def test_the_local_stand_in_refuses_an_invoke_beyond_its_concurrency_as_lambda_does() -> None:
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    entered, release = threading.Event(), threading.Event()

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return {"ok": True}

    serve_invoke(session, "spool-local-verify", slow, concurrency=1)
    client = session.client("lambda", endpoint_url="http://127.0.0.1:9", config=INVOKE_CONFIG)
    verifier = LambdaVerifier(client, "spool-local-verify")
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(verifier.verify("ten_1", "ep_1")))
    thread.start()
    assert entered.wait(10)
    with pytest.raises(RateLimited):
        verifier.verify("ten_1", "ep_2")
    release.set()
    thread.join(10)
    assert first == {"ok": True}
    assert verifier.verify("ten_1", "ep_3") == {"ok": True}  # the slot is free again


def test_the_verify_handler_answers_the_probe_of_the_endpoint_it_is_asked_about() -> None:
    from spool.handlers import verify

    asked: list[tuple[str, str]] = []

    class Endpoints:
        def verify(self, tenant_id: str, endpoint_id: str, stores: Any) -> dict[str, Any]:
            asked.append((tenant_id, endpoint_id))
            return {"ok": True, "probeKey": "k"}

    services: Any = type("S", (), {"endpoints": Endpoints(), "stores": object()})()
    handler = verify.make_handler(lambda: services)
    from spool.local.lambda_context import FakeContext

    event = {"spool": "verify", "tenantId": "ten_1", "endpointId": "ep_1"}
    assert handler(event, FakeContext("spool-verify")) == {"ok": True, "probeKey": "k"}
    assert asked == [("ten_1", "ep_1")]


def test_a_tenant_has_at_most_two_verifications_at_once_and_a_third_endpoint_is_a_429(harness: ApiHarness) -> None:
    endpoints = [create(harness)["id"] for _ in range(3)]
    verification = harness.services.verification
    inner: list[Any] = []

    class Nested:
        """Each verification starts the next endpoint's while it runs: three at once."""

        def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
            following = endpoints.index(endpoint_id) + 1
            if following < len(endpoints):
                inner.append(harness.call("POST", f"{ENDPOINTS}/{endpoints[following]}/verify"))
            return {"ok": True, "probeKey": "probe"}

    verification.verifier = Nested()
    ok(harness.call("POST", f"{ENDPOINTS}/{endpoints[0]}/verify"))

    third, second = inner  # the innermost (third) answers first
    assert second.status == 200
    assert third.status == 429
    assert third.json()["error"]["message"].startswith(
        f"verifyTenantConcurrency: at most {limits.VERIFY_TENANT_CONCURRENCY} verifications of one tenant at once"
    )
    assert int(third.headers["Retry-After"]) > 0
    # The third endpoint's interval was given back, and every slot is free again once the others ended.
    assert set(gate(harness).until) == {f"{harness.tenant_id}#{endpoints[0]}", f"{harness.tenant_id}#{endpoints[1]}"}


def test_another_tenants_verifications_do_not_count_against_a_tenants_slots(harness: ApiHarness) -> None:
    mine = [create(harness)["id"] for _ in range(2)]
    other_tenant, other_key = harness.new_tenant()
    theirs = create(harness, key=other_key)["id"]
    verification = harness.services.verification
    answers: list[Any] = []

    class Nested:
        def verify(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
            if endpoint_id == mine[0]:
                answers.append(harness.call("POST", f"{ENDPOINTS}/{mine[1]}/verify"))
            elif endpoint_id == mine[1]:
                answers.append(harness.call("POST", f"{ENDPOINTS}/{theirs}/verify", key=other_key))
            return {"ok": True, "probeKey": "probe"}

    verification.verifier = Nested()
    ok(harness.call("POST", f"{ENDPOINTS}/{mine[0]}/verify"))
    assert [a.status for a in answers] == [200, 200]
    assert other_tenant != harness.tenant_id
