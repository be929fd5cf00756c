"""The per-worker memo behind the big screen's and the home page's shared figures."""

from __future__ import annotations

from geoservice import ttlcache
from geoservice.ttlcache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_until_it_is_older_than_its_seconds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ttlcache.time, "monotonic", clock)
    cache, calls = TtlCache(), []

    def compute() -> int:
        calls.append(clock.now)
        return len(calls)

    assert cache.get("week", 30, compute) == 1
    clock.now += 29
    assert cache.get("week", 30, compute) == 1
    assert cache.get("other week", 30, compute) == 2  # keys are kept apart
    clock.now += 2
    assert cache.get("week", 30, compute) == 3  # 31 s old: computed again
    assert len(calls) == 3


def test_zero_seconds_never_keeps_anything(monkeypatch):
    cache, calls = TtlCache(), []
    for _ in range(3):
        cache.get("k", 0, lambda: calls.append(1))
    assert len(calls) == 3


def test_expired_values_are_dropped_not_hoarded(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ttlcache.time, "monotonic", clock)
    cache = TtlCache()
    for week in range(50):
        cache.get(("rankings", week), 60, lambda: "rows")
        clock.now += 120
    assert len(cache._items) == 1
