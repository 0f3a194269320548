"""Store credentials are never returned, logged or carried by an exception (SPEC: Guarantees), checked with
canary credentials during a full run: create, read, list, verify, deliveries that succeed and deliveries that
fail (unknown key, wrong secret, unreachable store), rotation, repair and redrive. For role endpoints the
secrets are the temporary credentials STS issued for the tenant's role (read back from moto's STS afterwards):
deliveries that succeed, a missing bucket, a trust policy that refuses, and a store that echoes the
temporary access key id in its error."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest
import requests
from moto.sts.models import sts_backends

from spool.adapters.redrive import ScanLease, belonging_to, redrive
from spool.local.runtime import EXAMPLE_BUCKET, LocalRuntime, free_port
from tests.integration.conftest import Api, Seaweed, wait_until
from tests.reliability.capture import Capture, everything_said
from tests.reliability.faults import StoreProxy
from tests.reliability.ledger import Books, Tracked, read_lines, recover
from tests.servers import TenantAccount, amazon_s3_through, deploy_tenant_role, role_endpoint_body


def canary(kind: str) -> str:
    return f"AKIACANARY{secrets.token_hex(6).upper()}" if kind == "key" else f"canary-secret-{secrets.token_hex(12)}"


class RecordingApi(Api):
    """The tenant's client, keeping every response it gets."""

    responses: list[requests.Response]

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None) -> requests.Response:
        reply = super().call(method, path, body, key=key)
        self.responses.append(reply)
        return reply


def body(bucket: str, prefix: str, event_type: str, key: str, secret: str, endpoint: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "provider": "s3",
        "bucket": bucket,
        "prefix": prefix,
        "region": "us-east-1",
        "accessKeyId": key,
        "secretAccessKey": secret,
        "batchSize": 100,
        "flushIntervalSeconds": 1,
    }
    if endpoint:
        config["endpoint"] = endpoint
    return {
        "url": f"s3://{bucket}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": [event_type],
        "storageConfig": config,
    }


def failures_logged(capture: Capture, endpoint_id: str) -> int:
    return sum(
        1
        for line in capture.json_lines()
        if line.get("message") == "delivery failed" and line.get("endpointId") == endpoint_id
    )


