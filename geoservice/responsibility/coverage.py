"""Coverage audit (面上有网、网上有点、点上有人): where the rule is broken.

Findings:
- `unassigned`: features of each layer with no active assignment held by an active leader;
- `no_primary`: features that have leaders but none of them primary;
- `gaps`: parts of the service area covered by no feature of the base layer (grids);
- `overlaps`: pairs of base-layer features whose interiors overlap;
- `idle_leaders`: active leaders holding nothing;
- `integrity`: assignments pointing at missing places or at places whose feature row is gone
  (the foreign keys should make these impossible; the audit checks anyway);
- `hierarchy`: does 街道 → 社区 → 网格 hold together (geoservice.areas.hierarchy_audit).

The service area is `geoservice.areas.service_area.definition`: the configured areas, else the union
of the top-level admin areas, else the union of the base layer with its holes filled, so that
holes enclosed by grids still count as gaps. Areas are in m², computed on the WGS-84
spheroid (geography), never in degrees. Pieces smaller than `min_area_m2` (floating-point
slivers between grids that share a boundary) are ignored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice import db, httpcache
from geoservice.areas import hierarchy_audit, service_area
from geoservice.placegeom import geojson_geometry_sql, literal, place_geometries_sql
from geoservice.registry import LayerRegistry

DEFAULT_MIN_AREA_M2 = 1.0
DEFAULT_FEATURE_LIMIT = 1000

_HELD = """EXISTS (
  SELECT 1 FROM assignments a JOIN leaders ld ON ld.id = a.leader_id
  WHERE a.place_id = p.id AND a.valid_to IS NULL AND ld.active {extra})"""


def _collection(session: Session, rows_sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Wraps a query yielding (id, geom, props json) into a FeatureCollection built in SQL."""
    sql = f"""
SELECT json_build_object('type', 'FeatureCollection', 'features',
  COALESCE(json_agg(json_build_object('type', 'Feature', 'id', q.id,
    'geometry', {geojson_geometry_sql("q.geom")}, 'properties', q.props)), '[]'::json))
FROM ({rows_sql}) q"""
    return session.execute(text(sql), params).scalar_one()


def unassigned_features(
    session: Session, registry: LayerRegistry, limit: int = DEFAULT_FEATURE_LIMIT
) -> list[dict[str, Any]]:
    """Per layer: features nobody (active) answers for, and those without a primary leader."""
    out = []
    for spec in registry:
        findings: dict[str, Any] = {"layer": spec.name, "layer_title": spec.title}
        for key, condition in (
            ("unassigned", f"NOT {_HELD.format(extra='')}"),
            (
                "no_primary",
                f"{_HELD.format(extra='')} AND NOT {_HELD.format(extra='AND a.is_primary')}",
            ),
        ):
            where = f"p.layer = {literal(spec.name)} AND {condition}"
            count = session.execute(
                text(f"SELECT count(*) FROM places p WHERE {where}")
            ).scalar_one()
            rows_sql = f"""
SELECT p.id, l.geom, json_build_object('place_id', p.id, 'layer', p.layer,
  'layer_title', {literal(spec.title)}, 'code', p.code, 'name', p.name) AS props
FROM places p JOIN {spec.table} l ON l.id = p.id
WHERE {where} ORDER BY p.code LIMIT :limit"""
            findings[key] = {
                "count": count,
                "features": _collection(session, rows_sql, {"limit": limit}),
            }
        out.append(findings)
    return out


