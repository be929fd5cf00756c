"""Time-driven messages, run by the worker (each idempotent: running twice adds nothing).

- Deadline reminders: an issue awaiting its fix (交办/整改中) whose deadline falls within the
  next `hours` → its leader, once per deadline.
- The escalation ladder: an issue still owed a fix (交办/整改中) `hours[k]` past its deadline
  reaches step k+1 (a fix awaiting verification is the office's wait, not the leader's):
  1 the responsible leader, 2 the unit's head (leaders.is_unit_head),
  3 the unit's 联点领导/分管领导 (notify_unit_contacts.supervisor_leader_id). Each step is an
  event on the issue (who was told, or that nobody is set up to be told); the outbox hook turns
  the event into messages. A new holder or deadline (改派, 退回, 延期: `holder_since`) starts
  the ladder again, its hours counted from that moment when it is later than the deadline.
- The daily digest: at `hour` local time, each person's held messages (preference `digest`)
  become one message (one delivery per channel); at most one digest a day, so what arrives
  later waits for the next day's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geoservice.issues.workflow import RECTIFYING_STATUSES
from geoservice.models import IssueEvent
from geoservice.notifications import queue
from geoservice.notifications.models import Delivery, Message
from geoservice.notifications.outbox import enqueue, issue_facts

BATCH = 500  # most issues one scan handles per trigger (the next scan takes the rest)
STEP_LABELS = {1: "责任领导", 2: "单位负责人", 3: "联点领导/分管领导"}


def deadline_reminders(session: Session, hours: float, now: datetime) -> int:
    if hours <= 0:
        return 0
    conn = session.connection()
    rows = conn.execute(
        text(
            """
SELECT i.id, i.leader_id, i.deadline FROM issues i
WHERE i.status = ANY(:statuses) AND i.leader_id IS NOT NULL
  AND i.deadline > :now AND i.deadline <= :until
  AND NOT EXISTS (SELECT 1 FROM notify_messages m
                  WHERE m.dedupe_key = 'deadline:' || i.id || ':' || i.leader_id || ':'
                                       || extract(epoch FROM i.deadline)::bigint)
ORDER BY i.deadline LIMIT :limit"""
        ),
        {
            "statuses": list(RECTIFYING_STATUSES),
            "now": now,
            "until": now + timedelta(hours=hours),
            "limit": BATCH,
        },
    ).all()
    made = 0
    for issue_id, leader_id, deadline in rows:
        facts = issue_facts(conn, issue_id)
        key = f"deadline:{issue_id}:{leader_id}:{int(deadline.timestamp())}"
        if enqueue(
            conn,
            kind="deadline",
            dedupe_key=key,
            data=facts,
            leader_id=leader_id,
            issue_id=issue_id,
            now=now,
        ):
            made += 1
    return made


def _step_recipients(session: Session, step: int, issue: Any) -> list[int]:
    if step == 1:
        return [issue.leader_id] if issue.leader_id else []
    if issue.unit_id is None:
        return []
    if step == 2:
        return list(
            session.scalars(
                text(
                    "SELECT id FROM leaders WHERE unit_id = :unit AND is_unit_head AND active"
                    " ORDER BY id"
                ),
                {"unit": issue.unit_id},
            )
        )
    supervisor = session.scalar(
        text("SELECT supervisor_leader_id FROM notify_unit_contacts WHERE unit_id = :unit"),
        {"unit": issue.unit_id},
    )
    return [supervisor] if supervisor else []


def escalate(
    session: Session, ladder: tuple[float, ...], now: datetime, max_days: float = 14
) -> int:
    """Writes the ladder's due steps as issue events; returns how many. Issues overdue for
    longer than `max_days` are left alone (they were escalated when it was due; this also
    keeps a first start on old data from writing a step on every stale issue)."""
    written = 0
    for index, hours in enumerate(ladder[:3]):
        step = index + 1
        due = session.execute(
            text(
                """
