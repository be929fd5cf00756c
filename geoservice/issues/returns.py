"""申请退回 and 确权: "this issue is not mine".

The issue's leader (or their unit) asks to return a dispatched issue, with a reason; a planner
decides (确权). Refused: nothing changes. Granted: the issue was never the returning leader's —
every record of them on the issue is cleared (a retroactive correction,
geoservice.issues.corrections:
for the time before the grant the issue counts for nobody, in the unassigned row, not against
the leader who returned it), and from the grant on it goes to the leader the planner names with
a fresh deadline (a change of holder recorded at the grant, never counted as 超期转出), or back
to the 待派遣 queue when none is named. All three steps are issue events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.accounts.permissions import ACTIONS
from geoservice.issues.corrections import correct_attribution_to
from geoservice.issues.holder_history import holder_of, stamp
from geoservice.issues.workflow import (
    DISPATCH,
    FIX,
    RECTIFYING_STATUSES,
    IssueSettings,
    is_responsible,
    lock_issue,
    role_allows,
    status_label,
)
from geoservice.models import IssueEvent, Leader, User
from geoservice.service_errors import Conflict, Forbidden, InvalidInput

RETURN_ACTIONS = ("return_request", "return_grant", "return_refuse")
Allows = Callable[[str], bool]


def pending_return(session: Session, issue_id: int) -> IssueEvent | None:
    last = session.scalars(
        select(IssueEvent)
        .where(
            IssueEvent.issue_id == issue_id,
            IssueEvent.data["action"].astext.in_(RETURN_ACTIONS),
        )
        .order_by(IssueEvent.at.desc(), IssueEvent.id.desc())
        .limit(1)
    ).first()
    return last if last is not None and last.data["action"] == "return_request" else None


def _event(issue, actor: User, now: datetime, note: str, data: dict[str, Any]) -> IssueEvent:
    return IssueEvent(
        issue_id=issue.id,
        at=now,
        actor_id=actor.id,
        from_status=issue.status,
        to_status=issue.status,
        note=note,
        data=data,
    )


def request_return(
    session: Session,
    issue_id: int,
    actor: User | None,
    reason: str,
    now: datetime | None = None,
    allows: Allows | None = None,
) -> IssueEvent:
    now = now or datetime.now(UTC)
    allows = allows or role_allows(actor)
    issue = lock_issue(session, issue_id)
    if actor is None or not allows(FIX):
        raise Forbidden(f"当前账号无权申请退回（需要权限：{ACTIONS[FIX]}）")
    if actor.role != "admin" and not is_responsible(session, actor, issue):
        raise Forbidden("只有该问题的责任领导或其单位可以申请退回")
    if issue.status not in RECTIFYING_STATUSES:
        raise Conflict(
            f"问题当前状态为「{status_label(issue.status)}」，只有已交办、整改中的问题可以申请退回",
            field="status",
        )
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("请填写申请退回的理由（为何不属于本单位）", field="reason")
    if pending_return(session, issue.id) is not None:
        raise Conflict("该问题已有待确权的退回申请", field="id")
    event = _event(issue, actor, now, reason, {"action": "return_request",
                                               "leader_id": issue.leader_id})  # fmt: skip
    stamp(event, issue, holder_of(issue))
    session.add(event)
    session.flush()
    return event


def decide_return(
    session: Session,
    settings: IssueSettings,
    issue_id: int,
    actor: User | None,
    grant: bool,
    note: str = "",
    leader_id: int | None = None,
    now: datetime | None = None,
    allows: Allows | None = None,
) -> IssueEvent:
    """确权. Granted: cleared from the returning leader's record, then to `leader_id` (fresh
    deadline) or the queue. Refused: `note` says why. The caller commits."""
    now = now or datetime.now(UTC)
    allows = allows or role_allows(actor)
    if actor is None or not allows(DISPATCH):
        raise Forbidden(f"当前账号无权确权（需要权限：{ACTIONS[DISPATCH]}）")
    issue = lock_issue(session, issue_id)
    pending = pending_return(session, issue.id)
    if pending is None:
        raise Conflict("该问题没有待确权的退回申请", field="id")
    note = (note or "").strip()
    if not grant:
        if not note:
            raise InvalidInput("请填写驳回退回申请的理由", field="note")
        event = _event(issue, actor, now, note, {"action": "return_refuse",
                                                 "request_event_id": pending.id})  # fmt: skip
        stamp(event, issue, holder_of(issue))
        session.add(event)
        session.flush()
        return event
    returning = pending.data.get("leader_id")
    target = None
    if leader_id is not None:
        target = session.get(Leader, leader_id)
        if target is None or not target.active:
            raise InvalidInput(f"没有编号为 {leader_id} 的在岗包保领导", field="leader_id")
        if target.id == returning:
            raise InvalidInput("确权对象不能是申请退回的领导", field="leader_id")
    reason = note or pending.note
    correct_attribution_to(session, issue, actor, returning, None, None, f"退回确权：{reason}", now)
    before = holder_of(issue)
    if target is not None:
        issue.leader_id, issue.unit_id = target.id, target.unit_id
        issue.deadline = settings.deadline_for(issue.category, now)
    else:
        issue.leader_id, issue.unit_id = None, None
    issue.attribution = {
        **(issue.attribution or {}),
        "manual": {"leader_id": issue.leader_id, "by": actor.id, "at": now.isoformat()},
    }
    event = _event(
        issue,
        actor,
        now,
        reason,
        {
            "action": "return_grant",
            "request_event_id": pending.id,
            "returned_by_leader_id": returning,
            "leader_id": issue.leader_id,
            "deadline": issue.deadline.isoformat() if issue.deadline else None,
        },
    )
    stamp(event, issue, before)
    session.add(event)
    session.flush()
    return event
