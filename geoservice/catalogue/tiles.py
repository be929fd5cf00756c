"""Mapbox Vector Tiles (ST_AsMVT) of every collection, and collection extents.

Layers: the features in the tile, clipped and quantised by ST_AsMVTGeom, at most `cap` per
tile; polygons and lines at zoom ≤ LOW_DETAIL_MAX_ZOOM simplified to the pixel with id and
attributes only, features under FOLD_PIXELS folded into counted points (`<id>_folded`) —
chosen and counted from `layer_feature_boxes` (per-feature bboxes, migration 0035), so that
only the drawn features' geometries are read, and drawn from `layer_feature_tiles` (each
feature's geometry for its home tile and its columns, ready; migration 0050) where they can be.

Issues: at zoom ≤ AGGREGATE_MAX_ZOOM one point per occupied cell (the centroid of its issues)
with `count` and `open` — from `issue_tile_counts` (status filter only), `issue_tile_facets`
(status, category, source, overdue, whole report days; overdue compares today's deadlines with
the clock one by one), `issue_tile_days` (whole report days and/or a category, with or without a
status; zoom ≤ 11), `issue_tile_holders` (unit and/or leader, with or without a status; zoom
≤ 10) or counted over the matching rows (anything else); above, the issues
themselves, open ones first, unless the tile holds more than the cap: then counts per cell
again. Nothing is ever dropped silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.catalogue.catalogue import ISSUES, Collection
from geoservice.catalogue.items import ItemsQuery, conditions
from geoservice.catalogue.tilegrid import (
    COUNT_LEVELS,
    FINEST_LEVEL,
    WORLD,
    Offset,
    tile_lat,
    tile_lon,
)
from geoservice.db import execute_prepared, jit_off
from geoservice.vocab import OPEN_STATUSES

EXTENT = 4096
BUFFER = 64
LABEL_BUFFER = 1024  # a quarter tile (64 px): labels near an edge come with both tiles
AGGREGATE_MAX_ZOOM = 14
# issue_tile_facets (migration 0025): its levels, the zone of its report days, the filters it
# answers, and the highest zoom it serves (above, a tile's issues are few enough to count).
FACET_LEVELS = (6, 8, 10, 12, 14, 16, 18)
FACET_ZONE = ZoneInfo("Asia/Shanghai")
FACET_FILTERS = frozenset({"status", "category", "source", "overdue"})
# Today and its first instant in the facets' zone, by the database's clock (overdue is
# `deadline < now()` there): deadline days before today are overdue, after it are not.
FACET_TODAY = f"(now() AT TIME ZONE '{FACET_ZONE.key}')::date"
FACET_TODAY_START = f"({FACET_TODAY}::timestamp AT TIME ZONE '{FACET_ZONE.key}')"
FACET_MAX_ZOOM = 16
# issue_tile_holders (migration 0036): its levels, the filters it answers (status, 责任单位 and
# 包保领导, at least one of the last two) and the highest zoom it serves (above, a unit's or a
# leader's issues in a tile are few enough to count; its coarse levels cannot count a z > 10
# tile exactly either).
HOLDER_LEVELS = (8, 10, 12)
HOLDER_KEYS = frozenset({"unit_id", "leader_id"})
HOLDER_FILTERS = HOLDER_KEYS | {"status"}
HOLDER_MAX_ZOOM = 10
# issue_tile_days (migration 0039): its levels, the filters it answers besides whole report days
# (status, category) and the highest zoom it serves (above, the facets' tiles read few rows).
DAY_LEVELS = (8, 10, 12, 14)
DAY_FILTERS = frozenset({"status", "category"})
DAY_MAX_ZOOM = 11
# Polygon and line layers at zoom ≤ this: geometry simplified to the pixel, features smaller
# than a pixel folded into counts (layer `<id>_folded`), properties cut to id and attributes.
LOW_DETAIL_MAX_ZOOM = 12
LOW_DETAIL_EXTENT = 512  # 2 units per pixel of a 256-px tile
FOLD_SHIFT = 5
FOLD_CELLS = 2**FOLD_SHIFT  # folded features are counted per 1/32 of the tile (8 px)
FOLD_PIXELS = 2  # features under 2 × 2 pixels are folded
# At most this many polygons / lines drawn per low-zoom tile (the largest; the others folded
# like sub-pixel ones): ~28 bytes each at z10, so a tile stays under ~150 KB.
LOW_DETAIL_MAX_FEATURES = 4000
# layer_feature_boxes (migration 0035) keeps each feature's bbox centre cell at this level: the
# folding cells of zoom z (level z + FOLD_SHIFT ≤ 17) are a shift of it.
BOX_CELL_LEVEL = 17
assert LOW_DETAIL_MAX_ZOOM + FOLD_SHIFT <= BOX_CELL_LEVEL
assert FINEST_LEVEL == 19  # the finest-level index of migration 0040 (the issues' extent)


def _boxed(session: Session, table: str) -> bool:
    """Does layer_feature_boxes keep `table`'s features (its triggers, migration 0035; a layer
    added later has them from `op.keep_layer_table`, geoservice/layer_upkeep.py)?"""
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger"
                " WHERE tgname = :name AND tgrelid = to_regclass(:table))"
            ),
            {"name": f"{table}_feature_boxes_inserted", "table": table},
        ).scalar()
    )


def precounted(collection: Collection, query: ItemsQuery) -> bool:
    """Can `issue_tile_counts` answer this query (no scope, no time, at most a status)?"""
    return (
        query.scope is None
        and query.interval is None
        and query.bbox is None
        and all(collection.filters[name].countable for name in query.filters)
    )


def faceted_days(
    interval: tuple[datetime | None, datetime | None] | None,
) -> tuple[date | None, date | None] | None:
    """The report-day range (inclusive, Asia/Shanghai) equal to `interval`, or None when the
    interval does not start and end on whole days there (then the facets cannot answer)."""
    if interval is None:
        return (None, None)
    start, end = interval
    first = last = None
    if start is not None:
        local = start.astimezone(FACET_ZONE)
        if local.timetz().replace(tzinfo=None) != time.min:
            return None
        first = local.date()
    if end is not None:
        after = (end + timedelta(microseconds=1)).astimezone(FACET_ZONE)
        if after.timetz().replace(tzinfo=None) != time.min:
            return None
        last = after.date() - timedelta(days=1)
    return first, last


def faceted(collection: Collection, query: ItemsQuery) -> bool:
    """Can `issue_tile_facets` answer this query (no scope, whole report days, filters among
    status, category, source and overdue)?"""
    return (
        collection.id == ISSUES
        and query.scope is None
        and query.bbox is None
        and set(query.filters) <= FACET_FILTERS
        and faceted_days(query.interval) is not None
    )


def held(collection: Collection, query: ItemsQuery) -> bool:
    """Can `issue_tile_holders` answer this query (no scope, no time, a unit or a leader and
    at most a status besides)?"""
    return (
        collection.id == ISSUES
        and query.scope is None
        and query.interval is None
        and query.bbox is None
        and set(query.filters) <= HOLDER_FILTERS
        and not HOLDER_KEYS.isdisjoint(query.filters)
    )


def dated(collection: Collection, query: ItemsQuery) -> bool:
    """Can `issue_tile_days` answer this query (no scope, whole report days, at most a status
    and a category)?"""
    return (
        collection.id == ISSUES
        and query.scope is None
        and query.bbox is None
        and set(query.filters) <= DAY_FILTERS
        and faceted_days(query.interval) is not None
    )


def day_level(z: int) -> int:
    """The day level for a tile at zoom z ≤ DAY_MAX_ZOOM: 4–16 cells across."""
    return next((level for level in DAY_LEVELS if level >= z + 2), DAY_LEVELS[-1])


def holder_level(z: int) -> int:
    """The holder level for a tile at zoom z ≤ HOLDER_MAX_ZOOM: 4–16 cells across."""
    return next((level for level in HOLDER_LEVELS if level >= z + 2), HOLDER_LEVELS[-1])


def facet_level(z: int) -> int:
    """The facet level for a tile at zoom z: 4–8 cells across (the map merges 4 × 4)."""
    return next((level for level in FACET_LEVELS if level >= z + 2), FACET_LEVELS[-1])


def render_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    cap: int,
    offset: Offset | None = None,
) -> bytes:
    # The planner's cost of ST_AsMVTGeom over many rows crosses the JIT threshold, and
    # compiling the query then takes longer (~0.5 s) than running it (tens of ms).
    jit_off(session)
    if collection.id == ISSUES and z <= AGGREGATE_MAX_ZOOM:
        if precounted(collection, query):
            return _aggregated_issue_tile(session, collection, z, x, y, query, offset)
        if _not_overdue_only(collection, query):
            return _not_overdue_tile(session, collection, z, x, y, query, offset)
        if z <= DAY_MAX_ZOOM and dated(collection, query):
            return _dated_issue_tile(session, collection, z, x, y, query, offset)
        if z <= FACET_MAX_ZOOM and faceted(collection, query):
            return _faceted_issue_tile(session, collection, z, x, y, query, offset)
        if z <= HOLDER_MAX_ZOOM and held(collection, query):
            return _held_issue_tile(session, collection, z, x, y, query, offset)
        # An account that sees only some issues, or a filter the pre-aggregated tables cannot
        # answer (leader, unit, overdue …): the matching issues counted on the fly.
        return _snapped_issue_tile(session, collection, z, x, y, query, offset)
    if collection.id == ISSUES:
        if precounted(collection, query) and z <= FINEST_LEVEL:
            if _issues_in_tile(session, z, x, y, query, offset) > cap:
                # A denser tile than the cap even at high zoom: counts per finest cell instead.
                return _aggregated_issue_tile(session, collection, z, x, y, query, offset)
        elif z <= FACET_MAX_ZOOM and faceted(collection, query):
            if _faceted_in_tile(session, collection, z, x, y, query, offset) > cap:
                return _faceted_issue_tile(session, collection, z, x, y, query, offset)
        elif _more_than(session, collection, z, x, y, query, cap, offset):
            # Never drop issues silently: more than the cap are counted per cell instead.
            return _snapped_issue_tile(session, collection, z, x, y, query, offset)
    if generalisable(collection) and z <= LOW_DETAIL_MAX_ZOOM:
        return _generalised_tile(session, collection, z, x, y, query, cap, offset)
    return _feature_tile(session, collection, z, x, y, query, cap, offset)


# NO_FILTER: in `SELECT ST_AsMVT(m, …) FROM (SELECT ST_AsMVTGeom(…) AS geom, …) m WHERE m.geom
# IS NOT NULL` the planner flattens the subquery, and the filter then computes every feature's
# ST_AsMVTGeom (with its ST_Transform / ST_Simplify) a second time, apart from the one the tile
# encodes (the z10 grid tile of the demo county: 49 ms instead of 35). ST_AsMVT skips the rows
# whose geometry is NULL (those ST_AsMVTGeom leaves out: outside the tile, collapsed) and
# gives '' when none is left, so the layer tiles below have no such filter
# (tests/test_tile_plans.py).

# Per-feature text the low-zoom tiles leave out (unique strings: most of a tile's bytes).
NON_STYLE_COLUMNS = frozenset({"code", "name", "leader_id", "leader"})


def _cell_range(z: int, x: int, y: int, level: int, offset: Offset | None = None) -> dict[str, int]:
    """The cells of `level` covering tile z/x/y (moved back by `offset`: the data window)."""
    if offset is None:
        shift = level - z
        return {
            "level": level,
            "x0": x << shift,
            "x1": ((x + 1) << shift) - 1,
            "y0": y << shift,
            "y1": ((y + 1) << shift) - 1,
        }
    dx, dy = offset
    tile, cell = WORLD / 2**z, WORLD / 2**level
    last = 2**level - 1

    def index(metres: float) -> int:
        return min(max(math.floor(metres / cell), 0), last)

    # Column from the west edge, row from the north edge of the plane, in metres.
    return {
        "level": level,
        "x0": index(x * tile - dx),
        "x1": index((x + 1) * tile - dx),
        "y0": index(y * tile + dy),
        "y1": index((y + 1) * tile + dy),
    }


def _moved(expr: str, offset: Offset | None) -> str:
    """`expr` (EPSG:3857) translated by the offset (bound as :dx, :dy)."""
    return f"ST_Translate({expr}, :dx, :dy)" if offset is not None else expr


def _window(margin: float, offset: Offset | None) -> str:
    """The tile envelope (with a margin) in EPSG:4326, moved back by the offset."""
    envelope = f"ST_TileEnvelope(:z, :x, :y, margin => {margin})"
    if offset is not None:
        envelope = f"ST_Translate({envelope}, -:dx, -:dy)"
    return f"ST_Transform({envelope}, 4326)"


def _offset_params(offset: Offset | None) -> dict[str, float]:
    return {"dx": offset[0], "dy": offset[1]} if offset is not None else {}


def _issues_in_tile(
    session: Session, z: int, x: int, y: int, query: ItemsQuery, offset: Offset | None = None
) -> int:
    """Exact number of issues in the tile (z ≤ FINEST_LEVEL), from the tile counts: the
    coarsest level whose cells tile it exactly (a z12 tile is 4 cells of level 13, not 16,384
    of the finest), the finest when the tile is moved by an offset."""
    level = FINEST_LEVEL if offset is not None else min(c for c in COUNT_LEVELS if c >= z)
    where = "level = :level AND cx BETWEEN :x0 AND :x1 AND cy BETWEEN :y0 AND :y1"
    params: dict[str, Any] = _cell_range(z, x, y, level, offset)
    if "status" in query.filters:
        where += " AND status = ANY(:status)"
        params["status"] = query.filters["status"]
    return int(
        session.execute(
            text(f"SELECT COALESCE(sum(n), 0) FROM issue_tile_counts WHERE {where}"), params
        ).scalar()
    )


def _feature_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    cap: int,
    offset: Offset | None = None,
    label: str | None = None,
) -> bytes:
    """The features in the tile; with `label` (a column of the collection), one point per
    feature instead (ST_PointOnSurface) carrying only `label`, with a wide buffer so a label
    near a tile edge is drawn whole by both tiles."""
    sql = conditions(collection, query)
    buffer = LABEL_BUFFER if label else BUFFER
    margin = buffer / EXTENT
    open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    order = (
        f"ORDER BY (i.status IN ({open_list})) DESC, i.id DESC"
        if collection.id == ISSUES
        else f"ORDER BY {collection.id_column}"
    )
    select = collection.select_columns
    if label is None:
        columns = ", ".join(f"{expr} AS {name}" for name, expr in collection.tile_columns)
        geometry, joins = "t.geom", collection.tile_joins
        if collection.id == ISSUES:
            # The columns the tile carries, not the whole row (description, attribution …):
            # up to `cap` rows are sorted and encoded.
            used = sorted({"id", "geom", "status"} | set(re.findall(r"\bt\.(\w+)", columns)))
            select = ", ".join(f"i.{name}" for name in used)
    else:
        columns, geometry, joins = f"t.{label} AS label", "ST_PointOnSurface(t.geom)", ""
    statement = f"""
