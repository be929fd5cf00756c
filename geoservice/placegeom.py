"""SQL fragments over every registered layer: the geometry of any place, layer titles.

Places of different layers live in different tables; these fragments let a query treat them
as one relation without naming a layer type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from geoservice.registry import LayerRegistry


def literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def place_geometries_sql(registry: LayerRegistry) -> str:
    """A relation (id, geom) holding the geometry of every feature of every layer."""
    return "\nUNION ALL\n".join(
        f"SELECT id, geom::geometry AS geom FROM {spec.table}" for spec in registry
    )


def layer_title_sql(registry: LayerRegistry, column: str) -> str:
    """A CASE expression giving the Chinese title of the layer named in `column`."""
    cases = " ".join(f"WHEN {literal(s.name)} THEN {literal(s.title)}" for s in registry)
    return f"(CASE {column} {cases} ELSE {column} END)"


def geojson_geometry_sql(column: str) -> str:
    """RFC 7946 geometry JSON: lon/lat, 7 decimals (~1 cm), exterior rings counter-clockwise."""
    return f"ST_AsGeoJSON(ST_ForcePolygonCCW({column}), 7)::json"


def places_collection(
    session: Session, registry: LayerRegistry, place_ids: Sequence[int]
) -> dict[str, Any]:
    """The given places as an RFC 7946 FeatureCollection built by PostGIS."""
    sql = text(f"""
SELECT json_build_object('type', 'FeatureCollection', 'features',
  COALESCE(json_agg(json_build_object('type', 'Feature', 'id', p.id,
    'geometry', {geojson_geometry_sql("g.geom")},
    'properties', json_build_object('place_id', p.id, 'layer', p.layer,
      'layer_title', {layer_title_sql(registry, "p.layer")}, 'code', p.code, 'name', p.name))
    ORDER BY p.layer, p.code), '[]'::json))
FROM places p JOIN ({place_geometries_sql(registry)}) g ON g.id = p.id
WHERE p.id IN :ids""").bindparams(bindparam("ids", expanding=True))
    return session.execute(sql, {"ids": list(place_ids) or [-1]}).scalar_one()
