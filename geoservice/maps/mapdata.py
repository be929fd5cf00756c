"""What the map pages draw besides tiles, computed in PostgreSQL: issue counts per grid /
community / street (choropleth), heat cells of open issues, counts per display class for the
current filters, the latest issues, and per-layer zoom thresholds.

Every function takes the issues collection and an `ItemsQuery` (filters, time, the caller's
scope as SQL) exactly as the items API and the tiles do, so the map, its counts and the API
agree on what a filter means. Plain functions, no Flask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from geoservice.areas.levels import LEVELS
from geoservice.catalogue.catalogue import Collection
from geoservice.catalogue.items import ItemsQuery, conditions
from geoservice.catalogue.tilegrid import COUNT_LEVELS, FINEST_LEVEL, WORLD, mercator, tile_y
from geoservice.catalogue.tiles import FACET_LEVELS, facet_rows, faceted, precounted
from geoservice.placegeom import place_geometries_sql
from geoservice.ranking import ranking
from geoservice.registry import LayerRegistry
from geoservice.vocab import OPEN_STATUSES


class MapDataError(ValueError):
    """Bad input to a map query; `field` names the parameter (Chinese message)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- display classes of issues --------------------------------------------------------------


@dataclass(frozen=True)
class IssueClass:
    id: str
    title: str
    colour: str


# In priority order: an open issue past its deadline is "overdue" whatever its state (also a
# fix awaiting verification); the JS (static/js/map.js) classifies tile features the same way.
ISSUE_CLASSES: tuple[IssueClass, ...] = (
    IssueClass("overdue", "超期未办结", "#d32f2f"),
    IssueClass("open", "办理中", "#1e88e5"),
    IssueClass("fixed", "已整改待复核", "#f9a825"),
    IssueClass("closed", "已销号/不予立案", "#43a047"),
)

_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
OVERDUE_SQL = f"(i.status IN ({_OPEN}) AND i.deadline IS NOT NULL AND i.deadline < now())"
CLASS_SQL = f"""(CASE WHEN {OVERDUE_SQL} THEN 'overdue'
  WHEN i.status = 'fixed' THEN 'fixed'
  WHEN i.status IN ('closed', 'rejected') THEN 'closed'
  ELSE 'open' END)"""

MEASURES: dict[str, tuple[str, str]] = {
    "open": ("未办结问题", f"i.status IN ({_OPEN})"),
    "overdue": ("超期问题", OVERDUE_SQL),
}


def class_counts(session: Session, collection: Collection, query: ItemsQuery) -> dict[str, int]:
    """Issues matching the query per display class (plus `total`)."""
    counts = dict.fromkeys((c.id for c in ISSUE_CLASSES), 0)
    if precounted(collection, query):
        _precounted_classes(session, query, counts)
    else:
        sql = conditions(collection, query)
        rows = session.execute(
            text(f"SELECT {CLASS_SQL}, count(*) FROM issues i WHERE {sql.clause()} GROUP BY 1"),
            sql.params,
        )
        counts.update({k: int(n) for k, n in rows})
    counts["total"] = sum(counts.values())
    return counts


def _precounted_classes(session: Session, query: ItemsQuery, counts: dict[str, int]) -> None:
    """Per-status totals from the tile counts (coarsest level holds every issue once); only the
    overdue ones are counted row by row, on the (status, deadline) index."""
    statuses = query.filters.get("status")
    where = "level = :level" + (" AND status = ANY(:status)" if statuses else "")
    params: dict[str, Any] = {"level": COUNT_LEVELS[0], "status": statuses}
    per_status = dict(
        session.execute(
            text(f"SELECT status, sum(n) FROM issue_tile_counts WHERE {where} GROUP BY status"),
            params,
        ).all()
    )
    open_statuses = [s for s in OPEN_STATUSES if not statuses or s in statuses]
    overdue = dict(
        session.execute(
            text(
                "SELECT status, count(*) FROM issues WHERE status = ANY(:open)"
                " AND deadline < now() GROUP BY status"
            ),
            {"open": open_statuses},
        ).all()
    )
    for status, n in per_status.items():
        late = int(overdue.get(status, 0))
        if status in ("closed", "rejected"):
            counts["closed"] += int(n)
        else:
            counts["overdue"] += late
            counts["fixed" if status == "fixed" else "open"] += int(n) - late


# --- choropleth: counts per grid / community / street ----------------------------------------


def choropleth_groupings(registry: LayerRegistry) -> dict[str, str]:
    """The groupings a choropleth can colour: the base layer's features and the admin area
    levels its features link to (id → Chinese title), as the rankings define them."""
    available = ranking.groupings(registry)
    out = {"grid": available["grid"].title} if "grid" in available else {}
    for level in reversed(LEVELS):
        if level in available:
            out[level] = available[level].title
    return out


