"""The public 红黑榜: when the office publishes a 通报, a snapshot of the period's unit ranking
— 红榜 (the best ranked) and 黑榜 (后 N 名) with names, scores and 群众满意率 only — goes on the
public pages. A snapshot, so the published list never changes afterwards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geoservice.citizens import publish
from geoservice.citizens.models import PublishedBoard
from geoservice.ranking import ranking
from geoservice.ranking.periods import Period
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, NotFound

GROUPING = "unit"


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "rank": row["rank"],
        "score": row["score"],
        "satisfaction_rate": row.get("satisfaction_rate"),
    }


def snapshot(
    session: Session, registry: LayerRegistry, period: Period, settings: ranking.Settings
) -> dict[str, Any]:
    rows = [
        r for r in ranking.ranking(session, registry, GROUPING, period, settings) if r["ranked"]
    ]
    black = [r for r in rows if r["bottom"]]
    red = [r for r in rows if not r["bottom"] and r["rank"] <= settings.bottom_n]
    return {
        "red": [_entry(r) for r in red],
        "black": [_entry(r) for r in sorted(black, key=lambda r: (-r["rank"], r["name"]))],
        "ranked": len(rows),
        "threshold": settings.threshold,
        "bottom_n": settings.bottom_n,
    }


def publish_board(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    settings: ranking.Settings,
    actor_id: int | None,
    now: datetime | None = None,
) -> PublishedBoard:
    """Publishes (or republishes) the period's 红黑榜. The caller commits. 409 for a period
    that has not ended: its figures are not final (every open issue would still count as
    overdue at its end), and the board names units in public, as the 通报 does."""
    now = now or datetime.now(UTC)
    if period.end > now:
        raise Conflict(f"{period.title} 尚未结束，不能发布红黑榜", field="from")
    values = {
        "title": period.title,
        "period_start": period.start,
        "period_end": period.end,
        "board": snapshot(session, registry, period, settings),
        "published_by_id": actor_id,
        "published_at": now,
    }
    session.execute(
        insert(PublishedBoard)
        .values(kind=period.kind, label=period.label, **values)
        .on_conflict_do_update(constraint="uq_published_boards_kind_label", set_=values)
    )
    session.flush()
    publish.CACHE.clear()
    return session.scalars(
        select(PublishedBoard).where(
            PublishedBoard.kind == period.kind, PublishedBoard.label == period.label
        )
    ).one()


def withdraw(session: Session, board_id: int) -> None:
    if session.get(PublishedBoard, board_id) is None:
        raise NotFound(f"没有编号为 {board_id} 的红黑榜", field="id")
    session.execute(delete(PublishedBoard).where(PublishedBoard.id == board_id))
    publish.CACHE.clear()


def boards(session: Session, limit: int = 8) -> list[dict[str, Any]]:
    """Published boards, latest period first."""
    rows = session.scalars(
        select(PublishedBoard)
        .order_by(PublishedBoard.period_end.desc(), PublishedBoard.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": b.id,
            "kind": b.kind,
            "label": b.label,
            "title": b.title,
            "published_on": b.published_at.date().isoformat(),
            **b.board,
        }
        for b in rows
    ]