WITH bounds AS (
  SELECT ST_TileEnvelope(:z, :x, :y) AS merc, {_window(margin, offset)} AS geo
), t AS (
  SELECT {select} FROM {collection.base_from}, bounds
  WHERE {collection.geom_column} && bounds.geo AND {sql.clause()}
  {order} LIMIT :cap
)
SELECT ST_AsMVT(m, :layer, {EXTENT}, 'geom', 'id') FROM (
  SELECT t.id,
         ST_AsMVTGeom({_moved(f"ST_Transform({geometry}, 3857)", offset)}, bounds.merc,
                      {EXTENT}, {buffer}, true) AS geom,
         {columns}
  FROM t CROSS JOIN bounds
  {joins}
) m  -- no `geom IS NOT NULL`: see NO_FILTER"""
    params = {
        **sql.params,
        **_offset_params(offset),
        "z": z,
        "x": x,
        "y": y,
        "cap": cap,
        "layer": collection.id,
    }
    # Planning a tile (every monthly partition of the issues) took ~1 ms, about as long as
    # running it. Past z14 (the issues' feature tiles) a tile spans ≤ 1.2 km and one generic
    # plan serves them all; below, each tile is planned for its size (a prepared statement made
    # the sites' z6–z10 tiles 20–50 % slower: PostgreSQL went over to its generic plan).
    if z > AGGREGATE_MAX_ZOOM:
        tile = execute_prepared(session, statement, params, TILE_PARAMETER_TYPES, generic=True)
    else:
        tile = session.execute(text(statement), params)
    return bytes(tile.scalar() or b"")


TILE_PARAMETER_TYPES = {"z": "int", "x": "int", "y": "int"}  # ST_TileEnvelope's


def _aggregated_issue_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    offset: Offset | None = None,
) -> bytes:
    # 8–16 cells across at low zoom (the map merges them into 4 × 4 bubbles).
    level = next((c for c in COUNT_LEVELS if c >= z + 3), FINEST_LEVEL)
    level = level if z <= AGGREGATE_MAX_ZOOM else FINEST_LEVEL
    where = ["level = :level", "cx BETWEEN :x0 AND :x1", "cy BETWEEN :y0 AND :y1"]
    params: dict[str, Any] = _cell_range(z, x, y, level, offset)
    if "status" in query.filters:
        where.append("status = ANY(:status)")
        params["status"] = query.filters["status"]
    rows = f"(SELECT cx, cy, status, n, sx, sy FROM issue_tile_counts WHERE {' AND '.join(where)})"
    return _cells_tile(session, collection, z, x, y, rows, params, offset)


def _not_overdue_only(collection: Collection, query: ItemsQuery) -> bool:
    """overdue=false with at most a status filter: the tile counts minus the overdue facets."""
    return (
        query.filters.get("overdue") is False
        and set(query.filters) <= {"status", "overdue"}
        and query.interval is None
        and faceted(collection, query)
    )


def _not_overdue_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    offset: Offset | None = None,
) -> bytes:
    """overdue=false, low zoom: every issue per cell from `issue_tile_counts` (level L) less
    the overdue ones from the facets' open-deadline index at level L + 1 (its cells halved),
    instead of the facets' every other row (most of the table)."""
    level = next((c for c in COUNT_LEVELS if c >= z + 3), FINEST_LEVEL)
    cells = _cell_range(z, x, y, level, offset)
    where = ["level = :c_level", "cx BETWEEN :c_x0 AND :c_x1", "cy BETWEEN :c_y0 AND :c_y1"]
    params: dict[str, Any] = {f"c_{k}": v for k, v in cells.items()}
    if "status" in query.filters:
        where.append("status = ANY(:c_status)")
        params["c_status"] = list(query.filters["status"])
    finer = {
        "level": level + 1,
        "x0": 2 * cells["x0"],
        "x1": 2 * cells["x1"] + 1,
        "y0": 2 * cells["y0"],
        "y1": 2 * cells["y1"] + 1,
    }
    overdue = replace(query, filters={**query.filters, "overdue": True})
    over, over_params = facet_rows(collection, overdue, finer)
    rows = f"""(
  SELECT cx, cy, status, n, sx, sy FROM issue_tile_counts WHERE {" AND ".join(where)}
  UNION ALL
  SELECT cx >> 1, cy >> 1, status, -n, -sx, -sy FROM {over} o)"""
    return _cells_tile(session, collection, z, x, y, rows, {**params, **over_params}, offset)