def gaps(
    session: Session,
    registry: LayerRegistry,
    base_layer: str | None,
    min_area_m2: float = DEFAULT_MIN_AREA_M2,
) -> dict[str, Any]:
    found = service_area.definition(session, registry)
    area_sql = found.union_sql
    result: dict[str, Any] = {
        "service_area_source": found.source,
        "service_area_title": found.title,
    }
    if area_sql is None or base_layer not in registry:
        return result | {"count": 0, "area_m2": 0.0, "features": _empty()}
    table = registry.get(base_layer).table
    rows_sql = f"""
SELECT row_number() OVER (ORDER BY ST_Area(d.geom::geography) DESC) AS id, d.geom,
       json_build_object('kind', 'gap',
         'area_m2', round(ST_Area(d.geom::geography)::numeric, 2)) AS props
FROM ST_Dump(ST_CollectionExtract(ST_Difference(
       {area_sql},
       COALESCE((SELECT ST_Union(geom) FROM {table}), 'SRID=4326;POLYGON EMPTY'::geometry)),
       3)) d
WHERE ST_Area(d.geom::geography) >= :min_area"""
    features = _collection(session, rows_sql, {"min_area": min_area_m2})
    service_m2 = session.execute(
        text(f"SELECT COALESCE(ST_Area(({area_sql})::geography), 0)")
    ).scalar_one()
    return result | _summarise(features) | {"service_area_m2": round(float(service_m2), 2)}


def overlaps(
    session: Session,
    registry: LayerRegistry,
    base_layer: str | None,
    min_area_m2: float = DEFAULT_MIN_AREA_M2,
) -> dict[str, Any]:
    if base_layer is None or base_layer not in registry:
        return {"count": 0, "area_m2": 0.0, "features": _empty()}
    table = registry.get(base_layer).table
    # The pairs come from the layer table alone (its GiST index), before anything else is
    # joined, so the planner cannot put the geometry work under a bigger join.
    rows_sql = f"""
WITH pairs AS MATERIALIZED (
  SELECT a.id AS a_id, b.id AS b_id,
         ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom
  FROM {table} a JOIN {table} b ON a.id < b.id AND a.geom && b.geom
  WHERE ST_Relate(a.geom, b.geom, '2********'))
SELECT row_number() OVER (ORDER BY pa.code, pb.code) AS id, ov.geom,
       json_build_object('kind', 'overlap',
         'area_m2', round(ST_Area(ov.geom::geography)::numeric, 2),
         'a', json_build_object('place_id', pa.id, 'code', pa.code, 'name', pa.name),
         'b', json_build_object('place_id', pb.id, 'code', pb.code, 'name', pb.name)) AS props
FROM pairs ov
JOIN places pa ON pa.id = ov.a_id
JOIN places pb ON pb.id = ov.b_id
WHERE ST_Area(ov.geom::geography) >= :min_area"""
    return _summarise(_collection(session, rows_sql, {"min_area": min_area_m2}))


def idle_leaders(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        text("""
SELECT l.id, l.name, l.title, u.name AS unit, l.phone, l.level
FROM leaders l LEFT JOIN units u ON u.id = l.unit_id
WHERE l.active AND NOT EXISTS (
  SELECT 1 FROM assignments a WHERE a.leader_id = l.id AND a.valid_to IS NULL)
ORDER BY u.name NULLS LAST, l.name, l.id""")
    ).mappings()
    return [dict(r) for r in rows]


def integrity(session: Session, registry: LayerRegistry) -> list[dict[str, Any]]:
    """Assignments that point at nothing. Each check is reported, with its count (should be 0)."""
    layers = ", ".join(literal(s.name) for s in registry)
    checks = [
        (
            "missing_place",
            "包保记录指向不存在的地点",
            """SELECT a.id, a.place_id, NULL::text AS layer, NULL::text AS code
FROM assignments a LEFT JOIN places p ON p.id = a.place_id WHERE p.id IS NULL""",
        ),
        (
            "missing_feature",
            "包保记录指向已删除的要素（地点缺少图层要素或图层未注册）",
            f"""SELECT a.id, a.place_id, p.layer, p.code
FROM assignments a JOIN places p ON p.id = a.place_id
WHERE p.layer NOT IN ({layers})
   OR NOT EXISTS (SELECT 1 FROM ({place_geometries_sql(registry)}) g WHERE g.id = p.id)""",
        ),
    ]
    out = []
    for key, title, sql in checks:
        rows = [dict(r) for r in session.execute(text(sql)).mappings()]
        out.append({"check": key, "title": title, "count": len(rows), "items": rows[:100]})
    return out


