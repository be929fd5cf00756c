"""Hierarchy audit (part of the coverage audit): does 街道 → 社区 → 网格 hold together?

Findings, every area in m² on the WGS-84 spheroid (geography), pieces smaller than
`min_area_m2` or the linking's `sliver_m2` (10 m²: boundaries digitised twice) ignored:

- `links`: per edge (community → street, grid → community …) the code/geometry agreement
  counts and every disagreement (geoservice.areas.hierarchy), with the decisions in force;
- `uncovered`: areas of a level a layer links to (communities, for grids) not covered by that
  layer's features: the uncovered part and its m² (a community with no grid at all is
  uncovered entirely);
- `outside` / `straddling`: features (grids) lying outside every area of their level, or
  partly outside, or across two or more areas, with the m² in each;
- `not_tiled`: parents (streets …) whose children do not tile them: the part of the parent
  no child covers (gap), children reaching outside the parent (overflow), children
  overlapping each other;
- `codes`: malformed codes (wrong length or characters for the level), local (non-GB/T)
  codes, codes shared by an area and a feature, duplicate names under one parent;
- `unlinked`: areas below the top level without a parent, features without their area.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from geoservice.areas import hierarchy
from geoservice.areas.levels import LEVEL_TITLES, RANK, code_problem, is_standard
from geoservice.placegeom import geojson_geometry_sql, literal
from geoservice.registry import LOCAL_CODE, LayerRegistry

DEFAULT_LIMIT = 500


def _collection(session: Session, rows_sql: str, params: dict[str, Any]) -> dict[str, Any]:
    sql = f"""
SELECT json_build_object('type', 'FeatureCollection', 'features',
  COALESCE(json_agg(json_build_object('type', 'Feature', 'id', q.id,
    'geometry', {geojson_geometry_sql("q.geom")}, 'properties', q.props)), '[]'::json))
FROM ({rows_sql}) q"""
    return session.execute(text(sql), params).scalar_one()


def _child_geometries(
    session: Session, edge: hierarchy.Edge, props: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """A FeatureCollection of the given children (by id) with the given properties."""
    if not props:
        return {"type": "FeatureCollection", "features": []}
    rows_sql = (
        f"SELECT t.id, t.geom, CAST(:props AS jsonb) -> CAST(t.id AS text) AS props"
        f" FROM {edge.table} t WHERE t.id IN :ids"
    )
    return session.execute(
        text(f"""
SELECT json_build_object('type', 'FeatureCollection', 'features',
  COALESCE(json_agg(json_build_object('type', 'Feature', 'id', q.id,
    'geometry', {geojson_geometry_sql("q.geom")}, 'properties', q.props)), '[]'::json))
