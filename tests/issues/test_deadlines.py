"""Deadlines from the category limit, on the wall clock or on working days (holidays, 调休)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from geoservice.issues.workflow import IssueSettings, WorkCalendar, compute_deadline

TZ = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


# National Day week 2026 (illustrative): 1–7 Oct off, Sat 10 Oct worked instead (调休).
CALENDAR = WorkCalendar(
    holidays=frozenset(date(2026, 10, d) for d in range(1, 8)),
    makeup_workdays=frozenset({date(2026, 10, 10)}),
)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        ("2026-11-18 10:00", 24, "2026-11-19 10:00"),  # Wed → Thu
        ("2026-11-20 15:00", 24, "2026-11-23 15:00"),  # Fri 15:00 → Mon 15:00
        ("2026-11-21 09:00", 24, "2026-11-24 00:00"),  # Sat: the clock starts Monday 00:00
        ("2026-11-20 00:00", 24, "2026-11-21 00:00"),  # a whole Friday ends at midnight
        ("2026-11-16 09:00", 168, "2026-11-25 09:00"),  # 7 working days
        ("2026-09-30 10:00", 24, "2026-10-08 10:00"),  # into the holiday week
        ("2026-10-09 12:00", 24, "2026-10-10 12:00"),  # Fri → the make-up Saturday
        ("2026-10-09 12:00", 48, "2026-10-12 12:00"),  # … then Sunday is off again
    ],
)
def test_working_day_deadlines(start, hours, expected):
    deadline = compute_deadline(local(start), hours, CALENDAR, TZ)
    assert deadline == local(expected)


def test_without_a_calendar_the_wall_clock_counts():
    start = local("2026-11-20 15:00")
    assert compute_deadline(start, 24, None, TZ) == local("2026-11-21 15:00")


def test_settings_read_the_calendar_and_category_limits_from_config(app):
    config = {
        **app.config,
        "DEADLINE_WORKING_DAYS": True,
        "HOLIDAYS": ["2026-10-01", "2026-10-02"],
        "MAKEUP_WORKDAYS": ["2026-10-10"],
    }
    settings = IssueSettings.from_config(config)
    assert settings.calendar.is_working_day(date(2026, 10, 10))
    assert not settings.calendar.is_working_day(date(2026, 10, 1))
    # 道路破损: 72 h = three working days, from Thursday 17 Sep 2026 10:00.
    assert settings.deadline_for("道路破损", local("2026-09-17 10:00")) == local("2026-09-22 10:00")
    assert IssueSettings.from_config({**app.config}).calendar is None


def test_a_bad_holiday_date_fails_at_configuration():
    with pytest.raises(ValueError, match="HOLIDAYS"):
        IssueSettings.from_config(
            {
                "ISSUE_CATEGORIES": {"其他": 72},
                "ISSUE_SOURCES": ["自查"],
                "DEADLINE_WORKING_DAYS": True,
                "HOLIDAYS": ["10/01/2026"],
            }
        )
