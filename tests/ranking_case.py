"""A hand-built week (2015-W47: the same calendar as 2026, safely in the past) of issues and
events with known ranking answers.

Grid 1 is 包保 by leader A until Wed 18 Nov 12:00, then by B (reassigned mid-period); grid 2
by C, grid 3 by D, grid 4 by nobody. A and B belong to unit 一局, C and D to unit 二局. Grids
1–2 lie in community 甲, grids 3–4 in community 乙, both in one street. Attribution (who was
responsible at report time) is computed by geoservice.issues.attribution, as in production.

Every issue's current columns (status, deadline, closed_at, rework_count) are what the
workflow leaves after its events. The expected figures are worked out by hand in
EXPECTED below (and in docs/rankings.md, "A worked example").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from geoservice.issues.attribution import attribute_issues
from geoservice.models import AdminArea, Issue, IssueEvent
from tests.factories import LAYERS, add_feature, add_leader, assign, metres, rect

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2015, month, day, hour, minute, tzinfo=TZ)


@dataclass
class Case:
    leaders: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    grids: dict[str, int] = field(default_factory=dict)
    areas: dict[str, int] = field(default_factory=dict)
    issues: dict[str, int] = field(default_factory=dict)


# (name, grid, reported, deadline, [(time, from, to), …] after the report, extra columns)
# fmt: off
ISSUES = [
    # Closed the week before: nothing in W47. A note in W47 must not count as a change.
    ("I1", "g1", at(10, 9), at(12, 11), [
        (at(10, 10), "reported", "accepted"), (at(10, 11), "accepted", "dispatched"),
        (at(11, 9), "dispatched", "in_progress"), (at(14, 9), "in_progress", "fixed"),
        (at(15, 9), "fixed", "closed"), (at(17, 9), "closed", "closed"),
    ], {}),
    # Reported before, due and closed on time inside the week.
    ("I2", "g1", at(12, 9), at(17, 10), [
        (at(12, 10), "reported", "accepted"), (at(12, 11), "accepted", "dispatched"),
        (at(13, 9), "dispatched", "in_progress"), (at(16, 10), "in_progress", "fixed"),
        (at(17, 9), "fixed", "closed"),
    ], {}),
    # Received and closed late.
    ("I3", "g1", at(16, 8), at(17, 8), [
        (at(16, 8, 30), "reported", "accepted"), (at(16, 9), "accepted", "dispatched"),
        (at(16, 10), "dispatched", "in_progress"), (at(18, 9), "in_progress", "fixed"),
        (at(19, 10), "fixed", "closed"),
    ], {}),
    # Reworked once, then closed on time.
    ("I4", "g1", at(16, 9), at(20, 9), [
        (at(16, 9, 30), "reported", "accepted"), (at(16, 10), "accepted", "dispatched"),
        (at(16, 11), "dispatched", "in_progress"), (at(17, 9), "in_progress", "fixed"),
        (at(17, 15), "fixed", "in_progress"), (at(18, 9), "in_progress", "fixed"),
        (at(18, 12), "fixed", "closed"),
    ], {}),
    # Rejected (不予立案).
    ("I5", "g1", at(17, 10), None, [(at(17, 11), "reported", "rejected")], {}),
    # Backlog: overdue since the 15th, idle all week except a note.
    ("I6", "g1", at(14, 9), at(15, 11), [
        (at(14, 10), "reported", "accepted"), (at(14, 11), "accepted", "dispatched"),
        (at(14, 15), "dispatched", "in_progress"), (at(19, 9), "in_progress", "in_progress"),
    ], {}),
    # Open at the end, due next week.
    ("I7", "g1", at(18, 10), at(25, 11), [
        (at(18, 10, 30), "reported", "accepted"), (at(18, 11), "accepted", "dispatched"),
    ], {}),
    # Fixed in the week, closed only after it (24th): open and overdue at the period end
    # although its current status is closed.
    ("I8", "g1", at(17, 9), at(21, 9), [
        (at(17, 10), "reported", "accepted"), (at(17, 11), "accepted", "dispatched"),
        (at(20, 9), "dispatched", "in_progress"), (at(22, 10), "in_progress", "fixed"),
        (at(24, 9), "fixed", "closed"),
    ], {}),
    # After the reassignment: B's. A relapse of I1, closed on time.
    ("I9", "g1", at(19, 9), at(20, 9), [
        (at(19, 9, 30), "reported", "accepted"), (at(19, 10), "accepted", "dispatched"),
        (at(19, 12), "dispatched", "in_progress"), (at(19, 18), "in_progress", "fixed"),
        (at(20, 8), "fixed", "closed"),
    ], {"relapse_of": "I1"}),
    # C: received, closed late.
    ("I10", "g2", at(16, 10), at(17, 10), [
        (at(16, 10, 30), "reported", "accepted"), (at(16, 11), "accepted", "dispatched"),
        (at(17, 9), "dispatched", "in_progress"), (at(18, 9), "in_progress", "fixed"),
        (at(21, 10), "fixed", "closed"),
    ], {}),
    # A duplicate of I10: left out of everything.
    ("I11", "g2", at(16, 11), None, [], {"duplicate_of": "I10"}),
    # Nobody answers for grid 4: the unassigned row.
    ("I12", "g4", at(18, 9), None, [], {}),
    # C: fixed on the 6th, sent back (返工) inside the week, still open and overdue.
    ("I14", "g2", at(2, 9), at(5, 11), [
        (at(2, 10), "reported", "accepted"), (at(2, 11), "accepted", "dispatched"),
        (at(3, 9), "dispatched", "in_progress"), (at(6, 9), "in_progress", "fixed"),
        (at(16, 10), "fixed", "in_progress"),
    ], {}),
    # D: closed 4 h late.
    ("I15", "g3", at(17, 10), at(18, 11), [
        (at(17, 10, 30), "reported", "accepted"), (at(17, 11), "accepted", "dispatched"),
        (at(17, 12), "dispatched", "in_progress"), (at(18, 10), "in_progress", "fixed"),
        (at(18, 15), "fixed", "closed"),
    ], {}),
]
# fmt: on

GRID_CENTRES = {"g1": (50, 50), "g2": (150, 50), "g3": (250, 50), "g4": (350, 50)}


def build(session: Session) -> Case:
    case = Case()
    county = _area(session, "county", "320901", "测试县", None)
    street = _area(session, "street", "320901001", "测试街道", county)
    comm_a = _area(session, "community", "320901001001", "甲社区", street)
    comm_b = _area(session, "community", "320901001002", "乙社区", street)
    case.areas = {"street": street.id, "甲": comm_a.id, "乙": comm_b.id}
    for n, (name, community) in enumerate(
        [("g1", comm_a), ("g2", comm_a), ("g3", comm_b), ("g4", comm_b)]
    ):
        grid = add_feature(
            session,
            "grid",
            f"320901001{community.code[-3:]}{n + 1:03d}",
            rect(100 * n, 0, 100 * (n + 1), 100),
            name=f"网格{n + 1}",
            community_id=community.id,
        )
        case.grids[name] = grid.id
    a = add_leader(session, "甲领导", unit="一局")
    b = add_leader(session, "乙领导", unit="一局")
    c = add_leader(session, "丙领导", unit="二局")
    d = add_leader(session, "丁领导", unit="二局")
    case.leaders = {"A": a.id, "B": b.id, "C": c.id, "D": d.id}
    case.units = {"一局": a.unit_id, "二局": c.unit_id}
    places = {name: session.get(LAYERS.get("grid").model, pid) for name, pid in case.grids.items()}
    assign(session, a, places["g1"], at(1, 0, month=10), at(18, 12))
    assign(session, b, places["g1"], at(18, 12))
    assign(session, c, places["g2"], at(1, 0, month=10))
    assign(session, d, places["g3"], at(1, 0, month=10))

    for name, grid, reported, deadline, moves, extra in ISSUES:
        x, y = GRID_CENTRES[grid]
        events = [(reported, None, "reported"), *moves]
        changes = [e for e in events if e[1] != e[2]]
        status = changes[-1][2]
        issue = Issue(
            geom=from_shape(Point(*metres(x, y)), srid=4326),
            category="环境卫生" if name != "I14" else "道路破损",
            source="暗访督查" if name not in ("I3", "I10") else "12345热线",
            description=f"测试问题 {name}",
            status=status,
            reported_at=reported,
            deadline=deadline,
            closed_at=changes[-1][0] if status == "closed" else None,
            rework_count=sum(1 for e in changes if e[1:] == ("fixed", "in_progress")),
            relapse_of_id=case.issues.get(extra.get("relapse_of", "")),
            duplicate_of_id=case.issues.get(extra.get("duplicate_of", "")),
        )
        session.add(issue)
        session.flush()
        case.issues[name] = issue.id
        for moment, before, after in events:
            session.add(
                IssueEvent(
                    issue_id=issue.id, at=moment, from_status=before, to_status=after, note=""
                )
            )
    session.flush()
    ids = sorted(case.issues.values())
    attribute_issues(session, LAYERS, ids[0], ids[-1])
    session.expire_all()
    return case


def _area(session: Session, level: str, code: str, name: str, parent) -> AdminArea:
    area = AdminArea(
        level=level,
        code=code,
        name=name,
        parent_id=parent.id if parent else None,
        geom=from_shape(rect(-1000, -1000, 1000, 1000), srid=4326),
    )
    session.add(area)
    session.flush()
    return area


def row(
    received=0,
    should_close=0,
    closed=0,
    closed_on_time=0,
    closed_late=0,
    open_end=0,
    overdue_end=0,
    handled=0,
    reworked=0,
    relapses=0,
    rejected=0,
    **rest,
) -> dict:
    return {
        "received": received,
        "should_close": should_close,
        "closed": closed,
        "closed_on_time": closed_on_time,
        "closed_late": closed_late,
        "open_end": open_end,
        "overdue_end": overdue_end,
        "handled": handled,
        "reworked": reworked,
        "relapses": relapses,
        "rejected": rejected,
        **rest,
    }


# Leaders in W47 (worked out in docs/rankings.md).
EXPECTED_LEADERS = {
    "A": row(
        received=5,  # I3 I4 I5 I7 I8
        should_close=5,  # closed I2 I3 I4 + overdue I6 I8
        closed=3,
        closed_on_time=2,  # I2 I4
        closed_late=1,  # I3
        open_end=3,  # I6 I7 I8
        overdue_end=2,  # I6 I8
        handled=4,  # I2 I3 I4 I8
        reworked=1,  # I4
        rejected=1,  # I5
        close_rate=0.6,
        on_time_rate=0.4,
        rework_rate=0.25,
        score=49.5,  # 60·0.4 + 30·0.6 + 10·0.75
        avg_hours_to_close=81.67,  # (120 + 74 + 51) / 3
        median_hours_to_close=74.0,
        rank=2,
        bottom=True,
        below_threshold=True,
    ),
    "B": row(
        received=1,
        should_close=1,
        closed=1,
        closed_on_time=1,
        handled=1,
        relapses=1,
        close_rate=1.0,
        on_time_rate=1.0,
        rework_rate=0.0,
        score=100.0,
        avg_hours_to_close=23.0,
        median_hours_to_close=23.0,
        rank=1,
        bottom=False,
        below_threshold=False,
    ),
    "C": row(
        received=1,  # I10 (I11 is a duplicate)
        should_close=2,  # closed I10 + overdue I14
        closed=1,
        closed_late=1,
        open_end=1,
        overdue_end=1,
        handled=2,  # I10, I14 (sent back in the week)
        reworked=1,
        close_rate=0.5,
        on_time_rate=0.0,
        rework_rate=0.5,
        score=20.0,
        avg_hours_to_close=120.0,
        median_hours_to_close=120.0,
        rank=4,
        bottom=True,
        below_threshold=True,
    ),
    "D": row(
        received=1,
        should_close=1,
        closed=1,
        closed_late=1,
        handled=1,
        close_rate=1.0,
        on_time_rate=0.0,
        rework_rate=0.0,
        score=40.0,
        avg_hours_to_close=29.0,
        median_hours_to_close=29.0,
        rank=3,
        bottom=True,
        below_threshold=True,
    ),
    None: row(
        received=1,  # I12, never accepted
        open_end=1,
        close_rate=None,
        on_time_rate=None,
        rework_rate=None,
        score=None,
        avg_hours_to_close=None,
        median_hours_to_close=None,
        rank=None,
        bottom=False,
        below_threshold=False,
    ),
}