FROM ({rows_sql}) q""").bindparams(bindparam("ids", expanding=True)),
        {
            "ids": list(props),
            "props": json.dumps({str(k): v for k, v in props.items()}, ensure_ascii=False),
        },
    ).scalar_one()


def _link_findings(
    session: Session, report: hierarchy.LinkReport, min_area_m2: float, limit: int
) -> dict[str, Any]:
    edges = []
    disagreement_props: dict[tuple[hierarchy.Edge, int], dict[str, Any]] = {}
    outside, straddling = [], []
    for result in report.edges:
        edge = result.edge
        edges.append(result.as_dict(limit))
        for link in result.disagreements[:limit]:
            disagreement_props[(edge, link.id)] = {
                "kind": "link",
                "edge": edge.title,
                "code": link.code,
                "name": link.name,
                "status": link.status,
                "label": hierarchy.STATUS_TITLES[link.status],
                "message": link.describe(),
                "accepted": link.accepted,
            }
        for link in result.links:
            base = {
                "edge": edge.title,
                "kind": edge.kind,
                "code": link.code,
                "name": link.name,
                "area_m2": round(link.area_m2, 1),
            }
            if link.by_geometry is None:
                outside.append(base | {"outside_m2": round(link.area_m2, 1), "whole": True})
            elif link.outside_m2 >= min_area_m2:
                outside.append(base | {"outside_m2": round(link.outside_m2, 1), "whole": False})
            if link.straddles:
                straddling.append(
                    base
                    | {
                        "parents": [
                            {"code": p.code, "name": p.name, "overlap_m2": round(m2, 1)}
                            for p, m2 in link.overlaps
                        ]
                    }
                )
    features: list[dict[str, Any]] = []
    by_edge: dict[hierarchy.Edge, dict[int, dict[str, Any]]] = {}
    for (edge, child_id), props in disagreement_props.items():
        by_edge.setdefault(edge, {})[child_id] = props
    for edge, props in by_edge.items():
        features += _child_geometries(session, edge, props)["features"]
    return {
        "sliver_m2": report.sliver_m2,
        "edges": edges,
        "unresolved": report.unresolved,
        "features": {"type": "FeatureCollection", "features": features},
        "outside": outside[:limit],
        "outside_count": len(outside),
        "straddling": straddling[:limit],
        "straddling_count": len(straddling),
    }


def _uncovered(
    session: Session, edges: list[hierarchy.Edge], min_area_m2: float, limit: int
) -> dict[str, Any]:
    """Areas a layer links to, not covered by that layer's features."""
    rows: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    count, area_m2 = 0, 0.0
    for edge in edges:
        if edge.kind == "area":
            continue
        sql = f"""
SELECT a.id, a.code, a.name, ST_Area(a.geom::geography) AS area_m2, d.geom,
       ST_Area(d.geom::geography) AS uncovered_m2
FROM admin_areas a
CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Difference(a.geom, COALESCE(
  (SELECT ST_Union(l.geom) FROM {edge.table} l WHERE l.geom && a.geom
     AND ST_Intersects(l.geom, a.geom)), 'SRID=4326;POLYGON EMPTY'::geometry)), 3) AS geom) d
WHERE a.level IN ({", ".join(literal(lv) for lv in edge.parent_levels)})
  AND ST_Area(d.geom::geography) >= :min_area"""
        props_sql = f"""
SELECT u.id, u.geom, json_build_object('kind', 'uncovered', 'edge', {literal(edge.title)},
  'code', u.code, 'name', u.name, 'label', {literal(edge.parent_title + "无" + edge.child_title)},
  'area_m2', round(u.area_m2::numeric, 1), 'uncovered_m2', round(u.uncovered_m2::numeric, 1),
  'total', u.total, 'total_m2', u.total_m2) AS props
FROM (SELECT u.*, count(*) OVER () AS total, sum(u.uncovered_m2) OVER () AS total_m2
      FROM ({sql}) u) u
ORDER BY u.uncovered_m2 DESC LIMIT :limit"""
        collection = _collection(session, props_sql, {"min_area": min_area_m2, "limit": limit})
        total, total_m2 = 0, 0.0
        for f in collection["features"]:
            p = f["properties"]
            total, total_m2 = p.pop("total"), p.pop("total_m2")
            rows.append(
                {
                    "edge": edge.title,
                    "level_title": edge.parent_title,
                    "layer_title": edge.child_title,
                    "code": p["code"],
                    "name": p["name"],
                    "area_m2": float(p["area_m2"]),
                    "uncovered_m2": float(p["uncovered_m2"]),
                    "none": float(p["uncovered_m2"]) >= float(p["area_m2"]) * 0.999,
                }
            )
        features += collection["features"]
        count += total
        area_m2 += total_m2
    # Counted before the LIMIT: the list may be cut, the figures are not.
    return {
        "count": count,
        "area_m2": round(area_m2, 1),
        "items": rows,
        "features": {"type": "FeatureCollection", "features": features},
    }


