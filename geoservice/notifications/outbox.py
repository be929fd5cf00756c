"""The outbox: messages written in the transaction of the issue event that causes them.

`install()` registers one SQLAlchemy mapper hook, `after_insert` on IssueEvent: every issue
event written through the ORM (workflow transitions, the dispatch queue, merges, the
escalation ladder below) is looked at on the same connection, inside the same transaction,
before it commits. So an event and its messages are committed together or not at all, and no
code path that writes an event can forget to notify (the workflow module needs no change).

- 交办 / 改派 / 确权 / 重新交办 (`dispatch`, `redispatch`, `return_grant`, `reopen`): the new
  holder and the unit's contact.
- `escalate` (written by the worker's ladder): the leaders the event names.
- any change of status of an issue that came from an integration with a callback: the 回单
  (Open311 status) to that callback.

A message is fanned out to deliveries at once (one per channel and address, by the person's
preferences), and each delivery gets its procrastinate job deferred on the same connection
(geoservice.notifications.queue): nothing leaves the machine here; the worker
(geoservice.notifications.worker) sends them after the commit, woken by procrastinate's
NOTIFY when the transaction commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from geoservice.models import IssueEvent
from geoservice.notifications import queue
from geoservice.notifications.models import Delivery, Message
from geoservice.notifications.open311 import callback_payload

# A new holder is told whichever way the issue reached them: 交办, 改派, a granted 退回 (确权
# to another leader), a 回访 the planner reopened; and the escalation's steps.
PERSON_ACTIONS = ("dispatch", "redispatch", "return_grant", "reopen", "escalate")
HANDOVER_KINDS = ("dispatch", "redispatch", "return_grant", "reopen")
# Messages of these kinds skip a person's daily digest (they are the urgent ones).
URGENT_KINDS = frozenset({"escalate"})

_ISSUE_FACTS = text(
    """
SELECT i.id, i.category, i.description, i.status, i.deadline, i.leader_id, i.unit_id,
       p.name AS place, l.name AS leader, u.name AS unit
FROM issues i
LEFT JOIN places p ON p.id = i.primary_place_id
LEFT JOIN leaders l ON l.id = i.leader_id
LEFT JOIN units u ON u.id = i.unit_id
WHERE i.id = :id"""
)


def issue_facts(conn: Connection, issue_id: int) -> dict[str, Any]:
    row = conn.execute(_ISSUE_FACTS, {"id": issue_id}).mappings().one()
    return {
        "issue_id": row["id"],
        "category": row["category"],
        "description": (row["description"] or "")[:200],
        "status": row["status"],
        "deadline": row["deadline"].isoformat() if row["deadline"] else None,
        "place": row["place"],
        "leader": row["leader"],
        "unit": row["unit"],
        "link": f"/issues/{row['id']}",
    }


SUBJECTS = {
    "dispatch": "【交办】问题 #{issue_id} {category}",
    "redispatch": "【改派】问题 #{issue_id} {category}",
    "return_grant": "【确权交办】问题 #{issue_id} {category}",
    "reopen": "【重新交办】问题 #{issue_id} {category}",
    "deadline": "【即将到期】问题 #{issue_id} {category}",
    "escalate": "【超期提醒·第{step}级】问题 #{issue_id} {category}",
    "digest": "【每日汇总】{count} 条待办提醒",
    "callback": "回单：工单 {external_id} → {status}",
    "bulletin": "【通报】{period}：{unit}",
    "patrol_due": "【巡查提醒】{count} 项巡查任务将于 {due} 到期",
    "patrol_overdue": "【巡查逾期】{count} 项巡查任务逾期未巡（{due} 到期）",
    "assessment_result": "【{kind_title}结果】{round}：{sites} 个点位，不合格 {failed} 项",
}


def subject_for(kind: str, data: dict[str, Any]) -> str:
    try:
        return SUBJECTS[kind].format(**data)[:300]
    except (KeyError, IndexError):
        return kind


def enqueue(
    conn: Connection,
    *,
    kind: str,
    dedupe_key: str,
    data: dict[str, Any],
    leader_id: int | None = None,
    issue_id: int | None = None,
    event_id: int | None = None,
    now: datetime | None = None,
) -> int | None:
    """Writes one message for one person and its deliveries; None if it already exists
    (`dedupe_key`) or the person is unknown. Runs on the caller's connection/transaction."""
    message_id = conn.execute(
        insert(Message)
        .values(
            kind=kind,
            dedupe_key=dedupe_key,
            issue_id=issue_id,
            event_id=event_id,
            leader_id=leader_id,
            subject=subject_for(kind, data),
            data=data,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Message.id)
    ).scalar()
    if message_id is None or leader_id is None:
        return message_id
    fan_out(conn, message_id, kind, leader_id, now)
    return message_id