def test_credential_canaries_never_appear_in_responses_logs_exceptions_or_stored_data(
    runtime: LocalRuntime, tenant: Api, books: Books, seaweed: Seaweed, emulator_s3: Any
) -> None:
    client = RecordingApi(tenant.base, tenant.key)
    client.responses = []
    event_type = f"canary.{uuid.uuid4().hex[:8]}"
    bucket = f"canary-{uuid.uuid4().hex[:8]}"
    seaweed.client().create_bucket(Bucket=bucket)
    canaries = {name: canary(name.split("-")[0]) for name in ("key-ok", "secret-ok", "key-unknown", "secret-unknown")}
    canaries |= {
        n: canary(n.split("-")[0]) for n in ("secret-wrong", "key-down", "secret-down", "key-new", "secret-new")
    }
    closed_port = f"http://127.0.0.1:{free_port()}"

    with everything_said() as capture:
        ok = client.create_endpoint(
            body(EXAMPLE_BUCKET, "canary-ok/", event_type, canaries["key-ok"], canaries["secret-ok"], None)
        )
        failing = {
            "unknown key": client.create_endpoint(
                body(bucket, "unknown/", event_type, canaries["key-unknown"], canaries["secret-unknown"], seaweed.url)
            ),
            "wrong secret": client.create_endpoint(
                body(bucket, "wrong/", event_type, seaweed.access_key, canaries["secret-wrong"], seaweed.url)
            ),
            "unreachable": client.create_endpoint(
                body(bucket, "down/", event_type, canaries["key-down"], canaries["secret-down"], closed_port)
            ),
        }

        everyone = [ok, *failing.values()]
        for endpoint in everyone:
            client.call("GET", f"/api/v1/endpoints/{endpoint['id']}")
            client.call("POST", f"/api/v1/endpoints/{endpoint['id']}/verify")
        client.call("GET", "/api/v1/endpoints?limit=100")
        accepted = [
            e["id"] for e in client.send_batch([{"eventType": event_type, "payload": {"n": n}} for n in range(6)])
        ]

        lines = wait_until(
            lambda: _lines(emulator_s3, EXAMPLE_BUCKET, "canary-ok/", 6), timeout=10, what="the ok delivery"
        )
        for endpoint in failing.values():
            wait_until(lambda e=endpoint: failures_logged(capture, e["id"]) >= 2, timeout=20, what="failed deliveries")
            client.call("GET", f"/api/v1/endpoints/{endpoint['id']}")

        # Rotation, then repair of the failing endpoints and a redrive of whatever reached the DLQ.
        rotate = {"storageConfig": {"accessKeyId": canaries["key-new"], "secretAccessKey": canaries["secret-new"]}}
        assert client.call("PATCH", f"/api/v1/endpoints/{ok['id']}", rotate).status_code == 200
        repair = {
            "storageConfig": {
                "endpoint": seaweed.url,
                "accessKeyId": seaweed.access_key,
                "secretAccessKey": seaweed.secret_key,
            }
        }
        repaired = []
        for name, endpoint in failing.items():
            assert client.call("PATCH", f"/api/v1/endpoints/{endpoint['id']}", repair).status_code == 200, name
            prefix = endpoint["storageConfig"]["prefix"]
            repaired.append(
                Tracked(client, books, seaweed.client(), bucket, prefix, endpoint["id"], 1, event_type, accepted)
            )
        recover(repaired, redrive=lambda: _redrive_tenant(runtime, tenant))
        for endpoint in everyone:
            client.call("GET", f"/api/v1/endpoints/{endpoint['id']}")

    # The capture really captured: the sink's JSON log lines and the exceptions of the failed deliveries.
    assert all(failures_logged(capture, e["id"]) >= 2 for e in failing.values())
    assert any(line.get("function_name") == "spool-sink" for line in capture.json_lines())
    assert any(e.type == "ClientError" for e in capture.exceptions)

    secrets_seen = set(canaries.values())
    where: dict[str, str] = {
        "responses": "\n".join(f"{r.status_code} {dict(r.headers)} {r.text}" for r in client.responses),
        "logs": capture.log_text(),
        "table": json.dumps(_scan(runtime), default=str),
        "dlq": json.dumps(books.dlq(), default=str),
        "objects": json.dumps(lines) + json.dumps(read_lines(seaweed.client(), bucket, "")),
    }
    for place, text in where.items():
        leaked = sorted(c for c in secrets_seen if c in text)
        assert not leaked, f"canaries in {place}: {leaked}"
    leaking = [e for e in capture.exceptions if any(c in e.text for c in secrets_seen)]
    assert not leaking, f"exceptions carrying a canary: {leaking[:3]}"
    assert len(client.responses) > 20


def test_rejected_requests_never_echo_or_log_the_credentials_they_carried(tenant: Api) -> None:
    client = RecordingApi(tenant.base, tenant.key)
    client.responses = []
    key, secret = canary("key"), canary("secret")
    short = "QZ" + secrets.token_hex(2).upper() + "z"  # under the 8-character minimum
    valid = body(EXAMPLE_BUCKET, "rejected/", "canary.rejected", key, secret, None)
    created = client.create_endpoint(valid)
    bad_requests: list[tuple[str, str, dict[str, Any]]] = []
    for field, value in [
        ("batchSize", 0),
        ("accessKeyId", key * 20),
        ("secretAccessKey", short),
        ("region", None),
        ("bucket", "Not A Bucket"),
        ("endpoint", "http://169.254.169.254"),
        ("unexpected", secret),
    ]:
        changed = json.loads(json.dumps(valid))
        if value is None:
            del changed["storageConfig"][field]
        else:
            changed["storageConfig"][field] = value
        bad_requests.append(("POST", "/api/v1/endpoints", changed))
        if value is not None:  # a PATCH without a field keeps its value
            patch = {"storageConfig": changed["storageConfig"]}
            bad_requests.append(("PATCH", f"/api/v1/endpoints/{created['id']}", patch))
    mismatch = json.loads(json.dumps(valid)) | {"url": "s3://another-bucket/rejected/"}
    bad_requests.append(("POST", "/api/v1/endpoints", mismatch))

    with everything_said() as capture:
        for method, path, payload in bad_requests:
            reply = client.call(method, path, payload)
            assert 400 <= reply.status_code < 500, (method, reply.status_code, reply.text[:300])

    texts = "\n".join(f"{r.status_code} {dict(r.headers)} {r.text}" for r in client.responses) + capture.log_text()
    assert not [c for c in (key, secret, short) if c in texts]
    # Only the validation errors themselves hold the rejected input (pydantic keeps it, Powertools passes it
    # on); the error handler drops it and nothing logs them. See docs/reliability.md.
    carriers = {e.type for e in capture.exceptions if any(c in e.text for c in (key, secret, short))}
    assert carriers <= {"ValidationError", "RequestValidationError"}, carriers