def _not_tiled(
    session: Session, edges: list[hierarchy.Edge], min_area_m2: float, limit: int
) -> dict[str, Any]:
    """Parents whose (linked) children do not tile them exactly."""
    rows: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    total = 0
    for edge in edges:
        if edge.kind != "area":
            continue
        parents = ", ".join(literal(lv) for lv in edge.parent_levels)
        sql = f"""
WITH t AS (
  SELECT p.id, p.code, p.name, p.geom, ST_Area(p.geom::geography) AS area_m2, u.n,
         u.children_m2, u.geom AS children
  FROM admin_areas p
  CROSS JOIN LATERAL (SELECT count(*) AS n, COALESCE(sum(ST_Area(c.geom::geography)), 0)
      AS children_m2, COALESCE(ST_Union(c.geom), 'SRID=4326;POLYGON EMPTY'::geometry) AS geom
    FROM admin_areas c WHERE c.parent_id = p.id) u
  WHERE p.level IN ({parents})),
m AS (
  -- On a 1e-7° grid (about a centimetre): boundaries that match but were digitised in
  -- different coordinate systems differ by 1e-14°, and those slivers, measured on the
  -- spheroid along long straight edges, "were" thousands of m².
  SELECT t.*, ST_CollectionExtract(ST_Difference(t.geom, t.children, 1e-7), 3) AS gap,
         ST_Area(ST_Difference(t.children, t.geom, 1e-7)::geography) AS overflow_m2,
         t.children_m2 - ST_Area(t.children::geography) AS overlap_m2
  FROM t)
SELECT m.id, m.gap AS geom, json_build_object('kind', 'not_tiled', 'edge', {literal(edge.title)},
  'code', m.code, 'name', m.name, 'children', m.n,
  'label', {literal(edge.parent_title + "未被" + edge.child_title + "铺满")},
  'area_m2', round(m.area_m2::numeric, 1),
  'gap_m2', round(ST_Area(m.gap::geography)::numeric, 1),
  'overflow_m2', round(m.overflow_m2::numeric, 1),
  'overlap_m2', round(m.overlap_m2::numeric, 1), 'total', count(*) OVER ()) AS props
FROM m
WHERE ST_Area(m.gap::geography) >= :min_area OR m.overflow_m2 >= :min_area
   OR m.overlap_m2 >= :min_area
ORDER BY m.code LIMIT :limit"""
        collection = _collection(session, sql, {"min_area": min_area_m2, "limit": limit})
        count = 0
        for f in collection["features"]:
            p = f["properties"]
            count = p.pop("total")  # before the LIMIT
            rows.append(
                {
                    "edge": edge.title,
                    "level_title": edge.parent_title,
                    "child_title": edge.child_title,
                    **{k: p[k] for k in ("code", "name", "children")},
                    **{k: float(p[k]) for k in ("area_m2", "gap_m2", "overflow_m2", "overlap_m2")},
                }
            )
            if float(p["gap_m2"]) >= min_area_m2 and f["geometry"] is not None:
                features.append(f)
        total += count
    return {
        "count": total,
        "items": rows,
        "features": {"type": "FeatureCollection", "features": features},
    }


def _codes(session: Session, registry: LayerRegistry, base_layer: str | None) -> dict[str, Any]:
    malformed: list[dict[str, Any]] = []
    local: list[dict[str, Any]] = []
    for level, code, name in session.execute(
        text("SELECT level, code, name FROM admin_areas ORDER BY level, code")
    ):
        if is_standard(level, code):
            continue
        item = {"level": level, "level_title": LEVEL_TITLES[level], "code": code, "name": name}
        if code.isdigit():
            malformed.append(item | {"problem": code_problem(level, code)})
        elif LOCAL_CODE.fullmatch(code):
            local.append(item)
        else:
            malformed.append(item | {"problem": code_problem(level, code, local=True)})
    if base_layer is not None and base_layer in registry:
        spec = registry.get(base_layer)
        if spec.code_pattern is not None:
            for code, name in session.execute(
                text("SELECT code, name FROM places WHERE layer = :layer ORDER BY code"),
                {"layer": spec.name},
            ):
                if spec.code_is_valid(code):
                    continue
                item = {"level": spec.name, "level_title": spec.title, "code": code, "name": name}
                if LOCAL_CODE.fullmatch(code) and not code.isdigit():
                    local.append(item)
                else:
                    malformed.append(item | {"problem": spec.code_hint})
    # Codes are unique per table (constraints; imports refuse repeats), but an area and a
    # feature may share one (local codes: community SQ-1 and grid SQ-1): ambiguous for
    # `link-areas --only` and for whoever reads a list of codes. Two feature layers sharing a
    # code (road X1, market X1) is not a hierarchy matter: each layer numbers its own.
    titles = {f"area:{lv}": t for lv, t in LEVEL_TITLES.items()}
    titles.update((spec.name, spec.title) for spec in registry)
    duplicates = []
    for code, kinds in session.execute(
        text("""
SELECT code, array_agg(kind ORDER BY kind) FROM (
  SELECT code, 'area:' || level AS kind FROM admin_areas
  UNION ALL SELECT code, layer FROM places) c
GROUP BY code HAVING count(*) > 1 AND bool_or(kind LIKE 'area:%') ORDER BY code""")
    ):
        source = "、".join(titles.get(k, k) for k in kinds)
        duplicates.append({"code": code, "count": len(kinds), "source": source, "kinds": kinds})
    same_names = [
        dict(r)
        for r in session.execute(
            text("""
SELECT p.code AS parent_code, p.name AS parent_name, c.level, c.name,
       array_agg(c.code ORDER BY c.code) AS codes
FROM admin_areas c JOIN admin_areas p ON p.id = c.parent_id
GROUP BY p.code, p.name, c.level, c.name HAVING count(*) > 1 ORDER BY p.code, c.name""")
        ).mappings()
    ]
    return {
        "malformed": malformed,
        "local": local,
        "local_count": len(local),
        "duplicates": duplicates,
        "duplicate_names": same_names,
    }


