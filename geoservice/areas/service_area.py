"""The service area: the territory this deployment serves (one definition, used everywhere).

In order of preference:

1. **configured**: the admin areas marked `service_area` (`flask service-area --use CODE …`);
2. **admin_areas**: the union of the imported top-level areas, i.e. the areas of the highest
   level present (a city's districts when only districts were imported, SIP's streets when
   only streets and communities were);
3. **base_layer**: before any admin area exists, the base layer's features (grids);
4. none: a fresh install before its first import; every valid lon/lat is accepted.

Users: the API's and the imports' "far outside the service area" check (`bounds`, a box
widened by SERVICE_AREA_MARGIN_M), issue reporting (`contains`), the coverage audit's gaps
(`Definition.union_sql`) and page maps (`outline`, `extent`). Nothing here names a place:
the demo county is only data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.areas.levels import RANK, levels_of_rank
from geoservice.registry import BASE_LAYER, LayerRegistry

SOURCE_TITLES = {
    "configured": "指定的服务范围区划",
    "admin_areas": "顶级行政区划的并集",
    "base_layer": "全部网格的外轮廓（尚无行政区划）",
}


@dataclass(frozen=True)
class Definition:
    """Where the area comes from: `rows_sql` selects its pieces (a `geom` column)."""

    source: str | None  # "configured", "admin_areas", "base_layer" or None
    rows_sql: str | None
    levels: tuple[str, ...] = ()
    filled: bool = False  # base layer: holes enclosed by grids belong to the area

    @property
    def title(self) -> str:
        return SOURCE_TITLES.get(self.source or "", "无")

    @property
    def union_sql(self) -> str | None:
        """A scalar SQL expression: the whole area as one geometry (EPSG:4326)."""
        if self.rows_sql is None:
            return None
        if self.filled:
            return (
                "(SELECT ST_Union(ST_MakePolygon(ST_ExteriorRing(d.geom))) FROM ST_Dump("
                f"(SELECT ST_Union(s.geom) FROM ({self.rows_sql}) s)) d)"
            )
        return f"(SELECT ST_Union(s.geom) FROM ({self.rows_sql}) s)"


NONE = Definition(None, None)


def _level_list(levels: tuple[str, ...]) -> str:
    return ", ".join(f"'{level}'" for level in levels)


# Whether an area is marked (`configured`) and the highest rank of the levels imported (`top`,
# NULL without areas): index probes (ix_admin_areas_service_area, ix_admin_areas_level), not a
# scan of every area. Asked by every report and attribution preview.
_FACTS_SQL = (
    "SELECT EXISTS (SELECT 1 FROM admin_areas WHERE service_area) AS configured,"
    " (SELECT max(v.rank) FROM (VALUES "
    + ", ".join(f"('{level}', {rank})" for level, rank in RANK.items())
    + ") v(level, rank) WHERE EXISTS (SELECT 1 FROM admin_areas a WHERE a.level = v.level))"
    " AS top"
)


def definition(session: Session, registry: LayerRegistry | None = None) -> Definition:
    """The current definition (index probes on admin_areas)."""
    configured, top_rank = session.execute(text(_FACTS_SQL)).one()
    if configured:
        return Definition(
            "configured", "SELECT id, geom FROM admin_areas WHERE service_area", levels=()
        )
    if top_rank is not None:
        levels = levels_of_rank(top_rank)
        return Definition(
            "admin_areas",
            f"SELECT id, geom FROM admin_areas WHERE level IN ({_level_list(levels)})",
            levels=levels,
        )
    if registry is not None and BASE_LAYER in registry:
        table = registry.get(BASE_LAYER).table
        if session.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar_one():
            return Definition("base_layer", f"SELECT id, geom FROM {table}", filled=True)
    return NONE


_RANK_SQL = "CASE level " + " ".join(f"WHEN '{lv}' THEN {r}" for lv, r in RANK.items()) + " END"


def contains_sql(registry: LayerRegistry | None = None) -> str:
    """A boolean SQL expression: the point (`:lon`, `:lat`, WGS-84) lies in the service area
    (its boundary included); true when no area is defined. The first defined source decides."""
    point = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    cases = [
        "WHEN t.configured THEN EXISTS (SELECT 1 FROM admin_areas a"
        f" WHERE a.service_area AND ST_Covers(a.geom, {point}))",
        "WHEN t.top IS NOT NULL THEN EXISTS (SELECT 1 FROM admin_areas a"
        f" WHERE ({_RANK_SQL}) = t.top AND ST_Covers(a.geom, {point}))",
    ]
    if registry is not None and BASE_LAYER in registry:
        table = registry.get(BASE_LAYER).table
        cases.append(
            f"WHEN EXISTS (SELECT 1 FROM {table}) THEN"
            f" EXISTS (SELECT 1 FROM {table} g WHERE ST_Covers(g.geom, {point}))"
        )
    return f"SELECT CASE {' '.join(cases)} ELSE true END FROM ({_FACTS_SQL}) t"


def contains(
    session: Session, lon: float, lat: float, registry: LayerRegistry | None = None
) -> bool:
    """True when (lon, lat) (WGS-84) lies in the service area (its boundary included); True
    when no area is defined. One round trip (issue reporting asks it in the attribution
    statement instead: `contains_sql`)."""
    sql = contains_sql(registry)
    return bool(session.execute(text(sql), {"lon": lon, "lat": lat}).scalar_one())


def outline(
    session: Session, registry: LayerRegistry | None = None, tolerance_deg: float = 0.0002
) -> dict[str, Any] | None:
    """The area as one simplified GeoJSON geometry (for page maps), or None when undefined."""
    found = definition(session, registry)
    if found.union_sql is None:
        return None
    return session.execute(
        text(  # exterior rings counter-clockwise (RFC 7946 §3.1.6)
            "SELECT ST_AsGeoJSON(ST_ForcePolygonCCW("
            f"ST_SimplifyPreserveTopology({found.union_sql}, :tol)), 6)::json"
        ),
        {"tol": tolerance_deg},
    ).scalar_one()


def extent(
    session: Session, registry: LayerRegistry | None = None
) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of the area; else of every layer's features; else None.
    Maps centre on this (no place is hard-coded)."""
    found = definition(session, registry)
    if found.rows_sql is not None:
        parts = [f"SELECT ST_Extent(geom) AS e FROM ({found.rows_sql}) s"]
    else:
        parts = [f"SELECT ST_Extent(geom) AS e FROM {s.table}" for s in registry or ()]
    if not parts:
        return None
    row = session.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ("
            f"SELECT ST_Extent(e) AS e FROM ({' UNION ALL '.join(parts)}) u) s"
        )
    ).one()
    return None if row[0] is None else (row[0], row[1], row[2], row[3])


