"""Places of any layer as field work sees them: geometry, anchor point, street, distance to a
check-in, and the optional site-kind / standards tables of issue 15 (used when they exist)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from geoservice.placegeom import geojson_geometry_sql, layer_title_sql, place_geometries_sql
from geoservice.registry import LayerRegistry


def table_exists(session: Session, name: str) -> bool:
    return session.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()


def sites_available(session: Session, registry: LayerRegistry) -> bool:
    """The 点位 layer of issue 15 is declared and its kinds table exists."""
    return "site" in registry and table_exists(session, "public.site_kinds")


def kind_exists(session: Session, code: str) -> bool:
    return bool(
        session.execute(text("SELECT 1 FROM site_kinds WHERE code = :c"), {"c": code}).first()
    )


KIND_FILTER = (
    "EXISTS (SELECT 1 FROM sites s JOIN site_kinds k ON k.id = s.kind_id"
    " WHERE s.id = {place} AND k.code = {kind})"
)


def street_sql(geom: str) -> str:
    """The street (admin area, level street) covering a geometry's interior point."""
    return (
        "(SELECT a.id FROM admin_areas a WHERE a.level = 'street' AND a.geom && "
        f"ST_PointOnSurface({geom}) AND ST_Covers(a.geom, ST_PointOnSurface({geom}))"
        " ORDER BY a.id LIMIT 1)"
    )


def place_info(
    session: Session, registry: LayerRegistry, place_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """id → {id, layer, layer_title, code, name, lon, lat (a point on the place), street_id,
    street, geometry (GeoJSON)}."""
    if not place_ids:
        return {}
    sql = text(f"""
SELECT p.id, p.layer, {layer_title_sql(registry, "p.layer")} AS layer_title, p.code, p.name,
       ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat,
       st.id AS street_id, st.name AS street, {geojson_geometry_sql("g.geom")} AS geometry
FROM places p JOIN ({place_geometries_sql(registry)}) g ON g.id = p.id
LEFT JOIN admin_areas st ON st.id = {street_sql("g.geom")}
WHERE p.id IN :ids""").bindparams(bindparam("ids", expanding=True))
    return {r["id"]: dict(r) for r in session.execute(sql, {"ids": place_ids}).mappings()}


def distance_m(
    session: Session, registry: LayerRegistry, place_id: int, lon: float, lat: float
) -> float | None:
    """Metres from (lon, lat) to the place's geometry (0 inside a polygon)."""
    spec_layer = session.execute(
        text("SELECT layer FROM places WHERE id = :id"), {"id": place_id}
    ).scalar_one_or_none()
    if spec_layer is None or spec_layer not in registry:
        return None
    table = registry.get(spec_layer).table
    return session.execute(
        text(
            f"SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
            f"::geography) FROM {table} WHERE id = :id"
        ),
        {"id": place_id, "lon": lon, "lat": lat},
    ).scalar_one_or_none()


def applicable_standards(session: Session, place_id: int) -> list[dict[str, Any]]:
    """The standards (issue 15) applying to a site's kind, newest standards version; [] for
    places that are not sites or when the standards tables do not exist yet."""
    if not table_exists(session, "public.standard_kinds"):
        return []
    rows = session.execute(
        text("""
SELECT st.id, st.code, st.text, st.category, st.negative_list
FROM sites s
JOIN standard_kinds sk ON sk.kind_id = s.kind_id
JOIN standards st ON st.id = sk.standard_id
WHERE s.id = :id
  AND st.version_id = (SELECT max(s2.version_id) FROM standards s2
                       JOIN standard_kinds k2 ON k2.standard_id = s2.id
                       WHERE k2.kind_id = s.kind_id)
ORDER BY st.position, st.code"""),
        {"id": place_id},
    ).mappings()
    return [dict(r) for r in rows]
