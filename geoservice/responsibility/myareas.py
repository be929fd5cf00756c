"""我的包保: the places a leader (or a unit head's unit) currently answers for, with their open
and overdue issue counts, as table rows and as an RFC 7946 FeatureCollection built in PostGIS.

An issue counts for a place when the place is its primary place or its grid (issues record
both at report time), so a grid's counts include everything reported inside it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from geoservice.placegeom import geojson_geometry_sql, layer_title_sql, place_geometries_sql
from geoservice.registry import LayerRegistry
from geoservice.vocab import OPEN_STATUSES


def _held_sql(registry: LayerRegistry) -> str:
    return f"""
WITH held AS (
  SELECT a.place_id,
         array_agg(DISTINCT a.role ORDER BY a.role) AS roles,
         bool_or(a.is_primary) AS is_primary,
         jsonb_agg(DISTINCT jsonb_build_object(
           'leader_id', l.id, 'leader', l.name, 'role', a.role, 'is_primary', a.is_primary,
           'since', a.valid_from)) AS holders
  FROM assignments a
  JOIN leaders l ON l.id = a.leader_id
  WHERE a.leader_id IN :leader_ids AND a.valid_to IS NULL
    AND (CAST(:only_places AS bigint[]) IS NULL OR a.place_id = ANY(CAST(:only_places AS bigint[])))
  GROUP BY a.place_id
),
feat AS (
  SELECT p.id, p.layer, {layer_title_sql(registry, "p.layer")} AS layer_title, p.code, p.name,
         g.geom, h.roles, h.is_primary, h.holders, c.open_issues, c.overdue_issues
  FROM held h
  JOIN places p ON p.id = h.place_id
  JOIN ({place_geometries_sql(registry)}) g ON g.id = p.id
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE i.status IN :open) AS open_issues,
           count(*) FILTER (WHERE i.status IN :open AND i.deadline < :now) AS overdue_issues
    FROM issues i
    WHERE i.primary_place_id = p.id OR i.grid_id = p.id
  ) c
  WHERE (CAST(:layer AS text) IS NULL OR p.layer = :layer)
)"""


def _params(
    leader_ids: Sequence[int],
    at: datetime,
    layer: str | None,
    only_places: Collection[int] | None = None,
) -> dict[str, Any]:
    return {
        "only_places": None if only_places is None else sorted(only_places),
        "leader_ids": tuple(leader_ids) or (-1,),
        "open": tuple(OPEN_STATUSES),
        "now": at,
        "layer": layer,
    }


def _bind(sql: str):
    return text(sql).bindparams(
        bindparam("leader_ids", expanding=True), bindparam("open", expanding=True)
    )


def held_places(
    session: Session,
    registry: LayerRegistry,
    leader_ids: Sequence[int],
    at: datetime,
    layer: str | None = None,
    only_places: Collection[int] | None = None,
) -> list[dict[str, Any]]:
    """One row per place held (actively) by any of `leader_ids`, with issue counts at `at`
    (`only_places`: keep only these place ids)."""
    sql = (
        _held_sql(registry)
        + """
SELECT id, layer, layer_title, code, name, roles, is_primary, holders, open_issues,
       overdue_issues
FROM feat ORDER BY overdue_issues DESC, open_issues DESC, layer, code"""
    )
    rows = session.execute(_bind(sql), _params(leader_ids, at, layer, only_places))
    rows = rows.mappings().all()
    return [dict(row) for row in rows]


def held_issue_totals(session: Session, leader_ids: Sequence[int], at: datetime) -> dict[str, int]:
    """The open and overdue issues at the places `leader_ids` hold, each counted once: an
    issue in a held grid and at a held road is one issue (the per-place rows count it twice)."""
    row = session.execute(
        _bind(
            """
WITH held AS (
  SELECT DISTINCT place_id FROM assignments WHERE leader_id IN :leader_ids AND valid_to IS NULL
)
SELECT count(*) AS open, count(*) FILTER (WHERE i.deadline < :now) AS overdue
FROM issues i
WHERE i.status IN :open AND (i.primary_place_id IN (SELECT place_id FROM held)
                            OR i.grid_id IN (SELECT place_id FROM held))"""
        ),
        _params(leader_ids, at, None),
    ).one()
    return {"open": int(row.open), "overdue": int(row.overdue)}


def held_places_geojson(
    session: Session,
    registry: LayerRegistry,
    leader_ids: Sequence[int],
    at: datetime,
    layer: str | None = None,
    only_places: Collection[int] | None = None,
) -> dict[str, Any]:
    """The same places as a FeatureCollection (geometry and JSON built by PostGIS), with a
    `bbox` [west, south, east, north] when not empty. `only_places`: keep only these place
    ids (the caller's scope; None keeps every place)."""
    geometry = geojson_geometry_sql("f.geom")
    sql = (
        _held_sql(registry)
        + f"""
SELECT json_build_object(
         'type', 'FeatureCollection',
         'features', COALESCE(json_agg(json_build_object(
           'type', 'Feature',
           'id', f.id,
           'geometry', {geometry},
           'properties', json_build_object(
             'place_id', f.id, 'layer', f.layer, 'layer_title', f.layer_title,
             'code', f.code, 'name', f.name, 'roles', f.roles, 'is_primary', f.is_primary,
             'holders', f.holders, 'open_issues', f.open_issues,
             'overdue_issues', f.overdue_issues))
           ORDER BY f.layer, f.code), '[]'::json)) AS fc,
       ST_XMin(ST_Extent(f.geom)) AS west, ST_YMin(ST_Extent(f.geom)) AS south,
       ST_XMax(ST_Extent(f.geom)) AS east, ST_YMax(ST_Extent(f.geom)) AS north
FROM feat f"""
    )
    row = session.execute(_bind(sql), _params(leader_ids, at, layer, only_places)).one()
    collection = row.fc
    if row.west is not None:
        collection["bbox"] = [row.west, row.south, row.east, row.north]
    return collection
