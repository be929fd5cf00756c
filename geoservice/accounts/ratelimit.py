"""Fixed-window counters in PostgreSQL (table `rate_counters`).

Kept in the database rather than in process memory so that every gunicorn worker (and every
machine behind a load balancer) counts against the same limit. One upsert per counted event;
the caller commits. Windows are aligned on the database clock.
"""

from __future__ import annotations

import random

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from geoservice.db import autocommit_connection

_HIT = text(
    """
INSERT INTO rate_counters (key, window_start, count, expires_at)
SELECT :key, w.start, :cost, w.start + make_interval(secs => :window)
FROM (SELECT to_timestamp(floor(extract(epoch FROM now()) / :window) * :window) AS start) w
ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + EXCLUDED.count
RETURNING count, ceil(extract(epoch FROM expires_at - now()))::int
"""
)
# The same upsert as a transaction of its own that does not wait for its WAL to reach the disk
# (a counter lost in a crash is harmless; the request's own writes are committed durably).
# One query string: the two statements run as one implicit transaction, in one round trip.
_HIT_NOW = text("SET LOCAL synchronous_commit = off;" + _HIT.text)
_PEEK = text(
    """
SELECT count, ceil(extract(epoch FROM expires_at - now()))::int FROM rate_counters
WHERE key = :key
  AND window_start = to_timestamp(floor(extract(epoch FROM now()) / :window) * :window)
"""
)


def hit(session: Session, key: str, window_s: int, cost: int = 1) -> tuple[int, int]:
    """Counts `cost` events under `key` in the current window.

    Returns (count in this window so far, seconds until the window ends).
    """
    if random.random() < 0.01:
        purge_expired(session)
    count, retry = session.execute(_HIT, {"key": key, "window": window_s, "cost": cost}).one()
    return int(count), max(int(retry), 1)


def hit_now(engine: Engine, key: str, window_s: int, cost: int = 1) -> tuple[int, int]:
    """`hit`, committed at once on a pooled connection of its own (autocommit): one round trip,
    no commit of the caller's transaction (the counter's row lock is held for that statement
    only, so concurrent writes of one account never queue on it), and no wait for the flush."""
    with autocommit_connection(engine.connect()) as conn:
        if random.random() < 0.01:
            purge_expired(conn)
        count, retry = conn.execute(_HIT_NOW, {"key": key, "window": window_s, "cost": cost}).one()
    return int(count), max(int(retry), 1)


def peek(session: Session, key: str, window_s: int) -> tuple[int, int]:
    """(count in the current window, seconds until it ends) without counting."""
    row = session.execute(_PEEK, {"key": key, "window": window_s}).first()
    if row is None:
        return 0, 0
    return int(row[0]), max(int(row[1]), 1)


def clear(session: Session, key: str) -> None:
    session.execute(text("DELETE FROM rate_counters WHERE key = :key"), {"key": key})


def purge_expired(session: Session | Connection) -> int:
    return session.execute(text("DELETE FROM rate_counters WHERE expires_at < now()")).rowcount
