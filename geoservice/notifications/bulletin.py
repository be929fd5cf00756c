"""通报 published → the units named in it: each ranked unit's contact and head get their own
line of the period's unit ranking (score, rank, overdue, flagged as 后三名 or under the
threshold), with a link to the rankings page. Once per period, unit and person."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.notifications.outbox import enqueue
from geoservice.ranking import ranking
from geoservice.ranking.periods import Period
from geoservice.registry import LayerRegistry


def _recipients(session: Session, unit_id: int) -> list[int]:
    rows = session.scalars(
        text(
            """
SELECT contact_leader_id FROM notify_unit_contacts
WHERE unit_id = :unit AND contact_leader_id IS NOT NULL
UNION
SELECT id FROM leaders WHERE unit_id = :unit AND is_unit_head AND active"""
        ),
        {"unit": unit_id},
    ).all()
    return sorted(int(r) for r in rows)


def publish(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    settings: ranking.Settings,
) -> int:
    """Queues the 通报 messages of `period`; returns how many were new."""
    rows = ranking.ranking(session, registry, "unit", period, settings)
    ranked = sum(1 for r in rows if r.get("ranked"))
    conn = session.connection()
    made = 0
    for row in rows:
        if row.get("key") is None:
            continue
        flags = []
        if row.get("bottom"):
            flags.append(f"后{settings.bottom_n}名")
        if row.get("below_threshold"):
            flags.append(f"低于{settings.threshold:g}分")
        data: dict[str, Any] = {
            "period": period.title,
            "period_label": period.label,
            "unit": row.get("name"),
            "score": row.get("score"),
            "rank": row.get("rank"),
            "total": ranked,
            "received": row.get("received"),
            "closed": row.get("closed"),
            "overdue_end": row.get("overdue_end"),
            "flags": flags,
            "link": f"/rankings?period={period.kind}&from={period.label}&of=unit",
        }
        for leader_id in _recipients(session, int(row["key"])):
            if enqueue(
                conn,
                kind="bulletin",
                dedupe_key=f"bulletin:{period.label}:{row['key']}:{leader_id}",
                data={**data, "recipient_leader_id": leader_id},
                leader_id=leader_id,
            ):
                made += 1
    return made