def _unlinked(session: Session, edges: list[hierarchy.Edge]) -> list[dict[str, Any]]:
    out = []
    for edge in edges:
        if edge.kind == "area":
            where = f"a.level IN ({', '.join(literal(lv) for lv in edge.child_levels)})"
            rows = session.execute(
                text(
                    f"SELECT a.code, a.name FROM admin_areas a WHERE {where}"
                    " AND a.parent_id IS NULL ORDER BY a.code"
                )
            ).all()
        else:
            rows = session.execute(
                text(
                    f"SELECT p.code, p.name FROM {edge.table} l JOIN places p ON p.id = l.id"
                    f" WHERE l.{edge.column} IS NULL ORDER BY p.code"
                )
            ).all()
        if rows:
            out.append(
                {
                    "edge": edge.title,
                    "count": len(rows),
                    "items": [{"code": c, "name": n} for c, n in rows[:DEFAULT_LIMIT]],
                }
            )
    return out


def audit(
    session: Session,
    registry: LayerRegistry,
    base_layer: str | None,
    min_area_m2: float,
    limit: int = DEFAULT_LIMIT,
    sliver_m2: float = hierarchy.DEFAULT_SLIVER_M2,
) -> dict[str, Any]:
    """Every hierarchy finding (see the module docstring). At most `limit` items of each kind
    are listed; the counts and areas are of all of them."""
    limit = max(limit, 1)  # the counts ride on the listed rows
    report = hierarchy.analyse(session, registry, sliver_m2)
    edges = [r.edge for r in report.edges]
    threshold = max(min_area_m2, sliver_m2)
    links = _link_findings(session, report, threshold, limit)
    uncovered = _uncovered(session, edges, threshold, limit)
    not_tiled = _not_tiled(session, edges, threshold, limit)
    codes = _codes(session, registry, base_layer)
    unlinked = _unlinked(session, edges)
    levels = session.execute(text("SELECT level, count(*) FROM admin_areas GROUP BY level")).all()
    return {
        "min_area_m2": threshold,
        "levels": [
            {"level": lv, "title": LEVEL_TITLES[lv], "count": n}
            for lv, n in sorted(levels, key=lambda r: -RANK[r[0]])
        ],
        "summary": {
            "disagreements": sum(len(r.disagreements) for r in report.edges),
            "unresolved": report.unresolved,
            "uncovered": uncovered["count"],
            "uncovered_m2": uncovered["area_m2"],
            "outside": links["outside_count"],
            "straddling": links["straddling_count"],
            "not_tiled": not_tiled["count"],
            "malformed_codes": len(codes["malformed"]),
            "duplicate_codes": len(codes["duplicates"]),
            "duplicate_names": len(codes["duplicate_names"]),
            "local_codes": codes["local_count"],
            "unlinked": sum(u["count"] for u in unlinked),
        },
        "links": links,
        "uncovered": uncovered,
        "not_tiled": not_tiled,
        "codes": codes,
        "unlinked": unlinked,
    }