def facet_rows(
    collection: Collection, query: ItemsQuery, cells: dict[str, int]
) -> tuple[str, dict[str, Any]]:
    """A derived table (cx, cy, status, n, sx, sy) of the query's issues in `cells` (level,
    x0–x1, y0–y1) from issue_tile_facets: rows to sum per cell. With `overdue`, the facets
    answer every deadline day but today's (before: overdue when open; after: not), and the
    issues whose deadline falls today are compared with now() one by one (the open-deadline
    index) and added (overdue=true) or taken off (overdue=false) per cell."""
    where = ["level = :level", "cx BETWEEN :x0 AND :x1", "cy BETWEEN :y0 AND :y1"]
    params: dict[str, Any] = dict(cells)
    for name, values in query.filters.items():  # status, category, source (faceted)
        if name != "overdue":
            where.append(f"{name} = ANY(:{name})")
            params[name] = list(values)
    days = faceted_days(query.interval)
    assert days is not None
    if days[0] is not None:
        where.append("day >= :first_day")
        params["first_day"] = days[0]
    if days[1] is not None:
        where.append("day <= :last_day")
        params["last_day"] = days[1]
    overdue = query.filters.get("overdue")
    if overdue is not None:
        past = f"(status = ANY(:open_statuses) AND deadline_day < {FACET_TODAY})"
        where.append(past if overdue else f"NOT {past}")
        params["open_statuses"] = list(OPEN_STATUSES)
    rows = f"SELECT cx, cy, status, n, sx, sy FROM issue_tile_facets WHERE {' AND '.join(where)}"
    if overdue is None:
        return f"({rows})", params
    # Today's deadlines passed by now (the same filters, overdue=true), by the triggers' cells.
    sql = conditions(collection, replace(query, filters={**query.filters, "overdue": True}))
    level = cells["level"]
    sign = 1 if overdue else -1
    lat = "least(greatest(ST_Y(i.geom), -85.0511), 85.0511)"
    today = f"""
SELECT cx, cy, status, {sign} AS n, {sign} * lon AS sx, {sign} * lat AS sy FROM (
  SELECT i.status, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
         least(greatest(floor((ST_X(i.geom) + 180.0) / 360.0 * 524288), 0), 524287)::int
           >> {19 - level} AS cx,
         least(greatest(floor((1.0 - ln(tan(radians({lat})) + 1.0 / cos(radians({lat}))) / pi())
           / 2.0 * 524288), 0), 524287)::int >> {19 - level} AS cy
  FROM issues i
  WHERE i.deadline >= {FACET_TODAY_START}
    AND i.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326) AND {sql.clause()}
) today WHERE cx BETWEEN :x0 AND :x1 AND cy BETWEEN :y0 AND :y1"""
    params.update(sql.params)
    params.update(
        west=tile_lon(cells["x0"], level),
        east=tile_lon(cells["x1"] + 1, level),
        north=tile_lat(cells["y0"], level),
        south=tile_lat(cells["y1"] + 1, level),
    )
    return f"({rows} UNION ALL {today})", params


