"""Write generations and HTTP validators (issue 19).

Every tracked table has a counter in `data_generations`, bumped by a trigger in the very
transaction that writes the table (migration 0027; `migrate.track_changes` for new tables):
whoever sees the new rows sees the new counter, and no committed write leaves it unchanged.
An answer computed from some tables is therefore unchanged as long as the sum of their counters
is (counters only grow), which makes a cheap validator:

    gen = generation(session, ("issues", "places"))      # None: some table is not tracked
    etag = entity_tag(gen, key)                          # key: URL, format, who may see what

Read the generation *before* the data (READ COMMITTED: a write committed in between makes the
ETag older than the data, never newer, so a 304 is never stale).

`ResponseStore` keeps answers per process (bounded bytes, least recently used dropped) under
such keys, so that clients who see the same rows share one computation. The Flask side (who
may see what, 304s, which views) is geoservice/edge/caching.py.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from geoservice import prepared
from geoservice.db import autocommit_connection

EVERYTHING = "*"  # as a subject: every tracked table


# Cells of this level (about 1 km) count the writes to issues by area (migration 0043).
AREA_LEVEL = 15


@dataclass(frozen=True)
class IssueArea:
    """As a subject of `generation`, in place of the table `issues`: the issues lying in this
    bbox (lon/lat), whose writes are counted per cell (`issue_cell_changes`), so that writes
    elsewhere in the city leave the answer current."""

    bbox: tuple[float, float, float, float]
    # Only the writes that touched an issue with an id up to this one (migration 0045): what
    # can change a page of issues in id order whose last one has this id.
    below: int | None = None

    def cells(self) -> tuple[int, int, int, int]:
        """x0, x1, y0, y1: the cells the bbox touches and one more all round (rounding)."""
        scale = 2**AREA_LEVEL
        west, south, east, north = self.bbox

        def column(lon: float) -> int:
            return math.floor((min(max(lon, -180.0), 180.0) + 180.0) / 360.0 * scale)

        def row(lat: float) -> int:
            r = math.radians(min(max(lat, -85.0511), 85.0511))
            return math.floor((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * scale)

        return column(west) - 1, column(east) + 1, row(north) - 1, row(south) + 1

    def changes_sql(self, name: str) -> tuple[str, dict[str, int]]:
        """A scalar sub-select (driver `%(…)s` style, parameters suffixed `name`): the number
        and id-sum of the area's change rows and the TRUNCATE row, as a bigint[2]."""
        x0, x1, y0, y1 = self.cells()
        params = {f"x0_{name}": x0, f"x1_{name}": x1, f"y0_{name}": y0, f"y1_{name}": y1}
        below = ""
        if self.below is not None:
            below = f" AND first_issue <= %(below_{name})s"
            params[f"below_{name}"] = self.below
        return self.count_sql(name, below, "%({})s"), params

    def count_sql(self, name: str, extra: str = "", style: str = "%({})s") -> str:
        """The scalar sub-select of changes_sql, its parameters written in `style` (e.g. ':{}'
        for SQLAlchemy's text()), `extra` added to its condition."""
        x0, x1, y0, y1 = (style.format(f"{v}_{name}") for v in ("x0", "x1", "y0", "y1"))
        return (
            "(SELECT ARRAY[count(*), COALESCE(sum(id), 0)] FROM issue_cell_changes"
            f" WHERE ((cx BETWEEN {x0} AND {x1} AND cy BETWEEN {y0} AND {y1}) OR cx < 0){extra})"
        )


@dataclass(frozen=True)
class Derived:
    """As a subject of `generation`, in place of a table: a value computed from it (`sql`, a
    scalar sub-select giving a bigint[] without NULLs, e.g. the issues' extent). An answer that
    shows only that value of the table stays current while the value is unchanged, however
    often the table is written."""

    sql: str

    def changes_sql(self, name: str) -> tuple[str, dict[str, int]]:
        return self.sql, {}


# Tables whose writes are also logged with the earliest time of the rows they wrote (migration
# 0046), and the tracked tables derived from them by triggers.
TIMED_TABLES = ("issues", "issue_events")
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
DERIVED_FROM_TIMED = ("issue_tile_counts",)


