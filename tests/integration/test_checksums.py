"""Every object is written with a SHA-256 checksum that the store checks and keeps (issue 22, item 3): a reader
can verify any object with HeadObject's ChecksumMode, and an Object Lock bucket, which refuses a put without
Content-MD5 or a checksum header, takes Spool's writes. Through the local runtime, on the emulator's S3 (moto
keeps ChecksumSHA256 and enforces Object Lock's rule) and on SeaweedFS with `checksum: md5`."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from spool.local.runtime import EXAMPLE_BUCKET, LocalRuntime
from tests.conftest import spec_body
from tests.servers import Api, Emulator, Seaweed, wait_until, written_ids


def body(bucket: str, prefix: str, **config: Any) -> dict[str, Any]:
    found = spec_body(
        **({"endpoint": None} | config), bucket=bucket, prefix=prefix, batchSize=3, flushIntervalSeconds=2
    )
    found["url"] = f"s3://{bucket}/{prefix}"
    return found


def kept_sha256(s3: Any, bucket: str, key: str) -> str:
    return str(s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")["ChecksumSHA256"])


def test_every_object_carries_the_sha256_of_its_bytes_and_the_store_keeps_it(api: Api, emulator_s3: Any) -> None:
    prefix = f"checksums-{uuid.uuid4().hex[:6]}/"
    api.create_endpoint(body(EXAMPLE_BUCKET, prefix))
    accepted = [api.send("order.created", {"n": n})["id"] for n in range(6)]

    wait_until(lambda: written_ids(emulator_s3, EXAMPLE_BUCKET, prefix, 6), timeout=15, what="the objects")

    keys = [o["Key"] for o in emulator_s3.list_objects_v2(Bucket=EXAMPLE_BUCKET, Prefix=prefix)["Contents"]]
    assert keys
    for key in keys:
        data = emulator_s3.get_object(Bucket=EXAMPLE_BUCKET, Key=key)["Body"].read()
        assert kept_sha256(emulator_s3, EXAMPLE_BUCKET, key) == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert written_ids(emulator_s3, EXAMPLE_BUCKET, prefix, 6) == sorted(accepted)


def test_an_object_lock_bucket_takes_the_writes(
    api: Api, runtime: LocalRuntime, emulator_s3: Any, emulator: Emulator
) -> None:
    bucket = f"locked-{uuid.uuid4().hex[:8]}"
    emulator_s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    emulator_s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    if emulator.name == "moto":
        # moto enforces the rule Spool must meet (LocalStack does not): a put without Content-MD5 or a checksum
        # header is refused.
        plain = runtime.client("s3", config=Config(request_checksum_calculation="when_required"))
        with pytest.raises(ClientError, match="MissingUploadObjectWithObjectLockHeaders"):
            plain.put_object(Bucket=bucket, Key="plain", Body=b"x")
    api.create_endpoint(body(bucket, "events/"))
    accepted = [api.send("order.created", {"n": n})["id"] for n in range(3)]

    assert wait_until(lambda: written_ids(emulator_s3, bucket, "events/", 3), timeout=15, what="the object") == sorted(
        accepted
    )


def test_a_store_without_flexible_checksums_takes_content_md5(api: Api, seaweed: Seaweed) -> None:
    store = seaweed.client()
    bucket = f"md5-{uuid.uuid4().hex[:8]}"
    store.create_bucket(Bucket=bucket)
    endpoint = body(
        bucket,
        "events/",
        endpoint=seaweed.url,
        accessKeyId=seaweed.access_key,
        secretAccessKey=seaweed.secret_key,
        checksum="md5",
    )
    api.create_endpoint(endpoint)
    accepted = [api.send("order.created", {"n": n})["id"] for n in range(3)]

    assert wait_until(lambda: written_ids(store, bucket, "events/", 3), timeout=15, what="the object") == sorted(
        accepted
    )