def holder_rows(query: ItemsQuery, cells: dict[str, int]) -> tuple[str, dict[str, Any]]:
    """A derived table (cx, cy, status, n, sx, sy) of the query's issues (a unit and/or a
    leader, maybe a status) in `cells` (level, x0–x1, y0–y1) from issue_tile_holders."""
    where = ["level = :level", "cx BETWEEN :x0 AND :x1", "cy BETWEEN :y0 AND :y1"]
    params: dict[str, Any] = dict(cells)
    if "status" in query.filters:
        where.append("status = ANY(:status)")
        params["status"] = list(query.filters["status"])
    for name in sorted(HOLDER_KEYS & set(query.filters)):  # one id each (never 0: ids ≥ 1)
        where.append(f"{name} = :{name}")
        params[name] = int(query.filters[name])
    rows = f"SELECT cx, cy, status, n, sx, sy FROM issue_tile_holders WHERE {' AND '.join(where)}"
    return f"({rows})", params


def day_rows(query: ItemsQuery, cells: dict[str, int]) -> tuple[str, dict[str, Any]]:
    """A derived table (cx, cy, status, n, sx, sy) of the query's issues (whole report days,
    maybe a status and a category) in `cells` (level, x0–x1, y0–y1) from issue_tile_days."""
    where = ["level = :level", "cx BETWEEN :x0 AND :x1", "cy BETWEEN :y0 AND :y1"]
    params: dict[str, Any] = dict(cells)
    for name in sorted(DAY_FILTERS & set(query.filters)):
        where.append(f"{name} = ANY(:{name})")
        params[name] = list(query.filters[name])
    days = faceted_days(query.interval)
    assert days is not None
    if days[0] is not None:
        where.append("day >= :first_day")
        params["first_day"] = days[0]
    if days[1] is not None:
        where.append("day <= :last_day")
        params["last_day"] = days[1]
    rows = f"SELECT cx, cy, status, n, sx, sy FROM issue_tile_days WHERE {' AND '.join(where)}"
    return f"({rows})", params


