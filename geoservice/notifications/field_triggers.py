"""Time-driven messages of field work (issue 16), run by the worker's scan with the others
(each idempotent: one message per person and occasion, by its dedupe key).

- Patrol due: a leader's patrol tasks still unvisited whose period ends within the next
  `hours` → one message per leader and period end ("3 项巡查任务将于 … 到期"), listing the places.
- Patrol overdue: tasks whose period ended unvisited (in the last `max_days`) → one message
  per leader and period end.
- Assessment results: when a 模拟测评 round has ended (its last day is past) or a 暗访 round
  exists (it is created when the inspection is completed, never before), each 点长 of its
  sites gets their sites' result (sites, score, 不合格 standards), once per round.

Only generated tasks count (the worker's scan generates each day's tasks; so do a leader
opening the day's tasks, the overview page, and `flask fieldwork generate-tasks`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.assessment import scores
from geoservice.notifications.outbox import enqueue

BATCH = 500  # most leaders one scan notifies per trigger (the next scan takes the rest)
MAX_PLACES = 10  # places listed in one message


def _places(names: list[str]) -> str:
    shown = "、".join(names[:MAX_PLACES])
    return shown + (f" 等 {len(names)} 处" if len(names) > MAX_PLACES else "")


_GROUPED = """
SELECT t.leader_id, t.period_end, count(*) AS n,
       array_agg(coalesce(p.name, p.code) ORDER BY coalesce(p.name, p.code)) AS names
FROM patrol_tasks t
JOIN places p ON p.id = t.place_id
JOIN leaders l ON l.id = t.leader_id AND l.active
WHERE NOT EXISTS (SELECT 1 FROM patrol_visits v WHERE v.task_id = t.id) AND {where}
  AND NOT EXISTS (SELECT 1 FROM notify_messages m WHERE m.dedupe_key =
                  :kind || ':' || t.leader_id || ':' || extract(epoch FROM t.period_end)::bigint)
GROUP BY t.leader_id, t.period_end
ORDER BY t.period_end, t.leader_id
LIMIT :limit"""


def _patrol_messages(
    session: Session, kind: str, where: str, params: dict[str, Any], now: datetime, tz: ZoneInfo
) -> int:
    conn = session.connection()
    rows = conn.execute(
        text(_GROUPED.format(where=where)), {**params, "kind": kind, "limit": BATCH}
    ).all()
    made = 0
    for leader_id, period_end, n, names in rows:
        data = {
            "count": n,
            "due": period_end.astimezone(tz).strftime("%m-%d %H:%M"),
            "places": _places(list(names)),
            "link": "/field/",
        }
        key = f"{kind}:{leader_id}:{int(period_end.timestamp())}"
        if enqueue(conn, kind=kind, dedupe_key=key, data=data, leader_id=leader_id, now=now):
            made += 1
    return made


def patrol_due(session: Session, hours: float, now: datetime, tz: ZoneInfo) -> int:
    """Reminders for unvisited tasks whose period ends within `hours` (0: none)."""
    if hours <= 0:
        return 0
    return _patrol_messages(
        session,
        "patrol_due",
        "t.period_start <= :now AND t.period_end > :now AND t.period_end <= :until",
        {"now": now, "until": now + timedelta(hours=hours)},
        now,
        tz,
    )


def patrol_overdue(session: Session, now: datetime, tz: ZoneInfo, max_days: float = 7) -> int:
    """Notices of tasks whose period ended unvisited (in the last `max_days`: a first start on
    old data does not send a notice for every stale task)."""
    return _patrol_messages(
        session,
        "patrol_overdue",
        "t.period_end <= :now AND t.period_end > :oldest",
        {"now": now, "oldest": now - timedelta(days=max_days)},
        now,
        tz,
    )


def assessment_results(session: Session, now: datetime, tz: ZoneInfo, max_days: int = 14) -> int:
    """Each 点长 of a finished round (ended 模拟测评 in the last `max_days`, or 暗访) gets the
    result of their sites, once per round."""
    today = now.astimezone(tz).date()
    rounds = session.execute(
        text(
            """
SELECT r.id, r.name, r.kind FROM assessment_rounds r
WHERE r.ends_on >= :oldest AND (r.ends_on < :today OR r.kind = 'inspection')
  AND NOT EXISTS (SELECT 1 FROM notify_messages m
                  WHERE m.dedupe_key LIKE 'assessment:' || r.id || ':%')
ORDER BY r.ends_on, r.id LIMIT 20"""
        ),
        {"today": today, "oldest": today - timedelta(days=max_days)},
    ).all()
    settings = scores.ScoreSettings(timezone=str(tz))
    conn = session.connection()
    made = 0
    for round_id, name, kind in rounds:
        mine: dict[int, list[dict[str, Any]]] = {}
        for site in scores.site_scores(session, round_id, settings):
            if site["leader_id"] is not None and site["assessed"]:
                mine.setdefault(site["leader_id"], []).append(site)
        for leader_id, sites in sorted(mine.items()):
            scored = [s["raw_score"] for s in sites if s["raw_score"] is not None]
            failed_sites = [s["name"] for s in sites if s["failed"]]
            data = {
                "round": name,
                "kind_title": "暗访" if kind == "inspection" else "模拟测评",
                "sites": len(sites),
                "score": round(sum(scored) / len(scored), 2) if scored else None,
                "failed": sum(s["failed"] for s in sites),
                "failed_places": _places(failed_sites),
                "link": f"/assessment?round={round_id}&of=site",
            }
            key = f"assessment:{round_id}:{leader_id}"
            if enqueue(
                conn, kind="assessment_result", dedupe_key=key, data=data, leader_id=leader_id,
                now=now,
            ):  # fmt: skip
                made += 1
    return made
