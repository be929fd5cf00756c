"""Which places and leaders a point belongs to.

Every registered layer claims points per its declaration (polygons that cover the point,
lines/points within a tolerance in metres); the claim of the highest-precedence layer, then
the nearest, is the primary place. The responsible leader is the primary leader of the primary
place *at the time of the report* (assignments are historical). No leader ⇒ the issue stays
unassigned (the queue planners dispatch by hand).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from geoservice.db import execute_prepared
from geoservice.models import Unit
from geoservice.registry import BASE_LAYER, LayerRegistry, LayerSpec

Scale = tuple[str, str]  # SQL for metres per degree of longitude and of latitude


def _claims_sql(spec: LayerSpec, point: str, scale: Scale | None = None) -> str:
    """SELECT of the features of one layer claiming `point` (an SQL expression)."""
    custom = getattr(spec, "claims_sql", None)  # a layer whose claims are data (sites' kinds)
    if custom is not None:
        return custom(point, scale)
    table = spec.table
    head = f"SELECT '{spec.name}'::text AS layer, {int(spec.precedence)} AS precedence, l.id"
    if spec.claim.mode == "contains":
        return f"{head}, 0.0::float8 AS distance_m, 'contains' AS rule FROM {table} l \
WHERE ST_Covers(l.geom, {point})"
    tolerance = _tolerance_sql(spec)
    widest = str(float(spec.claim.max_tolerance_m))
    return f"""SELECT * FROM (
  {head}, {distance_sql("l.geom", point, scale)} AS distance_m,
    'within ' || {tolerance} || ' m' AS rule, {tolerance} AS tolerance_m
  FROM {table} l
  WHERE {box_sql("l.geom", point, widest, scale)}
) c WHERE c.distance_m <= c.tolerance_m"""


def _tolerance_sql(spec: LayerSpec) -> str:
    """SQL for the claim distance of the layer's feature `l` (per attribute value, if any)."""
    tolerance = f"{float(spec.claim.tolerance_m)}"
    if spec.claim.tolerance_by is not None:
        column, table_by_value = spec.claim.tolerance_by
        cases = " ".join(
            f"WHEN {_literal(value)} THEN {float(metres)}"
            for value, metres in table_by_value.items()
        )
        tolerance = f"(CASE l.{column} {cases} ELSE {float(spec.claim.tolerance_m)} END)"
    return tolerance


def _claims_from_place_sql(spec: LayerSpec, issue_filter: str) -> str:
    """The claims of one layer as found from the layer's side (see `_from_places`): for each
    feature `l`, the issues in the issues' geometry index near it, then exactly the predicates
    of `_claims_sql` with each issue as the point (same expressions, same values). For a
    `within` layer the lookup distance in degrees is taken at the feature's farthest latitude
    from the equator plus 0.01° (where a degree of longitude is shortest) and against the
    shortest degree of latitude (the equator's), so it covers the per-issue distance of
    `box_sql` for every issue that can be claimed."""
    head = f"SELECT i.id AS issue_id, i.reported_at, '{spec.name}'::text AS layer," + (
        f" {int(spec.precedence)} AS precedence, l.id AS place_id"
    )
    # The batch's filter outside the lookup (OFFSET 0 keeps it there): inside, the planner ANDs
    # a scan of the whole id range into every lookup.
    if spec.claim.mode == "contains":
        return (
            f"{head}, 0.0::float8 AS distance_m, 'contains'::text AS rule"
            f" FROM {spec.table} l CROSS JOIN LATERAL ("
            "SELECT i.id, i.reported_at FROM issues i WHERE ST_Covers(l.geom, i.geom)"
            f" OFFSET 0) i WHERE {issue_filter}"
        )
    tolerance = _tolerance_sql(spec)
    widest = str(float(spec.claim.max_tolerance_m))
    scale = metres_per_degree_sql("i.geom")
    far = "radians(least(89.0, greatest(abs(ST_YMin(l.geom)), abs(ST_YMax(l.geom))) + 0.01))"
    shortest = f"least(111412.84 * cos({far}) - 93.5 * cos(3 * {far}), 110574.0)"
    return f"""SELECT c.issue_id, c.reported_at, c.layer, c.precedence, c.place_id,
    c.distance_m, c.rule FROM (
  {head}, {distance_sql("l.geom", "i.geom", scale)} AS distance_m,
    'within ' || {tolerance} || ' m' AS rule, {tolerance} AS tolerance_m
  FROM {spec.table} l CROSS JOIN LATERAL (
    SELECT i.id, i.reported_at, i.geom FROM issues i
    WHERE ST_DWithin(i.geom, l.geom, ({widest}) * 1.01 * 1.001 / {shortest}) OFFSET 0) i
  WHERE {issue_filter} AND {box_sql("l.geom", "i.geom", widest, scale)}
) c WHERE c.distance_m <= c.tolerance_m"""


