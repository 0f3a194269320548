"""Least privilege, proven: every AWS call the api, the sink and verify make is allowed by that function's role in the
synthesized template (tests/iam). No emulator here enforces IAM, so without this a call the deployed role does
not allow passes every other test and fails on AWS with AccessDenied.

The workload below drives the real handlers through the local runtime (HTTP front, pollers) over everything a
function's role is used for; the check then covers the calls of the whole session so far, and once more at the
end of the session (the `call_log` fixture) for the tests that run after this one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from spool.local.provision import Names
from spool.local.runtime import LocalRuntime
from tests.iam import REPORT
from tests.iam.calls import CallLog, Request
from tests.iam.policy import RolePolicy, StackPolicies, Verdict, check
from tests.infra.infra_synth import Synth
from tests.servers import (
    Api,
    TenantAccount,
    deploy_tenant_role,
    read_objects,
    role_endpoint_body,
    wait_until,
)

BUCKET = "my-webhook-archive"
STAGING_BUCKET = Names().staging_bucket
# What the workload must have made each function do: if one of these is missing, the workload no longer
# exercises that path and the check proves less than it says.
EXPECTED = {
    "api": {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "kms:Encrypt",
        "secretsmanager:GetSecretValue",
        "lambda:InvokeFunction",
    },
    "sink": {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:DeleteObject",
        "kms:Decrypt",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
        "sts:AssumeRole",
    },
    # Verify runs with the sink's role (infra/spool_infra/verify.py): its calls are held against that role.
    "verify": {"dynamodb:GetItem", "kms:Decrypt", "sts:AssumeRole"},
}


def endpoint_body(prefix: str, *, bucket: str = BUCKET, batch_size: int = 100, interval: int = 2) -> dict[str, Any]:
    return {
        "url": f"s3://{bucket}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": [f"{prefix.rstrip('/')}.*"],
        "storageConfig": {
            "provider": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "region": "us-east-1",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "batchSize": batch_size,
            "flushIntervalSeconds": interval,
        },
    }


def ids_in(s3: Any, bucket: str, prefix: str) -> list[str]:
    return sorted(line["id"] for lines in read_objects(s3, bucket, prefix).values() for line in lines)


def dlq_depth(runtime: LocalRuntime) -> int:
    """Messages in the DLQ, read with the test's own client (not a function's)."""
    assert runtime.resources is not None
    sqs = runtime.client("sqs")
    found = sqs.get_queue_attributes(QueueUrl=runtime.resources.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(found["Attributes"]["ApproximateNumberOfMessages"])


def drive_everything(api: Api, s3: Any, runtime: LocalRuntime, account: TenantAccount) -> None:
    """Ingest (single, batch, idempotent), endpoint create/patch/delete, verify, full objects, hold-back with a
    flush trigger, back-off after failed writes, the DLQ and redrive, and delivery by assuming a tenant's role."""
    run = uuid.uuid4().hex[:6]
    # Endpoints: create, read, list, patch, delete.
    api.create_endpoint(endpoint_body(f"gfull{run}/", batch_size=5, interval=10))
    held = api.create_endpoint(endpoint_body(f"ghold{run}/", batch_size=100, interval=2))
    doomed = api.create_endpoint(endpoint_body(f"gdel{run}/"))
    assert api.call("GET", f"/api/v1/endpoints/{held['id']}").status_code == 200
    assert api.call("GET", "/api/v1/endpoints").status_code == 200
    patched = api.call("PATCH", f"/api/v1/endpoints/{doomed['id']}", {"storageConfig": {"batchSize": 7}})
    assert patched.status_code == 200, patched.text
    assert api.call("DELETE", f"/api/v1/endpoints/{doomed['id']}").status_code == 204
    # Verify runs in the sink (the api invokes it).
    verified = api.call("POST", f"/api/v1/endpoints/{held['id']}/verify")
    assert verified.status_code == 200
    assert verified.json()["ok"] is True, verified.text
    # Verify's rate: the same endpoint again at once is a 429 (the api's conditional item in V#).
    again = api.call("POST", f"/api/v1/endpoints/{held['id']}/verify")
    assert again.status_code == 429, again.text
    assert 0 < int(again.headers["Retry-After"]) <= 30

    # Full objects: 10 events at batchSize 5.
    full_ids = [
        e["id"] for e in api.send_batch([{"eventType": f"gfull{run}.x", "payload": {"n": n}} for n in range(10)])
    ]
    # Hold-back: 3 events at batchSize 100 wait for the flush trigger, 2 s later.
    held_ids = [api.send(f"ghold{run}.x", {"n": n})["id"] for n in range(3)]
    # Idempotent ingest: the same Idempotency-Key twice is one event.
    headers = {"X-API-Key": api.key, "Idempotency-Key": f"grants-{run}"}
    event = {"eventType": f"ghold{run}.x", "payload": {"once": True}}
    first = requests.post(api.base + "/api/v1/events", json=event, headers=headers, timeout=30)
    again = requests.post(api.base + "/api/v1/events", json=event, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    held_ids.append(first.json()["id"])

    wait_until(lambda: ids_in(s3, BUCKET, f"gfull{run}/") == sorted(full_ids), timeout=30, what="full objects")
    wait_until(lambda: ids_in(s3, BUCKET, f"ghold{run}/") == sorted(held_ids), timeout=20, what="the held object")

    # A tenant's role: verify (AssumeRole with another ExternalId, refused, then with the endpoint's) and a
    # delivery with the assumed session.
    bucket = f"grants-tenant-{run}"
    account.s3.create_bucket(Bucket=bucket)
    role_arn = f"arn:aws:iam::{account.id}:role/spool-grants-{run}"
    body = role_endpoint_body(bucket, f"grole{run}/", role_arn, [f"grole{run}.*"], batch_size=2)
    with_role = api.create_endpoint(body)
    deploy_tenant_role(api, account, with_role["id"])
    verified = api.call("POST", f"/api/v1/endpoints/{with_role['id']}/verify")
    assert verified.json()["ok"] is True, verified.text
    role_ids = [
        e["id"] for e in api.send_batch([{"eventType": f"grole{run}.x", "payload": {"n": n}} for n in range(2)])
    ]
    wait_until(lambda: ids_in(account.s3, bucket, f"grole{run}/") == sorted(role_ids), timeout=20, what="role objects")

    # Back-off and the DLQ: two endpoints on buckets that do not exist yet. Then the buckets exist, and a
    # redrive of one endpoint moves its messages and hands the other's back (visibility 0) untouched.
    before = dlq_depth(runtime)
    failing = {}
    for name in ("a", "b"):
        bucket = f"grants-later-{name}-{run}"
        prefix = f"gfail{name}{run}/"
        endpoint = api.create_endpoint(endpoint_body(prefix, bucket=bucket, batch_size=2, interval=2))
        batch = [{"eventType": f"gfail{name}{run}.x", "payload": {"n": n}} for n in range(2)]
        failing[name] = (endpoint["id"], bucket, prefix, sorted(e["id"] for e in api.send_batch(batch)))
    for endpoint_id, *_ in failing.values():
        wait_until(
            lambda endpoint_id=endpoint_id: (
                api.call("GET", f"/api/v1/endpoints/{endpoint_id}").json().get("delivery") or {}
            ).get("lastError"),
            timeout=20,
            what="the failed write to be reported",
        )
    wait_until(lambda: dlq_depth(runtime) >= before + 2, timeout=60, what="the failed bundles in the DLQ")
    for endpoint_id, bucket, prefix, ids in failing.values():
        s3.create_bucket(Bucket=bucket)

        def redriven(
            endpoint_id: str = endpoint_id, bucket: str = bucket, prefix: str = prefix, ids: list[str] = ids
        ) -> bool:
            api.call("POST", f"/api/v1/endpoints/{endpoint_id}/redrive")
            return ids_in(s3, bucket, prefix) == ids

        wait_until(redriven, timeout=60, interval=2, what="the redriven events to be written")


@pytest.fixture(scope="module")
def roles(synth: Synth, runtime: LocalRuntime, call_log: CallLog) -> Callable[[StackPolicies], list[RolePolicy]]:
    """The api's and the sink's role policies, resolved to the local runtime's resources."""
    assert runtime.resources is not None
    environment = runtime.environment()

    def resolve(stack: StackPolicies) -> list[RolePolicy]:
        return [stack.role_policy(f, environment, call_log.place) for f in stack.functions]

    return resolve


@pytest.fixture(scope="module")
def stack(synth: Synth) -> StackPolicies:
    from spool import names

    return StackPolicies(
        synth.json,
        {
            "api": names.API_FUNCTION.handler,
            "sink": names.SINK_FUNCTION.handler,
            "verify": names.VERIFY_FUNCTION.handler,
        },
    )


def report(verdict: Verdict, calls: dict[Request, int]) -> list[str]:
    lines = []
    for function in ("api", "sink", "verify"):
        counted: dict[str, int] = {}
        for request, n in calls.items():
            if request.function == function:
                counted[request.action] = counted.get(request.action, 0) + n
        lines.append(f"{function} calls: " + ", ".join(f"{a} x{n}" for a, n in sorted(counted.items())))
        unused = verdict.unused.get(function, [])
        lines.append(f"{function} grants nothing called: " + (", ".join(f"{a} on {r}" for a, r in unused) or "none"))
    return lines


def test_every_call_of_either_function_is_granted_by_its_role(
    api: Api,
    runtime: LocalRuntime,
    emulator_s3: Any,
    tenant_account: TenantAccount,
    call_log: CallLog,
    stack: StackPolicies,
    roles: Callable[[StackPolicies], list[RolePolicy]],
) -> None:
    drive_everything(api, emulator_s3, runtime, tenant_account)
    calls = call_log.snapshot()

    assert not call_log.unknown, f"calls the check cannot map to IAM: {dict(call_log.unknown)}"
    for function, actions in EXPECTED.items():
        made = {r.action for r in calls if r.function == function}
        assert actions <= made, f"the workload did not make {function} call {sorted(actions - made)}"
    verdict = check(roles(stack), calls)
    REPORT[:] = report(verdict, calls)
    assert verdict.ok, verdict.failure()

    def at_end() -> None:
        final = check(roles(stack), call_log.snapshot())
        REPORT[:] = report(final, call_log.snapshot())
        if not final.ok:
            pytest.fail(final.failure() + "\n(found at the end of the session: a test after test_grants.py)")

    call_log.verify_at_end = at_end


def test_taking_away_any_called_action_fails_the_check_naming_function_and_action(
    call_log: CallLog, stack: StackPolicies, roles: Callable[[StackPolicies], list[RolePolicy]]
) -> None:
    calls = call_log.snapshot()
    called = sorted({(r.function, r.action) for r in calls})
    assert ("sink", "dynamodb:PutItem") in called
    for function, action in called:
        verdict = check(roles(stack.without(function, action)), calls)
        assert not verdict.ok, f"removing {action} from {function} went unnoticed"
        assert f"  {function}: {action} on " in verdict.failure()


def test_the_sinks_staging_writes_may_not_touch_endpoints_or_tenants(
    stack: StackPolicies, roles: Callable[[StackPolicies], list[RolePolicy]], call_log: CallLog
) -> None:
    sink = next(p for p in roles(stack) if p.function == "sink")
    table = next(r.resource for r in call_log.snapshot() if r.action.startswith("dynamodb:"))
    staging = Request("sink", "dynamodb:PutItem", table, (("dynamodb:LeadingKeys", ("B#ep_1#1700000000",)),))
    endpoint = Request("sink", "dynamodb:PutItem", table, (("dynamodb:LeadingKeys", ("T#ten_1",)),))
    assert sink.allows(staging)
    assert not sink.allows(endpoint)


def test_calls_with_a_tenants_store_credentials_are_not_the_roles(call_log: CallLog, emulator_s3: Any) -> None:
    # The role's own S3 calls are staging (Spool's bucket); writes to a tenant's store use its credentials.
    buckets = {r.resource.split(":::")[1].split("/")[0] for r in call_log.snapshot() if r.action.startswith("s3:")}
    assert buckets == {STAGING_BUCKET}
    # ...while the store did receive the sink's writes (made with the endpoint's credentials).
    assert emulator_s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) > 0


def test_the_sink_may_assume_only_roles_of_other_accounts_with_a_spool_external_id_and_session(
    stack: StackPolicies, roles: Callable[[StackPolicies], list[RolePolicy]], call_log: CallLog
) -> None:
    sink = next(p for p in roles(stack) if p.function == "sink")
    called = next(r for r in call_log.snapshot() if r.action == "sts:AssumeRole")
    keys = called.keys()

    def assume(resource: str, changed: dict[str, tuple[str, ...]] | None = None) -> Request:
        context = {**keys, **(changed or {})}
        return Request("sink", "sts:AssumeRole", resource, tuple(sorted((k, v) for k, v in context.items() if v)))

    assert sink.allows(called)
    assert not sink.allows(assume(called.resource, {"sts:ExternalId": ()}))  # none sent
    assert not sink.allows(assume(called.resource, {"sts:ExternalId": ("chosen-by-someone",)}))
    assert not sink.allows(assume(called.resource, {"sts:RoleSessionName": ("not-spool",)}))
    assert not sink.allows(assume(f"arn:aws:iam::{call_log.place.account}:role/Spool-dev-ApiRole"))  # own account