def _dated_issue_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    offset: Offset | None = None,
) -> bytes:
    rows, params = day_rows(query, _cell_range(z, x, y, day_level(z), offset))
    return _cells_tile(session, collection, z, x, y, rows, params, offset)


def _held_issue_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    offset: Offset | None = None,
) -> bytes:
    rows, params = holder_rows(query, _cell_range(z, x, y, holder_level(z), offset))
    return _cells_tile(session, collection, z, x, y, rows, params, offset)


def _faceted_in_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    offset: Offset | None = None,
) -> int:
    """Exact number of matching issues in the tile, from the facets."""
    rows, params = facet_rows(collection, query, _cell_range(z, x, y, facet_level(z), offset))
    statement = f"SELECT COALESCE(sum(n), 0) FROM {rows} r"
    return int(session.execute(text(statement), params).scalar())


def _faceted_issue_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    offset: Offset | None = None,
) -> bytes:
    rows, params = facet_rows(collection, query, _cell_range(z, x, y, facet_level(z), offset))
    return _cells_tile(session, collection, z, x, y, rows, params, offset)


def _cells_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    rows: str,
    params: dict[str, Any],
    offset: Offset | None,
) -> bytes:
    """One point per occupied cell of `rows` (cx, cy, status, n, sx, sy: from
    issue_tile_counts or issue_tile_facets, the tile's cells) at the centroid of its issues,
    with `count` and `open`."""
    params = {
        **params,
        **_offset_params(offset),
        "z": z,
        "x": x,
        "y": y,
        "layer": collection.id,
        "open": list(OPEN_STATUSES),
    }
    point = _moved("ST_Transform(ST_SetSRID(ST_MakePoint(sx / n, sy / n), 4326), 3857)", offset)
    statement = f"""
WITH cells AS (
  SELECT cx, cy, sum(n) AS n, sum(n) FILTER (WHERE status = ANY(:open)) AS open,
         sum(sx) AS sx, sum(sy) AS sy
  FROM {rows} r
  GROUP BY cx, cy HAVING sum(n) > 0
)
SELECT ST_AsMVT(m, :layer, {EXTENT}, 'geom') FROM (
  SELECT ST_AsMVTGeom({point}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom,
         n::int AS count, COALESCE(open, 0)::int AS open, true AS cluster
  FROM cells
) m WHERE m.geom IS NOT NULL"""
    return bytes(session.execute(text(statement), params).scalar() or b"")


def _more_than(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    cap: int,
    offset: Offset | None = None,
) -> bool:
    """Does the tile (with its buffer) hold more than `cap` matching issues?"""
    sql = conditions(collection, query)
    statement = f"""
SELECT count(*) FROM (
  SELECT 1 FROM issues i
  WHERE i.geom && {_window(BUFFER / EXTENT, offset)} AND {sql.clause()} LIMIT :cap + 1
) s"""
    params = {**sql.params, **_offset_params(offset), "z": z, "x": x, "y": y, "cap": cap}
    return int(session.execute(text(statement), params).scalar()) > cap


def _column(level: int) -> str:
    """The column of the issue `i`'s cell at `level` (web-mercator tiling, as the tile counts)."""
    return f"floor((ST_X(i.geom) + 180.0) / 360.0 * {2**level})"


def _row(level: int) -> str:
    return (
        "floor((1.0 - asinh(tan(radians(least(greatest(ST_Y(i.geom), -85.0511), 85.0511))))"
        f" / pi()) / 2.0 * {2**level})"
    )


def _snapped_issue_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    offset: Offset | None = None,
) -> bytes:
    """The matching issues counted per cell (8 × 8 per tile; the map merges them into 4 × 4
    bubbles) on the fly: the cell from the coordinates by arithmetic (the tile-count formula),
    no per-row reprojection; one point per cell at the centroid of its issues."""
    sql = conditions(collection, query)
    level = min(z + 3, FINEST_LEVEL + 3)
    open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    point = _moved("ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 3857)", offset)
    # The window's bbox test is loose at its edges (the index's float4 boxes round outwards):
    # each issue is kept in the tile whose cells hold it by the tile counts' arithmetic, or a
    # neighbour's issue would be counted in both tiles (a bubble outside the tile's extent).
    own = "" if offset is not None else f" AND {_column(z)} = :x AND {_row(z)} = :y"
    statement = f"""
WITH cells AS (
  SELECT count(*) AS n, count(*) FILTER (WHERE i.status IN ({open_list})) AS open,
         avg(ST_X(i.geom)) AS lon, avg(ST_Y(i.geom)) AS lat
  FROM issues i
  WHERE i.geom && {_window(0, offset)} AND {sql.clause()}{own}
  GROUP BY {_column(level)}, {_row(level)}
)
SELECT ST_AsMVT(t, :layer, {EXTENT}, 'geom') FROM (
  SELECT ST_AsMVTGeom({point}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom,
         n::int AS count, open::int AS open, true AS cluster
  FROM cells
) t WHERE t.geom IS NOT NULL"""
    params = {
        **sql.params,
        **_offset_params(offset),
        "z": z,
        "x": x,
        "y": y,
        "layer": collection.id,
    }
    return bytes(session.execute(text(statement), params).scalar() or b"")


# Low-zoom layer tiles draw points by folding cell, the sparsest cells first, while the tile's
# feature budget lasts (what the drawn polygons and lines left of LOW_DETAIL_MAX_FEATURES): in
# a tile holding more, the densest cells are folded into counts instead (from `t`: id, px < 0
# for points, fx, fy the folding cell; `drawn`: the polygons and lines drawn).
POINT_CELLS = """, point_cells AS (
  SELECT c.fx, c.fy FROM (
    SELECT p.fx, p.fy, sum(p.n) OVER (ORDER BY p.n, p.fx, p.fy) AS running
    FROM (SELECT t.fx, t.fy, count(*) AS n FROM t WHERE t.px < 0 GROUP BY t.fx, t.fy) p
  ) c
  WHERE c.running <= :most - (SELECT count(*) FROM drawn)
)"""