# Largest claim distance looked up from the layer's side: the lookup distance allows 0.01° of
# latitude (≈ 1.1 km) between a feature and the issues it claims.
_FROM_PLACE_MAX_M = 1000.0


def metres_per_degree_sql(point: str) -> Scale:
    """SQL for the length in metres of one degree of longitude and of latitude at the point's
    latitude (WGS-84 ellipsoid series)."""
    lat = f"radians(ST_Y({point}))"
    return (
        f"(111412.84 * cos({lat}) - 93.5 * cos(3 * {lat}))",
        f"(111132.92 - 559.82 * cos(2 * {lat}) + 1.175 * cos(4 * {lat}))",
    )


def metres_per_degree(lat: float) -> tuple[float, float]:
    """The same in Python, to pass as parameters when the latitude is known."""
    phi = math.radians(lat)
    return (
        111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi),
        111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi),
    )


def box_sql(geom: str, point: str, metres: str, scale: Scale | None = None) -> str:
    """Index-backed prefilter: `geom` within a planar distance in degrees that covers `metres`
    around `point` in every direction (1 % margin)."""
    mx, my = scale or metres_per_degree_sql(point)
    return f"ST_DWithin({geom}, {point}, ({metres}) * 1.01 / least({mx}, {my}))"


def distance_sql(geom: str, point: str, scale: Scale | None = None) -> str:
    """Distance in metres from `point`, measured in a plane scaled to metres at the point's
    latitude: within 1 cm of the ellipsoidal distance up to a few hundred metres, and several
    times cheaper than a geography distance."""
    mx, my = scale or metres_per_degree_sql(point)
    return f"ST_Distance(ST_Scale({geom}, {mx}, {my}), ST_Scale({point}, {mx}, {my}))"


def within_sql(geom: str, point: str, metres: str, scale: Scale | None = None) -> str:
    """`geom` lies within `metres` of `point`, using the geometry's GiST index."""
    return (
        f"{box_sql(geom, point, metres, scale)} AND {distance_sql(geom, point, scale)} <= {metres}"
    )


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def claims_union_sql(
    registry: LayerRegistry | Iterable[LayerSpec], point: str, scale: Scale | None = None
) -> str:
    parts = []
    for spec in registry:
        sql = _claims_sql(spec, point, scale)
        parts.append(
            f"SELECT layer, precedence, id AS place_id, distance_m, rule FROM ({sql}) s_{spec.name}"
        )
    return "\nUNION ALL\n".join(parts)


def attribute_issues(
    session: Session,
    registry: LayerRegistry,
    min_id: int,
    max_id: int,
    fallback: Sequence[str] = (),
    from_places: bool | None = None,
) -> int:
    """(Re)computes the stored attribution of issues with min_id <= id <= max_id in one pass.
    `from_places`: look polygon claims up from the layer's side (see `_from_places`); None
    decides by the table sizes."""
    return _attribute(
        session,
        registry,
        "i.id BETWEEN :min_id AND :max_id",
        {"min_id": min_id, "max_id": max_id},
        bulk=max_id > min_id,
        fallback=fallback,
        from_places=from_places,
        size=max_id - min_id + 1,
    )


def attribute_issue_set(
    session: Session,
    registry: LayerRegistry,
    id_table: str,
    fallback: Sequence[str] = (),
    from_places: bool | None = None,
) -> int:
    """(Re)computes the attribution of the issues whose ids are in `id_table` (column `id`)."""
    return _attribute(
        session,
        registry,
        f"i.id IN (SELECT id FROM {id_table})",
        {},
        bulk=True,
        fallback=fallback,
        from_places=from_places,
        size=session.scalar(text(f"SELECT count(*) FROM {id_table}")),
    )


