"""Event type patterns: `*`, `prefix.*`, or an exact type (SPEC: eventTypes)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEGMENT = r"[A-Za-z0-9_\-]+"
EVENT_TYPE_RE = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*$")
PATTERN_RE = re.compile(rf"^(\*|{_SEGMENT}(\.{_SEGMENT})*(\.\*)?)$")


def matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def matches_any(patterns: Iterable[str], event_type: str) -> bool:
    return any(matches(p, event_type) for p in patterns)
