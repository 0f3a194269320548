"""Objects shaped for data lakes, end to end (issue: objects shaped for data lakes, done-when): events sent
through the local runtime's API, written by its sink to the embedded emulator's S3 under the Hive template,
then read by the tools pipelines use, not by our parser: Polars on `s3://` paths against the emulator,
pyarrow.dataset with Hive partitioning over the emulator's S3 and DuckDB on the downloaded objects, for
NDJSON plain, gzip and zstd and for Parquet. And a flush that holds 5 MB never writes an object over
maxObjectBytes.

One set of endpoints (one per format) receives the same events once per module; the tests only read."""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import zstandard

from spool.domain import limits
from spool.local.runtime import LocalRuntime
from tests.conftest import spec_body
from tests.integration.conftest import Api, wait_until

BUCKET = "my-webhook-archive"
HIVE = "{prefix}dt={date}/hour={hour}/type={eventType}/{timestamp}-{batch}"
TYPES = ("lake.created", "lake.paid", "lake.refunded")
EVENTS = 300
FORMATS = {
    "ndjson": ({}, ".ndjson"),
    "gzip": ({"compression": "gzip"}, ".ndjson.gz"),
    "zstd": ({"compression": "zstd"}, ".ndjson.zst"),
    "parquet": ({"format": "parquet"}, ".parquet"),
}
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_region": "us-east-1"}


def endpoint_body(prefix: str, event_types: list[str], **storage: Any) -> dict[str, Any]:
    body = spec_body(endpoint=None, prefix=prefix, flushIntervalSeconds=2, **storage)
    body["url"] = f"s3://{BUCKET}/{prefix}"
    body["eventTypes"] = event_types
    return body


def ids_in(key: str, body: bytes) -> list[str]:
    """Only for waiting until everything is written; the assertions read with the readers."""
    if key.endswith(".parquet"):
        return [str(v) for v in pq.read_table(io.BytesIO(body)).column("id").to_pylist()]
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    elif key.endswith(".zst"):
        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    return [json.loads(line)["id"] for line in body.decode().splitlines()]


def download(s3: Any, prefix: str, into: Path) -> dict[str, bytes]:
    """Every object under `prefix`, also written below `into` under its key."""
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            objects[item["Key"]] = body
            path = into / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
    return objects


def written_ids(s3: Any, prefix: str, into: Path) -> list[str] | None:
    objects = download(s3, prefix, into)
    ids = [i for key, body in objects.items() for i in ids_in(key, body)]
    return ids if len(ids) >= EVENTS else None