@dataclass(frozen=True)
class ServiceArea:
    """The box coordinates must fall in: the extent widened by `margin_m`."""

    bounds: tuple[float, float, float, float]
    source: str  # Chinese: what it was derived from
    margin_m: float


def expand(bounds, margin_m: float) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = bounds
    mid = math.radians((miny + maxy) / 2)
    dy = margin_m / 111_320
    dx = margin_m / (111_320 * max(math.cos(mid), 0.05))
    return (
        max(minx - dx, -180),
        max(miny - dy, -90),
        min(maxx + dx, 180),
        min(maxy + dy, 90),
    )


def bounds(
    session: Session, registry: LayerRegistry, margin_m: float = 50_000
) -> ServiceArea | None:
    """The box for the "far outside the service area" check of writes and imports: the
    area's extent (or, with no area yet, every layer's features) widened by `margin_m`."""
    found = definition(session, registry)
    box = extent(session, registry)
    if box is None:
        return None
    source = found.title if found.source is not None else "现有图层要素范围"
    return ServiceArea(expand(box, margin_m), source, margin_m)


def summary(session: Session, registry: LayerRegistry) -> dict[str, Any]:
    """What `flask service-area` prints: source, defining areas, area in m², extent."""
    found = definition(session, registry)
    out: dict[str, Any] = {"source": found.source, "title": found.title, "areas": []}
    if found.rows_sql is None:
        return out | {"area_m2": 0.0, "extent": None}
    if found.source in ("configured", "admin_areas"):
        rows = session.execute(
            text(
                f"SELECT a.code, a.name, a.level FROM ({found.rows_sql}) s"
                " JOIN admin_areas a ON a.id = s.id ORDER BY a.code"
            )
        ).mappings()
        out["areas"] = [dict(r) for r in rows]
    area_m2 = session.execute(
        text(f"SELECT COALESCE(ST_Area(({found.union_sql})::geography), 0)")
    ).scalar_one()
    return out | {"area_m2": round(float(area_m2), 1), "extent": extent(session, registry)}


def place_name(session: Session) -> str | None:
    """The name of the place served when one admin area makes up the service area (a county,
    a district), else None (several streets, or no areas)."""
    found = definition(session)
    if found.source not in ("configured", "admin_areas"):
        return None
    names = (
        session.execute(
            text(
                f"SELECT a.name FROM ({found.rows_sql}) s JOIN admin_areas a ON a.id = s.id LIMIT 2"
            )
        )
        .scalars()
        .all()
    )
    return names[0] if len(names) == 1 else None


def use_areas(session: Session, codes: list[str]) -> list[str]:
    """Marks the areas with these codes as the service area (none: derive it again).
    Returns the codes not found (nothing is changed then)."""
    if codes:
        found = set(
            session.execute(
                text("SELECT code FROM admin_areas WHERE code = ANY(:codes)"), {"codes": codes}
            ).scalars()
        )
        missing = [c for c in codes if c not in found]
        if missing:
            return missing
    session.execute(
        text("UPDATE admin_areas SET service_area = (code = ANY(:codes))"
             " WHERE service_area OR code = ANY(:codes)"),
        {"codes": codes},
    )  # fmt: skip
    return []