SELECT i.id, i.status, i.deadline, i.leader_id, i.unit_id FROM issues i
WHERE i.status = ANY(:owed) AND i.deadline > :oldest
  AND greatest(i.deadline, i.holder_since) <= :cutoff
  AND NOT EXISTS (SELECT 1 FROM issue_events e
                  WHERE e.issue_id = i.id AND e.at > greatest(i.deadline, i.holder_since)
                    AND e.data->>'action' = 'escalate' AND e.data->>'step' = :step)
ORDER BY i.deadline LIMIT :limit"""
            ),
            {
                "owed": list(RECTIFYING_STATUSES),
                "cutoff": now - timedelta(hours=hours),
                "oldest": now - timedelta(days=max_days),
                "step": str(step),
                "limit": BATCH,
            },
        ).all()
        for issue in due:
            recipients = [int(r) for r in _step_recipients(session, step, issue)]
            names = (
                session.scalars(
                    text("SELECT name FROM leaders WHERE id = ANY(:ids) ORDER BY id"),
                    {"ids": recipients},
                ).all()
                if recipients
                else []
            )
            overdue_hours = int((now - issue.deadline).total_seconds() // 3600)
            who = "、".join(names) if names else f"未设置{STEP_LABELS[step]}，无人可通知"
            session.add(
                IssueEvent(
                    issue_id=issue.id,
                    at=now,
                    from_status=issue.status,
                    to_status=issue.status,
                    note=f"超期第{step}级提醒（{STEP_LABELS[step]}）：{who}",
                    data={
                        "action": "escalate",
                        "step": str(step),
                        "notify": recipients,
                        "overdue_hours": overdue_hours,
                        "deadline": issue.deadline.isoformat(),
                    },
                )
            )
            written += 1
        session.flush()
    return written


def digest(session: Session, tz: ZoneInfo, hour: int, now: datetime) -> int:
    """At or after `hour` local time, one digest per person and day of the messages held
    until then: one held after today's hour waits for tomorrow's digest (the first message
    after 08:00 went out within the minute)."""
    local = now.astimezone(tz)
    if local.hour < hour:
        return 0
    cutoff = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    conn = session.connection()
    held = conn.execute(
        text(
            """
SELECT m.leader_id, d.id, d.channel_id, d.address, m.subject, m.issue_id
FROM notify_deliveries d JOIN notify_messages m ON m.id = d.message_id
WHERE d.status = 'held' AND m.leader_id IS NOT NULL AND m.created_at <= :cutoff
ORDER BY m.leader_id, d.id
FOR UPDATE OF d SKIP LOCKED"""
        ),
        {"cutoff": cutoff},
    ).all()
    people: dict[int, list[Any]] = {}
    for row in held:
        people.setdefault(row.leader_id, []).append(row)
    made = 0
    for leader_id, rows in people.items():
        items = list({(r.subject, r.issue_id): None for r in rows})
        subjects = [subject for subject, _ in items]
        data = {
            "count": len(subjects),
            # each with its issue's page; the digest's own link is the person's open issues
            "items": [
                {"subject": subject, "link": f"/issues/{issue_id}" if issue_id else None}
                for subject, issue_id in items
            ],
            "link": "/issues?view=open",
            "recipient_leader_id": leader_id,
        }
        message_id = conn.execute(
            insert(Message)
            .values(
                kind="digest",
                dedupe_key=f"digest:{leader_id}:{local.date().isoformat()}",
                leader_id=leader_id,
                subject=f"【每日汇总】{len(subjects)} 条待办提醒",
                data=data,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Message.id)
        ).scalar()
        if message_id is None:
            continue
        targets = {(r.channel_id, r.address) for r in rows}
        inserted = conn.execute(
            insert(Delivery)
            .values(
                [
                    {
                        "message_id": message_id,
                        "channel_id": channel_id,
                        "address": address,
                        "delivery_key": f"m{message_id}:c{channel_id}:{address}",
                        "next_attempt_at": now,
                    }
                    for channel_id, address in sorted(targets)
                ]
            )
            .on_conflict_do_nothing(index_elements=["delivery_key"])
            .returning(Delivery.id)
        ).scalars()
        queue.defer(conn, list(inserted))
        conn.execute(
            text("UPDATE notify_deliveries SET status = 'digested' WHERE id = ANY(:ids)"),
            {"ids": [r.id for r in rows]},
        )
        made += 1
    return made