# The tables the audit reads besides the layers' own (tests/test_coverage_kept.py checks that it
# reads no other): writes to them bump their counters when they commit (migration 0027).
AUDITED_TABLES = ("admin_areas", "area_link_decisions", "assignments", "leaders", "places", "units")
# A city's audit takes 10–13 s (its hierarchy checks over ~30,000 grids): kept per process, as
# JSON, while those tables are unchanged.
_KEPT = httpcache.KeptByGeneration()
# How long a request waits for another process's audit before computing its own.
SHARED_WAIT_SECONDS = 60.0


def coverage_report(
    session: Session,
    registry: LayerRegistry,
    base_layer: str | None,
    min_area_m2: float = DEFAULT_MIN_AREA_M2,
    feature_limit: int = DEFAULT_FEATURE_LIMIT,
) -> dict[str, Any]:
    """Every finding of the audit, geometries as RFC 7946 FeatureCollections. Computed once
    while the tables it reads are unchanged, and shared by the worker processes; computed
    afresh in a transaction that has written itself (its writes are counted once committed)."""
    tables, key, engine = _identity(session, registry, base_layer, min_area_m2, feature_limit)

    def computed() -> dict[str, Any]:
        return _computed_report(session, registry, base_layer, min_area_m2, feature_limit)

    def encoded(generation: httpcache.Generation | None) -> bytes:
        if generation is None or not db.is_tuned(engine):  # not kept, or no pool to share by
            return _json(computed())
        return _shared(engine, key, generation, computed)

    return json.loads(_KEPT.get(session, (repr(engine.url), *key), tables, encoded))


def last_report(
    session: Session, registry: LayerRegistry, base_layer: str | None
) -> dict[str, Any] | None:
    """The audit (default arguments) as the worker processes last left it in shared_answers,
    when the tables it reads have changed since (`current` False): what a page that must not
    wait for a city's audit shows while the notifications worker computes the new one
    (`refresh`, every minute). None when that stored audit is current (`coverage_report`
    answers at once from it), when none is stored, or in a transaction that has written
    itself."""
    tables, key, engine = _identity(
        session, registry, base_layer, DEFAULT_MIN_AREA_M2, DEFAULT_FEATURE_LIMIT
    )
    if not db.is_tuned(engine) or httpcache.wrote_tracked(session):
        return None
    current = httpcache.generation(session, tables)
    if current is None:
        return None
    with httpcache.SharedAnswers(engine, key) as others:
        found = others.fetch(current)
        if found is None or found.generation == current:
            return None
        found = others.with_body(found)
    return None if found is None else json.loads(found.body) | {"current": False}


def refresh(session: Session, registry: LayerRegistry, base_layer: str | None) -> bool:
    """Brings the shared audit (default arguments) up to date: computed unless the stored one
    is current (False then), or waited for when another process is computing it. The
    notifications worker's periodic task, so that pages after a write find it done."""
    tables, key, engine = _identity(
        session, registry, base_layer, DEFAULT_MIN_AREA_M2, DEFAULT_FEATURE_LIMIT
    )
    current = httpcache.generation(session, tables)
    if current is not None and db.is_tuned(engine):
        with httpcache.SharedAnswers(engine, key) as others:
            found = others.fetch(current)
        if found is not None and found.generation == current:
            return False
    coverage_report(session, registry, base_layer)
    return True


def _identity(
    session: Session,
    registry: LayerRegistry,
    base_layer: str | None,
    min_area_m2: float,
    feature_limit: int,
) -> tuple[list[str], tuple, Any]:
    """The tables an audit reads, its key (its arguments) and the engine it is shared by."""
    tables = sorted({*AUDITED_TABLES, *(spec.table for spec in registry)})
    key = ("coverage", base_layer, float(min_area_m2), int(feature_limit), tuple(tables))
    bind = session.get_bind()
    return tables, key, getattr(bind, "engine", bind)


def _json(report: dict[str, Any]) -> bytes:
    return json.dumps(report, ensure_ascii=False, allow_nan=False).encode()