def area_counts(
    session: Session,
    registry: LayerRegistry,
    collection: Collection,
    of: str,
    measure: str,
    query: ItemsQuery,
) -> dict[int, int]:
    """{grid / area id: number of issues} for the issues matching `query` and `measure` (the
    status part of the query is replaced by the measure). Zero counts are left out."""
    if of not in choropleth_groupings(registry):
        raise MapDataError(
            f"未知的着色对象 {of!r}，可选：{'、'.join(choropleth_groupings(registry))}", "of"
        )
    if measure not in MEASURES:
        raise MapDataError(f"未知的统计口径 {measure!r}，可选：{'、'.join(MEASURES)}", "measure")
    g = ranking.grouping(registry, of)
    filters = {k: v for k, v in query.filters.items() if k != "status"}
    sql = conditions(collection, replace(query, filters=filters))
    statement = f"""
SELECT {g.key_sql} AS k, count(*) FROM issues i {g.joins}
WHERE {sql.clause()} AND {MEASURES[measure][1]} AND {g.key_sql} IS NOT NULL
GROUP BY 1"""
    return {int(k): int(n) for k, n in session.execute(text(statement), sql.params)}


def class_breaks(values: Sequence[int], classes: int = 5) -> list[int]:
    """Upper bounds of up to `classes` classes of the positive values (quantiles, distinct):
    [1, 2, 4, 7, 15] means 1, 2, 3–4, 5–7, 8–15."""
    positive = sorted(v for v in values if v > 0)
    if not positive:
        return []
    bounds: list[int] = []
    for k in range(1, classes + 1):
        bound = positive[math.ceil(k * len(positive) / classes) - 1]
        if not bounds or bound > bounds[-1]:
            bounds.append(bound)
    return bounds


# --- heat map of open issues -----------------------------------------------------------------

MAX_HEAT_CELLS = 250_000  # cells a bbox may span at the chosen level


def heat_level(z: int) -> int:
    """Stored count level giving cells of 16–32 screen pixels at zoom z."""
    return next((level for level in COUNT_LEVELS if level >= z + 3), FINEST_LEVEL)


def heat_cells(
    session: Session,
    collection: Collection,
    query: ItemsQuery,
    bbox: tuple[float, float, float, float],
    z: int,
) -> list[tuple[float, float, int]]:
    """[(lat, lon, open issues)] per occupied cell in the bbox: the centroid of the cell's open
    issues matching the query (its status filter is narrowed to open states)."""
    statuses = [s for s in OPEN_STATUSES if s in query.filters.get("status", OPEN_STATUSES)] or [
        "-"
    ]
    query = replace(query, filters={**query.filters, "status": statuses}, bbox=bbox)
    level = heat_level(z)
    scale = 2**level
    west, south, east, north = bbox
    cx0, cx1 = (math.floor((lon + 180) / 360 * scale) for lon in (west, east))
    cy0, cy1 = (math.floor(tile_y(lat, level)) for lat in (north, south))
    if (cx1 - cx0 + 1) * (cy1 - cy0 + 1) > MAX_HEAT_CELLS:
        raise MapDataError("范围过大：请放大地图后再显示热力图", "bbox")
    if precounted(collection, replace(query, bbox=None)):
        statement = """
SELECT sum(sy) / sum(n), sum(sx) / sum(n), sum(n)::int FROM issue_tile_counts
WHERE level = :level AND cx BETWEEN :x0 AND :x1 AND cy BETWEEN :y0 AND :y1
  AND status = ANY(:status)
GROUP BY cx, cy HAVING sum(n) > 0"""
        params: dict[str, Any] = {
            "level": level,
            "x0": cx0,
            "x1": cx1,
            "y0": cy0,
            "y1": cy1,
            "status": statuses,
        }
    elif faceted(collection, replace(query, bbox=None)):
        # Category, source, overdue, whole report days: the facets, at the even level nearest.
        level = next((c for c in FACET_LEVELS if c >= level), FACET_LEVELS[-1])
        scale = 2**level
        cx0, cx1 = (math.floor((lon + 180) / 360 * scale) for lon in (west, east))
        cy0, cy1 = (math.floor(tile_y(lat, level)) for lat in (north, south))
        cells = {"level": level, "x0": cx0, "x1": cx1, "y0": cy0, "y1": cy1}
        rows, params = facet_rows(collection, replace(query, bbox=None), cells)
        statement = f"""
SELECT sum(sy) / sum(n), sum(sx) / sum(n), sum(n)::int FROM {rows} r
GROUP BY cx, cy HAVING sum(n) > 0"""
    else:
        sql = conditions(collection, query)
        cell = WORLD / scale
        statement = f"""
SELECT avg(ST_Y(i.geom)), avg(ST_X(i.geom)), count(*)::int
FROM issues i CROSS JOIN LATERAL ST_Transform(i.geom, 3857) AS m
WHERE {sql.clause()}
GROUP BY floor(ST_X(m) / {cell}), floor(ST_Y(m) / {cell})"""
        params = sql.params
    return [
        (float(lat), float(lon), int(n)) for lat, lon, n in session.execute(text(statement), params)
    ]


