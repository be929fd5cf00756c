"""Moves on top of the hand-built week (tests/ranking_case.py), made through the production
workflow (geoservice.issues.workflow.transition) so the events record holders as in production.

W47 is Mon 16 – Sun 22 Nov 2015; everything after Mon 23 00:00 is "later".
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from geoservice.accounts.auth import create_user
from geoservice.issues import workflow
from geoservice.issues.attribution import attribute_issues
from geoservice.models import Issue, IssueEvent, Leader, User
from tests.factories import LAYERS, metres
from tests.ranking_case import GRID_CENTRES, TZ, Case, at, row

SETTINGS = workflow.IssueSettings(
    categories={"环境卫生": 24, "道路破损": 72}, sources=("暗访督查",), tz=TZ
)


def admin(session: Session) -> User:
    return create_user(session, "history-admin", "admin", display_name="测试管理员")


def report(session: Session, case: Case, name: str, grid: str, when: datetime) -> int:
    """An issue reported at `when` in `grid`, attributed as production does."""
    x, y = GRID_CENTRES[grid]
    issue = Issue(
        geom=from_shape(Point(*metres(x + 5, y + 5)), srid=4326),
        category="环境卫生",
        source="暗访督查",
        description=f"测试问题 {name}",
        status="reported",
        reported_at=when,
    )
    session.add(issue)
    session.flush()
    session.add(
        IssueEvent(issue_id=issue.id, at=when, from_status=None, to_status="reported", note="")
    )
    attribute_issues(session, LAYERS, issue.id, issue.id)
    session.expire_all()
    case.issues[name] = issue.id
    return issue.id


def move(
    session: Session,
    actor: User,
    issue_id: int,
    to: str,
    when: datetime,
    leader: int | None = None,
    note: str = "",
) -> IssueEvent:
    event = workflow.transition(
        session, SETTINGS, issue_id, to, actor, note=note or "测试", leader_id=leader, now=when
    )
    session.flush()
    return event


def raw_moves(session: Session, issue_id: int, moves: list[tuple[datetime, str, str]]) -> None:
    """State changes that need photos in production (整改反馈), written as plain events with
    the columns the workflow would leave."""
    issue = session.get(Issue, issue_id)
    for when, before, after in moves:
        session.add(
            IssueEvent(issue_id=issue_id, at=when, from_status=before, to_status=after, note="")
        )
        issue.status = after
        if after == "closed":
            issue.closed_at = when
    session.flush()


def week_moves(session: Session, case: Case, actor: User) -> None:
    """Inside W47.

    H1 (grid 2, C's): dispatched Mon 10:00 with a 24 h limit, due Tue 10:00; on Wed 15:00,
    already overdue, 改派 to A (一局). It keeps its deadline: overdue at the week end, on A.
    H2 (grid 3, D's): reported and accepted Fri, not yet dispatched at the week end.
    """
    h1 = report(session, case, "H1", "g2", at(16, 9))
    move(session, actor, h1, "accepted", at(16, 9, 30))
    move(session, actor, h1, "dispatched", at(16, 10))
    move(session, actor, h1, "dispatched", at(18, 15), leader=case.leaders["A"], note="改派")
    h2 = report(session, case, "H2", "g3", at(20, 9))
    move(session, actor, h2, "accepted", at(20, 10))


def later_moves(session: Session, case: Case, actor: User) -> None:
    """After W47: H1 改派 again (A → B), H2 dispatched by hand to C, I12 reattributed to B
    after an assignment of grid 4 was entered late."""
    from geoservice.issues.issues import reattribute
    from tests.factories import assign

    move(session, actor, case.issues["H1"], "dispatched", at(24, 9), case.leaders["B"], "改派")
    move(session, actor, case.issues["H2"], "dispatched", at(24, 10), case.leaders["C"])
    grid4 = session.get(LAYERS.get("grid").model, case.grids["g4"])
    b = session.get(Leader, case.leaders["B"])
    assign(session, b, grid4, at(1, 0, month=10))
    reattribute(session, LAYERS, at(1, 0), actor.id, now=at(25, 9))
    session.flush()
    session.expire_all()


# W47 by leader with the week's moves (on top of tests/ranking_case.EXPECTED_LEADERS):
EXPECTED_WITH_MOVES = {
    # + H1: received (it is A's at the week end), open and overdue at the end.
    "A": row(
        received=6,
        should_close=6,  # closed I2 I3 I4 + overdue I6 I8 H1
        closed=3,
        closed_on_time=2,
        closed_late=1,
        open_end=4,
        overdue_end=3,
        handled=4,
        reworked=1,
        rejected=1,
        close_rate=0.5,  # 3/6
        on_time_rate=0.3333,  # 2/6
        rework_rate=0.25,
        score=42.5,  # 60·1/3 + 30·1/2 + 10·3/4
        rank=2,
        bottom=True,
    ),
    # + H1 handed over overdue (超期转出): still due (应结案) for C in W47.
    "C": row(
        received=1,
        should_close=3,  # closed I10 + overdue I14 + handed over H1
        closed=1,
        closed_late=1,
        open_end=1,
        overdue_end=1,
        handled=2,
        reworked=1,
        handed_overdue=1,
        close_rate=0.3333,
        on_time_rate=0.0,
        rework_rate=0.5,
        score=15.0,  # 30·1/3 + 10·1/2
        rank=4,
        bottom=True,
    ),
    # + H2: received, open at the end, no deadline yet (not overdue).
    "D": row(
        received=2,
        should_close=1,
        closed=1,
        closed_late=1,
        open_end=1,
        handled=1,
        score=40.0,
        rank=3,
    ),
    "B": row(
        received=1, should_close=1, closed=1, closed_on_time=1, handled=1, relapses=1, score=100.0
    ),
    None: row(received=1, open_end=1, score=None, rank=None),  # I12
}
