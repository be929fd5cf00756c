"""A closed period's ranking is a function of the events up to its end: 改派 keeps the running
deadline, and later 改派, manual dispatch or reattribution do not rewrite it."""

from __future__ import annotations

import pytest

from geoservice.models import Issue
from geoservice.ranking import drilldown, ranking
from geoservice.ranking.periods import week_period
from tests.factories import LAYERS
from tests.ranking_case import TZ, at, build
from tests.ranking_history_case import EXPECTED_WITH_MOVES, admin, later_moves, week_moves

W47 = week_period(2015, 47, TZ)
FIELDS = [*ranking.COUNTS, *ranking.RATES, *ranking.HOURS, "score", "rank", "key"]


@pytest.fixture
def world(db_session):
    case = build(db_session)
    actor = admin(db_session)
    week_moves(db_session, case, actor)
    return case, actor


def by_key(rows):
    return {r["key"]: r for r in rows}


def snapshot(session):
    return {
        of: [{f: r[f] for f in FIELDS} for r in ranking.ranking(session, LAYERS, of, W47)]
        for of in ("leader", "unit", "grid", "community", "all")
    }


def test_redispatch_keeps_the_running_deadline(db_session, world):
    case, _ = world
    h1 = db_session.get(Issue, case.issues["H1"])
    assert h1.leader_id == case.leaders["A"]
    assert h1.deadline == at(17, 10)  # 24 h after the 交办 on Mon 10:00, not Wed 15:00 + 24 h
    redispatch = [
        e for e in _events(db_session, h1.id) if (e.data or {}).get("action") == "redispatch"
    ]
    assert redispatch[0].data["overdue"] is True
    assert (redispatch[0].prev_leader_id, redispatch[0].leader_id) == (
        case.leaders["C"],
        case.leaders["A"],
    )


def test_an_overdue_issue_redispatched_mid_week(db_session, world):
    case, _ = world
    rows = by_key(ranking.ranking(db_session, LAYERS, "leader", W47))
    for name, expected in EXPECTED_WITH_MOVES.items():
        key = case.leaders[name] if name else None
        assert {k: rows[key][k] for k in expected} == expected, name
    # H1 drills to A's overdue issues (overdue since Tue 10:00: 5.6 days at Mon 00:00) and to
    # C's 超期转出 (1.2 days overdue when handed over on Wed 15:00).
    overdue = _drill(db_session, "leader", case.leaders["A"], "overdue_end")
    assert {i["id"]: i["overdue_days"] for i in overdue}[case.issues["H1"]] == 5.6
    # … of which A held it overdue from Wed 15:00: 4.4 days.
    h1 = next(i for i in overdue if i["id"] == case.issues["H1"])
    assert (h1["held_since"], h1["overdue_days_held"]) == (at(18, 15).isoformat(), 4.4)
    handed = _drill(db_session, "leader", case.leaders["C"], "handed_overdue")
    assert [(i["id"], i["overdue_days"]) for i in handed] == [(case.issues["H1"], 1.2)]


def test_units_follow_the_holder_too(db_session, world):
    case, _ = world
    rows = by_key(ranking.ranking(db_session, LAYERS, "unit", W47))
    one, two = rows[case.units["一局"]], rows[case.units["二局"]]
    assert (one["received"], one["should_close"], one["overdue_end"]) == (7, 7, 3)
    assert (two["received"], two["should_close"], two["handed_overdue"]) == (3, 4, 1)
    assert two["open_end"] == 2  # I14 and H2


def test_the_week_is_the_same_before_and_after_all_later_events(db_session, world):
    case, actor = world
    monday_after = snapshot(db_session)
    later_moves(db_session, case, actor)
    # The later moves did happen: H1 is B's, H2 C's, I12 B's now.
    now = {n: db_session.get(Issue, case.issues[n]).leader_id for n in ("H1", "H2", "I12")}
    assert now == {n: case.leaders["B" if n != "H2" else "C"] for n in ("H1", "H2", "I12")}
    assert snapshot(db_session) == monday_after
    # Each count still drills to exactly its issues.
    for r in ranking.ranking(db_session, LAYERS, "leader", W47):
        for indicator in ranking.DRILLABLE:
            found = drilldown.issues_behind(db_session, LAYERS, "leader", r["key"], indicator, W47)
            assert found["total"] == r[indicator], (r["name"], indicator)
    # The next week sees the later moves: H1 handed over overdue by A, I12 B's.
    w48 = by_key(ranking.ranking(db_session, LAYERS, "leader", W47.previous(-1)))
    assert w48[case.leaders["A"]]["handed_overdue"] == 1
    assert case.issues["I12"] in {
        i["id"]
        for i in _drill(db_session, "leader", case.leaders["B"], "open_end", W47.previous(-1))
    }


def _events(session, issue_id):
    from sqlalchemy import select

    from geoservice.models import IssueEvent

    return session.scalars(
        select(IssueEvent).where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.id)
    ).all()


def _drill(session, of, key, indicator, period=W47):
    return drilldown.issues_behind(session, LAYERS, of, key, indicator, period)["issues"]
