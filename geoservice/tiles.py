"""Mapbox Vector Tiles (ST_AsMVT) of every collection, and collection extents.

Layers: the features in the tile, clipped and quantised by ST_AsMVTGeom, at most
`cap` per tile. Issues: at zoom ≤ AGGREGATE_MAX_ZOOM, one point per occupied cell (the
centroid of its issues) with `count` and `open`, read from `issue_tile_counts` (a cell is
1/32 or 1/64 of the tile), so a tile never scans the issues themselves; above that zoom the
issues themselves, open ones first, at most `cap` — unless the tile holds more issues than
the cap, then counts per finest cell (1/16 of a z15 tile) as well.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.collections import ISSUES, Collection
from geoservice.features import ItemsQuery, conditions
from geoservice.vocab import OPEN_STATUSES

EXTENT = 4096
BUFFER = 64
AGGREGATE_MAX_ZOOM = 14
COUNT_LEVELS = (5, 7, 9, 11, 13, 15, 17, 19)  # levels stored in issue_tile_counts
FINEST_LEVEL = COUNT_LEVELS[-1]
MAX_ZOOM = 22


def tile_in_range(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


def count_level(z: int) -> int:
    """The stored cell level used for a tile at zoom z: 32–64 cells across the tile."""
    return next((level for level in COUNT_LEVELS if level >= z + 5), FINEST_LEVEL)


def render_tile(
    session: Session, collection: Collection, z: int, x: int, y: int, query: ItemsQuery, cap: int
) -> bytes:
    if collection.id == ISSUES and z <= AGGREGATE_MAX_ZOOM:
        if query.scope is None:
            return _aggregated_issue_tile(session, collection, z, x, y, query)
        # The pre-aggregated counts cover every issue: an account that sees only some gets
        # its own issues counted on the fly (fewer of them, by definition).
        return _snapped_issue_tile(session, collection, z, x, y, query)
    if (
        collection.id == ISSUES
        and query.scope is None
        and z <= FINEST_LEVEL
        and _issues_in_tile(session, z, x, y, query) > cap
    ):
        # A denser tile than the cap even at high zoom: counts per finest cell instead.
        return _aggregated_issue_tile(session, collection, z, x, y, query)
    return _feature_tile(session, collection, z, x, y, query, cap)


def _cell_range(z: int, x: int, y: int, level: int) -> dict[str, int]:
    shift = level - z
    return {
        "level": level,
        "x0": x << shift,
        "x1": ((x + 1) << shift) - 1,
        "y0": y << shift,
        "y1": ((y + 1) << shift) - 1,
    }


def _issues_in_tile(session: Session, z: int, x: int, y: int, query: ItemsQuery) -> int:
    """Exact number of issues in the tile (z ≤ FINEST_LEVEL), from the tile counts."""
    where = "level = :level AND cx BETWEEN :x0 AND :x1 AND cy BETWEEN :y0 AND :y1"
    params: dict[str, Any] = _cell_range(z, x, y, FINEST_LEVEL)
    if "status" in query.filters:
        where += " AND status = ANY(:status)"
        params["status"] = query.filters["status"]
    return int(
        session.execute(
            text(f"SELECT COALESCE(sum(n), 0) FROM issue_tile_counts WHERE {where}"), params
        ).scalar()
    )


def _feature_tile(
    session: Session, collection: Collection, z: int, x: int, y: int, query: ItemsQuery, cap: int
) -> bytes:
    sql = conditions(collection, query)
    margin = BUFFER / EXTENT
    open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    order = (
        f"ORDER BY (i.status IN ({open_list})) DESC, i.id DESC"
        if collection.id == ISSUES
        else f"ORDER BY {collection.id_column}"
    )
    columns = ", ".join(f"{expr} AS {name}" for name, expr in collection.tile_columns)
    statement = f"""
WITH bounds AS (
  SELECT ST_TileEnvelope(:z, :x, :y) AS merc,
         ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {margin}), 4326) AS geo
), t AS (
  SELECT {collection.select_columns} FROM {collection.base_from}, bounds
  WHERE {collection.geom_column} && bounds.geo AND {sql.clause()}
  {order} LIMIT :cap
)
SELECT ST_AsMVT(m, :layer, {EXTENT}, 'geom', 'id') FROM (
  SELECT t.id, ST_AsMVTGeom(ST_Transform(t.geom, 3857), bounds.merc, {EXTENT}, {BUFFER}, true)
         AS geom, {columns}
  FROM t CROSS JOIN bounds
  {collection.tile_joins}
) m WHERE m.geom IS NOT NULL"""
    params = {**sql.params, "z": z, "x": x, "y": y, "cap": cap, "layer": collection.id}
    return bytes(session.execute(text(statement), params).scalar() or b"")


def _aggregated_issue_tile(
    session: Session, collection: Collection, z: int, x: int, y: int, query: ItemsQuery
) -> bytes:
    level = count_level(z) if z <= AGGREGATE_MAX_ZOOM else FINEST_LEVEL
    where = ["level = :level", "cx BETWEEN :x0 AND :x1", "cy BETWEEN :y0 AND :y1"]
    params: dict[str, Any] = {
        **_cell_range(z, x, y, level),
        "z": z,
        "x": x,
        "y": y,
        "layer": collection.id,
        "open": list(OPEN_STATUSES),
    }
    if "status" in query.filters:
        where.append("status = ANY(:status)")
        params["status"] = query.filters["status"]
    statement = f"""
