"""Failure isolation, the DLQ and redrive through the local runtime, with a real SeaweedFS that checks
signatures (moto's S3 accepts any credentials)."""

from __future__ import annotations

import json
import time
from typing import Any

from spool.local.runtime import LocalRuntime
from tests.integration.conftest import Api, Seaweed, endpoint_drained, read_objects, wait_until, written_ids


def seaweed_body(seaweed: Seaweed, bucket: str, prefix: str, secret: str) -> dict[str, Any]:
    return {
        "url": f"s3://{bucket}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": ["invoice.*"],
        "storageConfig": {
            "provider": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "region": "us-east-1",
            "endpoint": seaweed.url,
            "accessKeyId": seaweed.access_key,
            "secretAccessKey": secret,
            "batchSize": 100,
            "flushIntervalSeconds": 2,
        },
    }


def dlq_depth(runtime: LocalRuntime) -> int:
    assert runtime.resources is not None
    attributes = runtime.client("sqs").get_queue_attributes(
        QueueUrl=runtime.resources.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def sink_sees(runtime: LocalRuntime, endpoint_id: str, updated_at: str) -> bool:
    """The sink's endpoint directory answers with the endpoint as of `updated_at` (its cache is 1 s here)."""
    target = runtime.sink_services.sink.directory.target(runtime.tenant_id, endpoint_id)
    return bool(target.endpoint.updatedAt == updated_at)


def test_a_failing_endpoint_does_not_hold_up_another_and_recovers_after_redrive(
    api: Api, runtime: LocalRuntime, seaweed: Seaweed
) -> None:
    store = seaweed.client()
    store.create_bucket(Bucket="isolation")
    wrong = "not-the-right-secret-123"
    endpoint_a = api.create_endpoint(seaweed_body(seaweed, "isolation", "a/", wrong))
    api.create_endpoint(seaweed_body(seaweed, "isolation", "b/", seaweed.secret_key))
    started = time.monotonic()
    accepted = [api.send("invoice.paid", {"n": n})["id"] for n in range(5)]

    # B is written on time although A fails in the same invocations (in one object or more).
    written = wait_until(lambda: written_ids(store, "isolation", "b/", len(accepted)), timeout=2 + 5, what="B's events")
    assert time.monotonic() - started <= 2 + 5
    assert written == sorted(accepted)

    # A's delivery fails with a clear error (no secret in it) and ends in the DLQ.
    wait_until(lambda: dlq_depth(runtime), timeout=40, what="A's messages in the DLQ")
    status = api.call("GET", f"/api/v1/endpoints/{endpoint_a['id']}").json()
    assert status["delivery"]["lastError"]
    assert wrong not in json.dumps(status)
    assert read_objects(store, "isolation", "a/") == {}

    # Fix A's credentials, redrive its DLQ messages: everything accepted is written.
    fixed = api.call(
        "PATCH",
        f"/api/v1/endpoints/{endpoint_a['id']}",
        {"storageConfig": {"accessKeyId": seaweed.access_key, "secretAccessKey": seaweed.secret_key}},
    )
    assert fixed.status_code == 200, fixed.text
    wait_until(
        lambda: sink_sees(runtime, endpoint_a["id"], fixed.json()["updatedAt"]),
        timeout=10,
        what="the sink's endpoint cache to hold the fixed credentials",
    )
    moved = api.call("POST", f"/api/v1/endpoints/{endpoint_a['id']}/redrive").json()["moved"]
    assert moved >= 1

    def written_to_a() -> list[str]:
        return sorted(line["id"] for lines in read_objects(store, "isolation", "a/").values() for line in lines)

    # The redriven messages may come back in more than one invocation, so in more than one object: wait for
    # every accepted event, then check that each is there exactly once.
    wait_until(lambda: set(written_to_a()) >= set(accepted), timeout=20, what="every event in A's objects")
    assert written_to_a() == sorted(accepted)


def test_verify_reports_a_wrong_secret_without_showing_it(api: Api, seaweed: Seaweed) -> None:
    seaweed.client().create_bucket(Bucket="verify-probe")
    wrong = "wrong-secret-for-verify-99"
    bad = api.create_endpoint(seaweed_body(seaweed, "verify-probe", "x/", wrong))
    good = api.create_endpoint(seaweed_body(seaweed, "verify-probe", "y/", seaweed.secret_key))

    refused = api.call("POST", f"/api/v1/endpoints/{bad['id']}/verify")
    accepted = api.call("POST", f"/api/v1/endpoints/{good['id']}/verify")

    assert refused.status_code == 200
    assert refused.json()["ok"] is False
    assert "SignatureDoesNotMatch" in refused.json()["error"]
    assert wrong not in refused.text
    assert accepted.json()["ok"] is True
    assert read_objects(seaweed.client(), "verify-probe", "y/") == {}  # the probe was removed


def test_events_accepted_before_a_delete_are_still_written(api: Api, runtime: LocalRuntime, emulator_s3: Any) -> None:
    body = {
        "url": "s3://my-webhook-archive/deleted/",
        "deliveryMode": "storage",
        "eventTypes": ["*"],
        "storageConfig": {
            "provider": "s3",
            "bucket": "my-webhook-archive",
            "prefix": "deleted/",
            "region": "us-east-1",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "flushIntervalSeconds": 2,
        },
    }
    endpoint = api.create_endpoint(body)
    before = [api.send("thing.happened", {"n": n})["id"] for n in range(3)]
    assert api.call("DELETE", f"/api/v1/endpoints/{endpoint['id']}").status_code == 204
    api.send("thing.happened", {"n": 99})

    wait_until(lambda: read_objects(emulator_s3, "my-webhook-archive", "deleted/"), timeout=8, what="objects")
    wait_until(lambda: endpoint_drained(runtime, endpoint["id"]), timeout=30, what="the endpoint's messages")
    objects = read_objects(emulator_s3, "my-webhook-archive", "deleted/")
    assert sorted(line["id"] for lines in objects.values() for line in lines) == sorted(before)
    assert api.call("GET", f"/api/v1/endpoints/{endpoint['id']}").status_code == 404
