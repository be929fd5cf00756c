"""The issues behind a number of the rankings (drill-down): the same SQL pipeline as the
figures (the pipeline pieces of ranking.py), listing the issues one cell of a ranking counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.ranking import rollup
from geoservice.ranking.periods import Period
from geoservice.ranking.ranking import (
    _CHANGE,
    DRILLABLE,
    OverdueAtEnd,
    RankingError,
    _flags_sql,
    _hours,
    _no_jit,
    _params,
    _sql_type,
    grouping,
)
from geoservice.registry import LayerRegistry
from geoservice.vocab import ISSUE_STATUSES

# The issues of `ind` (the pipeline's per-issue rows) with indicator {indicator}, most urgent
# deadline first, with what the list shows of each.
_LIST_SQL = (
    """
SELECT ind.id, ind.deadline,
  coalesce((SELECT e.to_status FROM issue_events e
            WHERE e.issue_id = ind.id AND e.at < ind.t AND """
    + _CHANGE
    + """
            ORDER BY e.at DESC, e.id DESC LIMIT 1), 'reported') AS status_end,
  ind.last_close, ind.hours, ind.reported_at,
  CASE WHEN ind.overdue_end THEN extract(epoch FROM ind.t - ind.deadline) / 86400.0
       WHEN ind.handed_overdue THEN extract(epoch FROM ind.event_at - ind.deadline) / 86400.0
  END AS overdue_days, ind.event_at,
  -- Since when its holder at the period end held it (the last change of leader before the
  -- end; NULL: since the report), and its overdue days within that holding.
  held.since AS held_since,
  CASE WHEN ind.overdue_end THEN extract(epoch FROM ind.t - greatest(ind.deadline, held.since))
       / 86400.0 END AS overdue_days_held,
  i.category, i.source, i.description, i.status AS status_now, i.relapse_of_id,
  (SELECT l.name FROM leaders l WHERE l.id = i.leader_id) AS leader,
  (SELECT u.name FROM units u WHERE u.id = i.unit_id) AS unit,
  p.name AS place, p.layer AS layer,
  count(*) OVER () AS total
FROM ind
-- Per row, lookups by key only (OFFSET 0 keeps each a lookup: joined, the planner misjudges
-- the rows of a pipeline CTE or an unnested list and sorts every issue or hashes per row);
-- the issue by (id, reported_at): one partition probed; the whole row, for the caller's
-- scope (`visible`).
CROSS JOIN LATERAL (
  SELECT i.* FROM issues i WHERE i.id = ind.id AND i.reported_at = ind.reported_at OFFSET 0
) i
LEFT JOIN LATERAL (
  SELECT max(e.at) AS since FROM issue_events e
  WHERE e.issue_id = ind.id AND e.holder_change AND e.at < ind.t
    AND e.prev_leader_id IS DISTINCT FROM e.leader_id
) held ON true
LEFT JOIN LATERAL (
  SELECT p.name, p.layer FROM places p WHERE p.id = i.primary_place_id OFFSET 0
) p ON true
WHERE ind.{indicator} AND ({visible})
ORDER BY ind.deadline NULLS LAST, ind.id
LIMIT :limit
"""
)


def parse_key(registry: LayerRegistry, of: str, raw: str | None) -> Any:
    """The row key from a query string: '' / 'none' → the unassigned row (None)."""
    g = grouping(registry, of)
    if g.name == "all":
        return 0
    if raw is None or raw.strip().lower() in ("", "none", "null"):
        return None
    if g.key_type is int:
        try:
            key = int(raw)
        except ValueError as exc:
            raise RankingError(f"行标识 {raw!r} 应为整数", "key") from exc
        if not -(2**63) <= key < 2**63:  # no row has it (ids are bigint at most)
            raise RankingError(f"没有行标识为 {raw} 的行", "key")
        return key
    return raw


def issues_behind(
    session: Session,
    registry: LayerRegistry,
    of: str,
    key: Any,
    indicator: str,
    period: Period,
    limit: int | None = 1000,
    tz: ZoneInfo | None = None,
    visible: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The issues behind one number of the ranking: row `key` of `of`, count `indicator`.

    At most `limit` issues (None: all), most urgent deadline first; `total` counts them all.
    Times are ISO 8601 in `tz` (default: the period's time zone). `visible` is an SQL
    condition on `issues i` with its parameters (the caller's scope): issues outside it are
    left out of the list and of `total`.
    """
    g = grouping(registry, of)
    if indicator not in DRILLABLE:
        raise RankingError(f"未知的指标 {indicator!r}，可下钻：{', '.join(DRILLABLE)}", "indicator")
    params = _params(session, [period])
    params.update({"key": key, "limit": limit})
    visible_sql = "TRUE"
    if visible is not None:
        visible_sql, visible_params = visible
        params.update(visible_params)
    tz = tz or period.start.tzinfo
    key_filter = f"IS NOT DISTINCT FROM CAST(:key AS {_sql_type(g)})"
    where = f"AND ({g.key_sql}) {key_filter}"
    sql = _flags_sql(
        g,
        where,
        per_issue=g.name != "all",
        key_filter=key_filter,
        whole_weeks=rollup.whole_weeks(params),
        one_period=True,
    ) + _LIST_SQL.format(indicator=indicator, visible=visible_sql)
    _no_jit(session)
    rows = session.execute(text(sql), params).mappings().all()
    return _listed(registry, rows, tz)