def attribute_range_in_parallel(
    engine: Engine,
    registry: LayerRegistry,
    min_id: int,
    max_id: int,
    batch: int,
    fallback: Sequence[str] = (),
    workers: int = 2,
    measure: Callable[[Session], float | None] | None = None,
) -> tuple[int, float | None]:
    """`attribute_issues` over min_id..max_id in batches of `batch` ids, `workers` database
    connections at once (one thread each, taking the next batch when done; each batch committed
    in its own transaction). A batch is one statement, which PostgreSQL runs on one core: two
    connections use both cores of a 2-core machine. Returns the issues attributed and, given
    `measure` (e.g. a backend's CPU seconds so far), the sum over the workers of its change."""
    ranges = iter(
        [(first, min(first + batch - 1, max_id)) for first in range(min_id, max_id + 1, batch)]
    )
    lock = threading.Lock()

    def work() -> tuple[int, float | None]:
        done, spent = 0, None
        # One connection for the worker's life (a Session alone may take another from the pool
        # after each commit).
        with engine.connect() as connection, Session(bind=connection) as session:
            before = measure(session) if measure else None
            while True:
                with lock:
                    bounds = next(ranges, None)
                if bounds is None:
                    break
                done += attribute_issues(session, registry, *bounds, fallback)
                session.commit()
            after = measure(session) if measure else None
            if before is not None and after is not None:
                spent = after - before
        return done, spent

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = [f.result() for f in [pool.submit(work) for _ in range(max(1, workers))]]
    spent = [s for _, s in results]
    return sum(d for d, _ in results), None if None in spent else sum(spent)


# Cost model for `_from_places`, in units of one GiST lookup: reading an issue row found by a
# lookup from a polygon costs about 2/15 of a lookup (measured: 15 µs a lookup, 2 µs a row).
_ROW_PER_LOOKUP = 2 / 15


def _from_places(
    session: Session, registry: LayerRegistry, size: int, forced: bool | None
) -> list[LayerSpec]:
    """The layers whose claims are cheaper found from the layer's side — one lookup in the
    issues' geometry index per feature, returning every issue it claims — than from the
    issues' side (one lookup per target issue in the layer's index): when the target is large
    next to the layer and to all issues (a first attribution, a re-attribution of everything).
    Polygon layers, and `within` layers of points and polygons (not lines: a long diagonal
    road's neighbourhood holds hundreds of issues, which made roads 2× slower this way).
    `forced` True/False: every layer that can be (lines included) / none."""
    eligible = [
        s
        for s in registry
        if getattr(s, "claims_sql", None) is None
        and (s.claim.mode == "contains" or s.claim.max_tolerance_m <= _FROM_PLACE_MAX_M)
    ]
    if forced is not None or not eligible:
        return eligible if forced else []
    eligible = [
        s
        for s in eligible
        if s.claim.mode == "contains"
        or not {"LineString", "MultiLineString"} & set(s.geometry_types)
    ]
    sizes = dict(
        session.execute(
            text("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:names)"),
            {"names": ["issues", *(s.table for s in eligible)]},
        ).all()
    )
    issues = sizes.get("issues", -1)
    if issues < 0:  # never analysed: no basis for a choice
        return []
    return [
        s
        for s in eligible
        if sizes.get(s.table, -1) >= 0 and sizes[s.table] + issues * _ROW_PER_LOOKUP < size
    ]


def attribution_at(
    session: Session,
    registry: LayerRegistry,
    lon: float,
    lat: float,
    reported_at: datetime,
    fallback: Sequence[str] = (),
    category: str | None = None,
    in_area_sql: str | None = None,
) -> dict[str, Any]:
    """The attribution columns of an issue about to be reported at (lon, lat) and
    `reported_at` (the report path computes them before inserting the row), in one statement:
    every layer's claims, the leaders, the fallback chain and, given its `category`, the 条块
    routing (geoservice.issues.routing_rules). `in_area_sql`, a boolean SQL expression of the
    point `:lon`/`:lat` (the service-area check), comes back as `in_area` in the same round
    trip. The point goes in as constants: planning a spatial join estimate for each layer
    would cost more than running the query."""
    mx, my = metres_per_degree(lat)
    target = (
        "SELECT 0::bigint AS id, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom,"
        " CAST(:reported_at AS timestamptz) AS reported_at,"
        " CAST(:category AS text) AS category"
    )
    row = _attribute(
        session,
        registry,
        "",
        {
            "lon": lon,
            "lat": lat,
            "mx": mx,
            "my": my,
            "reported_at": reported_at,
            "category": category,
        },
        point=("ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)", (":mx", ":my")),
        target=target,
        fallback=fallback,
        routing=category is not None,
        extra=f", ({in_area_sql}) AS in_area" if in_area_sql else "",
    )
    return dict(row._mapping)


# Settings for the duration of a bulk statement: the planner's cost estimate for the per-issue
# lateral lookups triggers JIT compilation, which costs more than the whole query; sorts and
# hashes of a 50,000-issue batch need more than the default work_mem to stay in memory.
BULK_SETTINGS = {"jit": "off", "work_mem": "128MB"}


