"""The service area: where issues may be reported.

It is the union of the top-level admin areas (those without a parent) when any exist, else the
union of the base layer's features (the grids). With neither, no area is defined and every
valid lon/lat is accepted (a fresh install before its first import).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.attribution import BASE_LAYER
from geoservice.registry import LayerRegistry


def _sources(registry: LayerRegistry | None) -> list[str]:
    """Tables whose features make up the area, in order of preference."""
    tables = ["(SELECT geom FROM admin_areas WHERE parent_id IS NULL)"]
    if registry is not None and BASE_LAYER in registry:
        tables.append(registry.get(BASE_LAYER).table)
    return tables


def _defining_source(session: Session, registry: LayerRegistry | None) -> str | None:
    for source in _sources(registry):
        if session.execute(text(f"SELECT 1 FROM {source} s LIMIT 1")).first() is not None:
            return source
    return None


def contains(
    session: Session, lon: float, lat: float, registry: LayerRegistry | None = None
) -> bool:
    """True when (lon, lat) (WGS-84) lies in the service area (its boundary included)."""
    point = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    # One round trip: the first source that has rows decides.
    cases = " ".join(
        f"WHEN EXISTS (SELECT 1 FROM {source} s) THEN"
        f" EXISTS (SELECT 1 FROM {source} s WHERE ST_Covers(s.geom, {point}))"
        for source in _sources(registry)
    )
    return bool(
        session.scalar(text(f"SELECT CASE {cases} ELSE true END"), {"lon": lon, "lat": lat})
    )


def outline(
    session: Session, registry: LayerRegistry | None = None, tolerance_deg: float = 0.0002
) -> dict[str, Any] | None:
    """The area as one simplified GeoJSON geometry (for page maps), or None when undefined."""
    source = _defining_source(session, registry)
    if source is None:
        return None
    value = session.scalar(
        text(
            "SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Union(s.geom), :tol), 6)::json"
            f" FROM {source} s"
        ),
        {"tol": tolerance_deg},
    )
    return value