def _lines(s3: Any, bucket: str, prefix: str, count: int) -> list[str] | None:
    lines = [line for found in read_lines(s3, bucket, prefix).values() for line in found]
    return lines if len(lines) >= count else None


def _scan(runtime: LocalRuntime) -> list[dict[str, Any]]:
    assert runtime.resources is not None
    items: list[dict[str, Any]] = []
    for page in runtime.client("dynamodb").get_paginator("scan").paginate(TableName=runtime.resources.table_name):
        items.extend(page.get("Items", []))
    return items


def _redrive_tenant(runtime: LocalRuntime, tenant: Api) -> int:
    """`spool admin redrive --tenant ...`: one pass over the DLQ for all of the tenant's endpoints."""
    assert runtime.resources is not None
    tenant_id = runtime.api_services.tenants.authenticate(tenant.key)
    lease = ScanLease(runtime.client("dynamodb"), runtime.resources.table_name)
    moved, _ = redrive(
        runtime.client("sqs"),
        runtime.resources.dlq_url,
        runtime.resources.queue_url,
        belonging_to(tenant_id, None),
        lease,
        seconds=60,
    )
    return moved


def test_stored_credentials_are_kms_ciphertext_that_only_their_own_endpoint_can_open(
    runtime: LocalRuntime, tenant: Api
) -> None:
    assert runtime.resources is not None
    key, secret = canary("key"), canary("secret")
    first = tenant.create_endpoint(body(EXAMPLE_BUCKET, "kms-a/", "canary.kms", key, secret, None))
    second = tenant.create_endpoint(body(EXAMPLE_BUCKET, "kms-b/", "canary.kms", key, secret, None))
    tenant_id = runtime.api_services.tenants.authenticate(tenant.key)
    items = {
        e["id"]: runtime.client("dynamodb").get_item(
            TableName=runtime.resources.table_name, Key={"pk": {"S": f"T#{tenant_id}"}, "sk": {"S": f"EP#{e['id']}"}}
        )["Item"]
        for e in (first, second)
    }
    kms = runtime.client("kms")

    def context(endpoint_id: str) -> dict[str, str]:
        return {"spool:tenantId": tenant_id, "spool:endpointId": endpoint_id}

    blob = items[first["id"]]["credentials"]["B"]
    opened = json.loads(kms.decrypt(CiphertextBlob=blob, EncryptionContext=context(first["id"]))["Plaintext"])

    assert key.encode() not in blob and secret.encode() not in blob
    assert key not in json.dumps(items, default=str) and secret not in json.dumps(items, default=str)
    assert opened == {"accessKeyId": key, "secretAccessKey": secret}
    for wrong in (context(second["id"]), {"spool:tenantId": "ten_other", "spool:endpointId": first["id"]}, {}):
        try:
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=wrong)
        except kms.exceptions.InvalidCiphertextException:
            continue
        raise AssertionError(f"decrypted under the wrong context {wrong}")