def _attribute(
    session: Session,
    registry: LayerRegistry,
    issue_filter: str,
    params: dict[str, Any],
    bulk: bool = False,
    point: tuple[str, Scale] | None = None,
    target: str | None = None,
    fallback: Sequence[str] = (),
    routing: bool = True,
    extra: str = "",
    from_places: bool | None = False,
    size: int = 0,
) -> Any:
    """Attribution of the issues matching `issue_filter`, stored on them; or, given a `target`
    SELECT (id, geom, reported_at, category) of an issue not stored yet, returned as one row.
    One statement whatever the number of issues: each layer's claims by index lookups
    (LATERAL), the leaders at the report time, the fallback chain, then (with `routing`) the
    条块 routing matrix by category."""
    point_sql, scale = point or ("t.geom", ("t.mx", "t.my"))
    by_place = _from_places(session, registry, size, from_places) if issue_filter else []
    parts = []
    placed = {spec.name for spec in by_place}
    by_issue = [spec for spec in registry if spec.name not in placed]
    if by_issue:
        parts.append(
            "SELECT t.id AS issue_id, t.reported_at, c.layer, c.precedence, c.place_id,"
            " c.distance_m, c.rule FROM target t"
            f" CROSS JOIN LATERAL ({claims_union_sql(by_issue, point_sql, scale)}) c"
        )
    for spec in by_place:
        parts.append(_claims_from_place_sql(spec, issue_filter))
    claims = "\n  UNION ALL\n  ".join(parts)
    mx, my = metres_per_degree_sql("i.geom")
    base_layer = BASE_LAYER if BASE_LAYER in registry else None
    target = target or (
        f"SELECT i.id, i.geom, i.reported_at, i.category::text AS category,"
        f" {mx} AS mx, {my} AS my"
        f" FROM issues i WHERE {issue_filter}"
        # Along a space-filling curve: consecutive index lookups touch the same pages.
        " ORDER BY i.geom"
    )
    # Every CTE below is a set over all target issues (no per-issue subquery scans another
    # CTE): claims by index lookups per layer, each with its leader at the report time, ranked;
    # one summary row per issue; the fallback chain as a union of candidate sets.
    sql = f"""
WITH target AS MATERIALIZED (
  {target}
),
claims AS (
  {claims}
),
claimed AS (
  SELECT c.issue_id, c.layer, c.place_id, c.distance_m, c.rule, a.leader_id, ld.unit_id,
         row_number() OVER (PARTITION BY c.issue_id
                            ORDER BY c.precedence DESC, c.distance_m, c.place_id) AS rank
  FROM claims c
  LEFT JOIN LATERAL (
    SELECT a.leader_id FROM assignments a
    WHERE a.place_id = c.place_id AND a.is_primary
      AND a.valid_from <= c.reported_at AND (a.valid_to IS NULL OR a.valid_to > c.reported_at)
    ORDER BY a.valid_from DESC LIMIT 1
  ) a ON true
  LEFT JOIN leaders ld ON ld.id = a.leader_id
),
summary AS (
  SELECT cl.issue_id,
    max(cl.place_id) FILTER (WHERE cl.rank = 1) AS primary_place_id,
    max(cl.layer) FILTER (WHERE cl.rank = 1) AS primary_layer,
    max(cl.leader_id) FILTER (WHERE cl.rank = 1) AS leader_id,
    max(cl.unit_id) FILTER (WHERE cl.rank = 1) AS unit_id,
    (array_agg(cl.place_id ORDER BY cl.rank) FILTER (WHERE cl.layer = :base_layer))[1] AS grid_id,
    json_agg(json_build_object(
      'layer', cl.layer, 'place_id', cl.place_id, 'distance_m', round(cl.distance_m::numeric, 1),
      'rule', cl.rule, 'leader_id', cl.leader_id) ORDER BY cl.rank) AS places
  FROM claimed cl
  GROUP BY cl.issue_id
),
{{fallback_sql}}
result AS (
  SELECT t.id, t.category, t.reported_at, s.primary_place_id, s.primary_layer, s.grid_id,
    COALESCE(s.leader_id, fb.leader_id) AS leader_id,
    CASE WHEN s.leader_id IS NULL THEN fb.unit_id ELSE s.unit_id END AS unit_id,
    s.places,
    CASE WHEN s.leader_id IS NULL AND fb.leader_id IS NOT NULL THEN json_build_object(
      'step', fb.step, 'place_id', fb.place_id, 'area_id', fb.area_id,
      'leader_id', fb.leader_id, 'order', CAST(:fallback_order AS json)) END AS fallback
  FROM target t
  LEFT JOIN summary s ON s.issue_id = t.id
  {{fallback_join}}
)
"""
    steps = _fallback_steps(registry, fallback)
    sql = sql.replace("{fallback_sql}", _fallback_sql(registry, steps)).replace(
        "{fallback_join}",
        "LEFT JOIN fallback fb ON fb.issue_id = t.id"
        if steps
        else "LEFT JOIN (SELECT NULL::bigint AS leader_id, NULL::bigint AS unit_id,"
        " NULL::text AS step, NULL::bigint AS place_id, NULL::int AS area_id) fb ON false",
    )
    params = {**params, "fallback_order": json.dumps(list(steps))}
    unassigned, routed = "x.leader_id IS NULL", ""
    if routing:
        sql += _routing_sql(registry)
        leader, unit = (
            "CASE WHEN x.rule_id IS NULL THEN x.leader_id ELSE x.head_id END",
            "CASE WHEN x.rule_id IS NULL THEN x.unit_id ELSE x.rule_unit_id END",
        )
        unassigned = (
            "CASE WHEN x.rule_id IS NULL THEN x.leader_id IS NULL ELSE x.head_id IS NULL END"
        )
        routed = (
            " || COALESCE(',\"routing\":' || CASE WHEN x.rule_id IS NOT NULL THEN"
            " json_build_object('rule_id', x.rule_id, 'category', x.category,"
            " 'unit_id', x.rule_unit_id, 'assist_unit_ids', x.assist_unit_ids,"
            " 'place_leader_id', x.leader_id, 'place_unit_id', x.unit_id,"
            " 'co_responsible', x.co_responsible)::text END, '')"
        )
        source = "routed"
    else:
        leader, unit, source = "x.leader_id", "x.unit_id", "result"
    # The stored object is written once as JSON text and parsed once: building it with jsonb
    # functions and `||` re-encoded the places array at every step.
    stored = (
        "CAST('{\"places\":' || COALESCE(x.places, '[]'::json)::text"
        f" || ',\"unassigned\":' || to_json({unassigned})::text"
        " || COALESCE(',\"fallback\":' || x.fallback::text, '')"
        f"{routed} || '}}' AS jsonb)"
    )
    if not issue_filter:
        sql += f"""SELECT x.primary_place_id, x.grid_id, {leader} AS leader_id, {unit} AS unit_id,
  {stored} AS attribution{extra} FROM {source} x"""
        # Planning this statement (a dozen CTEs, every layer) costs 3–10 ms, several times its
        # execution: prepared once per connection, with a generic plan (index lookups
        # whatever the point).
        return execute_prepared(
            session, sql, {**params, "base_layer": base_layer}, _PARAM_TYPES
        ).one()
    # Rows whose attribution is unchanged are not rewritten (a re-attribution after a layer
    # edit changes few): no new row version, index entries, foreign-key checks or tile-count
    # trigger work for them. The count is of the issues attributed.
    sql += f""",
final AS (
  SELECT x.id, x.reported_at, x.primary_place_id, x.grid_id, {leader} AS leader_id,
    {unit} AS unit_id, {stored} AS attribution
  FROM {source} x
),
written AS (
  UPDATE issues i SET
    primary_place_id = f.primary_place_id,
    grid_id = f.grid_id,
    leader_id = f.leader_id,
    unit_id = f.unit_id,
    attribution = f.attribution
  FROM final f
  -- The whole primary key: each row is found in its own month's partition.
  WHERE i.id = f.id AND i.reported_at = f.reported_at
    -- The batch's filter again: without it every batch hashes every row of `issues`.
    AND {issue_filter}
    AND (i.primary_place_id, i.grid_id, i.leader_id, i.unit_id, i.attribution)
        IS DISTINCT FROM (f.primary_place_id, f.grid_id, f.leader_id, f.unit_id, f.attribution)
  RETURNING i.id
)
SELECT count(*) FROM final"""
    if not bulk:
        return session.execute(text(sql), {**params, "base_layer": base_layer}).scalar_one()
    names = list(BULK_SETTINGS)
    previous = session.execute(
        text(
            "SELECT "
            + ", ".join(
                f"current_setting('{n}'), set_config('{n}', '{v}', true)"
                for n, v in BULK_SETTINGS.items()
            )
        )
    ).one()
    try:
        return session.execute(text(sql), {**params, "base_layer": base_layer}).scalar_one()
    finally:
        session.execute(
            text(
                "SELECT "
                + ", ".join(f"set_config('{n}', :v{i}, true)" for i, n in enumerate(names))
            ),
            {f"v{i}": previous[2 * i] for i in range(len(names))},
        )


