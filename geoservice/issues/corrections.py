"""Attribution corrections (纠正责任归属): the one retroactive change.

改派, 交办 and reattribution change an issue's holder *from now on*
(geoservice.issues.holder_history), so closed periods keep their figures. A correction says the
recorded responsibility was wrong from the start ("this issue was never 甲's, it was 乙's"): a
planner names the right leader and gives a reason, and every record of the wrong leader on the
issue — its current columns and the holder recorded on its events — becomes the right one (and
the units with them). Periods already published may therefore recompute differently; their pages
show "重算结果不同" and list the corrections (geoservice.ranking.publications.check). The correction
is an event (action attribution_correction) with who, when, why, and the leaders before and
after.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from geoservice.accounts.permissions import ACTIONS
from geoservice.issues.workflow import DISPATCH, lock_issue, role_allows
from geoservice.models import IssueEvent, Leader, User
from geoservice.service_errors import Forbidden, InvalidInput


def _first_holder(session: Session, issue) -> tuple[int | None, int | None]:
    """The leader and unit recorded when the issue was reported."""
    first = session.execute(
        select(IssueEvent.prev_leader_id, IssueEvent.prev_unit_id)
        .where(IssueEvent.issue_id == issue.id, IssueEvent.holder_change)
        .order_by(IssueEvent.at, IssueEvent.id)
        .limit(1)
    ).first()
    return (first[0], first[1]) if first else (issue.leader_id, issue.unit_id)


def correct_attribution(
    session: Session,
    issue_id: int,
    actor: User | None,
    leader_id: int,
    reason: str,
    wrong_leader_id: int | None = None,
    now: datetime | None = None,
    allows: Callable[[str], bool] | None = None,
) -> IssueEvent:
    """Replaces `wrong_leader_id` (default: the leader recorded at report time) by `leader_id`
    in the issue's whole history. The caller commits."""
    now = now or datetime.now(UTC)
    allows = allows or role_allows(actor)
    if actor is None or not allows(DISPATCH):
        raise Forbidden(f"当前账号无权纠正责任归属（需要权限：{ACTIONS[DISPATCH]}）")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("请填写纠正的理由", field="reason")
    issue = lock_issue(session, issue_id)
    right = session.get(Leader, leader_id)
    if right is None:
        raise InvalidInput(f"没有编号为 {leader_id} 的包保领导", field="leader_id")
    if wrong_leader_id is None:
        wrong_leader_id = _first_holder(session, issue)[0]
    if wrong_leader_id == right.id:
        raise InvalidInput("纠正后的责任领导与原记录相同", field="leader_id")
    return correct_attribution_to(
        session, issue, actor, wrong_leader_id, right.id, right.unit_id, reason, now
    )


def correct_attribution_to(
    session: Session,
    issue,
    actor: User,
    wrong_leader_id: int | None,
    leader_id: int | None,
    unit_id: int | None,
    reason: str,
    now: datetime,
) -> IssueEvent:
    """Replaces `wrong_leader_id` by `leader_id` (None: nobody) in the locked issue's whole
    recorded history, and writes the correction event."""
    wrong_unit_id = session.scalar(select(Leader.unit_id).where(Leader.id == wrong_leader_id))
    events = IssueEvent.__table__.c
    for leader_col, unit_col in (("leader_id", "unit_id"), ("prev_leader_id", "prev_unit_id")):
        session.execute(
            update(IssueEvent.__table__)
            .where(
                events.issue_id == issue.id,
                events[leader_col].is_not_distinct_from(wrong_leader_id),
            )
            .values({leader_col: leader_id, unit_col: unit_id})
        )
    if issue.leader_id == wrong_leader_id:
        issue.leader_id, issue.unit_id = leader_id, unit_id
    issue.attribution = {
        **(issue.attribution or {}),
        "corrected": {
            "from_leader_id": wrong_leader_id,
            "leader_id": leader_id,
            "by": actor.id,
            "at": now.isoformat(),
            "reason": reason,
        },
    }
    event = IssueEvent(
        issue_id=issue.id,
        at=now,
        actor_id=actor.id,
        from_status=issue.status,
        to_status=issue.status,
        note=reason,
        data={
            "action": "attribution_correction",
            "from_leader_id": wrong_leader_id,
            "from_unit_id": wrong_unit_id,
            "to_leader_id": leader_id,
            "to_unit_id": unit_id,
        },
        leader_id=issue.leader_id,
        unit_id=issue.unit_id,
        deadline=issue.deadline,
    )
    session.add(event)
    session.flush()
    return event
