"""SQL fragments over every registered layer: the geometry of any place, layer titles.

Places of different layers live in different tables; these fragments let a query treat them
as one relation without naming a layer type.
"""

from __future__ import annotations

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