def _tiled(session: Session, table: str) -> bool:
    """Does layer_feature_tiles keep `table`'s features ready to draw (its triggers, migration
    0050; a layer added later has them from `op.keep_layer_table`, geoservice/layer_upkeep.py)?"""
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger"
                " WHERE tgname = :name AND tgrelid = to_regclass(:table))"
            ),
            {"name": f"{table}_feature_tiles_inserted", "table": table},
        ).scalar()
    )


def generalisable(collection: Collection) -> bool:
    """Drawn simplified at low zoom, what is under a pixel folded into counts: layers with
    polygons or lines (and the points of a layer mixing them)."""
    return any(t.endswith(("Polygon", "LineString")) for t in collection.geometry_types)


def _generalised_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    cap: int,
    offset: Offset | None = None,
) -> bytes:
    """A polygon or line layer at low zoom: each feature simplified to the pixel, carrying its
    id and declared attributes (what the map styles and a click needs); features whose extent
    is under FOLD_PIXELS both ways — and, in a tile holding more than LOW_DETAIL_MAX_FEATURES
    bigger ones, all but that many largest — are not drawn but counted per 8-px cell in layer
    `<id>_folded` (points with `count`, each in one tile only), so the tile stays small and
    nothing vanishes without a trace. Points (a layer may mix them with polygons) are drawn by
    cell, sparsest first, within what is left of that budget; the densest cells beyond it are
    folded too (POINT_CELLS)."""
    sql = conditions(collection, query)
    # Degrees of longitude per pixel; a latitude span is compared after scaling by cos(lat).
    pixel_deg = 360.0 / 2**z / 256
    lat = math.radians(tile_lat(y + 0.5, z))
    extent, buffer = LOW_DETAIL_EXTENT, LOW_DETAIL_EXTENT // 64
    # The collection's tile columns but the per-feature text and the leader (a lateral join).
    kept = [
        (name, expr)
        for name, expr in collection.tile_columns
        if name not in NON_STYLE_COLUMNS and "primary_lead." not in expr
    ]
    attributes = "".join(f", {expr} AS {name}" for name, expr in kept)
    carried = "".join(f", s.{name}" for name, _ in kept)
    geom = collection.geom_column
    scale = 2**z * FOLD_CELLS
    select, source = collection.select_columns, collection.base_from
    table = collection.spec.table if collection.spec is not None else None
    if source == f"places p JOIN {table} l ON l.id = p.id" and "p." not in sql.clause():
        # Nothing here needs the places row (code, name: left out at low zoom): the layer
        # table alone, not a join per feature.
        select, source = "l.*", f"{table} l"
    big_carried = carried.replace("s.", "t.")
    # Half a pixel (in degrees of latitude at the tile's centre row): the SQL function
    # layer_feature_tiles is computed with too (migration 0050).
    simplified = _moved(
        "ST_Transform(ST_Simplify(t.geom, low_detail_tolerance(:z, :y), true), 3857)", offset
    )
    folded_point = _moved("ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 3857)", offset)
    if table is not None and _boxed(session, table):
        # From layer_feature_boxes (migration 0035): the candidates' bboxes, not their
        # geometries; the layer rows (geometry, attributes) of the drawn features only.
        id_column = "l.id" if source == f"{table} l" else collection.id_column
        where, matching = "TRUE", ""
        if sql.clause() != "TRUE":
            # Filters or a scope: the matching ids in the tile, once (the layer rows by the
            # spatial index, their geometries not measured).
            where = "b.id IN (SELECT id FROM matching)"
            matching = f"""
), matching AS MATERIALIZED (
  SELECT {id_column} AS id FROM {source}, bounds WHERE {geom} && bounds.geo AND {sql.clause()}"""
        shift = BOX_CELL_LEVEL - (z + FOLD_SHIFT)
        drawn_geom = f"ST_AsMVTGeom({simplified}, bounds.merc, {extent}, {buffer}, true)"
        home, looked_up = (
            "",
            f"""
  CROSS JOIN LATERAL (
    SELECT {select} FROM {source} WHERE {id_column} = d.id
  ) t""",
        )
        if offset is None and select == "l.*" and _tiled(session, table):
            # From layer_feature_tiles (migration 0050): the drawn features whose home tile
            # this is come ready (the geometry this tile would compute, the row's columns),
            # by one index range and a hash join; the others (crossing in from a neighbour,
            # points) are looked up and computed. A range, not the drawn ids' rows (4,000 index
            # lookups cost more): the home rows as large as the smallest drawn (their size is
            # px × pixel_deg; a hair less, for rounding: a feature missed is computed).
            home = """, home AS MATERIALIZED (
  SELECT h.id, h.geom, h.attrs FROM layer_feature_tiles h
  WHERE h.layer = :table AND h.z = :z AND h.x = :x AND h.y = :y
    AND h.size >= (SELECT min(px) FROM drawn) * :pixel_deg * (1 - 1e-9)
)"""
            drawn_geom = f"CASE WHEN h.id IS NULL THEN {drawn_geom} ELSE h.geom END"
            looked_up = f"""
  LEFT JOIN home h ON h.id = d.id
  CROSS JOIN LATERAL (
    SELECT {select} FROM {source} WHERE {id_column} = d.id AND h.id IS NULL
    UNION ALL
    SELECT r.* FROM jsonb_populate_record(NULL::{table}, h.attrs) r WHERE h.id IS NOT NULL
  ) t"""
        statement = f"""
WITH bounds AS (
  SELECT ST_TileEnvelope(:z, :x, :y) AS merc, {_window(buffer / extent, offset)} AS geo{matching}
), t AS MATERIALIZED (
  -- the candidates to draw: points and the features above the fold size (few at low zoom)
  SELECT b.id,
         CASE WHEN b.point THEN -1
              ELSE greatest(b.x1 - b.x0, (b.y1 - b.y0) / :coslat) / :pixel_deg END AS px,
         b.cx >> {shift} AS fx, b.cy >> {shift} AS fy
  FROM layer_feature_boxes b, bounds
  WHERE b.layer = :table AND b.box && bounds.geo AND {where} AND b.span >= :min_span
), drawn AS (
  -- the largest above the fold size, at most :most of them (a top-N sort of the candidates)
  SELECT t.id, t.px FROM t WHERE t.px >= :fold_px ORDER BY t.px DESC, t.id LIMIT :most
){POINT_CELLS}{home}, big AS (
  -- the largest first (drawn under the smaller ones), then the points by id (the points' cells
  -- by IN: a JOIN with the few cells is planned as a loop over every point per cell)
  SELECT t.id, {drawn_geom} AS geom{attributes}
  FROM (SELECT id, px FROM drawn
        UNION ALL SELECT t.id, t.px FROM t
        WHERE t.px < 0 AND (t.fx, t.fy) IN (SELECT fx, fy FROM point_cells)) d{looked_up}
  CROSS JOIN bounds
  ORDER BY d.px DESC, d.id
), folded AS (
  -- per cell of the tile grid (bbox centres; the cell by a shift of the stored level-17 one)
  SELECT count(*)::int AS count, avg((b.x0 + b.x1) / 2) AS lon, avg((b.y0 + b.y1) / 2) AS lat
  FROM layer_feature_boxes b, bounds
  WHERE b.layer = :table AND b.box && bounds.geo AND {where}
    AND CASE WHEN b.point
             THEN (b.cx >> {shift}, b.cy >> {shift}) NOT IN (SELECT fx, fy FROM point_cells)
             ELSE b.id NOT IN (SELECT id FROM drawn) END
  GROUP BY b.cx >> {shift}, b.cy >> {shift}
)"""
    else:
        # `t`: each feature's id, attributes, bbox, geometry and size in pixels (points: -1,
        # never folded); `drawn`: the features drawn, by size (only those above the fold size
        # sorted).
        statement = f"""
WITH bounds AS (
  SELECT ST_TileEnvelope(:z, :x, :y) AS merc, {_window(buffer / extent, offset)} AS geo
), s AS (
  SELECT t.*, CASE WHEN t.point THEN -1
                   ELSE greatest(ST_XMax(t.b) - ST_XMin(t.b),
                                 (ST_YMax(t.b) - ST_YMin(t.b)) / :coslat) / :pixel_deg
              END AS px,
         floor(((ST_XMin(t.b) + ST_XMax(t.b)) / 2 + 180.0) / 360.0 * {scale})::int AS fx,
         floor((1.0 - asinh(tan(radians((ST_YMin(t.b) + ST_YMax(t.b)) / 2))) / pi()) / 2.0
               * {scale})::int AS fy
  FROM (
    SELECT t.id{attributes}, Box2D(t.geom) AS b, t.geom, ST_Dimension(t.geom) = 0 AS point
    FROM (
      SELECT {select} FROM {source}, bounds
      WHERE {geom} && bounds.geo AND {sql.clause()}
    ) t
  ) t
), t AS MATERIALIZED (
  SELECT s.id{carried}, s.b, s.px, s.fx, s.fy, s.geom FROM s
), drawn AS (
  -- the largest above the fold size, at most :most of them (a top-N sort of the candidates)
  SELECT t.id FROM t WHERE t.px >= :fold_px ORDER BY t.px DESC, t.id LIMIT :most
){POINT_CELLS}, big AS (
  SELECT t.id,
         ST_AsMVTGeom({simplified}, bounds.merc, {extent}, {buffer}, true) AS geom{big_carried}
  FROM t CROSS JOIN bounds
  WHERE CASE WHEN t.px < 0 THEN (t.fx, t.fy) IN (SELECT fx, fy FROM point_cells)
             ELSE t.id IN (SELECT id FROM drawn) END
), folded AS (
  -- per cell of the tile grid (bbox centres, in degrees; no reprojection per feature)
  SELECT count(*)::int AS count, avg(lon) AS lon, avg(lat) AS lat
  FROM (
    SELECT (ST_XMin(t.b) + ST_XMax(t.b)) / 2 AS lon, (ST_YMin(t.b) + ST_YMax(t.b)) / 2 AS lat,
           t.fx, t.fy
    FROM t
    WHERE CASE WHEN t.px < 0 THEN (t.fx, t.fy) NOT IN (SELECT fx, fy FROM point_cells)
               ELSE t.id NOT IN (SELECT id FROM drawn) END
  ) c
  GROUP BY fx, fy
)"""
    statement += f"""
SELECT COALESCE((SELECT ST_AsMVT(b, :layer, {extent}, 'geom', 'id') FROM big b), ''::bytea)
    || COALESCE((SELECT ST_AsMVT(f, :folded, {extent}, 'geom') FROM (
         SELECT ST_AsMVTGeom({folded_point}, bounds.merc, {extent}, 0, true) AS geom,
                folded.count
         FROM folded CROSS JOIN bounds) f), ''::bytea)  -- NO_FILTER"""
    params = {
        **sql.params,
        **_offset_params(offset),
        "z": z,
        "x": x,
        "y": y,
        "layer": collection.id,
        "table": table,
        "folded": f"{collection.id}_folded",
        "pixel_deg": pixel_deg,
        "fold_px": FOLD_PIXELS,
        "most": LOW_DETAIL_MAX_FEATURES,
        "coslat": math.cos(lat),
        # px ≥ fold_px needs a bbox side of fold_px pixels × cos(lat) degrees at least (a
        # hair less: the test only narrows what the exact one then decides).
        "min_span": FOLD_PIXELS * pixel_deg * math.cos(lat) * (1 - 1e-9),
    }
    # The tile's features (tens of thousands at low zoom) kept in memory, not on disk.
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    return bytes(session.execute(text(statement), params).scalar() or b"")