# --- the latest issues (big screen) ----------------------------------------------------------


def latest_issues(
    session: Session, collection: Collection, query: ItemsQuery, limit: int = 10
) -> list[dict[str, Any]]:
    """The most recently reported issues matching the query, newest first."""
    sql = conditions(collection, query)
    rows = session.execute(
        text(f"""
SELECT i.id, i.category, i.source, i.status, {CLASS_SQL} AS class, i.reported_at, i.deadline,
       left(i.description, 60) AS description, pp.name AS place, ld.name AS leader,
       ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
FROM (SELECT * FROM issues i WHERE {sql.clause()} ORDER BY i.reported_at DESC, i.id DESC
      LIMIT :limit) i
LEFT JOIN places pp ON pp.id = i.primary_place_id
LEFT JOIN leaders ld ON ld.id = i.leader_id
ORDER BY i.reported_at DESC, i.id DESC"""),
        {**sql.params, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


# --- layers: zoom thresholds and extents -----------------------------------------------------

# Layer features drawn per tile at most (vector tiles also cap at TILE_MAX_FEATURES): below the
# zoom where an average tile would hold more, a layer is not drawn (issues are aggregated).
FEATURES_PER_TILE = 2_000


def layer_extents(session: Session, collections: Sequence[Collection]) -> dict[str, list[float]]:
    """Bounding boxes of the layers, from the planner's statistics (`ST_EstimatedExtent`: no
    scan) where the table has been analysed, else `ST_Extent`. For the view and zoom
    thresholds only: a statistics extent can be a little off."""
    out: dict[str, list[float]] = {}
    for c in collections:
        if c.spec is None:
            continue
        box = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT"
                f" COALESCE(ST_EstimatedExtent('{c.spec.table}', 'geom'),"
                f" (SELECT ST_Extent(geom) FROM {c.spec.table})) AS e) s"
            )
        ).one()
        if box[0] is not None:
            out[c.id] = [float(v) for v in box]
    return out


def layer_min_zooms(
    session: Session,
    collections: Sequence[Collection],
    per_tile: int = FEATURES_PER_TILE,
    extents: dict[str, list[float]] | None = None,
) -> dict[str, int]:
    """The lowest zoom at which each layer is drawn: where an average tile over the layer's
    extent holds at most `per_tile` features (counts from the planner's statistics)."""
    layers = [c for c in collections if c.spec is not None]
    extents = extents if extents is not None else layer_extents(session, layers)
    out: dict[str, int] = {}
    for c in layers:
        bbox = extents.get(c.id)
        n = _row_estimate(session, c.spec.table)
        if bbox is None or n <= per_tile:
            out[c.id] = 0
            continue
        (x0, y0), (x1, y1) = mercator(bbox[0], bbox[1]), mercator(bbox[2], bbox[3])
        area = max((x1 - x0) * (y1 - y0), 1.0)
        z = 0
        while z < 16 and n * (WORLD / 2**z) ** 2 / area > per_tile:
            z += 1
        out[c.id] = z
    return out


def _row_estimate(session: Session, table: str) -> int:
    estimate = session.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
    ).scalar()
    if estimate is None or estimate < 0:  # never analysed
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar())
    return int(estimate)


def held_extent(
    session: Session, registry: LayerRegistry, leader_ids: Sequence[int]
) -> list[float] | None:
    """[west, south, east, north] of the places the leaders answer for now (None: none)."""
    row = session.execute(
        text(f"""
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
  SELECT ST_Extent(g.geom) AS e
  FROM assignments a JOIN ({place_geometries_sql(registry)}) g ON g.id = a.place_id
  WHERE a.leader_id IN :ids AND a.valid_from <= now()
    AND (a.valid_to IS NULL OR a.valid_to > now())
) s""").bindparams(bindparam("ids", expanding=True)),
        {"ids": list(leader_ids) or [-1]},
    ).one()
    return [float(v) for v in row] if row[0] is not None else None
