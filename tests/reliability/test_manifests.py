"""Objects a pipeline can trust, through the local runtime with its pollers (issue 22, done when): events sent about
twice a second to an endpoint with `manifests: true`, keyTemplate `{prefix}{date}/{hour}{minute}/{timestamp}-
{batch}`, batchSize 20, flushIntervalSeconds 3. Every minute folder gets one `_manifest.json` within 48 s of the
minute's end; it lists exactly the folder's data objects with bytes, events and SHA-256 that match them; every
event is in exactly one listed object; lines are in acceptance order; the manifest never changes afterwards; a late
line (a redrive after the seal) gives `_manifest.2.json` and leaves `_manifest.json` byte-identical. DuckDB and
PyArrow read exactly a manifest's objects and find every event once.

`make test-manifests` sends for the issue's two minutes (SPOOL_MANIFEST_SECONDS=120). `make test` sends until two
seconds before the first minute's end at least MIN_SECONDS away, so the last folder is sealed soon after the last
event (a folder is sealed SEAL_GRACE_SECONDS and the interval after its minute ends, whatever else it waits for):
one or two folders, about 40 s of events instead of 70 plus the wait for a minute that has just begun."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.json as pajson

from spool.domain import keys, manifests
from spool.domain.errors import StoreError
from spool.handlers.wiring import SinkServices
from spool.local.runtime import EXAMPLE_BUCKET, LocalRuntime
from tests.reliability.ledger import Books
from tests.servers import Api, Schedule, wait_until

SECONDS = int(os.environ.get("SPOOL_MANIFEST_SECONDS", "0"))
MIN_SECONDS = 15
TEMPLATE = "{prefix}{date}/{hour}{minute}/{timestamp}-{batch}"
BATCH, INTERVAL = 20, 3
# The seal is due this long after a minute's end (the runtime's batching window is 0.5 s); the issue allows 48.
SEAL_WITHIN = 48


def body(prefix: str, event_type: str) -> dict[str, Any]:
    return {
        "url": f"s3://{EXAMPLE_BUCKET}/{prefix}",
        "deliveryMode": "storage",
        "eventTypes": [event_type],
        "storageConfig": {
            "provider": "s3",
            "bucket": EXAMPLE_BUCKET,
            "prefix": prefix,
            "region": "us-east-1",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "batchSize": BATCH,
            "flushIntervalSeconds": INTERVAL,
            "keyTemplate": TEMPLATE,
            "manifests": True,
        },
    }


def listing(s3: Any, prefix: str) -> dict[str, float]:
    """Key -> when the store says it was last modified."""
    found: dict[str, float] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=EXAMPLE_BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["LastModified"].timestamp()
    return found


def read(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=EXAMPLE_BUCKET, Key=key)["Body"].read())


def sending_seconds(now: float) -> float:
    """How long `make test` sends: until two seconds before the first minute's end at least MIN_SECONDS away."""
    end = (now // 60 + 1) * 60
    if end - now < MIN_SECONDS + 2:
        end += 60
    return end - 2 - now


def minute_end(folder: str) -> float:
    """The end of a `{date}/{hour}{minute}` folder's minute."""
    date, hhmm = folder.rsplit("/", 2)[-2:]
    start = datetime.fromisoformat(f"{date}T{hhmm[:2]}:{hhmm[2:]}:00+00:00").timestamp()
    return start + 60


def test_every_minute_folder_is_sealed_once_with_a_manifest_readers_can_trust_and_a_late_line_gets_epoch_two(
    runtime: LocalRuntime, tenant: Api, emulator_s3: Any, sink: SinkServices, books: Books, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    prefix, event_type = f"sealed-{run}/", f"sealed.{run}"
    tenant.create_endpoint(body(prefix, event_type))
    # A second endpoint gets the late line: two events written, then one its store refuses until it is in the
    # DLQ; after the seal it is redriven.
    late_prefix, late_type = f"late-{run}/", f"late.{run}"
    late_endpoint = tenant.create_endpoint(body(late_prefix, late_type))
    refused = _Refusing(late_prefix)
    stores = sink.stores
    assert stores is not None
    build = stores.build
    stores.build = refused.build(build)
    accepted: dict[str, str] = {}  # id -> createdAt
    first_seen: dict[str, float] = {}  # manifest key -> when the store says it was written
    schedule = Schedule()
    try:
        early = [tenant.send(late_type, {"n": n})["id"] for n in range(2)]
        wait_until(lambda: _data(emulator_s3, late_prefix), timeout=INTERVAL + 10, what="the two early lines")
        refused.ids.add(late := tenant.send(late_type, {"n": 2})["id"])

        seconds = SECONDS or sending_seconds(time.time())
        for n in schedule.spread(int(seconds * 2), seconds):
            reply = tenant.send(event_type, {"n": n})
            accepted[reply["id"]] = reply["createdAt"]
        last_minute_end = (time.time() // 60 + 1) * 60

        def all_sealed() -> bool:
            found = listing(emulator_s3, prefix)
            for key, modified in found.items():
                if "/_manifest" in key:
                    first_seen.setdefault(key, modified)
            folders = {keys.folder(k) for k in found if "/_manifest" not in k}
            late_sealed = any(k.endswith("/_manifest.json") for k in listing(emulator_s3, late_prefix))
            return late_sealed and bool(folders) and all(f"{f}/_manifest.json" in found for f in folders)

        wait_until(all_sealed, timeout=last_minute_end - time.time() + SEAL_WITHIN + 15, interval=1.0, what="seals")
        assert books.dlq_for(late_endpoint["id"]), "the late line is in the DLQ"
    finally:
        stores.build = build

    # --- every minute folder: one manifest, exactly its objects, every event once, in acceptance order ---------
    found = listing(emulator_s3, prefix)
    data = {k: read(emulator_s3, k) for k in found if "/_manifest" not in k}
    sealed = {k: read(emulator_s3, k) for k in found if k.endswith("/_manifest.json")}
    assert not [k for k in found if "/_manifest." in k and not k.endswith("/_manifest.json")], "no late epochs"
    listed: Counter[str] = Counter()
    for key, raw in sealed.items():
        folder = keys.folder(key)
        document = json.loads(raw)
        assert first_seen[key] - minute_end(folder) <= SEAL_WITHIN, (key, first_seen[key] - minute_end(folder))
        assert document["partition"] == folder and document["epoch"] == 1
        objects = {o["key"]: o for o in document["objects"]}
        assert set(objects) == {k for k in data if keys.folder(k) == folder}  # exactly the folder's data objects
        for object_key, entry in objects.items():
            raw_object = data[object_key]
            lines = raw_object.decode().splitlines()
            assert entry["bytes"] == len(raw_object)
            assert entry["sha256"] == hashlib.sha256(raw_object).hexdigest()
            assert kept_sha256(emulator_s3, object_key) == hashlib.sha256(raw_object).digest()
            assert entry["events"] == len(lines)
            order = [(json.loads(line)["createdAt"], json.loads(line)["id"]) for line in lines]
            assert order == sorted(order)  # acceptance order
            assert (entry["firstCreatedAt"], entry["firstId"]) == order[0]
            assert (entry["lastCreatedAt"], entry["lastId"]) == order[-1]
            listed.update(json.loads(line)["id"] for line in lines)
        assert document["events"] == sum(o["events"] for o in objects.values())
    assert set(listed) == set(accepted) and max(listed.values()) == 1  # every event in exactly one listed object

    # --- readers read exactly a manifest's objects and find every event once ----------------------------------
    for raw in sealed.values():
        document = json.loads(raw)
        paths = []
        for entry in document["objects"]:
            path = tmp_path / entry["key"].replace("/", "_")
            path.write_bytes(data[entry["key"]])
            paths.append(str(path))
        rows = duckdb.sql(f"SELECT id FROM read_json_auto({paths}, format='newline_delimited')").fetchall()
        expected = sorted(i for e in document["objects"] for i in _ids(data[e["key"]]))
        assert sorted(r[0] for r in rows) == expected and len(rows) == document["events"]
        table = pa.concat_tables([pajson.read_json(p) for p in paths])
        assert sorted(table.column("id").to_pylist()) == expected

    # --- the late line: redriven after the seal, epoch 2; the first manifest stays as it was --------------------
    late_key = next(k for k in listing(emulator_s3, late_prefix) if k.endswith("/_manifest.json"))
    before = read(emulator_s3, late_key)
    assert sorted(i for e in json.loads(before)["objects"] for i in _ids(read(emulator_s3, e["key"]))) == sorted(early)
    refused.ids.clear()
    assert tenant.call("POST", f"/api/v1/endpoints/{late_endpoint['id']}/redrive").json()["moved"] >= 1
    second_key = manifests.manifest_key(keys.folder(late_key), 2)
    wait_until(lambda: second_key in listing(emulator_s3, late_prefix), timeout=30, interval=1.0, what="epoch 2")
    second = json.loads(read(emulator_s3, second_key))
    assert second["epoch"] == 2
    assert [i for e in second["objects"] for i in _ids(read(emulator_s3, e["key"]))] == [late]
    assert read(emulator_s3, late_key) == before  # byte-identical
    assert {k: read(emulator_s3, k) for k in sealed} == sealed  # and the others never changed


@dataclass
class _Refusing:
    """Store builds whose puts refuse any object holding one of `ids` (the store refuses that line)."""

    prefix: str
    ids: set[str] = field(default_factory=set)

    def build(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        def made(settings: Any, credentials: Any) -> Any:
            store = inner(settings, credentials)
            if settings.prefix != self.prefix:
                return store
            put = store.put_new

            def put_new(key: str, data: bytes, **kwargs: Any) -> bool:
                if any(i.encode() in data for i in self.ids):
                    raise StoreError("the store refused this write (test)")
                return bool(put(key, data, **kwargs))

            store.put_new = put_new
            return store

        return made


def _data(s3: Any, prefix: str) -> list[str]:
    return [k for k in listing(s3, prefix) if "/_manifest" not in k]


def kept_sha256(s3: Any, key: str) -> bytes:
    return base64.b64decode(s3.head_object(Bucket=EXAMPLE_BUCKET, Key=key, ChecksumMode="ENABLED")["ChecksumSHA256"])


def _ids(raw: bytes) -> list[str]:
    return [json.loads(line)["id"] for line in raw.decode().splitlines()]