@pytest.fixture(scope="module")
def lake(api: Api, emulator_s3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Four Hive-template endpoints, one per format, and the same 300 events of three types sent to all;
    returns the event ids with their types and, per format, the prefix and the downloaded directory."""
    for name, (storage, _) in FORMATS.items():
        api.create_endpoint(endpoint_body(f"lake-{name}/", ["lake.*"], keyTemplate=HIVE, **storage))
    sent: dict[str, str] = {}
    for start in range(0, EVENTS, 50):
        batch = [
            {"eventType": TYPES[n % 3], "payload": {"orderId": f"ord_{n}", "amount": n * 1.5, "note": "é" * (n % 9)}}
            for n in range(start, start + 50)
        ]
        for event, accepted in zip(batch, api.send_batch(batch), strict=True):
            sent[accepted["id"]] = event["eventType"]
    root = tmp_path_factory.mktemp("lake")
    formats = {}
    for name in FORMATS:
        prefix = f"lake-{name}/"
        ids = wait_until(lambda p=prefix: written_ids(emulator_s3, p, root), timeout=40, what=f"{name} objects")
        assert sorted(ids) == sorted(sent), f"{name}: events lost or written twice"
        formats[name] = {"prefix": prefix, "local": root / prefix}
    return {"sent": sent, "formats": formats}


def polars_options(runtime: LocalRuntime) -> dict[str, str]:
    return CREDENTIALS | {"aws_endpoint_url": runtime.aws_url, "aws_allow_http": "true"}


def test_every_object_holds_one_type_under_its_hive_partition(lake: dict[str, Any]) -> None:
    for name, (_, extension) in FORMATS.items():
        base: Path = lake["formats"][name]["local"]
        keys = [p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()]
        assert keys
        for key in keys:
            match = re.fullmatch(
                r"dt=\d{4}-\d\d-\d\d/hour=\d\d/type=(lake\.\w+)/\d{10}-\d{3}" + re.escape(extension), key
            )
            assert match, key


@pytest.mark.parametrize("name", ["ndjson", "gzip", "zstd"])
def test_polars_reads_ndjson_from_s3_paths(lake: dict[str, Any], runtime: LocalRuntime, name: str) -> None:
    base: Path = lake["formats"][name]["local"]
    prefix = lake["formats"][name]["prefix"]
    paths = sorted(f"s3://{BUCKET}/{prefix}{p.relative_to(base).as_posix()}" for p in base.rglob("*") if p.is_file())

    frame = pl.concat([pl.read_ndjson(path, storage_options=polars_options(runtime)) for path in paths])

    assert frame.columns == ["id", "eventType", "payload", "createdAt"]
    assert sorted(frame["id"].to_list()) == sorted(lake["sent"])
    assert dict(zip(frame["id"], frame["eventType"], strict=True)) == lake["sent"]


def test_polars_reads_parquet_from_s3_with_hive_partitions(lake: dict[str, Any], runtime: LocalRuntime) -> None:
    prefix = lake["formats"]["parquet"]["prefix"]

    frame = pl.read_parquet(
        f"s3://{BUCKET}/{prefix}**/*.parquet", hive_partitioning=True, storage_options=polars_options(runtime)
    )

    assert {"dt", "hour", "type"} <= set(frame.columns)
    assert frame.schema["createdAt"] == pl.Datetime("ms", "UTC")
    assert sorted(frame["id"].to_list()) == sorted(lake["sent"])
    assert (frame["type"] == frame["eventType"]).all()
    assert {json.loads(p)["orderId"][:4] for p in frame["payload"].to_list()} == {"ord_"}


@pytest.mark.parametrize("name", ["ndjson", "gzip", "parquet"])
def test_pyarrow_dataset_on_s3_discovers_dt_hour_and_type_and_finds_every_event_once(
    lake: dict[str, Any], runtime: LocalRuntime, name: str
) -> None:
    # (pyarrow.dataset picks a codec by extension name and does not know ".zst": docs/delivery.md.)
    s3 = pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        endpoint_override=runtime.aws_url.removeprefix("http://"),
        scheme="http",
    )
    source = f"{BUCKET}/{lake['formats'][name]['prefix'].rstrip('/')}"

    table = ds.dataset(
        source, filesystem=s3, format="parquet" if name == "parquet" else "json", partitioning="hive"
    ).to_table()

    assert {"dt", "hour", "type"} <= set(table.schema.names)
    rows = table.to_pylist()
    assert sorted(row["id"] for row in rows) == sorted(lake["sent"])
    assert all(row["type"] == row["eventType"] == lake["sent"][row["id"]] for row in rows)


@pytest.mark.parametrize("name", list(FORMATS))
def test_duckdb_reads_the_downloaded_objects_with_hive_partitions(lake: dict[str, Any], name: str) -> None:
    base: Path = lake["formats"][name]["local"]
    reader = "read_parquet" if name == "parquet" else "read_json_auto"

    rows = duckdb.sql(
        f"select id, eventType, type, json_extract_string(payload, '$.orderId') "
        f"from {reader}('{base}/**/*{FORMATS[name][1]}', hive_partitioning = true)"
    ).fetchall()

    assert sorted(row[0] for row in rows) == sorted(lake["sent"])
    assert all(row[1] == row[2] == lake["sent"][row[0]] for row in rows)
    assert all(row[3].startswith("ord_") for row in rows)


def test_five_megabytes_to_the_smallest_cap_never_give_a_larger_object(
    api: Api, emulator_s3: Any, tmp_path: Path
) -> None:
    prefix = "lake-capped/"
    cap = limits.MAX_OBJECT_BYTES_MIN
    api.create_endpoint(endpoint_body(prefix, ["capped.*"], batchSize=1000, maxObjectBytes=cap))
    sent: list[str] = []
    # 1,250 events of about 4 KB: 5 MB, more than one flush of 1,000 holds under the cap many times over.
    for start in range(0, 1250, 50):
        batch = [
            {"eventType": "capped.created", "payload": {"n": n, "blob": f"{n:08d}" * 500}}
            for n in range(start, start + 50)
        ]
        sent += [accepted["id"] for accepted in api.send_batch(batch)]

    def all_written() -> dict[str, bytes] | None:
        objects = download(emulator_s3, prefix, tmp_path)
        return objects if sum(body.count(b"\n") for body in objects.values()) >= len(sent) else None

    objects = wait_until(all_written, timeout=60, interval=1.0, what="5 MB of events")
    assert sum(len(body) for body in objects.values()) > 5 * 10**6
    assert max(len(body) for body in objects.values()) <= cap
    assert len(objects) >= 10
    frame = pl.read_ndjson(sorted(tmp_path.rglob("*.ndjson")))
    assert sorted(frame["id"].to_list()) == sorted(sent)
