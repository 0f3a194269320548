"""Object bodies from event lines, as an endpoint's storage settings shape them (docs/delivery.md, Formats).

NDJSON objects are the lines as accepted, each ending in a newline, plain, gzip or zstd. Parquet objects hold
one row per event: `id`, `eventType`, `createdAt` (timestamp, milliseconds, UTC) and `payload` (the JSON text
as accepted, so payloads of any shape share one schema), compressed with the endpoint's `parquetCodec`.
pyarrow is imported only when an endpoint writes Parquet.

`maxObjectBytes` caps every object as stored (after compression): lines that would make a larger one are
split into several objects, in order. A template that names `{eventType}` gives each event type objects of
its own. Everything here is pure: bytes in, bytes out.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from spool.domain import limits
from spool.domain.naming import line_event_type, parse_line

if TYPE_CHECKING:
    from spool.domain.models import StorageSettings

NDJSON_CONTENT_TYPE = "application/x-ndjson"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
ZSTD_LEVEL = 3  # zstd's default: about gzip -6's ratio at several times its speed
# A split aims this far below the cap, so that parts of unevenly compressible lines still fit at once.
_FILL = 0.9

Encoder = Callable[[list[str]], bytes]


@dataclass(frozen=True)
class EncodedObject:
    """One object to write: its body as stored, the headers that go with it, and how many events it holds.
    `event_type` is the one type it holds when the endpoint's key template names `{eventType}`."""

    body: bytes
    count: int
    content_type: str
    content_encoding: str | None
    event_type: str | None = None


def parquet_available() -> bool:
    """Whether this deployment can write Parquet (pyarrow is installed), without importing it."""
    return importlib.util.find_spec("pyarrow") is not None


def partition_names(lines: list[str], bound: int = limits.TYPE_PARTITIONS_MAX) -> list[str]:
    """Each line's partition, for an endpoint whose key template names {eventType}: its event type, or
    `_other` for types after the first `bound` to appear (never dropped)."""
    seen: set[str] = set()
    names: list[str] = []
    for line in lines:
        event_type = line_event_type(line)
        if event_type not in seen:
            if len(seen) >= bound:
                event_type = limits.OTHER_PARTITION
            seen.add(event_type)
        names.append(event_type)
    return names


def partitions(lines: list[str], bound: int = limits.TYPE_PARTITIONS_MAX) -> dict[str, list[str]]:
    """Lines per partition (`partition_names`), partitions in order of first appearance, lines in order."""
    groups: dict[str, list[str]] = {}
    for line, name in zip(lines, partition_names(lines, bound), strict=True):
        groups.setdefault(name, []).append(line)
    return groups


def by_event_type(settings: StorageSettings) -> bool:
    """Whether each event type gets objects (and batches) of its own."""
    return "{eventType}" in settings.keyTemplate


def encode_objects(settings: StorageSettings, text: str, event_type: str | None = None) -> list[EncodedObject]:
    """The objects for the event lines in `text` (joined by "\\n", as the sink holds them), in order.
    `event_type`: the partition all the lines belong to (from `partitions`); without it a template that names
    {eventType} groups the lines by their own types.

    An endpoint with the default settings gets one NDJSON object of all the lines, exactly as before."""
    if not text:
        return []
    encode, content_type, content_encoding = _encoder(settings)
    if _one_whole_object(settings):
        # The common case without splitting the text into lines.
        return [
            EncodedObject(_compress(settings.compression, text), text.count("\n") + 1, content_type, content_encoding)
        ]
    lines = text.split("\n")
    groups: dict[str | None, list[str]]
    if event_type is not None:
        groups = {event_type: lines}
    elif by_event_type(settings):
        groups = {name: group for name, group in partitions(lines, bound=len(lines)).items()}  # every type its own
    else:
        groups = {None: lines}
    return [
        EncodedObject(body, count, content_type, content_encoding, group_type)
        for group_type, group in groups.items()
        for body, count in _fit(group, encode, settings.maxObjectBytes)
    ]


