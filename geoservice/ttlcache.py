"""Per-worker memo of figures every caller shares and that may be a little old (the big
screen's week totals, the home page's coverage counts and last week's rankings): each value is
kept for a configured number of seconds, then computed again by the next caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class TtlCache:
    def __init__(self) -> None:
        self._items: dict[Hashable, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, seconds: float, compute: Callable[[], T]) -> T:
        """The value kept under `key` if younger than `seconds`, else `compute()` (kept)."""
        if seconds <= 0:
            return compute()
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < seconds:
                return hit[1]  # type: ignore[return-value]
        value = compute()  # outside the lock: one slow computation must not block the others
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if now - v[0] < seconds}
            self._items[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