def written_before(end: datetime, tables: Iterable[str] | None = None) -> tuple[Derived, ...]:
    """Subjects, in place of EVERYTHING, for an answer computed only from issues reported and
    events dated before `end` and from the other tables (a closed period's rankings): the
    write counters of every other tracked table, and the writes to issues and issue_events
    that touched a row dated before `end` (any later report leaves them unchanged). `end`
    itself is part of the generation. `tables`: only these other tables (an answer that reads
    no other), their number counted too (a table not tracked shows as a smaller count)."""
    if end.tzinfo is None:
        raise ValueError("written_before needs an aware datetime")
    skip = ", ".join(f"'{t}'" for t in (*TIMED_TABLES, *DERIVED_FROM_TIMED))
    when = f"'{end.isoformat()}'::timestamptz"
    micros = (end - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    if tables is None:
        others = (
            f"(SELECT ARRAY[COALESCE(sum(generation), 0), {micros}]::bigint[]"
            f" FROM data_generations WHERE subject NOT IN ({skip}))"
        )
    else:
        names = sorted(set(tables))
        if not all(_TABLE_NAME.match(t) for t in names) or set(names) & set(TIMED_TABLES):
            raise ValueError(f"written_before: bad tables {names}")
        listed = ", ".join(f"'{t}'" for t in names)
        others = (
            f"(SELECT ARRAY[count(*), COALESCE(sum(generation), 0), {micros}]::bigint[]"
            f" FROM data_generations WHERE subject IN ({listed}))"
        )
    return (
        Derived(others),
        Derived(
            "(SELECT ARRAY[count(*), COALESCE(sum(id), 0)] FROM issue_cell_changes"
            f" WHERE first_reported < {when})"
        ),
        Derived(
            "(SELECT ARRAY[count(*), COALESCE(sum(id), 0)] FROM event_changes"
            f" WHERE first_at < {when})"
        ),
    )


Generation = Hashable  # an int (tables only), or (tables' int, the areas' counts)


def generation(
    session: Session, subjects: Iterable[str | IssueArea | Derived]
) -> Generation | None:
    """The sum of the write counters of `subjects` (table names; EVERYTHING: all tracked
    tables), or None when one of them is not tracked (its answers must not be cached). With
    IssueArea subjects, also the number and id-sum of their cells' change rows (and of the
    TRUNCATE row), with Derived ones their values: (tables' sum, ((count, sum), …)), in the
    same statement."""
    subjects = list(subjects)
    areas = [s for s in subjects if isinstance(s, IssueArea | Derived)]
    wanted = sorted({s for s in subjects if isinstance(s, str)})
    if EVERYTHING in wanted:
        tables = "SELECT NULL::bigint, sum(generation) FROM data_generations"
    else:
        tables = (
            "SELECT count(*), sum(generation) FROM data_generations"
            " WHERE subject = ANY(%(subjects)s)"
        )
    if not areas:
        rows = read_row(session, tables, {"subjects": wanted})
        if rows[0] is not None and rows[0] != len(wanted):
            return None
        return int(rows[1]) if rows[1] is not None else None
    params: dict[str, Any] = {"subjects": wanted}
    counted = []
    for n, area in enumerate(areas):
        sql, area_params = area.changes_sql(str(n))
        params.update(area_params)
        counted.append(sql)
    rows = read_row(session, f"SELECT t.*, {', '.join(counted)} FROM ({tables}) t", params)
    if rows[0] is not None and rows[0] != len(wanted):
        return None
    return (int(rows[1] or 0), tuple(tuple(int(v) for v in c) for c in rows[2:]))


T = TypeVar("T")
_TOUCHED_SQL = (
    "SELECT coalesce(bool_or(current_setting('geoservice.touched_' || subject, true) = '1'),"
    " false) FROM data_generations"
)


def wrote_tracked(session: Session) -> bool:
    """Whether the session's transaction has written a tracked table (its writes count in the
    generations only once committed)."""
    return bool(session.execute(text(_TOUCHED_SQL)).scalar())


class KeptByGeneration:
    """Values computed from the database, kept per process while the write generation of
    what they read is unchanged (`generation` of their subjects); computed afresh, and not
    kept, in a transaction that has written a tracked table itself (its writes are counted
    only once committed). Each caller gets its own copy. `compute` is given the generation
    the value will be kept under (None: it will not be kept). `copy_value`: how a caller's copy is
    made (a deep copy unless the values' shape allows a cheaper one)."""

    def __init__(self, size: int = 16, copy_value: Callable[[Any], Any] = copy.deepcopy) -> None:
        self.size = size
        self._copy = copy_value
        self._items: OrderedDict[Hashable, tuple[Generation, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        session: Session,
        key: Hashable,
        subjects: Iterable[str | IssueArea | Derived],
        compute: Callable[[Generation | None], T],
    ) -> T:
        if wrote_tracked(session):
            return compute(None)
        current = generation(session, subjects)
        if current is None:
            return compute(None)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == current:
                self._items.move_to_end(key)
                return self._copy(hit[1])
        value = compute(current)
        with self._lock:
            self._items[key] = (current, self._copy(value))
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


# The validators' statements are few shapes (the subjects of each kind of answer), prepared once
# per connection (geoservice.prepared): planning the issues' extent alone costs ~1.5 ms, seven
# times its execution. Each holds a small plan; rankings of past periods add one per period.
VALIDATORS = "validator"
VALIDATORS_PER_CONNECTION = 32


def read_row(session: Session, sql: str, params: dict[str, Any]) -> Any:
    """The one row of a small read (`sql` in the driver's `%(name)s` style) on the session's
    connection, as the session would route it (a replica for reads), straight on a driver
    cursor, prepared once per connection (geoservice.prepared): the statement every validated
    request sends first (issue 19). Errors are SQLAlchemy's, as for any statement; nothing is
    flushed first (no caller has pending writes here)."""
    row = prepared.fetch_row(session, VALIDATORS, VALIDATORS_PER_CONNECTION, sql, params)
    if row is None:
        raise NoResultFound("read_row: no row")
    return row


def entity_tag(generation: Generation, key: Hashable) -> str:
    """A weak ETag for the answer keyed `key` at `generation`."""
    digest = hashlib.blake2b(repr((generation, key)).encode(), digest_size=12).hexdigest()
    return f'W/"{digest}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Does the If-None-Match header name `etag` (weak comparison, `*` included)?"""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


@dataclass(frozen=True)
class Stored:
    etag: str
    generation: Generation
    body: bytes
    mimetype: str
    headers: tuple[tuple[str, str], ...]
    made: float  # time.monotonic()
    window: int | None = None  # the clock window it was made in (answers that depend on time)


class ResponseStore:
    """Answers kept per process, at most `max_bytes` of bodies, least recently used dropped."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, Stored] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Event] = {}

    def get(self, key: Hashable) -> Stored | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: Hashable, item: Stored) -> None:
        if len(item.body) > self.max_bytes // 16:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._items[key] = item
            self._bytes += len(item.body)
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.body)

    def claim(self, key: Hashable) -> bool:
        """Become the one caller computing `key` (True), or learn that another one already is
        (False): callers who find the same answer stale share one computation."""
        with self._lock:
            if key in self._computing:
                return False
            self._computing[key] = threading.Event()
            return True

    def release(self, key: Hashable) -> None:
        """The claimed computation of `key` is over (stored or failed): wake its waiters."""
        with self._lock:
            done = self._computing.pop(key, None)
        if done is not None:
            done.set()

    def wait(self, key: Hashable, timeout: float) -> None:
        """Until the computation of `key` another caller claimed is over (or `timeout`)."""
        with self._lock:
            running = self._computing.get(key)
        if running is not None:
            running.wait(timeout)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)


def usable(
    item: Stored | None, current: Generation, fresh_seconds: float, window: int | None = None
) -> bool:
    """Is a stored answer still good: made at the current generation in the current clock
    `window`, or younger than `fresh_seconds` (answers allowed to lag writes and the clock by
    that much, e.g. rankings)."""
    if item is None:
        return False
    if item.generation == current and item.window == window:
        return True
    return time.monotonic() - item.made < fresh_seconds


def generation_key(generation: Generation) -> int:
    """A generation as the bigint `shared_answers` stores: itself if an int, else a 63-bit
    digest of it (generations by area or by time are tuples)."""
    if isinstance(generation, int):
        return generation
    digest = hashlib.blake2b(repr(generation).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SharedAnswers:
    """One stored answer in `shared_answers` (migration 0041), shared by the worker processes,
    on a pooled autocommit connection of the primary (the table is unlogged: a replica has
    none), with a session advisory lock taken by the process computing it:

        with SharedAnswers(engine, key) as others:
            found = others.fetch()              # Stored or None (`made` on this clock)
            if others.lock(): …compute…; others.put(made)
            else: others.wait_for_lock(30)      # until the other process is done

    The lock is released when the block ends (or with the connection, if it breaks)."""

    def __init__(self, engine: Any, key: Hashable) -> None:
        self.digest = hashlib.blake2b(repr(key).encode(), digest_size=20).hexdigest()
        self.lock_id = int(self.digest[:15], 16)
        self._connection = autocommit_connection(engine.connect())
        self.locked = False

    def __enter__(self) -> SharedAnswers:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.locked:
                self._run("SELECT pg_advisory_unlock(%(id)s)", {"id": self.lock_id})
        finally:
            self._connection.close()

    def _run(self, sql: str, params: dict[str, Any]) -> Any:
        return self._connection.exec_driver_sql(sql, params)

    def fetch(self, current: Generation | None = None) -> Stored | None:
        """The stored answer without its body (b""): enough to decide whether to use it (its
        generation is `current` when it was stored at that generation)."""
        row = self._run(
            "SELECT generation, clock_window, extract(epoch FROM clock_timestamp() - made),"
            " etag, mimetype, headers FROM shared_answers WHERE key = %(key)s",
            {"key": self.digest},
        ).first()
        if row is None:
            return None
        generation, window, age, etag, mimetype, headers = row
        if current is not None and generation == generation_key(current):
            generation = current
        made = time.monotonic() - float(age)
        kept_headers = tuple((name, value) for name, value in headers)
        return Stored(etag, generation, b"", mimetype, kept_headers, made, window)

    def with_body(self, item: Stored) -> Stored | None:
        """`item` (from fetch) with its body, if it is still the one stored."""
        body = self._run(
            "SELECT body FROM shared_answers WHERE key = %(key)s AND etag = %(etag)s",
            {"key": self.digest, "etag": item.etag},
        ).scalar()
        return None if body is None else dataclasses.replace(item, body=zlib.decompress(body))

    def lock(self) -> bool:
        """Take the answer's computation (True), unless another process has it."""
        self.locked = bool(
            self._run("SELECT pg_try_advisory_lock(%(id)s)", {"id": self.lock_id}).scalar()
        )
        return self.locked

    def wait_for_lock(self, timeout: float) -> bool:
        """Until the process computing the answer is done (then the lock is ours), or
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.lock() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.locked

    def put(self, item: Stored) -> None:
        self._run(
            "INSERT INTO shared_answers"
            " (key, generation, clock_window, made, etag, mimetype, headers, body)"
            " VALUES (%(key)s, %(generation)s, %(window)s,"
            " clock_timestamp() - make_interval(secs => %(age)s), %(etag)s, %(mimetype)s,"
            " %(headers)s, %(body)s)"
            " ON CONFLICT (key) DO UPDATE SET generation = EXCLUDED.generation,"
            " clock_window = EXCLUDED.clock_window, made = EXCLUDED.made,"
            " etag = EXCLUDED.etag, mimetype = EXCLUDED.mimetype,"
            " headers = EXCLUDED.headers, body = EXCLUDED.body",
            {
                "key": self.digest,
                "generation": generation_key(item.generation),
                "window": item.window,
                "age": max(time.monotonic() - item.made, 0.0),
                "etag": item.etag,
                "mimetype": item.mimetype,
                "headers": json.dumps([list(pair) for pair in item.headers]),
                "body": zlib.compress(item.body, 1),  # JSON: a tenth, in milliseconds
            },
        )
