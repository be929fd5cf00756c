"""回访: after 销号 the reporter answers 满意 / 基本满意 / 不满意 (with a comment) on the ticket
page; 不满意 waits for a planner who reopens the issue (重新交办) or keeps it closed. The
群众满意率 figures per ranking row come from here (geoservice.ranking reads them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.citizens import publish
from geoservice.citizens.intake import last_close_event
from geoservice.citizens.models import (
    FEEDBACK_ANSWERS,
    SATISFIED_ANSWERS,
    CitizenFeedback,
)
from geoservice.input_values import shown
from geoservice.issues.holder_history import holder_of, stamp
from geoservice.issues.workflow import Allows, IssueSettings, lock_issue, role_allows, status_label
from geoservice.models import Issue, IssueEvent, Leader, User
from geoservice.service_errors import Conflict, Forbidden, InvalidInput, NotFound

MAX_COMMENT = 500


CHANNELS = {"ticket": "群众回访", "hotline": "热线回访", "staff": "电话回访"}


def answer(
    session: Session,
    issue_id: int,
    raw_answer: Any,
    comment: Any = "",
    now: datetime | None = None,
    channel: str = "ticket",
) -> CitizenFeedback:
    """Records the reporter's answer to the issue's last 销号 (once per 销号), from the ticket
    page, the hotline's callback or a planner's phone call (`channel`). The caller commits."""
    now = now or datetime.now(UTC)
    if channel not in CHANNELS:
        raise InvalidInput(f"未知回访渠道 {shown(channel)}", {"channels": CHANNELS}, "channel")
    if not isinstance(raw_answer, str) or raw_answer not in FEEDBACK_ANSWERS:
        raise InvalidInput(
            "请选择：满意、基本满意或不满意", {"answers": FEEDBACK_ANSWERS}, "answer"
        )
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise InvalidInput("意见应为文字", field="comment")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"意见不能超过 {MAX_COMMENT} 字", field="comment")
    issue = session.scalars(
        select(Issue).where(Issue.id == issue_id).with_for_update()
    ).one_or_none()
    if issue is None:
        raise NotFound(f"没有编号为 {issue_id} 的问题", field="id")
    close = last_close_event(session, issue.id) if issue.status == "closed" else None
    if close is None:
        raise Conflict("问题尚未销号，销号后才能评价", field="answer")
    if session.scalar(select(CitizenFeedback.id).where(CitizenFeedback.close_event_id == close.id)):
        raise Conflict("您已评价过本次办理结果", field="answer")
    feedback = CitizenFeedback(
        issue_id=issue.id,
        close_event_id=close.id,
        answer=raw_answer,
        comment=comment,
        channel=channel,
        at=now,
    )
    session.add(feedback)
    label = FEEDBACK_ANSWERS[raw_answer]
    session.add(
        IssueEvent(
            issue_id=issue.id,
            at=now,
            from_status="closed",
            to_status="closed",
            note=f"{CHANNELS[channel]}：{label}"
            + (f"。意见：{comment}" if comment else "")
            + ("（待督办人员研判是否重新交办）" if raw_answer == "unsatisfied" else ""),
            data={"action": "feedback", "answer": raw_answer},
        )
    )
    session.flush()
    return feedback


DECISIONS = {"reopen": "重新交办", "keep": "维持销号"}


def decide(
    session: Session,
    issue_settings: IssueSettings,
    feedback_id: int,
    decision: Any,
    actor: User | None,
    note: str = "",
    leader_id: int | None = None,
    allows: Allows | None = None,
    now: datetime | None = None,
    leader_allowed: Callable[[int], bool] | None = None,
) -> CitizenFeedback:
    """A planner's decision on a 不满意: reopen (closed → 已交办, through the workflow, so
    permission, leader and deadline are the workflow's) or keep closed (with a reason).
    `leader_allowed`: whether the caller may dispatch to a leader (its area's). The caller
    commits."""
    now = now or datetime.now(UTC)
    feedback = session.scalars(
        select(CitizenFeedback).where(CitizenFeedback.id == feedback_id).with_for_update()
    ).one_or_none()
    if feedback is None:
        raise NotFound(f"没有编号为 {feedback_id} 的回访", field="id")
    if decision not in DECISIONS:
        raise InvalidInput(
            "decision 只能是 reopen（重新交办）或 keep（维持销号）", field="decision"
        )
    if feedback.answer != "unsatisfied":
        raise Conflict("只有「不满意」的回访需要研判", field="decision")
    if feedback.decision is not None:
        raise Conflict("该回访已研判", {"decision": feedback.decision}, "decision")
    note = (note or "").strip()
    if not (allows or role_allows(actor))("issues.dispatch"):
        raise Forbidden("当前账号无权研判回访（需要督办权限）")
    if decision == "reopen":
        reopen(session, issue_settings, feedback, actor, note, leader_id, now, leader_allowed)
        feedback.decision = "reopened"
    else:
        if not note:
            raise InvalidInput("请填写维持销号的理由", field="note")
        session.add(
            IssueEvent(
                issue_id=feedback.issue_id,
                at=now,
                actor_id=actor.id if actor else None,
                from_status="closed",
                to_status="closed",
                note=f"回访不满意，经研判维持销号：{note}",
                data={"action": "feedback_kept", "feedback_id": feedback.id},
            )
        )
        feedback.decision = "kept"
    feedback.decision_note = note or None
    feedback.decided_by_id = actor.id if actor else None
    feedback.decided_at = now
    session.flush()
    publish.CACHE.clear()
    return feedback


def reopen(
    session: Session,
    issue_settings: IssueSettings,
    feedback: CitizenFeedback,
    actor: User | None,
    note: str,
    leader_id: int | None,
    now: datetime,
    leader_allowed: Callable[[int], bool] | None = None,
) -> IssueEvent:
    """已销号 → 已交办 after a 不满意 a planner upheld: a new deadline, the chosen (or the
    recorded) leader, one event. Deliberately not one of workflow.TRANSITIONS: it is never
    offered as a button on a closed issue, only as the answer to a 回访."""
    issue = lock_issue(session, feedback.issue_id)
    if issue.status != "closed":
        raise Conflict(
            f"问题当前状态为「{status_label(issue.status)}」，只有已销号的问题可以重新交办",
            {"status": issue.status},
            "decision",
        )
    chosen = leader_id if leader_id is not None else issue.leader_id
    leader = session.get(Leader, chosen) if chosen is not None else None
    if leader is not None and leader_allowed is not None and not leader_allowed(leader.id):
        leader = None  # another area's leader: refused as an unknown one
    if leader is None or not leader.active:
        raise InvalidInput("请指定在岗的包保领导（leader_id）以重新交办", field="leader_id")
    before = holder_of(issue)
    issue.leader_id, issue.unit_id = leader.id, leader.unit_id
    issue.status = "dispatched"
    issue.closed_at = None
    issue.deadline = issue_settings.deadline_for(issue.category, now)
    event = IssueEvent(
        issue_id=issue.id,
        at=now,
        actor_id=actor.id if actor else None,
        from_status="closed",
        to_status="dispatched",
        note=note or "群众回访不满意，重新交办整改",
        data={
            "action": "reopen",
            "feedback_id": feedback.id,
            "leader_id": leader.id,
            "deadline": issue.deadline.isoformat(),
        },
    )
    stamp(event, issue, before)
    session.add(event)
    session.flush()
    return event


def pending(session: Session, limit: int = 200) -> list[CitizenFeedback]:
    """不满意 answers still waiting for a planner, oldest first."""
    return list(
        session.scalars(
            select(CitizenFeedback)
            .where(CitizenFeedback.answer == "unsatisfied", CitizenFeedback.decision.is_(None))
            .order_by(CitizenFeedback.at, CitizenFeedback.id)
            .limit(limit)
        )
    )


# --- 群众满意率 for the rankings ------------------------------------------------------------

_SATISFACTION_SQL = """
WITH periods AS (
  SELECT p.n::int AS n, p.f, p.t
  FROM unnest(CAST(:froms AS timestamptz[]), CAST(:tos AS timestamptz[]))
       WITH ORDINALITY AS p(f, t, n)
)
SELECT p.n, {key} AS k, count(*) AS answers,
       count(*) FILTER (WHERE fb.answer = ANY(CAST(:good AS text[]))) AS satisfied
FROM periods p
JOIN citizen_feedback fb ON fb.at >= p.f AND fb.at < p.t
JOIN issues i ON i.id = fb.issue_id
{joins}
WHERE i.duplicate_of_id IS NULL
GROUP BY 1, 2
"""


def satisfaction_counts(
    session: Session,
    key_sql: str,
    joins: str,
    froms: Sequence[datetime],
    tos: Sequence[datetime],
) -> dict[tuple[int, Any], tuple[int, int]]:
    """(period number from 1, row key) → (satisfied answers, answers) of the 回访 given in each
    period, grouped like a ranking (`key_sql` and `joins` over `issues i`: the issue's
    responsible leader/unit/grid as recorded on it)."""
    rows = session.execute(
        text(_SATISFACTION_SQL.format(key=key_sql, joins=joins)),
        {"froms": list(froms), "tos": list(tos), "good": list(SATISFIED_ANSWERS)},
    ).all()
    return {(r.n, r.k): (int(r.satisfied), int(r.answers)) for r in rows}
