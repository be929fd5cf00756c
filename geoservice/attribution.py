"""Which places and leaders a point belongs to.

Every registered layer claims points per its declaration (polygons that cover the point,
lines/points within a tolerance in metres); the claim of the highest-precedence layer, then
the nearest, is the primary place. The responsible leader is the primary leader of the primary
place *at the time of the report* (assignments are historical). No leader ⇒ the issue stays
unassigned (the queue planners dispatch by hand).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.registry import LayerRegistry, LayerSpec

# The layer whose features form the base tiling (面上有网); issues record their grid.
BASE_LAYER = "grid"


def _claims_sql(spec: LayerSpec, point: str) -> str:
    """SELECT of the features of one layer claiming `point` (an SQL expression)."""
    table = spec.table
    head = f"SELECT '{spec.name}'::text AS layer, {int(spec.precedence)} AS precedence, l.id"
    if spec.claim.mode == "contains":
        return f"{head}, 0.0::float8 AS distance_m, 'contains' AS rule FROM {table} l \
WHERE ST_Covers(l.geom, {point})"
    tolerance = f"{float(spec.claim.tolerance_m)}"
    if spec.claim.tolerance_by is not None:
        column, table_by_value = spec.claim.tolerance_by
        cases = " ".join(
            f"WHEN {_literal(value)} THEN {float(metres)}"
            for value, metres in table_by_value.items()
        )
        tolerance = f"(CASE l.{column} {cases} ELSE {float(spec.claim.tolerance_m)} END)"
    # Index-backed prefilter on the widest tolerance, exact tolerance per feature after.
    return f"""SELECT * FROM (
  {head}, ST_Distance(l.geom::geography, {point}::geography) AS distance_m,
    'within ' || {tolerance} || ' m' AS rule, {tolerance} AS tolerance_m
  FROM {table} l
  WHERE ST_DWithin(l.geom::geography, {point}::geography, {float(spec.claim.max_tolerance_m)})
) c WHERE c.distance_m <= c.tolerance_m"""


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def claims_union_sql(registry: LayerRegistry, point: str) -> str:
    parts = []
    for spec in registry:
        sql = _claims_sql(spec, point)
        parts.append(
            f"SELECT layer, precedence, id AS place_id, distance_m, rule FROM ({sql}) s_{spec.name}"
        )
    return "\nUNION ALL\n".join(parts)


def attribute_issues(session: Session, registry: LayerRegistry, min_id: int, max_id: int) -> int:
    """(Re)computes the stored attribution of issues with min_id <= id <= max_id in one pass."""
    claims = claims_union_sql(registry, "i.geom")
    base_layer = BASE_LAYER if BASE_LAYER in registry else None
    sql = f"""
WITH claimed AS (
  SELECT i.id AS issue_id, c.*,
         row_number() OVER (PARTITION BY i.id ORDER BY c.precedence DESC, c.distance_m, c.place_id)
           AS rank
  FROM issues i
  CROSS JOIN LATERAL ({claims}) c
  WHERE i.id BETWEEN :min_id AND :max_id
),
responsible AS (
  SELECT cl.issue_id, cl.place_id, a.leader_id, ld.unit_id
  FROM claimed cl
  JOIN issues i ON i.id = cl.issue_id
  CROSS JOIN LATERAL (
    SELECT a.leader_id FROM assignments a
    WHERE a.place_id = cl.place_id AND a.is_primary
      AND a.valid_from <= i.reported_at AND (a.valid_to IS NULL OR a.valid_to > i.reported_at)
    ORDER BY a.valid_from DESC LIMIT 1
  ) a
  JOIN leaders ld ON ld.id = a.leader_id
),
summary AS (
  SELECT cl.issue_id,
    max(cl.place_id) FILTER (WHERE cl.rank = 1) AS primary_place_id,
    max(cl.place_id) FILTER (WHERE cl.layer = :base_layer) AS grid_id,
    jsonb_agg(jsonb_build_object(
      'layer', cl.layer, 'place_id', cl.place_id, 'distance_m', round(cl.distance_m::numeric, 1),
      'rule', cl.rule, 'leader_id', r.leader_id) ORDER BY cl.rank) AS places
  FROM claimed cl
  LEFT JOIN responsible r ON r.issue_id = cl.issue_id AND r.place_id = cl.place_id
  GROUP BY cl.issue_id
)
UPDATE issues i SET
  primary_place_id = s.primary_place_id,
  grid_id = s.grid_id,
  leader_id = r.leader_id,
  unit_id = r.unit_id,
  attribution = jsonb_build_object('places', COALESCE(s.places, '[]'::jsonb),
                                   'unassigned', r.leader_id IS NULL)
FROM issues i2
LEFT JOIN summary s ON s.issue_id = i2.id
LEFT JOIN responsible r ON r.issue_id = i2.id AND r.place_id = s.primary_place_id
WHERE i.id = i2.id AND i2.id BETWEEN :min_id AND :max_id
"""
    result = session.execute(
        text(sql), {"min_id": min_id, "max_id": max_id, "base_layer": base_layer}
    )
    return result.rowcount
