"""Hold-back staging in Spool's own S3 bucket: one object per holding invocation and flush time.

A held remainder is one PutObject (`{endpoint}/{flush time}/{holder}.ndjson`); a flush lists the flush time's
prefix, reads each staged object and deletes it after the write. S3 bills requests, not bytes (PUT and LIST
$0.005, GET $0.0004 per 1,000, DELETE free), so a held event costs a small share of one PUT, against about
two DynamoDB write units per KB when lines were staged as items (docs/delivery.md, the designs weighed).
S3 is strongly consistent for PUT, LIST and GET, so a flush sees every object staged before it listed.

A flush that wrote staged objects but could not delete them leaves a marker object naming them
(`{endpoint}/{flush time}/#written-{id}`); the next flush of that time deletes them without writing them again.
The bucket's lifecycle rule expires what is left after the queue's retention (infra/spool_infra/ingest.py).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from spool.domain.ports import StagedBundle

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

WRITTEN_PREFIX = "#written-"


def staging_prefix(endpoint_id: str, flush_at: int) -> str:
    """Where one flush time's staged objects live."""
    return f"{endpoint_id}/{flush_at}/"


class S3Staging:
    """Implements `Staging` over a bucket only Spool writes (the sink's role, not a tenant's credentials)."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def stage(self, tenant_id: str, endpoint_id: str, flush_at: int, holder_id: str, lines: list[str]) -> list[str]:
        key = f"{staging_prefix(endpoint_id, flush_at)}{holder_id}.ndjson"
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body="\n".join(lines).encode(),
            ContentType="application/x-ndjson",
            Metadata={"tenant-id": tenant_id},
        )
        return [key]

    def staged_ids(self, endpoint_id: str) -> dict[int, list[str]]:
        # One LIST (a page per 1,000 objects) for every flush time of the endpoint: the flush needs the later
        # times too, and each LIST costs as much as a PUT.
        found: dict[int, list[str]] = {}
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=f"{endpoint_id}/"):
            for item in page.get("Contents", []):
                flush_at = item["Key"].split("/")[1]
                if flush_at.isdigit():
                    found.setdefault(int(flush_at), []).append(item["Key"])
        return found

    def bundles(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> list[StagedBundle]:
        written: set[str] = set()
        found: list[StagedBundle] = []
        for key in item_ids:
            try:
                body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read().decode()
            except self._s3.exceptions.NoSuchKey:
                # Listed before this flush took the time's lease, removed since by the flush that held it: a
                # staged object is removed only once its lines are in an object, so there is nothing to write.
                continue
            if key.rsplit("/", 1)[-1].startswith(WRITTEN_PREFIX):
                written.update(json.loads(body))
                found.append(StagedBundle(item_id=key, lines=[], written=True))
            else:
                found.append(StagedBundle(item_id=key, lines=body.split("\n")))
        return [StagedBundle(b.item_id, b.lines, b.written or b.item_id in written) for b in found]

    def mark_written(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> str:
        key = f"{staging_prefix(endpoint_id, flush_at)}{WRITTEN_PREFIX}{uuid.uuid4().hex}"
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=json.dumps(sorted(item_ids)).encode())
        return key

    def remove(self, endpoint_id: str, flush_at: int, item_ids: list[str]) -> None:
        # One DeleteObject per object: DELETE requests are free, a multi-object delete (a POST) is not.
        prefix = staging_prefix(endpoint_id, flush_at)
        for key in item_ids:
            if key.startswith(prefix):
                self._s3.delete_object(Bucket=self._bucket, Key=key)
