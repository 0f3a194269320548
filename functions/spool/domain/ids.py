"""Identifiers: a prefix, 12 hex digits of milliseconds (so ids sort by creation) and 16 random hex digits."""

from __future__ import annotations

import secrets
import threading
import time

# An endpoint's id starts with this: the sink's role sessions are named after it (domain/roles.py), and the
# stack's AssumeRole condition matches those names (infra/spool_infra/ingest.py).
ENDPOINT_ID_PREFIX = "ep"

_lock = threading.Lock()
_last_ms = 0


def new_id(prefix: str) -> str:
    """Ids made by one process sort in the order they were made, even within one millisecond."""
    global _last_ms
    with _lock:
        _last_ms = max(int(time.time() * 1000), _last_ms + 1)
        stamp = _last_ms
    return f"{prefix}_{stamp:012x}{secrets.token_hex(8)}"
