"""The rollup the rankings read (geoservice.ranking.rollup) gives the figures of the event scan:
on the hand-built month, for whole weeks, a month, and periods cut mid-day, and after events
entered out of order, backdated corrections, ties on the same instant, updates and deletes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from geoservice.models import IssueEvent
from geoservice.ranking import drilldown, ranking, rollup
from geoservice.ranking import report as notice
from geoservice.ranking.periods import custom_period, month_period, week_period
from tests.factories import LAYERS
from tests.ranking_case import TZ, at, build
from tests.ranking_history_case import admin, later_moves, raw_moves, report, week_moves

W47 = week_period(2015, 47, TZ)
PERIODS = [
    W47,
    W47.previous(),
    W47.previous(-1),
    month_period(2015, 11, TZ),
    # Not on day boundaries: partial days at both ends, whole days, one whole week.
    custom_period(at(10, 13, 30), at(20, 9, 15)),
    custom_period(at(17, 9, 30), at(17, 11)),  # inside one day
    custom_period(at(15, 0), at(24, 0)),  # whole days around one whole week
]


@pytest.fixture
def world(db_session):
    case = build(db_session)
    actor = admin(db_session)
    week_moves(db_session, case, actor)
    later_moves(db_session, case, actor)
    return case, actor


def figures(session, scan_events):
    out = {}
    for of in ranking.groupings(LAYERS):
        per_period = ranking.compute(session, LAYERS, of, PERIODS, scan_events=scan_events)
        out[of] = [sorted(rows, key=lambda r: str(r["key"])) for rows in per_period]
    return out


def reference_rollup(session) -> dict:
    """The rollup computed in Python from every state change (an independent definition)."""
    events = session.execute(
        text(
            "SELECT issue_id, at, id, from_status, to_status FROM issue_events"
            " WHERE from_status IS DISTINCT FROM to_status"
        )
    ).all()
    zone = rollup.zone(session)
    buckets: dict[tuple, list] = defaultdict(list)
    for e in events:
        day = e.at.astimezone(zone).date()
        buckets[("d", day, e.issue_id)].append(e)
        buckets[("w", day - timedelta(days=day.weekday()), e.issue_id)].append(e)
    out = {}
    for key, evs in buckets.items():
        last = max(evs, key=lambda e: (e.at, e.id))
        closes = [e.at for e in evs if e.to_status == "closed"]
        out[key] = (
            last.at,
            last.id,
            last.to_status,
            max(closes) if closes else None,
            any(e.from_status == "fixed" and e.to_status == "in_progress" for e in evs),
            any(e.to_status in ("fixed", "closed") or e.from_status == "fixed" for e in evs),
            any(e.to_status == "rejected" for e in evs),
        )
    return out


def stored_rollup(session) -> dict:
    rows = session.execute(
        text(
            "SELECT grain, start, issue_id, last_at, last_id, last_status, last_close, reworked,"
            " handled, rejected FROM issue_event_rollup"
        )
    ).all()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def assert_same(session):
    assert stored_rollup(session) == reference_rollup(session)
    assert figures(session, scan_events=False) == figures(session, scan_events=True)


def test_the_rollup_gives_the_event_scan_figures(db_session, world):
    assert_same(db_session)
    # The case has every kind of bucket: several changes in a day, in a week, across weeks.
    rows = stored_rollup(db_session)
    changes = db_session.scalar(
        text("SELECT count(*) FROM issue_events WHERE from_status IS DISTINCT FROM to_status")
    )
    days = sum(1 for g, _, _ in rows if g == "d")
    weeks = sum(1 for g, _, _ in rows if g == "w")
    assert changes > days > weeks > 0


def test_segments_cover_the_period_once():
    tz = TZ
    s = rollup.segments(at(10, 13, 30), at(20, 9, 15), tz)
    assert s.raw_before == (at(10, 13, 30), at(11, 0))
    # Wed 11 – Thu 19 whole days; no whole week (Mon 16 – Sun 22 is not inside).
    assert s.days_before == (at(11, 0).date(), at(20, 0).date())
    assert s.weeks[0] == s.weeks[1] and s.days_after[0] == s.days_after[1]
    assert s.raw_after == (at(20, 0), at(20, 9, 15))
    s = rollup.segments(at(15, 0), at(24, 0), tz)
    assert (s.days_before, s.weeks, s.days_after) == (
        (at(15, 0).date(), at(16, 0).date()),
        (at(16, 0).date(), at(23, 0).date()),
        (at(23, 0).date(), at(24, 0).date()),
    )
    assert s.raw_before == (at(15, 0), at(15, 0)) and s.raw_after == (at(24, 0), at(24, 0))
    s = rollup.segments(at(17, 9, 30), at(17, 11), tz)
    assert s.raw_before == (at(17, 9, 30), at(17, 11))
    assert s.raw_after[0] == s.raw_after[1]


def _event(issue_id: int, when: datetime, before: str, after: str, note: str = "") -> IssueEvent:
    return IssueEvent(issue_id=issue_id, at=when, from_status=before, to_status=after, note=note)


def test_out_of_order_backdated_tied_updated_and_deleted_events(db_session, world):
    case, _ = world
    i2, i3, h2 = case.issues["I2"], case.issues["I3"], case.issues["H2"]
    before = figures(db_session, scan_events=True)
    # A backdated correction inside W47, entered after everything of W48: H2 rejected on
    # Fri 20 Nov 11:00, then reopened the same minute (a tie on the instant: id decides).
    db_session.add_all(
        [
            _event(h2, at(20, 11), "accepted", "rejected", "补录"),
            _event(h2, at(20, 11), "rejected", "accepted", "补录更正"),
        ]
    )
    db_session.flush()
    assert_same(db_session)
    # Out of order, one statement: a 返工 of I2 on Thu before its closure on Tue 17 …
    db_session.execute(
        text(
            "INSERT INTO issue_events (issue_id, at, from_status, to_status, note) VALUES"
            " (:i, :late, 'fixed', 'in_progress', ''), (:i, :early, 'in_progress', 'fixed', ''),"
            " (:j, :mid, 'closed', 'closed', '备注')"
        ),
        {"i": i2, "late": at(19, 8), "early": at(18, 8), "j": i3, "mid": at(18, 8)},
    )
    assert_same(db_session)
    after_inserts = figures(db_session, scan_events=True)
    assert after_inserts != before  # the backdated events do change W47
    # An event moved to another week (a corrected time), and one deleted.
    db_session.execute(
        text("UPDATE issue_events SET at = :to WHERE issue_id = :i AND at = :at"),
        {"i": i2, "at": at(19, 8), "to": at(24, 8)},
    )
    assert_same(db_session)
    db_session.execute(
        text("DELETE FROM issue_events WHERE issue_id = :i AND at = :at AND note = '补录更正'"),
        {"i": h2, "at": at(20, 11)},
    )
    assert_same(db_session)
    # An issue deleted: its events go by cascade, and its rollup rows with them.
    db_session.execute(text("DELETE FROM photos WHERE issue_id = :i"), {"i": i3})
    db_session.execute(text("DELETE FROM issues WHERE id = :i"), {"i": i3})
    assert_same(db_session)
    assert not any(issue == i3 for _, _, issue in stored_rollup(db_session))


def test_the_report_computes_every_ranking_at_once_with_the_same_figures(db_session, world):
    offered = list(ranking.groupings(LAYERS))
    for period in (W47, W47.previous(-1)):
        together = ranking.compute_many(db_session, LAYERS, offered, period)
        for of in offered:
            alone = ranking.ranking(db_session, LAYERS, of, period)
            assert together[of] == alone, (of, period.label)
    # W48: H1 改派 A → B while overdue, both of 一局: 超期转出 for A, nothing for the unit.
    w48 = ranking.compute_many(db_session, LAYERS, ["leader", "unit"], W47.previous(-1))
    assert any(r["handed_overdue"] for r in w48["leader"])
    assert not any(r["handed_overdue"] for r in w48["unit"])


def test_an_issue_quiet_in_the_week_keeps_the_state_of_its_last_change_before_it(db_session, world):
    """No change in W47: its state at the week's end is that of its last change before the
    week (reopened in W46), not of an earlier one (rejected in W45)."""
    case, _actor = world

    def open_at_end() -> int:
        (row,) = ranking.compute(db_session, LAYERS, "all", [W47])[0]
        return row["open_end"]

    before = open_at_end()
    issue = report(db_session, case, "跨周", "g1", at(3, 9))  # Tue 3 Nov (W45)
    raw_moves(
        db_session,
        issue,
        [(at(4, 10), "reported", "rejected"), (at(10, 9), "rejected", "accepted")],  # W45, W46
    )
    assert open_at_end() == before + 1
    assert_same(db_session)


def test_the_reports_overdue_list_from_the_figures_run_is_the_drilldowns(db_session, world):
    """The 通报 lists the issues overdue at the period end from the figures' own run: the same
    list, in the same order and with the same details, as the drill-down of 期末超期."""
    listed_somewhere = False
    for period in (W47.previous(), W47, W47.previous(-1)):
        figures, overdue = ranking.figures_and_overdue(
            db_session, LAYERS, ["all", "leader", "unit", "grid"], period
        )
        assert overdue is not None
        drilled = drilldown.issues_behind(
            db_session, LAYERS, "all", 0, "overdue_end", period, limit=None
        )
        assert drilldown.overdue_listed(db_session, LAYERS, period, overdue) == drilled
        assert len(overdue.ids) == drilled["total"] == figures["all"][0]["overdue_end"]
        listed_somewhere |= drilled["total"] > 0
        assert notice.report_data(db_session, LAYERS, period)["overdue"] == drilled["issues"]
    assert listed_somewhere
