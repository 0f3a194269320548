"""What lands in storage: the NDJSON line format and object keys (SPEC: What lands in storage)."""

from __future__ import annotations

import json
import re
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


# The line as ndjson_line renders it. Ids and event types hold no quote or backslash (fields.py), nor does
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


_CREATED_AT = '"createdAt":"'


def order_key(line: str) -> tuple[str, str]:
    """(createdAt, id) of one line: acceptance order (SPEC: lines in an object are in acceptance order). Read
    from the line's two ends (createdAt closes it, id opens it), so the payload is never looked at; createdAt
    is always rendered with milliseconds in UTC, so its text sorts as its time."""
    return line[line.rindex(_CREATED_AT) + len(_CREATED_AT) : -2], line[7 : line.index('"', 7)]


def iso_timestamp(epoch: float) -> str:
    """UTC timestamp as the SPEC shows it, with milliseconds: 2026-04-14T10:30:00.123Z."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
