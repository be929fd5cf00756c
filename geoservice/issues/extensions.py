"""延期 (deadline extensions) and the optional 立案/交办 time limits.

改派 never gives time (geoservice.issues.workflow keeps the running deadline); a 延期 does: the
responsible side (the issue's leader or their unit, or admin) asks with a reason and the date
it needs, a planner (issues.dispatch) grants it — possibly with another date — or refuses it
with a reason. Request, grant and refusal are issue events (`data.action` extension_request /
extension_grant / extension_refuse); a grant is also a change of deadline recorded with the
values before and after (geoservice.issues.holder_history), so a period that ended before it keeps
the old deadline. The rankings count the three per holder (docs/rankings.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.accounts.permissions import ACTIONS
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
from geoservice.models import Issue, IssueEvent, User
from geoservice.service_errors import Conflict, Forbidden, InvalidInput

EXTENSION_ACTIONS = ("extension_request", "extension_grant", "extension_refuse")
REASON_MAX = 2000

Allows = Callable[[str], bool]


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput("请给出带时区的日期时间（ISO 8601）", field=name)
    return value.astimezone(UTC)


def last_extension_event(session: Session, issue_id: int) -> IssueEvent | None:
    return session.scalars(
        select(IssueEvent)
        .where(
            IssueEvent.issue_id == issue_id,
            IssueEvent.data["action"].astext.in_(EXTENSION_ACTIONS),
        )
        .order_by(IssueEvent.at.desc(), IssueEvent.id.desc())
        .limit(1)
    ).first()


def pending_request(session: Session, issue_id: int) -> IssueEvent | None:
    """The extension request still awaiting a planner's decision, if any."""
    last = last_extension_event(session, issue_id)
    return last if last is not None and last.data["action"] == "extension_request" else None


def _event(issue: Issue, actor: User | None, now: datetime, note: str, data: dict) -> IssueEvent:
    return IssueEvent(
        issue_id=issue.id,
        at=now,
        actor_id=actor.id if actor else None,
        from_status=issue.status,
        to_status=issue.status,
        note=note,
        data=data,
    )


def _reason(text: str | None, hint: str) -> str:
    reason = (text or "").strip()
    if not reason:
        raise InvalidInput(hint, field="reason")
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"理由不能超过 {REASON_MAX} 字", field="reason")
    return reason


def request_extension(
    session: Session,
    issue_id: int,
    actor: User | None,
    reason: str,
    deadline: datetime,
    now: datetime | None = None,
    allows: Allows | None = None,
) -> IssueEvent:
    """The responsible side asks for `deadline` instead of the running one. The caller commits."""
    now = now or datetime.now(UTC)
    allows = allows or role_allows(actor)
    issue = lock_issue(session, issue_id)
    if actor is None or not allows(FIX):
        raise Forbidden(f"当前账号无权申请延期（需要权限：{ACTIONS[FIX]}）")
    if actor.role != "admin" and not is_responsible(session, actor, issue):
        raise Forbidden("只有该问题的责任领导或其单位可以申请延期")
    if issue.status not in RECTIFYING_STATUSES or issue.deadline is None:
        raise Conflict(
            f"问题当前状态为「{status_label(issue.status)}」，只有已交办、整改中的问题可以申请延期",
            {"status": issue.status},
            "status",
        )
    reason = _reason(reason, "请填写申请延期的理由")
    deadline = _aware(deadline, "deadline")
    if deadline <= issue.deadline:
        raise InvalidInput("申请的期限必须晚于当前期限", {"deadline": issue.deadline.isoformat()},
                           "deadline")  # fmt: skip
    if pending_request(session, issue.id) is not None:
        raise Conflict("该问题已有待审批的延期申请", field="id")
    event = _event(
        issue,
        actor,
        now,
        reason,
        {
            "action": "extension_request",
            "requested_deadline": deadline.isoformat(),
            "deadline": issue.deadline.isoformat(),
        },
    )
    stamp(event, issue, holder_of(issue))
    session.add(event)
    session.flush()
    return event


