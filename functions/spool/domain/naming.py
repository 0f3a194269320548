"""What lands in storage: the NDJSON line format and object keys (SPEC: What lands in storage)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from spool.domain import keys


def ndjson_line(event_id: str, event_type: str, payload: Any, created_at: str) -> str:
    """One compact JSON line, keys in SPEC order, without the trailing newline."""
    return json.dumps(
        {"id": event_id, "eventType": event_type, "payload": payload, "createdAt": created_at},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


# The line as ndjson_line renders it. Ids and event types hold no quote or backslash (models.py), nor does
# createdAt, so the payload is everything between them: `.*` is greedy, and only the real createdAt can follow.
_LINE_RE = re.compile(r'\{"id":"([^"\\]*)","eventType":"([^"\\]*)","payload":(.*),"createdAt":"([^"\\]*)"\}')
_TYPE_RE = re.compile(r'\{"id":"[^"\\]*","eventType":"([^"\\]*)"')


def parse_line(line: str) -> tuple[str, str, str, str]:
    """(id, eventType, the payload's JSON text as accepted, createdAt) of one line; ValueError if it is not
    one ndjson_line rendered."""
    match = _LINE_RE.fullmatch(line)
    if match is None:
        raise ValueError("not an event line")
    event_id, event_type, payload, created_at = match.groups()
    return event_id, event_type, payload, created_at


def line_event_type(line: str) -> str:
    """The eventType of one line (read from its start, without parsing the payload)."""
    match = _TYPE_RE.match(line)
    if match is None:
        raise ValueError("not an event line")
    return match.group(1)


def ndjson_body(lines: list[str]) -> bytes:
    """The object body: every line followed by a newline, UTF-8."""
    return ("\n".join(lines) + "\n").encode()


def object_key(prefix: str, flushed_at: float, batch: int, *, gzip: bool = False) -> str:
    """`{prefix}{date}/{timestamp}-{batch}.ndjson`; `batch` counts from 1 and is zero-padded to 3 digits.
    The default key template's name (domain/keys.py renders every template)."""
    suffix = keys.extension("ndjson", "gzip" if gzip else "none")
    return keys.render(keys.DEFAULT_TEMPLATE, prefix=prefix, flushed_at=flushed_at, batch=batch, suffix=suffix)


def iso_timestamp(epoch: float) -> str:
    """UTC timestamp as the SPEC shows it, with milliseconds: 2026-04-14T10:30:00.123Z."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
