"""What lands in storage: the NDJSON line format and object keys (SPEC: What lands in storage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def ndjson_line(event_id: str, event_type: str, payload: Any, created_at: str) -> str:
    """One compact JSON line, keys in SPEC order, without the trailing newline."""
    return json.dumps(
        {"id": event_id, "eventType": event_type, "payload": payload, "createdAt": created_at},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def ndjson_body(lines: list[str]) -> bytes:
    """The object body: every line followed by a newline, UTF-8."""
    return ("\n".join(lines) + "\n").encode()


def object_key(prefix: str, flushed_at: float, batch: int, *, gzip: bool = False) -> str:
    """`{prefix}{date}/{timestamp}-{batch}.ndjson`; `batch` counts from 1 and is zero-padded to 3 digits."""
    when = datetime.fromtimestamp(flushed_at, UTC)
    suffix = ".ndjson.gz" if gzip else ".ndjson"
    return f"{prefix}{when:%Y-%m-%d}/{int(flushed_at)}-{batch:03d}{suffix}"


def iso_timestamp(epoch: float) -> str:
    """UTC timestamp as the SPEC shows it, with milliseconds: 2026-04-14T10:30:00.123Z."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
