"""Server-side encryption against a real store that enforces a bucket policy (issue: objects shaped for data
lakes, done-when): SeaweedFS evaluates `s3:x-amz-server-side-encryption` in bucket policies, so a bucket
that denies every PutObject without SSE-S3 accepts Spool's writes only when the endpoint sends the header,
and verify says why when it does not.

SSE-KMS is not exercised here: SeaweedFS answers an `aws:kms` write with InternalError unless a KMS provider
is configured for it; that the header and the key id are sent is checked on the wire in
tests/unit/test_object_settings.py."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Api, Seaweed, read_objects, wait_until, written_ids

BUCKET = "sse-required"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyWritesWithoutSseS3",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
            # A missing header makes the negated condition true as well, as on Amazon S3.
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
        }
    ],
}


def body(seaweed: Seaweed, prefix: str, **storage: Any) -> dict[str, Any]:
    return {
        "url": f"s3://{BUCKET}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": ["sse.*"] if storage else ["plain.*"],
        "storageConfig": {
            "provider": "s3",
            "bucket": BUCKET,
            "prefix": prefix,
            "region": "us-east-1",
            "endpoint": seaweed.url,
            "accessKeyId": seaweed.access_key,
            "secretAccessKey": seaweed.secret_key,
            "batchSize": 100,
            "flushIntervalSeconds": 2,
            **storage,
        },
    }


def test_a_bucket_that_requires_sse_takes_the_endpoints_writes_and_refuses_the_others(
    api: Api, seaweed: Seaweed
) -> None:
    store = seaweed.client()
    store.create_bucket(Bucket=BUCKET)
    store.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(POLICY))
    encrypted = api.create_endpoint(body(seaweed, "encrypted/", serverSideEncryption="AES256"))
    plain = api.create_endpoint(body(seaweed, "plain/"))

    accepted = api.call("POST", f"/api/v1/endpoints/{encrypted['id']}/verify")
    refused = api.call("POST", f"/api/v1/endpoints/{plain['id']}/verify")

    assert accepted.status_code == refused.status_code == 200
    assert accepted.json()["ok"] is True, accepted.text
    assert refused.json()["ok"] is False
    assert "AccessDenied" in refused.json()["error"]
    assert seaweed.secret_key not in refused.text

    sent = [api.send("sse.created", {"n": n})["id"] for n in range(3)]
    written = wait_until(lambda: written_ids(store, BUCKET, "encrypted/", len(sent)), timeout=20, what="the events")
    assert written == sorted(sent)
    objects = read_objects(store, BUCKET, "encrypted/")
    for key in objects:
        # The store kept the object as SSE-S3: the header was on the write the policy let through.
        assert store.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "AES256"
