"""The suite's clock: real by default, or moved by TEST_CLOCK_SHIFT for the whole run.

`TEST_CLOCK_SHIFT=+400d ./scripts/test` (or `-30d`, `+12h`) proves that no test depends on the
calendar date. Python's clock moves with time-machine (wall clock only: monotonic timers are
untouched). The database's clock moves without touching the server process: the test
database gets a `public.now()` that adds the same offset to `pg_catalog.now()`, and its
`search_path` puts `public` before `pg_catalog`, so every unqualified `now()` — in our SQL and
in the column defaults the migrations create afterwards — reads the moved clock, while the
server's own timers (statement_timeout, lock_timeout) stay honest. (libfaketime on the server
breaks those timers: a statement timeout never fires.)
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Connection

_SHIFT_PATTERN = re.compile(r"^([+-])(\d+)([dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_traveller = None


def shift_from_environment() -> timedelta:
    """The offset TEST_CLOCK_SHIFT asks for ('' or unset: none)."""
    raw = os.environ.get("TEST_CLOCK_SHIFT", "").strip()
    if not raw:
        return timedelta(0)
    match = _SHIFT_PATTERN.match(raw)
    if not match:
        raise SystemExit(f"TEST_CLOCK_SHIFT={raw!r}: expected e.g. +400d, -30d, +12h, +3600s")
    sign, amount, unit = match.groups()
    offset = timedelta(**{_UNITS[unit]: int(amount)})
    return offset if sign == "+" else -offset


def start_shift_from_environment() -> None:
    """Moves Python's wall clock for the rest of the process (ticking on)."""
    global _traveller
    offset = shift_from_environment()
    if not offset or _traveller is not None:
        return
    import time_machine

    _traveller = time_machine.travel(datetime.now().astimezone() + offset, tick=True)
    _traveller.start()


def shift_database(conn: Connection) -> None:
    """Makes this database's `now()` read the moved clock (no-op without a shift).

    Must run before the migrations, so that column defaults bind to the moved `now()`."""
    offset = shift_from_environment()
    if not offset:
        return
    seconds = int(offset.total_seconds())
    conn.execute(
        text(
            "CREATE OR REPLACE FUNCTION public.now() RETURNS timestamptz"
            " LANGUAGE sql STABLE PARALLEL SAFE"
            f" AS $$ SELECT pg_catalog.now() + interval '{seconds} seconds' $$"
        )
    )
    database = conn.exec_driver_sql("SELECT current_database()").scalar_one()
    conn.exec_driver_sql(f'ALTER DATABASE "{database}" SET search_path = public, pg_catalog')
    conn.exec_driver_sql("SET search_path = public, pg_catalog")


def local_today(timezone: str = "Asia/Shanghai") -> date:
    """Today in the service's time zone, on the (possibly moved) clock."""
    return datetime.now(ZoneInfo(timezone)).date()


def describe() -> str:
    offset = shift_from_environment()
    if not offset:
        return "clock: real"
    moved_now = datetime.now().astimezone()
    return f"clock: moved by {os.environ['TEST_CLOCK_SHIFT']} (now {moved_now:%Y-%m-%d %H:%M %Z})"


def hold_wall_clock(monkeypatch, *modules) -> None:
    """Makes `time.time()` in each module return the instant of this call (its other `time`
    functions stay real), for tests whose answers are keyed by the clock's minute (ETags of
    clock-dependent answers): a minute turning between two of the test's requests must not
    read as a change."""
    import time as real_time

    class Held:
        start = real_time.time()

        def __getattr__(self, name):
            return getattr(real_time, name)

        def time(self):
            return self.start

    for module in modules:
        monkeypatch.setattr(module, "time", Held())