FINDING_KEYS = (
    "unresolved",
    "uncovered",
    "outside",
    "straddling",
    "not_tiled",
    "malformed_codes",
    "duplicate_codes",
    "duplicate_names",
    "unlinked",
)


def finding_count(result: dict[str, Any]) -> int:
    """Findings that need someone's attention (settled disagreements and local codes do not)."""
    return sum(result["summary"][k] for k in FINDING_KEYS)


def report_lines(result: dict[str, Any], listed: int = 10) -> list[str]:
    """Chinese text lines for `flask coverage`."""
    s = result["summary"]
    lines = [f"层级检查（街道 → 社区 → 网格；小于 {result['min_area_m2']:g} m² 的碎片忽略）"]
    if not result["levels"]:
        return [*lines, "  尚未导入行政区划（flask import-areas）"]
    lines.append(
        "  行政区划：" + "，".join(f"{x['title']} {x['count']} 个" for x in result["levels"])
    )
    for edge in result["links"]["edges"]:
        counts = "，".join(
            f"{hierarchy.STATUS_TITLES[k]} {v}" for k, v in sorted(edge["counts"].items())
        )
        lines.append(f"  {edge['edge']}：{edge['children']} 个（{counts or '无'}）")
        for d in edge["disagreements"][:listed]:
            lines.append(f"    {'✓' if d['accepted'] else '✗'} {d['message']}")
        if len(edge["disagreements"]) > listed:
            lines.append(
                f"    … 共 {len(edge['disagreements'])} 处不一致（flask link-areas --all）"
            )
    un = result["uncovered"]
    lines.append(f"  未被网格覆盖的区划：{un['count']} 个，共 {un['area_m2']:.1f} m²")
    for item in un["items"][:listed]:
        whole = "（无任何网格）" if item["none"] else ""
        lines.append(
            f"    {item['code']} {item['name']}：未覆盖 {item['uncovered_m2']:.1f} m²{whole}"
        )
    links = result["links"]
    lines.append(f"  在上级区划外或部分在外：{links['outside_count']} 个")
    for item in links["outside"][:listed]:
        lines.append(
            f"    {item['code']} {item['name']}："
            + ("完全在外" if item["whole"] else f"{item['outside_m2']:.1f} m² 在外")
        )
    lines.append(f"  跨越两个以上上级区划：{links['straddling_count']} 个")
    for item in links["straddling"][:listed]:
        parts = "、".join(f"{p['code']} {p['overlap_m2']:.1f} m²" for p in item["parents"])
        lines.append(f"    {item['code']} {item['name']}：{parts}")
    tiled = result["not_tiled"]
    lines.append(f"  未被下级区划铺满的区划：{tiled['count']} 个")
    for item in tiled["items"][:listed]:
        lines.append(
            f"    {item['code']} {item['name']}（{item['children']} 个{item['child_title']}）："
            f"空白 {item['gap_m2']:.1f} m²，超出 {item['overflow_m2']:.1f} m²，"
            f"下级之间重叠 {item['overlap_m2']:.1f} m²"
        )
    codes = result["codes"]
    lines.append(
        f"  编码：格式错误 {s['malformed_codes']} 个，重复 {s['duplicate_codes']} 个，"
        f"同一上级下重名 {s['duplicate_names']} 组，本地（非国标）编码 {s['local_codes']} 个"
    )
    for item in codes["malformed"][:listed]:
        lines.append(f"    {item['level_title']} {item['code']} {item['name']}：{item['problem']}")
    for item in codes["duplicates"][:listed]:
        lines.append(f"    编码 {item['code']} 被 {item['source']} 共用")
    for item in codes["duplicate_names"][:listed]:
        lines.append(
            f"    {item['parent_name']}下有重名的 {item['name']}：{'、'.join(item['codes'])}"
        )
    for item in result["unlinked"]:
        lines.append(f"  未归属（{item['edge']}）：{item['count']} 个")
    return lines