def label_tile(
    session: Session,
    collection: Collection,
    z: int,
    x: int,
    y: int,
    query: ItemsQuery,
    cap: int,
    label: str,
    offset: Offset | None = None,
) -> bytes:
    """One label point per feature of a layer (its `label` column), for text on the map."""
    return _feature_tile(session, collection, z, x, y, query, cap, offset, label)


def area_tile(
    session: Session,
    level: str,
    z: int,
    x: int,
    y: int,
    scope: tuple[str, dict[str, Any]] | None,
    offset: Offset | None = None,
) -> bytes:
    """Admin areas of one level (e.g. community) in tile z/x/y: id, code, name (layer `level`).
    `scope`: SQL on `admin_areas a` restricting what the caller sees."""
    where, params = scope if scope is not None else ("TRUE", {})
    extent, buffer = EXTENT, BUFFER
    geometry = "ST_Transform(a.geom, 3857)"
    if z <= LOW_DETAIL_MAX_ZOOM:  # outlines simplified to the pixel, as layers are
        extent, buffer = LOW_DETAIL_EXTENT, LOW_DETAIL_EXTENT // 64
        geometry = f"ST_Simplify({geometry}, {WORLD / 2**z / 256 / 2}, true)"
    margin = buffer / extent
    statement = f"""
WITH bounds AS (
  SELECT ST_TileEnvelope(:z, :x, :y) AS merc, {_window(margin, offset)} AS geo
)
SELECT ST_AsMVT(m, :layer, {extent}, 'geom', 'id') FROM (
  SELECT a.id,
         ST_AsMVTGeom({_moved(geometry, offset)}, bounds.merc, {extent},
                      {buffer}, true) AS geom,
         a.code, a.name
  FROM admin_areas a CROSS JOIN bounds
  WHERE a.level = :level AND a.geom && bounds.geo AND ({where})
) m  -- no `geom IS NOT NULL`: see NO_FILTER"""
    params = {
        **params,
        **_offset_params(offset),
        "z": z,
        "x": x,
        "y": y,
        "level": level,
        "layer": level,
    }
    return bytes(session.execute(text(statement), params).scalar() or b"")


