"""Object keys from an endpoint's `keyTemplate` (SPEC: Beyond the seed; docs/delivery.md, Key layouts).

A template is literal text and named parts only: `{prefix}`, `{date}`, `{year}`, `{month}`, `{day}`, `{hour}`,
`{minute}`, `{timestamp}`, `{batch}`, `{eventType}`. Times are the flush time in UTC. Spool appends the
extension from format and compression. The default template gives the seed's names.

Names stay unique the way they always have: the writer tries `batch` 1, 2, ... until a conditional write
succeeds. So the batch counter must be able to change the name: a template without `{batch}` gets `-{batch}`
(from `-002` on) appended before the extension when its first name is taken. The counter's scope is one
second (the sink remembers the last counter per endpoint and second), so a template must name `{timestamp}`:
without it, every write of a day or an hour would probe all names taken earlier in it.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from typing import Protocol

from spool.domain.encoding import BodySettings, extension

DEFAULT_TEMPLATE = "{prefix}{date}/{timestamp}-{batch}"
PARTS = frozenset({"prefix", "date", "year", "month", "day", "hour", "minute", "timestamp", "batch", "eventType"})
# S3's "safe characters" for key names, and '=' for Hive-style partitions (key=value segments).
_LITERAL_RE = re.compile(r"^[A-Za-z0-9!_.*'()/=\-]*$")


def check_template(template: str) -> str:
    """The template, or a ValueError saying what is wrong with it (pydantic turns it into a 422)."""
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError:
        raise ValueError("has an unmatched '{' or '}'; name parts as {prefix}, {date}, ...") from None
    literal, names = [], []
    for text, name, spec, conversion in pieces:
        literal.append(text)
        if name is None:
            continue
        if name not in PARTS:
            raise ValueError(f"names an unknown part {{{name}}}; known parts: {', '.join(sorted(PARTS))}")
        if spec or conversion:
            raise ValueError(f"part {{{name}}} takes no format; write it as {{{name}}}")
        names.append(name)
        # Stands in for the rendered part when checking the path's shape; a prefix starts a segment after it
        # (it is empty or ends in '/', typically), so '{prefix}./' and '{prefix}/' are refused.
        literal.append("p/" if name == "prefix" else "x")
    if not names or names[0] != "prefix" or pieces[0][0]:
        raise ValueError("must start with {prefix}, so that objects stay under the endpoint's prefix")
    if len(set(names)) != len(names):
        raise ValueError("must name each part at most once")
    if "timestamp" not in names:
        raise ValueError("must contain {timestamp}, so that names stay unique (with {batch}, added when needed)")
    shape = "".join(literal)
    if not _LITERAL_RE.match("".join(text for text, *_ in pieces)):
        raise ValueError("may contain, besides its parts, only letters, digits and ! _ . * ' ( ) / = -")
    if ".." in shape:
        raise ValueError("must not contain '..'")
    if "//" in shape or shape.endswith("/"):
        raise ValueError("must not contain empty path segments ('//') or end with '/'")
    if any(segment == "." for segment in shape.split("/")):
        raise ValueError("must not contain '.' segments")
    return template


# The time parts a folder can be cut by, finest first, and how long each one's window is (None: a calendar month
# or year, whose length varies).
_WINDOWS: tuple[tuple[str, int | None], ...] = (
    ("timestamp", 1),
    ("minute", 60),
    ("hour", 3600),
    ("date", 86400),
    ("day", 86400),
    ("month", None),
    ("year", None),
)


def folder_part(template: str) -> str | None:
    """The finest time part in the folder of a template's keys (the key up to its last '/'): what a folder's time
    window is cut by; None when the folder names no time part (its folders cannot be sealed)."""
    folder = template.rsplit("/", 1)[0] if "/" in template else ""
    names = {name for _, name, _, _ in string.Formatter().parse(folder) if name}
    return next((part for part, _ in _WINDOWS if part in names), None)


def time_window(template: str, at: float) -> tuple[float, float] | None:
    """The window [start, end) of the folder an object flushed at `at` lands in: the finest time part of the
    template's folder, in UTC (docs/delivery.md, sealed partitions); None when the folder names no time part."""
    part = folder_part(template)
    if part is None:
        return None
    seconds = dict(_WINDOWS)[part]
    if seconds is not None:
        start = at - at % seconds
        return start, start + seconds
    when = datetime.fromtimestamp(at, UTC)
    if part == "month":
        start_at = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end_at = start_at.replace(year=start_at.year + start_at.month // 12, month=start_at.month % 12 + 1)
    else:
        start_at = when.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        end_at = start_at.replace(year=start_at.year + 1)
    return start_at.timestamp(), end_at.timestamp()


def folder(key: str) -> str:
    """An object's partition: its key up to the last '/' (the empty string at the top of the bucket)."""
    return key.rsplit("/", 1)[0] if "/" in key else ""


def render(
    template: str,
    *,
    prefix: str,
    flushed_at: float,
    batch: int,
    suffix: str,
    event_type: str | None = None,
) -> str:
    """The key for one object. `batch` counts from 1 and is zero-padded to 3 digits; `suffix` is the
    extension. A template that names `{eventType}` needs `event_type` (event types are safe in keys:
    dot-separated letters, digits, '_' and '-')."""
    when = datetime.fromtimestamp(flushed_at, UTC)
    if event_type is None and "{eventType}" in template:
        raise ValueError("the template names {eventType}; the object's event type is needed")
    # Attribute arithmetic rather than strftime, which is slow (docs/benchmarks.md, "Measurements behind the code").
    values = {
        "prefix": prefix,
        "date": f"{when.year:04d}-{when.month:02d}-{when.day:02d}",
        "year": f"{when.year:04d}",
        "month": f"{when.month:02d}",
        "day": f"{when.day:02d}",
        "hour": f"{when.hour:02d}",
        "minute": f"{when.minute:02d}",
        "timestamp": str(int(flushed_at)),
        "batch": f"{batch:03d}",
        "eventType": event_type or "",
    }
    key = template.format_map(values)
    if batch > 1 and "{batch}" not in template:
        key += f"-{batch:03d}"
    return key + suffix


class KeySettings(BodySettings, Protocol):
    """What an object's name depends on, of an endpoint's storage settings (domain/storage.py's
    `StorageSettings` has them): the template and prefix, and its body's settings (the extension)."""

    @property
    def keyTemplate(self) -> str: ...
    @property
    def prefix(self) -> str: ...


def object_key(settings: KeySettings, flushed_at: float, batch: int, event_type: str | None = None) -> str:
    """An endpoint's object key for a flush at `flushed_at` (epoch seconds) with counter `batch`."""
    return render(
        settings.keyTemplate,
        prefix=settings.prefix,
        flushed_at=flushed_at,
        batch=batch,
        suffix=extension(settings.format, settings.compression),
        event_type=event_type,
    )
