"""Object bodies from event lines: the formats and codecs, one table entry each, and the size cap (docs/delivery.md,
Formats and codecs).

Like h11's `_writers.py`, which keeps one writer per framing, `FORMATS` keeps one entry per object format: its
extension, content type, the codecs it takes, how it encodes lines, and whether this deployment can write it.
`CODECS` does the same for NDJSON's compression. Every other module asks these tables: the API model
(`storageConfig.format`), the endpoint rules (`compression` with `format`), the object names (the extension), the
writer (the body and its headers). Adding a format is one entry here and its tests.

NDJSON objects are the lines as accepted, each ending in a newline, plain, gzip or zstd. Parquet objects hold
one row per event: `id`, `eventType`, `createdAt` (timestamp, milliseconds, UTC) and `payload` (the JSON text as
accepted, so payloads of any shape share one schema), compressed with the endpoint's `parquetCodec`; pyarrow is
imported only when an endpoint writes Parquet. `maxObjectBytes` caps every object as stored (after compression):
`fit` splits lines that would make a larger one into several objects, in order. Everything here is pure.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import zstandard

from spool.domain.naming import parse_line

ZSTD_LEVEL = 3  # zstd's default: about gzip -6's ratio at several times its speed
# A split aims this far below the cap, so that parts of unevenly compressible lines still fit at once.
_FILL = 0.9


class BodySettings(Protocol):
    """What an object's body depends on, of an endpoint's storage settings (domain/storage.py's
    `StorageSettings` has them)."""

    @property
    def format(self) -> str: ...
    @property
    def compression(self) -> str: ...
    @property
    def parquetCodec(self) -> str: ...
    @property
    def maxObjectBytes(self) -> int | None: ...


@dataclass(frozen=True)
class Codec:
    """A compression of NDJSON bodies: what it appends to the extension, its Content-Encoding, how it compresses."""

    suffix: str
    content_encoding: str | None
    compress: Callable[[bytes], bytes]


CODECS: dict[str, Codec] = {
    "none": Codec("", None, lambda body: body),
    "gzip": Codec(".gz", "gzip", lambda body: gzip.compress(body, mtime=0)),
    "zstd": Codec(".zst", "zstd", lambda body: zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)),
}


@dataclass(frozen=True)
class Format:
    """An object format: its extension and content type, the codecs (`compression`) it takes, how lines (in order,
    joined by "\n", as the sink holds them) become a body for `settings`, and whether this deployment can write
    it."""

    extension: str
    content_type: str
    compressions: tuple[str, ...]
    encode: Callable[[str, BodySettings], bytes]
    available: Callable[[], bool] = lambda: True
    # Why it takes only those codecs (said with the 422 for another one).
    compression_note: str = ""


def ndjson_body(text: str, settings: BodySettings) -> bytes:
    """Every line followed by a newline, UTF-8, compressed with the endpoint's codec. The lines are joined once,
    final newline included, and never split: every extra pass over the lines shows in the sink's CPU
    (docs/benchmarks.md, "Measurements behind the code")."""
    return CODECS[settings.compression].compress((text + "\n").encode())


def parquet_body(text: str, settings: BodySettings) -> bytes:
    """One Parquet file of the events in `text` (one row group), with the endpoint's `parquetCodec`."""
    import pyarrow as pa  # only endpoints that write Parquet pay for the import
    import pyarrow.parquet as pq

    ids, types, payloads, created = zip(*(parse_line(line) for line in text.split("\n")), strict=True)
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
    pq.write_table(table, sink, compression=settings.parquetCodec)
    return bytes(sink.getvalue().to_pybytes())


def parquet_available() -> bool:
    """Whether this deployment can write Parquet (pyarrow is installed), without importing it."""
    return importlib.util.find_spec("pyarrow") is not None


FORMATS: dict[str, Format] = {
    "ndjson": Format(".ndjson", "application/x-ndjson", tuple(CODECS), ndjson_body),
    # Parquet compresses inside the file (`parquetCodec`), so it takes no codec of its own.
    "parquet": Format(
        ".parquet",
        "application/vnd.apache.parquet",
        ("none",),
        parquet_body,
        available=parquet_available,
        compression_note="Parquet compresses inside the file (parquetCodec)",
    ),
}


def extension(format: str, compression: str) -> str:
    """`.ndjson`, `.ndjson.gz`, `.ndjson.zst`, `.parquet`: the format's extension and its codec's suffix."""
    return FORMATS[format].extension + CODECS[compression].suffix


@dataclass(frozen=True)
class EncodedObject:
    """One object's body as stored, the headers that go with it, and how many events it holds."""

    body: bytes
    count: int
    content_type: str
    content_encoding: str | None


def encode(settings: BodySettings, text: str, count: int) -> EncodedObject:
    """The one object holding the `count` lines of `text` (joined by "\n"), in the endpoint's format and codec."""
    entry = FORMATS[settings.format]
    return EncodedObject(
        entry.encode(text, settings), count, entry.content_type, CODECS[settings.compression].content_encoding
    )


def fit(settings: BodySettings, text: str, count: int) -> list[tuple[str, int, EncodedObject]]:
    """(text, count, object) of objects holding the lines of `text` in order, none larger as stored than the
    endpoint's `maxObjectBytes`.

    Encodes the whole first; when it is over the cap, splits it into as many parts as its size suggests (by the
    lines' bytes, aiming at _FILL of the cap) and fits each part again, so a part of lines that compress worse
    than the rest is split once more. One event is never split or dropped: alone over the cap, it is written
    alone (limits.py)."""
    whole = encode(settings, text, count)
    cap = settings.maxObjectBytes
    if cap is None or len(whole.body) <= cap or count == 1:
        return [(text, count, whole)]
    lines = text.split("\n")
    parts = min(count, max(2, math.ceil(len(whole.body) / (cap * _FILL))))
    return [part for chunk in _chunks(lines, parts) for part in fit(settings, "\n".join(chunk), len(chunk))]


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