# The layers' extents last computed, per database and table: (write generation, bbox).
_LAYER_EXTENTS: dict[tuple[str, str], tuple[int, list[float] | None]] = {}


# The issues' extent as one bigint[] (-1 where there are none): the occupied cells of the finest
# tile-count level (min cx, min cy, max cx, max cy) and the first report (µs since 1970). A key
# may still hold unfolded +1/−1 delta rows (migration 0028): the extent may then include a cell
# emptied since, until its next write folds them (summing per cell would read the whole level).
# Each bound is a one-row index scan (cx: the key index; cy: (level, cy, cx), migration 0044;
# the first report: each partition's reported_at index), not an aggregate over ~900,000 rows.
# The catalogue keys on this value (edge/caching.py): reports inside the extent leave it as is.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OCCUPIED = f"FROM issue_tile_counts WHERE level = {FINEST_LEVEL} AND n > 0"
NO_ISSUES = -(2**63)  # bigint's least value: no first report (-1 was 1969-12-31T23:59:59.999999)
ISSUE_EXTENT_SQL = (
    f"(SELECT ARRAY[COALESCE((SELECT min(cx) {_OCCUPIED}), -1),"
    f" COALESCE((SELECT min(cy) {_OCCUPIED}), -1), COALESCE((SELECT max(cx) {_OCCUPIED}), -1),"
    f" COALESCE((SELECT max(cy) {_OCCUPIED}), -1),"
    # The first report in µs since 1970 (negative before it), NO_ISSUES when there is none (a
    # derived subject is an array without NULLs: geoservice.httpcache.Derived).
    " COALESCE((SELECT floor(extract(epoch FROM min(reported_at)) * 1000000) FROM issues),"
    f" {NO_ISSUES})]::bigint[])"
)


def collection_extents(
    session: Session, collections: list[Collection], remember: bool = False
) -> dict[str, dict[str, Any]]:
    """Bounding boxes (and the time span of issues: from the first report, open-ended),
    cheaply: ST_Extent of the layer tables; for issues, the occupied cells of the finest
    tile-count level (≤ 80 m larger; ISSUE_EXTENT_SQL).
    `remember`: a layer's extent is computed again only when its table's write generation
    (geoservice.httpcache) moved — only where generations move at every commit (not in tests
    sharing one transaction that is never committed)."""
    out: dict[str, dict[str, Any]] = {}
    layers = {c.id: c.spec.table for c in collections if c.spec is not None}
    generations: dict[str, int] = {}
    database = ""
    if remember and layers:
        database = str(session.get_bind().url)
        generations = dict(
            session.execute(
                text(
                    "SELECT subject, generation FROM data_generations"
                    " WHERE subject = ANY(CAST(:tables AS text[]))"
                ),
                {"tables": sorted(set(layers.values()))},
            ).all()
        )  # before the data, as for validators
        for cid, table in list(layers.items()):
            known = _LAYER_EXTENTS.get((database, table))
            if known is not None and table in generations and known[0] == generations[table]:
                out[cid] = {"bbox": known[1]}
                del layers[cid]
    parts = [
        f"SELECT '{cid}' AS id, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        f"FROM (SELECT ST_Extent(geom) AS e FROM {table}) s"
        for cid, table in layers.items()
    ]
    if parts:
        for cid, *bbox in session.execute(text(" UNION ALL ".join(parts))):
            out[cid] = {"bbox": bbox if bbox[0] is not None else None}
            table = layers[cid]
            if table in generations:
                _LAYER_EXTENTS[(database, table)] = (generations[table], out[cid]["bbox"])
    if any(c.id == ISSUES for c in collections):
        x0, y0, x1, y1, first = session.execute(text(f"SELECT {ISSUE_EXTENT_SQL}")).scalar_one()
        bbox = None
        if x0 >= 0:
            bbox = [
                tile_lon(x0, FINEST_LEVEL),
                tile_lat(y1 + 1, FINEST_LEVEL),
                tile_lon(x1 + 1, FINEST_LEVEL),
                tile_lat(y0, FINEST_LEVEL),
            ]
        start = None if first == NO_ISSUES else EPOCH + timedelta(microseconds=first)
        # Open-ended (OGC: null, "until now"): issues keep being reported.
        out[ISSUES] = {"bbox": bbox, "interval": [start.isoformat() if start else None, None]}
    return out