# Types of the one-issue statement's parameters (server-side prepared: db.execute_prepared).
_PARAM_TYPES = {
    "lon": "float8",
    "lat": "float8",
    "mx": "float8",
    "my": "float8",
    "reported_at": "timestamptz",
    "category": "text",
    "base_layer": "text",
    "fallback_order": "text",
}


def _routing_sql(registry: LayerRegistry) -> str:
    """CTE `routed`: `result` with the lead routing rule of each issue (category, valid at
    `reported_at`, matching the grid's community or street and the primary place's layer; most
    specific first: area and layer > area > layer > category only, then the latest valid_from,
    then the lowest id), the lead unit's head (单位负责人, lowest id) and the assist units (the
    rules themselves: geoservice.issues.routing_rules)."""
    base = registry.get(BASE_LAYER) if BASE_LAYER in registry else None
    if base is not None and "community_id" in base.model.__table__.c:
        areas = (
            f"LEFT JOIN {base.table} rg ON rg.id = x.grid_id"
            " LEFT JOIN admin_areas ra ON ra.id = rg.community_id"
        )
        area_match = "r.area_id IN (rg.community_id, ra.parent_id)"
    else:
        areas, area_match = "", "false"
    matches = (
        "r.category = x.category AND r.valid_from <= x.reported_at"
        " AND (r.valid_to IS NULL OR r.valid_to > x.reported_at)"
        f" AND (r.area_id IS NULL OR {area_match})"
        " AND (r.layer IS NULL OR r.layer = x.primary_layer)"
    )
    return f""",
routed AS (
  SELECT x.*, lead.id AS rule_id, lead.unit_id AS rule_unit_id, lead.co_responsible,
    head.id AS head_id,
    (SELECT COALESCE(json_agg(DISTINCT r.unit_id ORDER BY r.unit_id), '[]'::json)
     FROM routing_rules r
     WHERE {matches} AND r.role = 'assist' AND r.unit_id <> lead.unit_id) AS assist_unit_ids
  FROM result x
  {areas}
  LEFT JOIN LATERAL (
    SELECT r.id, r.unit_id, r.co_responsible FROM routing_rules r
    WHERE {matches} AND r.role = 'lead'
    ORDER BY (r.area_id IS NOT NULL)::int + (r.layer IS NOT NULL)::int DESC,
             r.area_id IS NULL, r.valid_from DESC, r.id
    LIMIT 1
  ) lead ON true
  -- A join, not a scalar subquery in the select list: `head_id` is read twice downstream
  -- (the leader and the stored attribution), and a subquery there runs once per reference.
  LEFT JOIN LATERAL (
    SELECT h.id FROM leaders h WHERE h.unit_id = lead.unit_id AND h.is_unit_head AND h.active
    ORDER BY h.id LIMIT 1
  ) head ON true
)
"""