def decide_extension(
    session: Session,
    issue_id: int,
    actor: User | None,
    grant: bool,
    note: str = "",
    deadline: datetime | None = None,
    now: datetime | None = None,
    allows: Allows | None = None,
) -> IssueEvent:
    """A planner grants the pending request (its date, or `deadline`) or refuses it (with a
    reason). The caller commits."""
    now = now or datetime.now(UTC)
    allows = allows or role_allows(actor)
    issue = lock_issue(session, issue_id)
    if actor is None or not allows(DISPATCH):
        raise Forbidden(f"当前账号无权审批延期（需要权限：{ACTIONS[DISPATCH]}）")
    pending = pending_request(session, issue.id)
    if pending is None:
        raise Conflict("该问题没有待审批的延期申请", field="id")
    if issue.status not in RECTIFYING_STATUSES or issue.deadline is None:
        raise Conflict(
            f"问题当前状态为「{status_label(issue.status)}」，不能再延期", field="status"
        )
    before = holder_of(issue)
    data: dict[str, Any] = {"action": "extension_grant" if grant else "extension_refuse",
                            "request_event_id": pending.id}  # fmt: skip
    if grant:
        new = _aware(deadline, "deadline") if deadline is not None else None
        new = new or datetime.fromisoformat(pending.data["requested_deadline"])
        if new <= issue.deadline:
            raise InvalidInput("批准的期限必须晚于当前期限", field="deadline")
        data.update(previous_deadline=issue.deadline.isoformat(), deadline=new.isoformat())
        issue.deadline = new
        note = (note or "").strip() or "批准延期"
    else:
        note = _reason(note, "请填写驳回延期的理由")
    event = _event(issue, actor, now, note, data)
    stamp(event, issue, before)
    session.add(event)
    session.flush()
    return event


def extension_view(session: Session, issue_id: int) -> dict[str, Any]:
    """The issue's extension history and the pending request (for the issue page and API)."""
    rows = session.scalars(
        select(IssueEvent)
        .where(
            IssueEvent.issue_id == issue_id,
            IssueEvent.data["action"].astext.in_(EXTENSION_ACTIONS),
        )
        .order_by(IssueEvent.at, IssueEvent.id)
    ).all()
    return extension_view_of(rows)


def extension_view_of(events: Sequence[IssueEvent]) -> dict[str, Any]:
    """The same from the issue's events already loaded (in timeline order)."""
    items = [
        {
            "event_id": e.id,
            "action": e.data["action"],
            "at": e.at.isoformat(),
            "actor_id": e.actor_id,
            "note": e.note,
            "requested_deadline": e.data.get("requested_deadline"),
            "deadline": e.data.get("deadline"),
            "leader_id": e.leader_id,
        }
        for e in events
        if (e.data or {}).get("action") in EXTENSION_ACTIONS
    ]
    pending = items[-1] if items and items[-1]["action"] == "extension_request" else None
    return {"items": items, "pending": pending}


# --- 立案 / 交办 time limits -----------------------------------------------------------------


def sla_flags(
    session: Session, settings: IssueSettings, issue: Issue, now: datetime | None = None
) -> dict[str, Any]:
    """立案时限 (ACCEPT_SLA_HOURS after the report) and 交办时限 (DISPATCH_SLA_HOURS after 立案),
    each {due, done_at, overdue}: overdue when done after `due`, or not done and `due` passed.
    Absent when the setting is not configured. Counted on the wall clock or, with the working-day
    calendar, on working hours (as the deadlines)."""
    from geoservice.issues.workflow import compute_deadline

    now = now or datetime.now(UTC)
    out: dict[str, Any] = {}
    if settings.accept_sla_hours is None and settings.dispatch_sla_hours is None:
        return out
    firsts = dict(
        session.execute(
            select(IssueEvent.to_status, IssueEvent.at)
            .where(
                IssueEvent.issue_id == issue.id,
                IssueEvent.from_status.is_distinct_from(IssueEvent.to_status),
                IssueEvent.to_status.in_(("accepted", "rejected", "dispatched")),
            )
            .order_by(IssueEvent.at.desc(), IssueEvent.id.desc())
        ).all()
    )  # the first of each (later rows overwritten by earlier ones: ordered newest first)
    decided = min((firsts[s] for s in ("accepted", "rejected") if s in firsts), default=None)

    def flag(start: datetime | None, hours: float | None, done: datetime | None):
        if hours is None or start is None:
            return None
        due = compute_deadline(start, hours, settings.calendar, settings.tz)
        late = (done or now) > due
        return {
            "due": due.isoformat(),
            "done_at": done.isoformat() if done else None,
            "overdue": late,
            "hours": hours,
        }

    accept = flag(issue.reported_at, settings.accept_sla_hours, decided)
    if accept is not None:
        out["accept"] = accept
    dispatch = flag(firsts.get("accepted"), settings.dispatch_sla_hours, firsts.get("dispatched"))
    if dispatch is not None:
        out["dispatch"] = dispatch
    return out
