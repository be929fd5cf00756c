"""Charts of the rankings page (weekly series, breakdowns) and a leader's scorecard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.ranking.drilldown import issues_behind
from geoservice.ranking.periods import Period
from geoservice.ranking.ranking import DEFAULT_SETTINGS, Settings, compute, ranking, trend
from geoservice.registry import LayerRegistry


def weekly_series(
    session: Session, registry: LayerRegistry, weeks: Sequence[Period]
) -> dict[str, list]:
    """City-wide received / closed / overdue-at-end per week (the 收结案 chart)."""
    per_week = compute(session, registry, "all", weeks)
    out: dict[str, list] = {"weeks": [w.label for w in weeks]}
    for field in ("received", "closed", "closed_on_time", "overdue_end", "open_end"):
        out[field] = [rows[0][field] if rows else 0 for rows in per_week]
    return out


def breakdown(
    session: Session, registry: LayerRegistry, of: str, period: Period, field: str
) -> list[dict[str, Any]]:
    """`field` per category/source/… for the period, largest first, zeros left out."""
    rows = ranking(session, registry, of, period)
    items = [{"name": r["name"], "key": r["key"], "value": r[field]} for r in rows if r[field]]
    return sorted(items, key=lambda x: (-x["value"], str(x["name"])))


def scorecard(
    session: Session,
    registry: LayerRegistry,
    leader_id: int,
    period: Period,
    settings: Settings = DEFAULT_SETTINGS,
    trend_periods: int = 8,
    visible: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """A leader's own figures for 我的包保: row, rank among leaders, trend, overdue issues
    (those within `visible`, the caller's scope on `issues i`, when given: drilldown).

    None when the leader does not exist.
    """
    leader = (
        session.execute(
            text(
                "SELECT l.id, l.name, l.title, l.level, u.name AS unit FROM leaders l"
                " LEFT JOIN units u ON u.id = l.unit_id WHERE l.id = :id"
            ),
            {"id": leader_id},
        )
        .mappings()
        .first()
    )
    if leader is None:
        return None
    rows = ranking(session, registry, "leader", period, settings)
    mine = next((r for r in rows if r["key"] == leader_id), None)
    ranked_count = sum(1 for r in rows if r["ranked"])
    history = [period.previous(n) for n in range(trend_periods - 1, 0, -1)] + [period]
    series = trend(session, registry, "leader", history, settings, key=leader_id)
    own = next((s for s in series["rows"] if s["key"] == leader_id), None)
    overdue = issues_behind(
        session, registry, "leader", leader_id, "overdue_end", period, 50, visible=visible
    )
    return {
        "leader": dict(leader),
        "period": period.as_dict(),
        "row": mine,
        "ranked_count": ranked_count,
        "trend": {
            "periods": series["periods"],
            "score": own["score"] if own else [None] * len(history),
            "received": own["received"] if own else [None] * len(history),
            "closed": own["closed"] if own else [None] * len(history),
        },
        "overdue": overdue,
        "settings": {"threshold": settings.threshold, "bottom_n": settings.bottom_n},
    }
