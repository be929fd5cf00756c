"""Reporting periods (周、月、季、自定义) as half-open intervals [start, end) in local time.

Plain values in, plain values out: `parse_period("week", "2026-W47", None, tz)` is the ISO week
from Monday 2026-11-16 00:00 to Monday 2026-11-23 00:00 in the configured time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PERIOD_KINDS: dict[str, str] = {"week": "周", "month": "月", "quarter": "季度", "custom": "自定义"}

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


class PeriodError(ValueError):
    """A period that cannot be understood; `field` names the offending parameter."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Period:
    kind: str  # week | month | quarter | custom
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware
    label: str  # "2026-W47", "2026-11", "2026-Q4", "2026-11-01~2026-11-15"
    title: str  # Chinese: "2026年第47周（11月16日—11月22日）"

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    def previous(self, n: int = 1) -> Period:
        """The period of the same kind n steps earlier (n < 0: later; custom periods shift
        by their own length)."""
        return _shift(self, -n)

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "label": self.label,
            "title": self.title,
        }


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def week_period(year: int, week: int, tz: ZoneInfo) -> Period:
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise PeriodError(f"{year}年没有第{week}周", "from") from exc
    sunday = monday + timedelta(days=6)
    return Period(
        "week",
        _midnight(monday, tz),
        _midnight(monday + timedelta(days=7), tz),
        f"{year}-W{week:02d}",
        f"{year}年第{week}周（{monday.month}月{monday.day}日—{sunday.month}月{sunday.day}日）",
    )


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    if not 1 <= month <= 12:
        raise PeriodError(f"月份 {month} 不在 1–12 之间", "from")
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period(
        "month",
        _midnight(first, tz),
        _midnight(nxt, tz),
        f"{year}-{month:02d}",
        f"{year}年{month}月",
    )


def quarter_period(year: int, quarter: int, tz: ZoneInfo) -> Period:
    first = date(year, 3 * quarter - 2, 1)
    nxt = date(year + (quarter == 4), (3 * quarter) % 12 + 1, 1)
    return Period(
        "quarter",
        _midnight(first, tz),
        _midnight(nxt, tz),
        f"{year}-Q{quarter}",
        f"{year}年第{'一二三四'[quarter - 1]}季度",
    )


def custom_period(start: datetime, end: datetime) -> Period:
    if start >= end:
        raise PeriodError("开始时间必须早于结束时间（from < to）", "to")
    last = end - timedelta(microseconds=1)
    label = f"{start.date().isoformat()}~{last.date().isoformat()}"
    return Period(
        "custom",
        start,
        end,
        label,
        f"{start.year}年{start.month}月{start.day}日—{last.year}年{last.month}月{last.day}日",
    )


def _shift(p: Period, steps: int) -> Period:
    tz = p.start.tzinfo
    assert isinstance(tz, ZoneInfo)
    if p.kind == "week":
        return period_containing("week", p.start.date() + timedelta(weeks=steps), tz)
    if p.kind == "month":
        index = p.start.year * 12 + p.start.month - 1 + steps
        return month_period(index // 12, index % 12 + 1, tz)
    if p.kind == "quarter":
        index = p.start.year * 4 + (p.start.month - 1) // 3 + steps
        return quarter_period(index // 4, index % 4 + 1, tz)
    length = p.end - p.start
    return custom_period(p.start + steps * length, p.end + steps * length)


def period_containing(kind: str, day: date, tz: ZoneInfo) -> Period:
    if kind == "week":
        year, week, _ = day.isocalendar()
        return week_period(year, week, tz)
    if kind == "month":
        return month_period(day.year, day.month, tz)
    if kind == "quarter":
        return quarter_period(day.year, (day.month - 1) // 3 + 1, tz)
    raise PeriodError(f"未知的统计周期 {kind!r}", "period")


def last_complete(kind: str, today: date, tz: ZoneInfo) -> Period:
    """The latest period of `kind` that ended on or before `today` (上周, 上月, 上季度)."""
    return period_containing(kind, today, tz).previous()


def _parse_instant(value: str, field: str, tz: ZoneInfo) -> datetime:
    try:
        if len(value) == 10:
            return _midnight(date.fromisoformat(value), tz)
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PeriodError(
            f"无法识别的日期 {value!r}，应为 YYYY-MM-DD 或 ISO 8601 时间", field
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


# Periods a ranking may be asked for: trends and comparisons reach back a dozen periods from the
# one asked, and the calendar must not run out on either side (year 1 or 9999: a 500).
FIRST_YEAR, LAST_YEAR = 2000, 2099


def _year(year: int, field: str = "from") -> int:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise PeriodError(f"统计周期须在 {FIRST_YEAR}—{LAST_YEAR} 年之间（收到 {year} 年）", field)
    return year


def parse_period(
    kind: str | None,
    start: str | None,
    end: str | None,
    tz: ZoneInfo,
    today: date,
) -> Period:
    """Reads the `period`, `from`, `to` parameters of the rankings API and the report command.

    week: from = ISO week (2026-W47) or any date inside it; default the last complete week.
    month: from = 2026-11 or a date; quarter: from = 2026-Q4 or a date.
    custom: from and to are dates (local midnight) or ISO times; the period is [from, to).
    """
    kind = (kind or "week").strip().lower()
    if kind not in PERIOD_KINDS:
        raise PeriodError(f"未知的统计周期 {kind!r}，可选：{', '.join(PERIOD_KINDS)}", "period")
    start = (start or "").strip() or None
    end = (end or "").strip() or None
    if kind == "custom":
        if start is None or end is None:
            raise PeriodError("自定义周期需要同时提供 from 和 to（YYYY-MM-DD）", "from")
        first, after = _parse_instant(start, "from", tz), _parse_instant(end, "to", tz)
        _year(first.year, "from")
        _year(after.year, "to")
        return custom_period(first, after)
    if end is not None:
        raise PeriodError(f"{PERIOD_KINDS[kind]}周期只需 from，不接受 to", "to")
    if start is None:
        return last_complete(kind, today, tz)
    if kind == "week" and (m := _WEEK.match(start)):
        return week_period(_year(int(m[1])), int(m[2]), tz)
    if kind == "month" and (m := _MONTH.match(start)):
        return month_period(_year(int(m[1])), int(m[2]), tz)
    if kind == "quarter" and (m := _QUARTER.match(start)):
        return quarter_period(_year(int(m[1])), int(m[2]), tz)
    try:
        day = date.fromisoformat(start)
    except ValueError as exc:
        examples = {"week": "2026-W47", "month": "2026-11", "quarter": "2026-Q4"}
        raise PeriodError(
            f"无法识别的{PERIOD_KINDS[kind]} {start!r}，应如 {examples[kind]} 或 YYYY-MM-DD",
            "from",
        ) from exc
    _year(day.year)
    return period_containing(kind, day, tz)
