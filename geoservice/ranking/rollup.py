"""The rollup of issue events the rankings read (table issue_event_rollup, migration 0021).

Per issue and local day ('d') and per issue and ISO week ('w', keyed by its Monday), a
summary of its state changes: the last change by (at, id) — its time and status —, the last
closure, and whether any change was a 返工, a handling or a rejection. Statement-level
triggers on issue_events keep it (insert: upsert, so events entered out of order or backdated
merge into their bucket; update or delete: the affected weeks of the issue are summarised
again; truncate: emptied). The days and weeks are cut in the zone of the SQL function
`issue_event_rollup_zone()` (the app's TIMEZONE).

A period [from, to) is read as: the whole ISO weeks inside it from the week rows, the whole
days before and after them from the day rows, and the partial days at both ends (a period
not starting at a local midnight) straight from issue_events. Every event of the period is
counted exactly once, so the summary is the one the event scan gives (tests/test_ranking_rollup.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.ranking.periods import Period


@dataclass(frozen=True)
class Segments:
    """Where a period's events are read from: [start, end) ranges (empty when start == end)."""

    weeks: tuple[date, date]  # week rows with Monday in the range
    days_before: tuple[date, date]  # day rows
    days_after: tuple[date, date]
    raw_before: tuple[datetime, datetime]  # events
    raw_after: tuple[datetime, datetime]


def zone(session: Session) -> ZoneInfo:
    return ZoneInfo(session.scalar(text("SELECT issue_event_rollup_zone()")))


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def segments(start: datetime, end: datetime, tz: ZoneInfo) -> Segments:
    """The cover of [start, end) by whole weeks, whole days and raw edges in zone `tz`."""
    local_start = start.astimezone(tz)
    first_day = local_start.date()
    if local_start.timetz().replace(tzinfo=None) != time(0):
        first_day += timedelta(days=1)
    last_day = end.astimezone(tz).date()  # exclusive
    if first_day >= last_day:
        empty_days = (first_day, first_day)
        return Segments((first_day, first_day), empty_days, empty_days, (start, end), (end, end))
    first_monday = first_day + timedelta(days=(7 - first_day.weekday()) % 7)
    last_monday = last_day - timedelta(days=last_day.weekday())
    if first_monday < last_monday:
        weeks = (first_monday, last_monday)
        before, after = (first_day, first_monday), (last_monday, last_day)
    else:
        weeks = (first_day, first_day)
        before, after = (first_day, last_day), (last_day, last_day)
    return Segments(
        weeks,
        before,
        after,
        (start, min(_midnight(first_day, tz), end)),
        (max(_midnight(last_day, tz), start), end),
    )


def params(periods: list[Period] | tuple[Period, ...], tz: ZoneInfo) -> dict[str, list]:
    """The segment bounds of each period, as the arrays the `periods` CTE unnests."""
    cut = [segments(p.start, p.end, tz) for p in periods]
    return {
        "w_from": [c.weeks[0] for c in cut],
        "w_to": [c.weeks[1] for c in cut],
        "d1_from": [c.days_before[0] for c in cut],
        "d1_to": [c.days_before[1] for c in cut],
        "d2_from": [c.days_after[0] for c in cut],
        "d2_to": [c.days_after[1] for c in cut],
        "r1_from": [c.raw_before[0] for c in cut],
        "r1_to": [c.raw_before[1] for c in cut],
        "r2_from": [c.raw_after[0] for c in cut],
        "r2_to": [c.raw_after[1] for c in cut],
    }


def whole_weeks(params: dict) -> bool:
    """Whether every period (of `params`) is exactly one ISO week of the rollup."""
    return all(
        (w_to - w_from).days == 7
        and d1_from == d1_to
        and d2_from == d2_to
        and r1_from == r1_to
        and r2_from == r2_to
        for w_from, w_to, d1_from, d1_to, d2_from, d2_to, r1_from, r1_to, r2_from, r2_to in zip(
            *(
                params[k]
                for k in (
                    "w_from",
                    "w_to",
                    "d1_from",
                    "d1_to",
                    "d2_from",
                    "d2_to",
                    "r1_from",
                    "r1_to",
                    "r2_from",
                    "r2_to",
                )
            ),
            strict=True,
        )
    )
