"""A small bounded cache whose entries expire: what a warm Lambda keeps between invocations.

`TtlCache` holds at most `max_entries` values, each for `ttl` seconds after it was stored. Eviction rule: an
entry older than `ttl` is never returned (it is dropped when read); storing a key that would make the cache
exceed `max_entries` first drops the expired entries and then, if still full, the entries stored longest ago
(storing a key again counts as storing it now). So the cache never grows past its bound and a value is never
served past its age, whatever the traffic. The clock is injectable (default `time.monotonic`, which wall-clock
changes do not move) so tests can age entries without sleeping.

Not thread-safe: a Lambda execution environment handles one invocation at a time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TtlCache[K, V]:
    def __init__(self, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl < 0:
            raise ValueError("ttl must not be negative")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return self._fresh(key) is not None

    def get(self, key: K) -> V | None:
        """The value stored for `key` less than `ttl` seconds ago, or None."""
        entry = self._fresh(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> None:
        """Store `value` for `key` (its age starts now), evicting by the rule in the module docstring."""
        self._entries.pop(key, None)
        if len(self._entries) >= self.max_entries:
            self._drop_expired()
        while len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        self._entries[key] = (self._clock(), value)

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The fresh value for `key`, or `load()`'s, which is stored (also when it is None or empty)."""
        entry = self._fresh(key)
        if entry is not None:
            return entry[1]
        value = load()
        self.put(key, value)
        return value

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def _fresh(self, key: K) -> tuple[float, V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry[0] >= self.ttl:
            del self._entries[key]
            return None
        return entry

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (stored, _) in self._entries.items() if now - stored >= self.ttl]:
            del self._entries[key]