# --- the fallback chain -----------------------------------------------------------------------

FALLBACK_STEPS: dict[str, str] = {
    "claims": "其他认领该点的地点（按优先级）",
    "grid": "所在网格",
    "community": "所在社区",
    "street": "所在街道",
}


def _fallback_steps(registry: LayerRegistry, fallback: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in fallback if s not in FALLBACK_STEPS]
    if unknown:
        raise ValueError(f"RESPONSIBILITY_FALLBACK: unknown steps {unknown}, choose from "
                         f"{list(FALLBACK_STEPS)}")  # fmt: skip
    base = registry.get(BASE_LAYER) if BASE_LAYER in registry else None
    has_area = base is not None and "community_id" in base.model.__table__.c
    return tuple(
        s
        for s in dict.fromkeys(fallback)
        if (s != "grid" or base is not None) and (s not in ("community", "street") or has_area)
    )


def _fallback_sql(registry: LayerRegistry, steps: Sequence[str]) -> str:
    """CTE `fallback`: for each issue whose primary place has no leader at `reported_at`, the
    first step of `steps` with one — another claimed place (by rank), the grid's primary
    leader, the leader of the grid's community or street (area_assignments) — as one set: the
    candidates of every step for every such issue, the first per issue kept."""
    if not steps:
        return ""
    valid = "x.valid_from <= t.reported_at AND (x.valid_to IS NULL OR x.valid_to > t.reported_at)"
    area = (
        "SELECT s.issue_id, {n} AS ord, '{step}'::text AS step, NULL::bigint AS place_id,"
        " x.area_id AS area_id, x.leader_id::bigint AS leader_id, 0 AS sub"
        " FROM summary s JOIN target t ON t.id = s.issue_id"
        " JOIN {grid} g ON g.id = s.grid_id {join}"
        " JOIN area_assignments x ON x.area_id = {area} AND " + valid + " WHERE s.leader_id IS NULL"
    )
    base = registry.get(BASE_LAYER) if BASE_LAYER in registry else None
    parts = []
    for n, step in enumerate(steps):
        if step == "claims":
            parts.append(
                f"SELECT cl.issue_id, {n} AS ord, 'claims'::text AS step, cl.place_id,"
                " NULL::int AS area_id, cl.leader_id::bigint, cl.rank::int AS sub"
                " FROM claimed cl JOIN summary s ON s.issue_id = cl.issue_id"
                " WHERE s.leader_id IS NULL AND cl.leader_id IS NOT NULL"
            )
        elif step == "grid":
            parts.append(
                f"SELECT cl.issue_id, {n} AS ord, 'grid'::text AS step, cl.place_id,"
                " NULL::int AS area_id, cl.leader_id::bigint, 0 AS sub"
                " FROM claimed cl JOIN summary s ON s.issue_id = cl.issue_id"
                " AND cl.place_id = s.grid_id"
                " WHERE s.leader_id IS NULL AND cl.leader_id IS NOT NULL"
            )
        elif step == "community":
            parts.append(area.format(n=n, step=step, grid=base.table, join="",
                                     area="g.community_id"))  # fmt: skip
        elif step == "street":
            parts.append(
                area.format(
                    n=n,
                    step=step,
                    grid=base.table,
                    join="JOIN admin_areas ca ON ca.id = g.community_id",
                    area="ca.parent_id",
                )
            )
    union = "\n    UNION ALL ".join(parts)
    return f"""fallback AS (
  SELECT DISTINCT ON (o.issue_id) o.issue_id, o.step, o.place_id, o.area_id, o.leader_id,
    ld.unit_id
  FROM ({union}) o
  JOIN leaders ld ON ld.id = o.leader_id
  ORDER BY o.issue_id, o.ord, o.sub, o.leader_id
),"""