WITH cells AS (
  SELECT cx, cy, sum(n) AS n, sum(n) FILTER (WHERE status = ANY(:open)) AS open,
         sum(sx) AS sx, sum(sy) AS sy
  FROM issue_tile_counts WHERE {" AND ".join(where)}
  GROUP BY cx, cy HAVING sum(n) > 0
)
SELECT ST_AsMVT(m, :layer, {EXTENT}, 'geom') FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(sx / n, sy / n), 4326), 3857),
                      ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom,
         n::int AS count, COALESCE(open, 0)::int AS open, true AS cluster
  FROM cells
) m WHERE m.geom IS NOT NULL"""
    return bytes(session.execute(text(statement), params).scalar() or b"")


def _snapped_issue_tile(
    session: Session, collection: Collection, z: int, x: int, y: int, query: ItemsQuery
) -> bytes:
    sql = conditions(collection, query)
    cell = f"(ST_XMax(b.merc) - ST_XMin(b.merc)) / {2 ** (count_level(z) - z)}"
    open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    statement = f"""
WITH b AS (
  SELECT ST_TileEnvelope(:z, :x, :y) AS merc, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326) AS geo
), cells AS (
  SELECT floor((ST_X(m) - ST_XMin(b.merc)) / {cell}) AS gx,
         floor((ST_Y(m) - ST_YMin(b.merc)) / {cell}) AS gy,
         count(*) AS n, count(*) FILTER (WHERE i.status IN ({open_list})) AS open,
         ST_Centroid(ST_Collect(m)) AS c
  FROM issues i CROSS JOIN b
  CROSS JOIN LATERAL ST_Transform(i.geom, 3857) AS m
  WHERE i.geom && b.geo AND {sql.clause()}
  GROUP BY 1, 2
)
SELECT ST_AsMVT(t, :layer, {EXTENT}, 'geom') FROM (
  SELECT ST_AsMVTGeom(c, b.merc, {EXTENT}, {BUFFER}, true) AS geom,
         n::int AS count, open::int AS open, true AS cluster
  FROM cells CROSS JOIN b
) t WHERE t.geom IS NOT NULL"""
    params = {**sql.params, "z": z, "x": x, "y": y, "layer": collection.id}
    return bytes(session.execute(text(statement), params).scalar() or b"")


def tile_lon(x: float, level: int) -> float:
    """Longitude of the west edge of tile column x."""
    return x / 2**level * 360.0 - 180.0


def tile_lat(y: float, level: int) -> float:
    """Latitude of the north edge of tile row y."""
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2**level))))


def tile_y(lat: float, level: int) -> float:
    """Fractional tile row of a latitude (the triggers' formula)."""
    lat = min(max(lat, -85.0511), 85.0511)
    r = math.radians(lat)
    return (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * 2**level


def collection_extents(
    session: Session, collections: list[Collection]
) -> dict[str, dict[str, Any]]:
    """Bounding boxes (and the time span of issues), cheaply: ST_Extent of the layer tables;
    for issues, the occupied cells of the finest tile-count level (≤ 80 m larger)."""
    out: dict[str, dict[str, Any]] = {}
    parts = [
        f"SELECT '{c.id}' AS id, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        f"FROM (SELECT ST_Extent(geom) AS e FROM {c.spec.table}) s"
        for c in collections
        if c.spec is not None
    ]
    if parts:
        for cid, *bbox in session.execute(text(" UNION ALL ".join(parts))):
            out[cid] = {"bbox": bbox if bbox[0] is not None else None}
    if any(c.id == ISSUES for c in collections):
        row = session.execute(
            text(
                "SELECT min(cx), min(cy), max(cx), max(cy) FROM issue_tile_counts"
                " WHERE level = :level AND n > 0"
            ),
            {"level": FINEST_LEVEL},
        ).one()
        bbox = None
        if row[0] is not None:
            x0, y0, x1, y1 = row
            bbox = [
                tile_lon(x0, FINEST_LEVEL),
                tile_lat(y1 + 1, FINEST_LEVEL),
                tile_lon(x1 + 1, FINEST_LEVEL),
                tile_lat(y0, FINEST_LEVEL),
            ]
        span = session.execute(text("SELECT min(reported_at), max(reported_at) FROM issues")).one()
        out[ISSUES] = {
            "bbox": bbox,
            "interval": [v.isoformat() if v is not None else None for v in span],
        }
    return out
