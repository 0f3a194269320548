"""Object bodies (domain/encoding.py): NDJSON plain/gzip/zstd and Parquet, the size cap, one type per object."""

from __future__ import annotations

import gzip
import io
import json
import random
import sys
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard

from spool.domain import limits
from spool.domain.encoding import EncodedObject, encode
from spool.domain.naming import ndjson_line
from spool.domain.planner import InboundRecord, ObjectWrite, Rules, Write, plan, triage
from spool.domain.storage import StorageSettings
from tests.conftest import ndjson_body

HIVE = "{prefix}dt={date}/hour={hour}/type={eventType}/{timestamp}-{batch}"
CAP = limits.MAX_OBJECT_BYTES_MIN
NOW = 1_776_162_600.0


def settings(**fields: Any) -> StorageSettings:
    """An endpoint whose batch is large enough that only the format, the cap and the types cut objects here."""
    base = {"provider": "local", "bucket": "archive", "prefix": "events/", "batchSize": 10_000}
    return StorageSettings.model_validate(base | fields)


def lines(count: int, *, types: tuple[str, ...] = ("order.created",), noise: int = 40, seed: int = 1) -> list[str]:
    """Event lines as the api renders them; `noise` random hex digits per payload make them compress like
    real webhooks rather than collapse to nothing."""
    rng = random.Random(seed)
    return [
        ndjson_line(
            f"evt_{i:06d}",
            types[i % len(types)],
            {"orderId": f"ord_{i}", "note": f"{rng.getrandbits(noise * 4):0{noise}x}", "n": i, "ok": True},
            f"2026-04-14T10:30:{i % 60:02d}.{i % 1000:03d}Z",
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Written:
    """An object as the sink writes it: its encoded body and headers, and the event type it holds (a template
    with {eventType})."""

    body: bytes
    count: int
    content_type: str
    content_encoding: str | None
    event_type: str | None


def encode_objects(settings: StorageSettings, text: str) -> list[Written]:
    """The objects the planner cuts `text`'s lines into (domain/planner.py: batchSize, {eventType},
    maxObjectBytes), each encoded as the writer encodes it."""
    planned: list[ObjectWrite] = []
    if text:
        bundle = InboundRecord("m", "rh", "ten_a", "ep_a", text, NOW, line_count=text.count("\n") + 1)
        [write] = plan(settings, triage([bundle], NOW), [], NOW, Rules(hold_back=False)).steps
        assert isinstance(write, Write)
        planned = write.objects
    encoded = [(p.partition, p.encoded or encode(settings, p.text, p.count)) for p in planned]
    return [Written(o.body, o.count, o.content_type, o.content_encoding, name) for name, o in encoded]


def decode(obj: Written | EncodedObject) -> list[str]:
    """The event lines back from an object, as a reader would get them."""
    if obj.content_type == "application/vnd.apache.parquet":
        table = pq.read_table(io.BytesIO(obj.body))
        return [
            ndjson_line(
                r["id"],
                r["eventType"],
                json.loads(r["payload"]),
                r["createdAt"].isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            )
            for r in table.to_pylist()
        ]
    body = obj.body
    if obj.content_encoding == "gzip":
        body = gzip.decompress(body)
    elif obj.content_encoding == "zstd":
        body = zstandard.ZstdDecompressor().decompress(body)
    text = body.decode()
    assert text.endswith("\n")
    return text[:-1].split("\n")


FORMATS = [
    pytest.param({}, id="ndjson"),
    pytest.param({"compression": "gzip"}, id="gzip"),
    pytest.param({"compression": "zstd"}, id="zstd"),
    pytest.param({"format": "parquet"}, id="parquet-snappy"),
    pytest.param({"format": "parquet", "parquetCodec": "zstd"}, id="parquet-zstd"),
    pytest.param({"format": "parquet", "parquetCodec": "gzip"}, id="parquet-gzip"),
]


def test_an_endpoint_with_default_settings_gets_todays_body_in_one_object() -> None:
    events = lines(5)

    [obj] = encode_objects(settings(), "\n".join(events))

    assert obj == Written(ndjson_body(events), 5, "application/x-ndjson", None, None)


def test_gzip_objects_are_todays_gzip_bytes() -> None:
    events = lines(5)

    [obj] = encode_objects(settings(compression="gzip"), "\n".join(events))

    assert obj.body == gzip.compress(ndjson_body(events), mtime=0)
    assert obj.content_encoding == "gzip"


@pytest.mark.parametrize("fields", FORMATS)
def test_every_format_gives_back_every_event_in_order(fields: dict[str, Any]) -> None:
    events = lines(50)

    [obj] = encode_objects(settings(**fields), "\n".join(events))

    assert decode(obj) == events
    assert obj.count == 50


def test_zstd_objects_are_zstd_frames_that_name_their_size() -> None:
    [obj] = encode_objects(settings(compression="zstd"), "\n".join(lines(20)))

    assert obj.body.startswith(b"\x28\xb5\x2f\xfd")  # zstd's magic number
    assert zstandard.frame_content_size(obj.body) == len(ndjson_body(lines(20)))
    assert obj.content_encoding == "zstd"


@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip"])
def test_parquet_has_the_documented_schema_and_codec(codec: str) -> None:
    [obj] = encode_objects(settings(format="parquet", parquetCodec=codec), "\n".join(lines(3)))

    parquet = pq.ParquetFile(io.BytesIO(obj.body))
    schema = parquet.schema_arrow
    assert schema.names == ["id", "eventType", "createdAt", "payload"]
    assert str(schema.field("createdAt").type) == "timestamp[ms, tz=UTC]"
    assert str(schema.field("payload").type) == "string"
    assert parquet.metadata.row_group(0).column(0).compression == codec.upper()
    assert obj.content_type == "application/vnd.apache.parquet"
    assert obj.content_encoding is None


def test_parquet_keeps_the_payload_text_as_accepted_and_createdat_to_the_millisecond() -> None:
    line = ndjson_line(
        "evt_1", "a.b", {"z": 1, "a": [1.5, None, "é"], "s": '","createdAt":"x"}'}, "2026-04-14T10:30:00.123Z"
    )

    [obj] = encode_objects(settings(format="parquet"), line)

    [row] = pq.read_table(io.BytesIO(obj.body)).to_pylist()
    assert row["payload"] == '{"z":1,"a":[1.5,null,"é"],"s":"\\",\\"createdAt\\":\\"x\\"}"}'
    assert row["createdAt"].isoformat() == "2026-04-14T10:30:00.123000+00:00"


@pytest.mark.parametrize("fields", FORMATS)
def test_no_object_is_larger_than_max_object_bytes_and_none_is_lost(fields: dict[str, Any]) -> None:
    events = lines(5000, noise=300)  # about 1.9 MB of lines, about 1 MB compressed

    objects = encode_objects(settings(maxObjectBytes=CAP, **fields), "\n".join(events))

    assert len(objects) >= 2
    assert max(len(o.body) for o in objects) <= CAP
    assert [line for o in objects for line in decode(o)] == events
    assert [o.count for o in objects] == [len(decode(o)) for o in objects]


def test_objects_split_for_the_cap_are_mostly_full() -> None:
    objects = encode_objects(settings(maxObjectBytes=CAP), "\n".join(lines(8000, noise=200)))

    assert sum(len(o.body) for o in objects) / len(objects) > 0.7 * CAP


def test_a_batch_under_the_cap_stays_one_object() -> None:
    assert len(encode_objects(settings(maxObjectBytes=CAP, compression="gzip"), "\n".join(lines(100)))) == 1


@pytest.mark.parametrize("fields", FORMATS)
def test_the_largest_event_incompressible_is_written_alone_as_one_object_under_the_smallest_cap(
    fields: dict[str, Any],
) -> None:
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\']  # JSON needs no escape for these
    shell = ndjson_line("evt_" + "x" * 60, "a" * 128, {"blob": ""}, "2026-04-14T10:30:00.000Z")
    blob = "".join(rng.choices(alphabet, k=limits.EVENT_MAX_BYTES - len(shell)))
    line = ndjson_line("evt_" + "x" * 60, "a" * 128, {"blob": blob}, "2026-04-14T10:30:00.000Z")
    assert len(line.encode()) == limits.EVENT_MAX_BYTES

    [obj] = encode_objects(settings(maxObjectBytes=CAP, **fields), line)

    # Never split, never dropped: one object of one event, over the cap only by the format's own framing.
    assert obj.count == 1
    assert len(obj.body) <= CAP + 4096


def test_an_event_over_the_cap_by_itself_is_written_alone_and_the_others_stay_under_the_cap() -> None:
    capped = settings().model_copy(update={"maxObjectBytes": CAP})
    big = ndjson_line(
        "evt_big", "order.created", {"blob": random.Random(1).randbytes(CAP // 2).hex()}, "2026-04-14T10:30:00.000Z"
    )
    small = lines(40, noise=200)

    objects = encode_objects(capped, "\n".join([*small[:20], big, *small[20:]]))

    assert [obj.body.decode().rstrip("\n") for obj in objects if len(obj.body) > CAP] == [big]
    assert sum(obj.count for obj in objects) == 41


def test_a_template_naming_event_type_gives_each_type_its_own_objects_in_order() -> None:
    events = lines(30, types=("order.created", "order.paid", "refund.issued"))

    objects = encode_objects(settings(keyTemplate=HIVE), "\n".join(events))

    assert [o.event_type for o in objects] == ["order.created", "order.paid", "refund.issued"]
    for obj in objects:
        assert decode(obj) == [line for line in events if json.loads(line)["eventType"] == obj.event_type]


def test_without_event_type_in_the_template_types_share_objects() -> None:
    events = lines(30, types=("order.created", "order.paid"))

    [obj] = encode_objects(settings(maxObjectBytes=CAP), "\n".join(events))

    assert obj.event_type is None
    assert decode(obj) == events


def test_nothing_to_write_gives_no_object() -> None:
    assert encode_objects(settings(format="parquet"), "") == []


def test_ndjson_endpoints_never_import_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # importing it now raises ImportError

    for fields in ({}, {"compression": "gzip"}, {"compression": "zstd", "maxObjectBytes": CAP, "keyTemplate": HIVE}):
        assert encode_objects(settings(**fields), "\n".join(lines(10)))
    with pytest.raises(ImportError):
        encode_objects(settings(format="parquet"), "\n".join(lines(1)))