def overdue_listed(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    overdue: OverdueAtEnd,
    tz: ZoneInfo | None = None,
    visible: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`issues_behind(…, "all", 0, "overdue_end", period, limit=None)` for the issues the
    figures' own run found overdue at the period end (ranking.figures_and_overdue): the list
    without running the pipeline again. `visible`: as for issues_behind."""
    ind = """
WITH ind AS (
  SELECT u.id, u.deadline, u.reported_at, CAST(:t1 AS timestamptz) AS t,
    NULL::timestamptz AS last_close, NULL::float8 AS hours, true AS overdue_end,
    false AS handed_overdue, NULL::timestamptz AS event_at
  FROM unnest(CAST(:ids AS bigint[]), CAST(:deadlines AS timestamptz[]),
              CAST(:reported AS timestamptz[])) AS u(id, deadline, reported_at)
)"""
    params = {
        "t1": period.end,
        "ids": overdue.ids,
        "deadlines": overdue.deadlines,
        "reported": overdue.reported,
        "limit": None,
    }
    visible_sql = "TRUE"
    if visible is not None:
        visible_sql, visible_params = visible
        params.update(visible_params)
    sql = ind + _LIST_SQL.format(indicator="overdue_end", visible=visible_sql)
    _no_jit(session)
    rows = session.execute(text(sql), params).mappings().all()
    return _listed(registry, rows, tz or period.start.tzinfo)


def _listed(registry: LayerRegistry, rows: Sequence[Any], tz: Any) -> dict[str, Any]:
    titles = {spec.name: spec.title for spec in registry}
    return {
        "total": int(rows[0]["total"]) if rows else 0,
        "issues": [
            {
                "id": r["id"],
                "category": r["category"],
                "source": r["source"],
                "description": r["description"],
                "reported_at": _iso(r["reported_at"], tz),
                "deadline": _iso(r["deadline"], tz),
                "closed_at": _iso(r["last_close"], tz) if r["hours"] is not None else None,
                "hours_to_close": _hours(r["hours"]),
                "overdue_days": None
                if r["overdue_days"] is None
                else round(float(r["overdue_days"]), 1),
                "event_at": _iso(r["event_at"], tz),
                "held_since": _iso(r["held_since"], tz),
                "overdue_days_held": None
                if r["overdue_days_held"] is None
                else round(float(r["overdue_days_held"]), 1),
                "status_at_end": r["status_end"],
                "status_at_end_title": ISSUE_STATUSES.get(r["status_end"], r["status_end"]),
                "status_now": r["status_now"],
                "relapse_of_id": r["relapse_of_id"],
                "leader": r["leader"],
                "unit": r["unit"],
                "place": r["place"],
                "layer": titles.get(r["layer"], r["layer"]),
            }
            for r in rows
        ],
    }


def _iso(value: datetime | None, tz: Any = None) -> str | None:
    if value is None:
        return None
    return (value.astimezone(tz) if tz is not None else value).isoformat()