def _shared(
    engine: Any,
    key: tuple,
    generation: httpcache.Generation,
    compute: Callable[[], dict[str, Any]],
) -> bytes:
    """The report at `generation` as another worker process left it in shared_answers
    (httpcache.SharedAnswers), else computed here and left there. One process and thread
    computes it after a write (an advisory lock), the others wait for it: a 9:00 rush of home
    pages starts one audit, not one each."""
    with httpcache.SharedAnswers(engine, key) as others:
        found = others.fetch(generation)
        if (found is None or found.generation != generation) and not others.lock():
            others.wait_for_lock(SHARED_WAIT_SECONDS)
            found = others.fetch(generation)
        if found is not None and found.generation == generation:
            found = others.with_body(found)
            if found is not None:
                return found.body
        body = _json(compute())
        others.put(
            httpcache.Stored(
                f"coverage-{httpcache.generation_key(generation)}", generation, body,
                "application/json", (), time.monotonic(),
            )
        )  # fmt: skip
        return body


def _computed_report(
    session: Session,
    registry: LayerRegistry,
    base_layer: str | None,
    min_area_m2: float,
    feature_limit: int,
) -> dict[str, Any]:
    layers = unassigned_features(session, registry, feature_limit)
    gap = gaps(session, registry, base_layer, min_area_m2)
    overlap = overlaps(session, registry, base_layer, min_area_m2)
    idle = idle_leaders(session)
    checks = integrity(session, registry)
    tree = hierarchy_audit.audit(session, registry, base_layer, min_area_m2, feature_limit)
    return {
        "base_layer": base_layer,
        "min_area_m2": min_area_m2,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": {
            "unassigned": sum(item["unassigned"]["count"] for item in layers),
            "no_primary": sum(item["no_primary"]["count"] for item in layers),
            "gaps": gap["count"],
            "gap_area_m2": gap["area_m2"],
            "overlaps": overlap["count"],
            "overlap_area_m2": overlap["area_m2"],
            "idle_leaders": len(idle),
            "dangling_assignments": sum(c["count"] for c in checks),
            "hierarchy": hierarchy_audit.finding_count(tree),
        },
        "layers": layers,
        "gaps": gap,
        "overlaps": overlap,
        "idle_leaders": idle,
        "integrity": checks,
        "hierarchy": tree,
    }


def _empty() -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": []}


def _summarise(features: dict[str, Any]) -> dict[str, Any]:
    areas = [float(f["properties"]["area_m2"]) for f in features["features"]]
    return {"count": len(areas), "area_m2": round(sum(areas), 2), "features": features}


def report_lines(report: dict[str, Any], listed: int = 10) -> list[str]:
    """The report as Chinese text lines (CLI and logs)."""

    def some(names: list[str], total: int) -> str:
        shown = "、".join(names[:listed])
        return f"：{shown}" + ("…" if total > len(names[:listed]) else "") if names else ""

    s = report["summary"]
    lines = ["覆盖检查（面上有网、网上有点、点上有人）"]
    for item in report["layers"]:
        for key, label in (("unassigned", "无包保领导"), ("no_primary", "无主要负责人")):
            finding = item[key]
            names = [
                f"{f['properties']['code']} {f['properties']['name']}"
                for f in finding["features"]["features"]
            ]
            count = finding["count"]
            lines.append(f"  {item['layer_title']}{label}：{count} 个{some(names, count)}")
    gap, overlap = report["gaps"], report["overlaps"]
    source = gap.get("service_area_title", "无")
    lines.append(f"  网格空白：{s['gaps']} 处，共 {s['gap_area_m2']:.1f} m²（服务范围：{source}）")
    for f in gap["features"]["features"][:listed]:
        lines.append(f"    空白 #{f['id']}：{float(f['properties']['area_m2']):.1f} m²")
    lines.append(f"  网格重叠：{s['overlaps']} 处，共 {s['overlap_area_m2']:.1f} m²")
    for f in overlap["features"]["features"][:listed]:
        p = f["properties"]
        lines.append(f"    {p['a']['code']} 与 {p['b']['code']} 重叠 {float(p['area_m2']):.1f} m²")
    idle = [f"{x['name']}（{x['unit'] or '无单位'}）" for x in report["idle_leaders"]]
    lines.append(f"  无包保任务的领导：{len(idle)} 人{some(idle, len(idle))}")
    for check in report["integrity"]:
        lines.append(f"  {check['title']}：{check['count']} 条")
    return lines + hierarchy_audit.report_lines(report["hierarchy"], listed)
