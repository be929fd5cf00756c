"""Issue queues: the unassigned queue and manual dispatch, the overdue list, and
re-attribution after layers or assignments changed (plain functions over a session)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.issues import attribution
from geoservice.issues.workflow import (
    Allows,
    IssueSettings,
    lock_issue,
    overdue_clause,
    status_label,
    transition,
)
from geoservice.models import Issue, IssueEvent, User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict
from geoservice.vocab import OPEN_STATUSES

# --- the unassigned queue and manual dispatch ----------------------------------------------


# Statuses of an issue not handed to anyone yet: the queue's, and what 交办 starts from.
QUEUE_STATUSES = ("reported", "accepted")


def _unassigned(account: User | None):
    query = select(Issue).where(
        Issue.leader_id.is_(None),
        Issue.status.in_(QUEUE_STATUSES),
        Issue.duplicate_of_id.is_(None),
    )
    return query if account is None else query.where(scope.issue_filter(account))


def unassigned_query(limit: int = 100, offset: int = 0, account: User | None = None):
    """Open issues nobody answers for yet (no place claims them, or the place has no leader),
    those `account` may see if given."""
    return _unassigned(account).order_by(Issue.reported_at, Issue.id).limit(limit).offset(offset)


def count_unassigned(session: Session, account: User | None = None) -> int:
    return session.scalar(select(func.count()).select_from(_unassigned(account).subquery()))


def dispatch(
    session: Session,
    settings: IssueSettings,
    issue_id: int,
    leader_id: int | None,
    actor: User | None,
    note: str = "",
    now: datetime | None = None,
    allows: Allows | None = None,
) -> list[IssueEvent]:
    """交办 to a leader (chosen by hand, or the attributed one); a still-`reported` issue is
    立案 first. One event per step."""
    issue = lock_issue(session, issue_id)
    now = now or datetime.now(UTC)  # once the row is ours (see workflow.transition)
    if issue.status not in QUEUE_STATUSES:
        # Also the second of two planners dispatching the same issue at once: it waited for
        # the first one's lock and finds the issue dispatched.
        raise Conflict(
            f"该问题已不在待派遣队列（当前状态「{status_label(issue.status)}」）："
            "已交办的问题如需换人请用「改派」",
            detail={"status": issue.status, "status_label": status_label(issue.status)},
        )
    events = []
    if issue.status == "reported":
        events.append(
            transition(session, settings, issue_id, "accepted", actor, now=now, allows=allows)
        )
    target = "dispatched"
    events.append(transition(session, settings, issue_id, target, actor, note, leader_id, now=now))
    return events


def overdue_query(now: datetime, account: User | None = None, limit: int = 100, offset: int = 0):
    """Overdue issues, most overdue first; those `account` may see if given."""
    query = select(Issue).where(overdue_clause(now))
    if account is not None:
        query = query.where(scope.issue_filter(account))
    return query.order_by(Issue.deadline, Issue.id).limit(limit).offset(offset)


def count_overdue(session: Session, now: datetime, account: User | None = None) -> int:
    query = select(func.count()).select_from(Issue).where(overdue_clause(now))
    if account is not None:
        query = query.where(scope.issue_filter(account))
    return session.scalar(query)


# --- re-attribution ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReattributionReport:
    checked: int
    changed: int
    skipped_manual: int


def reattribute(
    session: Session,
    registry: LayerRegistry,
    since: datetime,
    actor_id: int | None = None,
    open_only: bool = False,
    now: datetime | None = None,
    fallback: Sequence[str] = (),
) -> ReattributionReport:
    """Recomputes the attribution of issues reported since `since` (after layers or assignments
    changed) and writes an event on every issue whose place, grid, leader or unit changed.
    Issues a planner dispatched by hand keep their leader. The caller commits."""
    now = now or datetime.now(UTC)
    status_filter = "AND status = ANY(:open)" if open_only else ""
    params = {"since": since, "open": list(OPEN_STATUSES)}
    session.execute(text("DROP TABLE IF EXISTS _reattribute"))
    session.execute(
        text(
            f"""CREATE TEMP TABLE _reattribute ON COMMIT DROP AS
SELECT id, primary_place_id, grid_id, leader_id, unit_id FROM issues
WHERE reported_at >= :since
  AND NOT (COALESCE(attribution, '{{}}'::jsonb) ?| array['manual', 'routing'])
  {status_filter}"""
        ),
        params,
    )
    session.execute(text("ALTER TABLE _reattribute ADD PRIMARY KEY (id)"))
    skipped = session.scalar(
        text(
            "SELECT count(*) FROM issues WHERE reported_at >= :since"
            " AND COALESCE(attribution, '{}'::jsonb) ?| array['manual', 'routing']"
            f" {status_filter}"
        ),
        params,
    )
    checked = attribution.attribute_issue_set(session, registry, "_reattribute", fallback)
    changed = session.execute(
        text(
            """
INSERT INTO issue_events (issue_id, at, actor_id, from_status, to_status, note, data,
  holder_change, leader_id, unit_id, deadline, prev_leader_id, prev_unit_id, prev_deadline)
SELECT i.id, :now, :actor, i.status, i.status,
       '重新归属：' || CASE WHEN i.leader_id IS NULL THEN '无责任领导，进入待派遣队列'
                          ELSE '责任领导变更' END,
       jsonb_build_object(
         'action', 'reattribute',
         'before', jsonb_build_object('primary_place_id', r.primary_place_id,
                     'grid_id', r.grid_id, 'leader_id', r.leader_id, 'unit_id', r.unit_id),
         'after', jsonb_build_object('primary_place_id', i.primary_place_id,
                     'grid_id', i.grid_id, 'leader_id', i.leader_id, 'unit_id', i.unit_id)),
       (i.leader_id, i.unit_id) IS DISTINCT FROM (r.leader_id, r.unit_id),
       i.leader_id, i.unit_id, i.deadline, r.leader_id, r.unit_id, i.deadline
FROM issues i JOIN _reattribute r ON r.id = i.id
WHERE (i.primary_place_id, i.grid_id, i.leader_id, i.unit_id)
      IS DISTINCT FROM (r.primary_place_id, r.grid_id, r.leader_id, r.unit_id)"""
        ),
        {"now": now, "actor": actor_id},
    ).rowcount
    # From now on, not retroactively: the rankings of periods before `now` keep the holder
    # recorded then (IssueEvent.prev_*).
    session.execute(
        text(
            "UPDATE issues i SET holder_since = :now FROM _reattribute r WHERE r.id = i.id"
            " AND (i.leader_id, i.unit_id) IS DISTINCT FROM (r.leader_id, r.unit_id)"
        ),
        {"now": now},
    )
    session.execute(text("DROP TABLE _reattribute"))
    return ReattributionReport(checked=checked, changed=changed, skipped_manual=skipped)