def fan_out(
    conn: Connection, message_id: int, kind: str, leader_id: int, now: datetime | None = None
) -> int:
    """Deliveries of a person's message: every enabled channel the person's preferences allow
    and that can reach them (an e-mail address for email, a mobile for SMS; group robots and
    webhooks of the person's unit or of everyone)."""
    person = (
        conn.execute(
            text(
                """
SELECT l.id, l.unit_id, l.active,
       -- the leader's phone only when it is a mobile (a landline gets no SMS nor @)
       COALESCE(p.mobile, CASE WHEN l.phone ~ '^1[3-9][0-9]{9}$' THEN l.phone END) AS mobile,
       p.email, p.channels,
       COALESCE(p.digest, false) AS digest
FROM leaders l LEFT JOIN notify_preferences p ON p.leader_id = l.id WHERE l.id = :id"""
            ),
            {"id": leader_id},
        )
        .mappings()
        .one_or_none()
    )
    if person is None or not person["active"]:
        return 0
    channels = conn.execute(
        text("SELECT id, kind, unit_id FROM notify_channels WHERE enabled ORDER BY id")
    ).all()
    wanted = person["channels"]
    held = person["digest"] and kind not in URGENT_KINDS
    rows = []
    for channel_id, channel_kind, unit_id in channels:
        if wanted is not None and channel_kind not in wanted:
            continue
        if unit_id is not None and unit_id != person["unit_id"]:
            continue
        if channel_kind == "email":
            address = person["email"]
        elif channel_kind == "sms":
            address = person["mobile"]
        else:  # group robots mention the mobile when known; webhooks need no address
            address = person["mobile"] or ""
        if channel_kind in ("email", "sms") and not address:
            continue
        values: dict[str, Any] = {
            "message_id": message_id,
            "channel_id": channel_id,
            "address": address,
            "delivery_key": f"m{message_id}:c{channel_id}:{address}",
            "status": "held" if held else "pending",
        }
        if now is not None:
            values["next_attempt_at"] = now
        rows.append(values)
    if not rows:
        return 0
    inserted = conn.execute(
        insert(Delivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["delivery_key"])
        .returning(Delivery.id, Delivery.status)
    ).all()
    queue.defer(conn, [d for d, status in inserted if status == "pending"])
    return len(rows)


def _person_recipients(conn: Connection, target: IssueEvent, data: dict[str, Any]) -> list[int]:
    action = data.get("action")
    if action == "escalate":
        return [int(x) for x in data.get("notify") or []]
    leader_id = data.get("leader_id")
    if leader_id is None:
        return []
    out = [int(leader_id)]
    contact = conn.execute(
        text(
            "SELECT c.contact_leader_id FROM leaders l"
            " JOIN notify_unit_contacts c ON c.unit_id = l.unit_id WHERE l.id = :id"
        ),
        {"id": leader_id},
    ).scalar()
    if contact is not None and contact not in out:
        out.append(int(contact))
    return out


def on_issue_event(conn: Connection, target: IssueEvent) -> None:
    """Messages caused by one issue event (see the module's docstring)."""
    data = target.data or {}
    action = data.get("action")
    facts: dict[str, Any] | None = None
    if action in PERSON_ACTIONS:
        facts = issue_facts(conn, target.issue_id)
        facts.update(note=target.note or "", action=action)
        if action == "escalate":
            facts.update(step=data.get("step"), overdue_hours=data.get("overdue_hours"))
        for leader_id in _person_recipients(conn, target, data):
            enqueue(
                conn,
                kind=action,
                dedupe_key=f"event:{target.id}:leader:{leader_id}",
                data={**facts, "recipient_leader_id": leader_id},
                leader_id=leader_id,
                issue_id=target.issue_id,
                event_id=target.id,
            )
    # A report's own event has no ticket yet (the integration's ticket is recorded after the
    # issue is created; the create response is its receipt).
    if action != "report" and (
        target.from_status != target.to_status or action in ("rework", "merged")
    ):
        enqueue_callbacks(conn, target)


def enqueue_callbacks(conn: Connection, target: IssueEvent) -> None:
    """The 回单: an issue from an integration with a callback gets its new status pushed."""
    tickets = conn.execute(
        text(
            "SELECT t.user_id, t.external_id, c.url FROM external_tickets t"
            " JOIN integration_callbacks c ON c.user_id = t.user_id AND c.enabled"
            " WHERE t.issue_id = :id"
        ),
        {"id": target.issue_id},
    ).all()
    for user_id, external_id, url in tickets:
        payload = callback_payload(conn, target.issue_id, external_id, target)
        message_id = conn.execute(
            insert(Message)
            .values(
                kind="callback",
                dedupe_key=f"callback:event:{target.id}:user:{user_id}",
                issue_id=target.issue_id,
                event_id=target.id,
                subject=subject_for(
                    "callback", {"external_id": external_id, "status": payload["status"]}
                ),
                data=payload,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Message.id)
        ).scalar()
        if message_id is None:
            continue
        inserted = conn.execute(
            insert(Delivery)
            .values(
                message_id=message_id,
                callback_user_id=user_id,
                address=url,
                delivery_key=f"m{message_id}:callback:{user_id}",
            )
            .on_conflict_do_nothing(index_elements=["delivery_key"])
            .returning(Delivery.id)
        ).scalars()
        queue.defer(conn, list(inserted))


def _after_insert(_mapper: Any, connection: Connection, target: IssueEvent) -> None:
    on_issue_event(connection, target)


def install() -> None:
    """Registers the hook once per process (create_app may run many times in tests)."""
    if not event.contains(IssueEvent, "after_insert", _after_insert):
        event.listen(IssueEvent, "after_insert", _after_insert)


# --- the queue as admins see it ------------------------------------------------------------


def queue_health(session: Session) -> dict[str, Any]:
    """Depth of the queue (due or waiting deliveries), age of the oldest undelivered one
    (seconds), and the dead letters: for /healthz and the admin page."""
    row = session.execute(
        text(
            """
SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')) AS depth,
       count(*) FILTER (WHERE status = 'held') AS held,
       count(*) FILTER (WHERE status = 'dead') AS dead,
       EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status IN ('pending', 'sending')))
         AS oldest_s
FROM notify_deliveries WHERE status IN ('pending', 'sending', 'held', 'dead')"""
        )
    ).one()
    return {
        "queue_depth": row.depth,
        "held_for_digest": row.held,
        "dead_letters": row.dead,
        "oldest_undelivered_seconds": round(float(row.oldest_s), 1)
        if row.oldest_s is not None
        else None,
    }
