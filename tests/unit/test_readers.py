"""What Spool's encoder writes, read back by the tools pipelines use, not by our own parser: Polars, PyArrow
(pyarrow.dataset with Hive partitioning) and DuckDB, for NDJSON plain/gzip/zstd and Parquet.

Objects go through the local directory store under the keys the key template gives, written the way the
sink writes them (next counter when a name is taken), so partition discovery sees real key layouts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.json as pj
import pytest

from spool.adapters.local_store import LocalStore
from spool.domain import limits
from spool.domain.keys import object_key
from spool.domain.naming import ndjson_line
from spool.domain.storage import StorageSettings
from tests.unit.test_encoding import encode_objects

HIVE = "{prefix}dt={date}/hour={hour}/type={eventType}/{timestamp}-{batch}"
TYPES = ("order.created", "order.paid", "refund.issued")
# Two flushes an hour apart: two `hour` partitions of one day.
FLUSHES = (datetime(2026, 4, 14, 10, 30, tzinfo=UTC).timestamp(), datetime(2026, 4, 14, 11, 30, tzinfo=UTC).timestamp())
FORMATS = {
    "ndjson": {},
    "gzip": {"compression": "gzip"},
    "zstd": {"compression": "zstd"},
    "parquet": {"format": "parquet"},
}
GLOBS = {"ndjson": "*.ndjson", "gzip": "*.ndjson.gz", "zstd": "*.ndjson.zst", "parquet": "*.parquet"}


def events(flush: int, count: int = 600, pad: int = 0) -> list[str]:
    return [
        ndjson_line(
            f"evt_{flush}_{i:04d}",
            TYPES[i % len(TYPES)],
            {
                "orderId": f"ord_{i}",
                "amount": i * 1.5,
                "items": [{"sku": f"s{i % 7}"}] * (i % 4),
                "note": "é" * (i % 50) + "-" * pad,
            },
            f"2026-04-14T1{flush}:30:{i % 60:02d}.{i % 1000:03d}Z",
        )
        for i in range(count)
    ]


def write(root: Path, name: str, pad: int = 0, **fields: Any) -> tuple[Path, dict[str, str]]:
    """Every flush's events written as the sink writes them; the events' ids mapped to their types."""
    settings = StorageSettings.model_validate(
        {"provider": "local", "bucket": name, "prefix": "events/", "keyTemplate": HIVE, "batchSize": 10_000} | fields
    )
    store = LocalStore(str(root), name)
    written: dict[str, str] = {}
    for flush, at in enumerate(FLUSHES):
        lines = events(flush, pad=pad)
        for obj in encode_objects(settings, "\n".join(lines)):  # as the planner cuts them, the writer encodes
            batch = 1
            while not store.put_new(
                object_key(settings, at, batch, obj.event_type),
                obj.body,
                content_type=obj.content_type,
                content_encoding=obj.content_encoding,
            ):
                batch += 1
        written |= {json.loads(line)["id"]: json.loads(line)["eventType"] for line in lines}
    return root / name / "events", written


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("lake")
    # With 3 KB more per event, the smallest maxObjectBytes splits each type's flush into several objects.
    return {name: write(root, name, **fields) for name, fields in FORMATS.items()} | {
        "capped": write(root, "capped", pad=3000, maxObjectBytes=limits.MAX_OBJECT_BYTES_MIN)
    }


def test_keys_follow_the_hive_layout(lake: dict[str, tuple[Path, dict[str, str]]]) -> None:
    base, _ = lake["parquet"]

    keys = sorted(str(p.relative_to(base)) for p in base.rglob("*.parquet"))

    assert keys == sorted(
        f"dt=2026-04-14/hour={hour}/type={kind}/{int(at)}-001.parquet"
        for hour, at in zip(("10", "11"), FLUSHES, strict=True)
        for kind in TYPES
    )


@pytest.mark.parametrize("name", ["ndjson", "gzip", "parquet"])
def test_pyarrow_dataset_discovers_dt_hour_and_type_and_finds_every_event_once(
    lake: dict[str, tuple[Path, dict[str, str]]], name: str
) -> None:
    base, written = lake[name]

    table = ds.dataset(base, format="parquet" if name == "parquet" else "json", partitioning="hive").to_table()

    assert {"dt", "hour", "type"} <= set(table.schema.names)
    rows = table.to_pylist()
    assert sorted(row["id"] for row in rows) == sorted(written)
    assert all(row["type"] == row["eventType"] == written[row["id"]] for row in rows)
    assert {(str(row["dt"]), row["hour"]) for row in rows} == {("2026-04-14", 10), ("2026-04-14", 11)}


def test_pyarrow_reads_zstd_ndjson_through_a_detecting_input_stream(
    lake: dict[str, tuple[Path, dict[str, str]]],
) -> None:
    # pyarrow.dataset infers a codec from the extension by codec name (".zstd"), not from ".zst"; the stream
    # opener knows ".zst" (docs/delivery.md says so).
    base, written = lake["zstd"]

    tables = [pj.read_json(pa.input_stream(str(path), compression="detect")) for path in base.rglob("*.ndjson.zst")]

    assert sorted(id_ for table in tables for id_ in table.column("id").to_pylist()) == sorted(written)


def test_pyarrow_reads_parquet_createdat_as_utc_milliseconds(lake: dict[str, tuple[Path, dict[str, str]]]) -> None:
    base, _ = lake["parquet"]

    table = ds.dataset(base, format="parquet", partitioning="hive").to_table(columns=["createdAt"])

    assert table.schema.field("createdAt").type == pa.timestamp("ms", tz="UTC")


@pytest.mark.parametrize("name", ["ndjson", "gzip", "zstd", "capped"])
def test_polars_reads_every_ndjson_event_once(lake: dict[str, tuple[Path, dict[str, str]]], name: str) -> None:
    base, written = lake[name]

    frame = pl.read_ndjson(sorted(base.rglob(GLOBS.get(name, "*.ndjson"))))

    assert frame.columns == ["id", "eventType", "payload", "createdAt"]
    assert sorted(frame["id"].to_list()) == sorted(written)


def test_polars_reads_parquet_with_hive_partitions(lake: dict[str, tuple[Path, dict[str, str]]]) -> None:
    base, written = lake["parquet"]

    frame = pl.read_parquet(f"{base}/**/*.parquet", hive_partitioning=True)

    assert {"dt", "hour", "type"} <= set(frame.columns)
    assert frame.schema["createdAt"] == pl.Datetime("ms", "UTC")
    assert sorted(frame["id"].to_list()) == sorted(written)
    assert (frame["type"] == frame["eventType"]).all()
    payloads = [json.loads(p) for p in frame["payload"].to_list()]
    assert all(set(p) == {"orderId", "amount", "items", "note"} for p in payloads)


@pytest.mark.parametrize("name", ["ndjson", "gzip", "zstd", "parquet", "capped"])
def test_duckdb_reads_every_event_once_with_hive_partitions(
    lake: dict[str, tuple[Path, dict[str, str]]], name: str
) -> None:
    base, written = lake[name]
    reader = "read_parquet" if name == "parquet" else "read_json_auto"
    pattern = f"{base}/**/{GLOBS.get(name, '*.ndjson')}"

    rows = duckdb.sql(
        f"select id, eventType, type, hour, json_extract_string(payload, '$.orderId') as orderId "
        f"from {reader}('{pattern}', hive_partitioning = true)"
    ).fetchall()

    assert sorted(row[0] for row in rows) == sorted(written)
    assert all(row[1] == row[2] == written[row[0]] for row in rows)
    assert {row[3] for row in rows} == {10, 11}
    assert all(row[4].startswith("ord_") for row in rows)


def test_capped_objects_are_never_larger_than_max_object_bytes(lake: dict[str, tuple[Path, dict[str, str]]]) -> None:
    base, _ = lake["capped"]

    sizes = [path.stat().st_size for path in base.rglob("*.ndjson")]

    assert len(sizes) > len(TYPES) * len(FLUSHES)  # the cap split them
    assert max(sizes) <= limits.MAX_OBJECT_BYTES_MIN