def test_temporary_credentials_of_assumed_roles_never_appear_in_responses_logs_exceptions_or_stored_data(
    runtime: LocalRuntime, tenant: Api, books: Books, tenant_account: TenantAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime.resources is not None
    client = RecordingApi(tenant.base, tenant.key)
    client.responses = []
    run = uuid.uuid4().hex[:8]
    event_type = f"rolecanary.{run}"
    bucket = f"role-canary-{run}"
    tenant_account.s3.create_bucket(Bucket=bucket)
    # Amazon S3 through a proxy that can fail like S3 does (echoing the access key id it was sent).
    proxy = StoreProxy(runtime.aws_url)
    amazon_s3_through(runtime, monkeypatch, proxy.url)

    def role(name: str) -> str:
        return f"arn:aws:iam::{tenant_account.id}:role/spool-canary-{name}-{run}"

    def endpoint(name: str, bucket: str = bucket) -> dict[str, Any]:
        body = role_endpoint_body(bucket, f"{name}/", role(name), [event_type], batch_size=4, interval=1)
        return client.create_endpoint(body)

    try:
        with everything_said() as capture:
            ok = endpoint("ok")
            no_bucket = endpoint("nobucket", bucket=f"missing-{run}")
            refused = endpoint("refused")
            for created in (ok, no_bucket):
                deploy_tenant_role(client, tenant_account, created["id"])
            other = {"StringEquals": {"sts:ExternalId": "spool-" + "0" * 32}}
            statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Condition": other}
            statement["Principal"] = {"AWS": runtime.resources.sink_role_arn}
            document = {"Version": "2012-10-17", "Statement": [statement]}
            tenant_account.iam.create_role(
                RoleName=f"spool-canary-refused-{run}", AssumeRolePolicyDocument=json.dumps(document)
            )
            everyone = [ok, no_bucket, refused]
            for created in everyone:
                client.call("POST", f"/api/v1/endpoints/{created['id']}/verify")
                client.call("GET", f"/api/v1/endpoints/{created['id']}/aws-role")
            accepted = [
                e["id"] for e in client.send_batch([{"eventType": event_type, "payload": {"n": n}} for n in range(4)])
            ]
            wait_until(lambda: _lines(tenant_account.s3, bucket, "ok/", 4), timeout=15, what="the role delivery")
            for failing in (no_bucket, refused):
                wait_until(
                    lambda e=failing: failures_logged(capture, e["id"]) >= 2, timeout=20, what="failed deliveries"
                )

            # The store now refuses the session's key, echoing it (a store client made after the PATCH goes there).
            proxy.fail(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
            patched = client.call("PATCH", f"/api/v1/endpoints/{ok['id']}", {"storageConfig": {"batchSize": 2}})
            assert patched.status_code == 200, patched.text
            more = [
                e["id"] for e in client.send_batch([{"eventType": event_type, "payload": {"m": n}} for n in range(2)])
            ]
            wait_until(
                lambda: proxy.count("injected") >= 1 and failures_logged(capture, ok["id"]) >= 1,
                timeout=20,
                what="the echo",
            )
            proxy.heal()
            wait_until(lambda: _lines(tenant_account.s3, bucket, "ok/", 6), timeout=30, what="the retried delivery")
            for created in everyone:
                client.call("GET", f"/api/v1/endpoints/{created['id']}")
            client.call("GET", "/api/v1/endpoints?limit=100")
    finally:
        proxy.stop()

    issued = [
        r for r in sts_backends[tenant_account.id]["aws"].assumed_roles if r.role_arn in {role("ok"), role("nobucket")}
    ]
    assert len(issued) >= 3  # verify and delivery of both, and a new session after the PATCH
    secrets_seen = {v for r in issued for v in (r.access_key_id, r.secret_access_key, r.session_token)}
    assert any(
        line.get("message") == "delivery failed" and "InvalidAccessKeyId" in str(line.get("error"))
        for line in capture.json_lines()
    )
    assert {json.loads(line)["id"] for line in _lines(tenant_account.s3, bucket, "ok/", 6) or []} >= {*accepted, *more}
    where: dict[str, str] = {
        "responses": "\n".join(f"{r.status_code} {dict(r.headers)} {r.text}" for r in client.responses),
        "logs": capture.log_text(),
        "table": json.dumps(_scan(runtime), default=str),
        "dlq": json.dumps(books.dlq(), default=str),
    }
    for place, text in where.items():
        leaked = sorted(c for c in secrets_seen if c in text)
        assert not leaked, f"temporary credentials in {place}: {leaked}"
    leaking = [e for e in capture.exceptions if any(c in e.text for c in secrets_seen)]
    assert not leaking, f"exceptions carrying temporary credentials: {leaking[:3]}"
