"""Small folium maps of a few FeatureCollections, split into the parts a page template embeds.

For small data only (a leader's places, audit findings): the GeoJSON is inline in the page.
Every asset URL is local (geoservice.web.assets points folium at /vendor at start-up).
folium's tooltips and popups insert property values as HTML, so every string property is
escaped here first (names come from imports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import folium
from markupsafe import Markup, escape

# With nothing to draw and no service area yet: the whole country.
DEFAULT_CENTER = (35.0, 105.0)
DEFAULT_ZOOM = 4


@dataclass
class MapLayer:
    """One FeatureCollection drawn with one style; tooltip shows `fields` under `aliases`."""

    name: str
    collection: Mapping[str, Any]
    style: Mapping[str, Any]
    fields: Sequence[str] = ()
    aliases: Sequence[str] = ()
    style_by_layer: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # (URL template with {place_id}, link text): a click opens a popup with that link.
    link: tuple[str, str] | None = None


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return str(escape(value))
    if isinstance(value, Mapping):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _display_copy(layer: MapLayer) -> dict[str, Any]:
    features = []
    for feature in layer.collection.get("features", []):
        properties = _escaped(dict(feature.get("properties") or {}))
        if layer.link is not None and "place_id" in properties:
            url, text = layer.link
            href = escape(url.format(place_id=int(properties["place_id"])))
            properties["_link"] = f'<a href="{href}" target="_top">{escape(text)}</a>'
        features.append({**feature, "properties": properties})
    return {**layer.collection, "features": features}


def _bounds(collections: Sequence[Mapping[str, Any]]) -> list[list[float]] | None:
    west = south = float("inf")
    east = north = float("-inf")

    def walk(coords: Any) -> None:
        nonlocal west, south, east, north
        if coords and isinstance(coords[0], (int, float)):
            west, east = min(west, coords[0]), max(east, coords[0])
            south, north = min(south, coords[1]), max(north, coords[1])
            return
        for part in coords:
            walk(part)

    for collection in collections:
        if "bbox" in collection:
            w, s, e, n = collection["bbox"]
            west, south, east, north = min(west, w), min(south, s), max(east, e), max(north, n)
            continue
        for feature in collection.get("features", []):
            if feature.get("geometry"):
                walk(feature["geometry"]["coordinates"])
    if west == float("inf"):
        return None
    return [[south, west], [north, east]]


def feature_map(
    layers: Sequence[MapLayer],
    height: str = "520px",
    fallback_extent: Sequence[float] | None = None,
) -> dict[str, Markup]:
    """A map zoomed to everything drawn (else to `fallback_extent`, west/south/east/north,
    e.g. the service area's); returns {"header", "html", "script"} for a template."""
    m = folium.Map(
        location=DEFAULT_CENTER,
        zoom_start=DEFAULT_ZOOM,
        tiles=None,
        height=height,
        control_scale=True,
        prefer_canvas=False,
    )
    for layer in layers:
        if not layer.collection.get("features"):
            continue
        base, by_layer = dict(layer.style), layer.style_by_layer

        def style(feature: Mapping[str, Any], base=base, by_layer=by_layer) -> dict[str, Any]:
            return base | dict(by_layer.get(feature["properties"].get("layer"), {}))

        tooltip = (
            folium.GeoJsonTooltip(fields=list(layer.fields), aliases=list(layer.aliases))
            if layer.fields
            else None
        )
        popup = (
            folium.GeoJsonPopup(fields=["_link"], labels=False) if layer.link is not None else None
        )
        folium.GeoJson(
            _display_copy(layer),
            name=layer.name,
            style_function=style,
            highlight_function=lambda _f: {"weight": 4, "fillOpacity": 0.5},
            tooltip=tooltip,
            popup=popup,
            marker=folium.CircleMarker(radius=7, fill=True, fill_opacity=0.8),
        ).add_to(m)
    bounds = _bounds([layer.collection for layer in layers])
    if bounds is None and fallback_extent is not None:
        west, south, east, north = fallback_extent
        bounds = [[south, west], [north, east]]
    if bounds is not None:
        m.fit_bounds(bounds, padding=(20, 20), max_zoom=17)
    if len(layers) > 1:
        folium.LayerControl(collapsed=False).add_to(m)
    root = m.get_root()
    root.render()
    return {
        "header": Markup(root.header.render()),
        "html": Markup(root.html.render()),
        "script": Markup(root.script.render()),
    }