# --- explaining a stored attribution --------------------------------------------------------

_WITHIN = re.compile(r"within ([0-9.]+) m")


def precedence_text(registry: LayerRegistry) -> str:
    return " > ".join(spec.title for spec in registry)


def rule_text(spec: LayerSpec | None, rule: str, distance_m: float) -> str:
    """A claim's rule in words: 「在范围内」 or 「距 12.3 米（主干道认领 40 米）」."""
    title = spec.title if spec else "要素"
    match = _WITHIN.fullmatch(rule or "")
    if match is None:
        return f"位于该{title}范围内"
    tolerance = float(match.group(1))
    if distance_m <= 0:
        return f"位于该{title}范围内（认领范围含周边 {tolerance:g} 米）"
    return f"距该{title} {distance_m:g} 米，在其 {tolerance:g} 米认领范围内"


# The places and leaders an attribution names (describe), in one statement.
_DESCRIBE_NAMES = text(
    """
SELECT 'p' AS kind, p.id, p.code, p.name, p.layer, NULL::varchar AS title, NULL::varchar AS phone,
       NULL::integer AS unit_id, NULL::varchar AS unit_name
FROM places p WHERE p.id = ANY(CAST(:places AS bigint[]))
UNION ALL
SELECT 'l', l.id, NULL, l.name, NULL, l.title, l.phone, l.unit_id, u.name
FROM leaders l LEFT JOIN units u ON u.id = l.unit_id
WHERE l.id = ANY(CAST(:leaders AS integer[]))"""
)


