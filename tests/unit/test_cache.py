"""domain/cache.py: TtlCache's bound, expiry and eviction rule; domain/ingest.py: RoutingCache over it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from spool.domain.cache import TtlCache
from spool.domain.ingest import RoutingCache
from spool.domain.models import Endpoint
from tests.fakes import FakeRepo
from tests.unit.test_ingest import stored_endpoint


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_served_until_its_ttl_and_not_after() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10, ttl=5, clock=clock)
    cache.put("a", 1)
    clock.now += 4.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_find_gives_an_old_value_as_stale_so_a_caller_can_keep_what_has_not_changed() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10, ttl=5, clock=clock)
    assert cache.find("a") is None
    cache.put("a", 1)
    assert cache.find("a") == (1, True)
    clock.now += 6
    assert cache.find("a") == (1, False)
    cache.put("a", 1)
    assert cache.get("a") == 1


def test_threads_storing_and_reading_at_once_keep_the_bound() -> None:
    cache: TtlCache[int, int] = TtlCache(50, ttl=60)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(2000):
                key = (offset * 7919 + n) % 500
                cache.put(key, n)
                cache.get(key)
                cache.get_or_load(key + 1, lambda: n)
                if n % 50 == 0:
                    cache.forget(key)
        except BaseException as exc:  # a dict changed during iteration, a popitem on an empty dict
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50


def test_storing_a_key_again_restarts_its_age() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10, ttl=5, clock=clock)
    cache.put("a", 1)
    clock.now += 4
    cache.put("a", 2)
    clock.now += 4
    assert cache.get("a") == 2


def test_a_full_cache_drops_expired_entries_before_live_ones() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(3, ttl=5, clock=clock)
    cache.put("old", 0)
    clock.now += 3
    cache.put("b", 1)
    cache.put("c", 2)
    clock.now += 2.5  # "old" has expired, "b" and "c" have not
    cache.put("d", 3)
    assert (cache.get("b"), cache.get("c"), cache.get("d")) == (1, 2, 3)
    assert len(cache) == 3


def test_a_full_cache_of_live_entries_drops_the_one_stored_longest_ago() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(2, ttl=60, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)  # stored again: now the newest
    cache.put("c", 4)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (3, 4)


def test_the_cache_never_holds_more_than_its_bound() -> None:
    cache: TtlCache[int, int] = TtlCache(50, ttl=60, clock=Clock())
    for n in range(1000):
        cache.put(n, n)
    assert len(cache) == 50


def test_get_or_load_loads_once_per_ttl_and_keeps_empty_answers() -> None:
    clock = Clock()
    cache: TtlCache[str, list[int]] = TtlCache(10, ttl=5, clock=clock)
    loads: list[str] = []

    def load() -> list[int]:
        loads.append("x")
        return []

    assert cache.get_or_load("t", load) == []
    assert cache.get_or_load("t", load) == []
    clock.now += 5
    cache.get_or_load("t", load)
    assert len(loads) == 2


def test_zero_ttl_caches_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(10, ttl=0, clock=Clock())
    cache.put("a", 1)
    assert cache.get("a") is None


@pytest.mark.parametrize(("entries", "ttl"), [(0, 5), (10, -1)])
def test_a_cache_without_room_or_with_a_negative_ttl_is_refused(entries: int, ttl: float) -> None:
    with pytest.raises(ValueError):
        TtlCache(entries, ttl)


@dataclass
class CountingRepo(FakeRepo):
    active_reads: int = 0

    def active_endpoints(self, tenant_id: str) -> list[Endpoint]:
        self.active_reads += 1
        return super().active_endpoints(tenant_id)


def routing(clock: Clock, ttl: float = 5) -> tuple[CountingRepo, RoutingCache]:
    repo = CountingRepo()
    return repo, RoutingCache(repo, TtlCache(100, ttl, clock=clock))


def test_routing_reads_a_tenants_endpoints_once_per_ttl() -> None:
    clock = Clock()
    repo, cached = routing(clock)
    for _ in range(50):
        cached.active_endpoints("ten_a")
    clock.now += 5
    cached.active_endpoints("ten_a")
    assert repo.active_reads == 2


def test_routing_sees_this_processs_own_endpoint_changes_at_once() -> None:
    clock = Clock()
    _, cached = routing(clock)
    assert cached.active_endpoints("ten_a") == []
    created = stored_endpoint("ep_one", ["*"])
    cached.create_endpoint(created)
    assert [e.id for e in cached.active_endpoints("ten_a")] == [created.id]
    cached.mark_deleted("ten_a", created.id, "2026-12-07T00:00:00Z", role_arn=None)
    assert cached.active_endpoints("ten_a") == []


def test_routing_sees_another_processs_change_within_the_ttl() -> None:
    clock = Clock()
    repo, cached = routing(clock, ttl=5)
    assert cached.active_endpoints("ten_a") == []
    repo.create_endpoint(stored_endpoint("ep_one", ["*"]))  # written by another execution environment
    assert cached.active_endpoints("ten_a") == []
    clock.now += 5
    assert len(cached.active_endpoints("ten_a")) == 1
