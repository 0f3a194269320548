"""A small bounded cache whose entries expire: what a warm Lambda keeps between invocations.

`TtlCache` holds at most `max_entries` values, each for `ttl` seconds after it was stored. Eviction rule: an
entry older than `ttl` is never returned (it is dropped when read); storing a key that would make the cache
exceed `max_entries` first drops the expired entries and then, if still full, the entries stored longest ago
(storing a key again counts as storing it now). So the cache never grows past its bound and a value is never
served past its age, whatever the traffic. The clock is injectable (default `time.monotonic`, which wall-clock
changes do not move) so tests can age entries without sleeping.

Every cache a warm function keeps between invocations is one of these (the api's routing and API keys, the
sink's endpoint directory, object counters, seals sent, role trust verdicts), so none grows without bound or
serves a value past its age. The sink's HealthBoard (domain/health.py) is not a cache: it also counts the
deliveries in flight, which no bound may drop, so it keeps its own rule (least recently used, never one in
flight). Thread-safe: the sink delivers endpoints side by side, and the local runtime's
pollers share one sink. A value is loaded outside the lock (a load may be a network call), so two threads that
miss at once may both load; the last one stored wins.
"""

from __future__ import annotations

import threading
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
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return self._fresh(key) is not None

    def get(self, key: K) -> V | None:
        """The value stored for `key` less than `ttl` seconds ago, or None."""
        with self._lock:
            entry = self._fresh(key)
        return None if entry is None else entry[1]

    def find(self, key: K) -> tuple[V, bool] | None:
        """The value stored for `key` and whether it is fresh, however old (None: none stored, or evicted): for a
        caller that can tell an old value is still right more cheaply than it can load one (it then `put`s it
        again)."""
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else (entry[1], self._clock() - entry[0] < self.ttl)

    def put(self, key: K, value: V) -> None:
        """Store `value` for `key` (its age starts now), evicting by the rule in the module docstring."""
        with self._lock:
            self._entries.pop(key, None)
            if len(self._entries) >= self.max_entries:
                self._drop_expired()
            while len(self._entries) >= self.max_entries:
                self._entries.popitem(last=False)
            self._entries[key] = (self._clock(), value)

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The fresh value for `key`, or `load()`'s, which is stored (also when it is None or empty)."""
        with self._lock:
            entry = self._fresh(key)
        if entry is not None:
            return entry[1]
        value = load()
        self.put(key, value)
        return value

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
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