def describe(
    session: Session,
    registry: LayerRegistry,
    attribution: dict[str, Any] | None,
    leader_id: int | None,
    unit_id: int | None,
    reported_at_text: str,
) -> dict[str, Any]:
    """The stored attribution with names, each claim's rule in words, and one sentence saying
    why the issue went to whom (or to the unassigned queue)."""
    attribution = attribution or {"places": [], "unassigned": True}
    claims = attribution.get("places") or []
    place_ids = {c["place_id"] for c in claims}
    leader_ids = {c["leader_id"] for c in claims if c.get("leader_id")} | (
        {leader_id} if leader_id else set()
    )
    places: dict[int, Any] = {}
    leaders: dict[int, Any] = {}
    if place_ids or leader_ids:  # the names of both in one round trip
        for row in session.execute(
            _DESCRIBE_NAMES, {"places": sorted(place_ids), "leaders": sorted(leader_ids)}
        ):
            (places if row.kind == "p" else leaders)[row.id] = row
    units = {r.unit_id: r.unit_name for r in leaders.values() if r.unit_id}
    if unit_id and unit_id not in units:
        units[unit_id] = session.scalar(select(Unit.name).where(Unit.id == unit_id))

    def leader_json(lid: int | None) -> dict[str, Any] | None:
        row = leaders.get(lid) if lid else None
        if row is None:
            return None
        return {
            "id": row.id,
            "name": row.name,
            "title": row.title,
            "phone": row.phone,
            "unit": {"id": row.unit_id, "name": units.get(row.unit_id)} if row.unit_id else None,
        }

    described = []
    for rank, claim in enumerate(claims):
        spec = registry.get(claim["layer"]) if claim["layer"] in registry else None
        place = places.get(claim["place_id"])
        described.append(
            {
                "layer": claim["layer"],
                "layer_title": spec.title if spec else claim["layer"],
                "collection": spec.collection if spec else None,
                "place_id": claim["place_id"],
                "code": place.code if place else None,
                "name": place.name if place else None,
                "distance_m": float(claim["distance_m"]),
                "rule": claim["rule"],
                "rule_text": rule_text(spec, claim["rule"], float(claim["distance_m"])),
                "precedence": spec.precedence if spec else None,
                "leader": leader_json(claim.get("leader_id")),
                "primary": rank == 0,
            }
        )
    primary = described[0] if described else None
    manual = attribution.get("manual")
    leader = leader_json(leader_id)
    if primary is None:
        reason = "no_place"
        sentence = "没有任何图层认领该点（不在任何网格、小区、市场内，也不在道路认领范围内）"
    else:
        where = f"{primary['layer_title']}「{primary['name']}」"
        sentence = f"该点{primary['rule_text'].replace('该' + primary['layer_title'], where)}"
        if len(described) > 1:
            others = "、".join(f"{d['layer_title']}「{d['name']}」" for d in described[1:])
            sentence += (
                f"；同时认领该点的还有{others}，按优先级 {precedence_text(registry)}"
                f"取{where}为主责任地点"
            )
        reason = None if primary["leader"] else "no_leader"
        if primary["leader"]:
            p_leader = primary["leader"]
            sentence += f"；上报时（{reported_at_text}）其包保领导为{p_leader['name']}"
            if p_leader["unit"]:
                sentence += f"（{p_leader['unit']['name']}）"
        else:
            sentence += f"；上报时（{reported_at_text}）{where}没有包保领导"
    fallback = attribution.get("fallback")
    if fallback and leader is not None:
        reason = None
        order = "→".join(FALLBACK_STEPS.get(x, x) for x in fallback.get("order") or [])
        step = FALLBACK_STEPS.get(fallback.get("step"), fallback.get("step"))
        if fallback.get("place_id") in places:
            fb_place = places[fallback["place_id"]]
            step += f"「{fb_place.name}」"
        elif fallback.get("area_id"):
            from geoservice.models import AdminArea

            area_name = session.scalar(
                select(AdminArea.name).where(AdminArea.id == fallback["area_id"])
            )
            step += f"「{area_name}」"
        sentence += f"；按兜底顺序（{order}）由{step}的包保领导{leader['name']}负责"
    routing = attribution.get("routing")
    if routing:
        from geoservice.issues.routing_rules import sentence as routing_sentence

        reason = None if leader is not None else "no_unit_head"
        sentence += routing_sentence(session, routing)
        if leader is not None and not manual:
            sentence += f"，交由{leader['name']}办理"
    if manual:
        reason = None
        sentence += f"；已由人工交办给{leader['name'] if leader else '指定领导'}"
    elif leader is None:
        sentence += "，问题进入待派遣队列，由督办人员手动交办"
    return {
        "places": described,
        "primary_place": primary,
        "leader": leader,
        "unit": {"id": unit_id, "name": units.get(unit_id)} if unit_id else None,
        "unassigned": leader is None,
        "reason": reason,
        "manual": manual,
        "fallback": fallback,
        "routing": routing,
        "precedence": precedence_text(registry),
        "rule": sentence + "。",
    }


def without_phones(value: object) -> None:
    """Drops every leader's `phone` (an attribution names leaders in several places): phones
    are for accounts with `assignments.read` only (docs/security.md, "Phones")."""
    if isinstance(value, dict):
        value.pop("phone", None)
        for item in value.values():
            without_phones(item)
    elif isinstance(value, list):
        for item in value:
            without_phones(item)