def encode_blocks(settings: StorageSettings, blocks: list[tuple[str, int]]) -> list[EncodedObject]:
    """`encode_objects` for the sink's blocks (lines joined by "\\n", and their count), in order. The common
    case (NDJSON, no cap, no {eventType}) joins the blocks once, final newline included, and counts nothing:
    each extra pass over a megabyte of lines cost as much as the whole reference sink (make bench, B1)."""
    if not blocks:
        return []
    if _one_whole_object(settings):
        _, content_type, content_encoding = _encoder(settings)
        body = _compress_body(settings.compression, "\n".join([*(text for text, _ in blocks), ""]).encode())
        return [EncodedObject(body, sum(count for _, count in blocks), content_type, content_encoding)]
    return encode_objects(settings, "\n".join(text for text, _ in blocks))


def _one_whole_object(settings: StorageSettings) -> bool:
    """Whether lines become one NDJSON object as they are (no cap to split under, no types to group by)."""
    return settings.maxObjectBytes is None and not by_event_type(settings) and settings.format == "ndjson"


def _encoder(settings: StorageSettings) -> tuple[Encoder, str, str | None]:
    if settings.format == "parquet":
        codec = settings.parquetCodec
        return (lambda lines: parquet_body(lines, codec)), PARQUET_CONTENT_TYPE, None
    compression = settings.compression
    encoding = None if compression == "none" else compression
    return (lambda lines: _compress(compression, "\n".join(lines))), NDJSON_CONTENT_TYPE, encoding


def _compress(compression: str, text: str) -> bytes:
    return _compress_body(compression, (text + "\n").encode())


def _compress_body(compression: str, body: bytes) -> bytes:
    if compression == "gzip":
        return gzip.compress(body, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    return body


def parquet_body(lines: list[str], codec: str) -> bytes:
    """One Parquet file of the events in `lines` (one row group)."""
    import pyarrow as pa  # only endpoints that write Parquet pay for the import
    import pyarrow.parquet as pq

    ids, types, payloads, created = zip(*(parse_line(line) for line in lines), strict=True)
    schema = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("eventType", pa.string(), nullable=False),
            pa.field("createdAt", pa.timestamp("ms", tz="UTC"), nullable=False),
            pa.field("payload", pa.string(), nullable=False),
        ]
    )
    table = pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array(types, pa.string()),
            pa.array(created, pa.string()).cast(pa.timestamp("ms", tz="UTC")),
            pa.array(payloads, pa.string()),
        ],
        schema=schema,
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=codec)
    return bytes(sink.getvalue().to_pybytes())


def _fit(lines: list[str], encode: Encoder, cap: int | None) -> list[tuple[bytes, int]]:
    """(body, count) of objects holding `lines` in order, none larger than `cap` bytes.

    Encodes the whole first; when it is over the cap, splits it into as many parts as its size suggests (by
    the lines' bytes, aiming at _FILL of the cap) and fits each part again, so a part of lines that compress
    worse than the rest is split once more."""
    body = encode(lines)
    if cap is None or len(body) <= cap:
        return [(body, len(lines))]
    if len(lines) == 1:
        # One event is never split or dropped: alone over the cap, it is written alone (limits.py).
        return [(body, 1)]
    parts = min(len(lines), max(2, math.ceil(len(body) / (cap * _FILL))))
    fitted: list[tuple[bytes, int]] = []
    for chunk in _chunks(lines, parts):
        fitted.extend(_fit(chunk, encode, cap))
    return fitted


def _chunks(lines: list[str], parts: int) -> list[list[str]]:
    """`lines` cut into at most `parts` runs of about equal bytes, none empty (at least two for two lines or
    more: a line that would take a run past its share starts the next)."""
    target = sum(len(line) + 1 for line in lines) / parts
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if chunks[-1] and len(chunks) < parts and size + len(line) + 1 > target * len(chunks):
            chunks.append([])
        chunks[-1].append(line)
        size += len(line) + 1
    return chunks
