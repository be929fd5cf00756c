"""Small folium maps of a few FeatureCollections, split into the parts a page template embeds.

For small data only (a leader's places, audit findings, one issue's places): the GeoJSON is
inline in the page. Every asset URL is local (geoservice.web.assets points folium at /vendor at
start-up).

No user text goes into the map's scripts (they carry the page's CSP nonce, which vouches for
everything in them): folium gets the geometries with an index only, and what a tooltip or
popup shows (names and codes come from imports and forms) is JSON data in a
`<script type="application/json">` of the "html" part, read by static/js/featuremap.js, which
puts it into the tooltip as text (never as HTML). See docs/security.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.template import Template
from folium.utilities import JsCode, get_obj_in_upper_tree
from markupsafe import Markup, escape

from geoservice.accounts.security import json_script
from geoservice.web.mapelements import LayerControl, MetricScale

# With nothing to draw and no service area yet: the whole country.
DEFAULT_CENTER = (35.0, 105.0)
DEFAULT_ZOOM = 4
SCRIPT = "/static/js/featuremap.js"


@dataclass
class MapLayer:
    """One FeatureCollection drawn with one style; tooltip shows `fields` under `aliases`.
    `name` is the layer control's label (HTML there): code or configuration text only."""

    name: str
    collection: Mapping[str, Any]
    style: Mapping[str, Any]
    fields: Sequence[str] = ()
    aliases: Sequence[str] = ()
    style_by_layer: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # (URL template with {place_id}, link text): a click opens a popup with that link.
    link: tuple[str, str] | None = None


class _FeatureScript(JSCSSMixin, MacroElement):
    """Loads static/js/featuremap.js (GeoFeatures.bind) in the map's header."""

    _template = Template("")
    default_js = [("geofeatures", SCRIPT)]


HIGHLIGHT = {"weight": 4, "fillOpacity": 0.5}


class _StyledGeoJson(folium.GeoJson):
    """folium's GeoJson with each feature's style given as a key into a few distinct styles.
    folium maps styles to features by calling the style function and `json.dumps`-ing its
    result for every feature, and again for the highlight: ~0.4 s for a round's 9,000 sites
    drawn in one style. Here each distinct style is encoded once; the script is folium's."""

    def __init__(
        self, data: dict[str, Any], styles: Sequence[Mapping[str, Any]], kinds: Sequence[int],
        **kwargs: Any,
    ) -> None:  # fmt: skip
        # Style functions (never called) so that folium's template writes the styler and
        # highlighter it then fills from style_map / highlight_map.
        super().__init__(
            data,
            style_function=lambda _f: dict(styles[0]),
            highlight_function=lambda _f: dict(HIGHLIGHT),
            **kwargs,
        )
        self._styles, self._kinds = styles, kinds

    def render(self, **kwargs: Any) -> None:
        self.parent_map = get_obj_in_upper_tree(self, folium.Map)
        keys = [json.dumps(dict(style), sort_keys=True) for style in self._styles]
        ids: list[list[int]] = [[] for _ in keys]
        for feature, kind in zip(self.data["features"], self._kinds, strict=True):
            ids[kind].append(feature["id"])
        mapping: dict[str, Any] = {}
        for key, features in zip(keys, ids, strict=True):
            if features:
                mapping.setdefault(key, []).extend(features)
        default = max(mapping, key=lambda k: len(mapping[k]))  # the most features: `default:`
        del mapping[default]
        self.style_map = {**mapping, "default": default}
        self.highlight_map = {"default": json.dumps(HIGHLIGHT, sort_keys=True)}
        super(folium.GeoJson, self).render(**kwargs)


def _styles(layer: MapLayer) -> tuple[list[dict[str, Any]], list[int]]:
    """The layer's distinct styles and, per feature, the index of its own: the base style,
    overridden per the feature's `layer` property by `style_by_layer`."""
    base = dict(layer.style)
    styles, index = [base], {}
    for name, override in layer.style_by_layer.items():
        index[name] = len(styles)
        styles.append(base | dict(override))
    kinds = [
        index.get((feature.get("properties") or {}).get("layer"), 0)
        for feature in layer.collection.get("features", [])
    ]
    return styles, kinds


def _text(value: Any) -> str:
    return str(value)


def _labels(layer: MapLayer) -> dict[str, Any]:
    """What the tooltips and popups of a layer show, per feature (by index): `values`, the
    tooltip's fields as plain text in `fields` order (null: not shown), and `places`, the place
    id that fills `{place_id}` in the popup link's address `href` (null: no popup). Rows of
    values, not objects, and the address once per layer: a city's round draws ~9,000 sites,
    and the keys and addresses repeated per feature were over half of the page's bytes."""
    fields = list(layer.fields)
    values, places = [], []
    for feature in layer.collection.get("features", []):
        properties = feature.get("properties") or {}
        values.append(
            [_text(properties[n]) if properties.get(n) is not None else None for n in fields]
        )
        place_id = properties.get("place_id")
        places.append(int(place_id) if place_id is not None else None)
    labels: dict[str, Any] = {
        "fields": fields,
        "aliases": list(layer.aliases) or fields,
        "values": values,
        "link": None,
        "href": None,
    }
    if layer.link is not None:
        labels.update(link=layer.link[1], href=layer.link[0], places=places)
    return labels


def _geometry_only(layer: MapLayer) -> dict[str, Any]:
    """The layer for folium: geometries and their index, nothing else."""
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": k, "geometry": f.get("geometry"), "properties": {}}
            for k, f in enumerate(layer.collection.get("features", []))
        ],
    }


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


CANVAS_FEATURES = 1000


def feature_map(
    layers: Sequence[MapLayer],
    height: str = "520px",
    fallback_extent: Sequence[float] | None = None,
    bounds: list[list[float]] | None = None,
    max_zoom: int = 17,
    layer_control: bool = True,
) -> dict[str, Markup]:
    """A map zoomed to `bounds` ([[south, west], [north, east]]) or else to everything drawn
    (else to `fallback_extent`, west/south/east/north, e.g. the service area's); returns
    {"header", "html", "script"} for a template. Only "header" and "script" are scripts to
    run (nonce them); "html" holds the labels as JSON data. More than CANVAS_FEATURES
    features are drawn on a canvas (one SVG element each makes panning and zooming crawl)."""
    drawn = sum(len(layer.collection.get("features") or ()) for layer in layers)
    m = folium.Map(
        location=DEFAULT_CENTER,
        zoom_start=DEFAULT_ZOOM,
        tiles=None,
        height=height,
        prefer_canvas=drawn > CANVAS_FEATURES,
    )
    MetricScale().add_to(m)
    _FeatureScript().add_to(m)
    labels: list[tuple[str, dict[str, Any]]] = []
    for layer in layers:
        if not layer.collection.get("features"):
            continue
        styles, kinds = _styles(layer)
        geojson = _StyledGeoJson(
            _geometry_only(layer),
            styles,
            kinds,
            name=layer.name,
            marker=folium.CircleMarker(radius=7, fill=True, fill_opacity=0.8),
        )
        data_id = f"gs-features-{geojson.get_name()}"
        if layer.fields or layer.link is not None:
            geojson.on_each_feature = JsCode(f"GeoFeatures.bind({json.dumps(data_id)})")
            labels.append((data_id, _labels(layer)))
        geojson.add_to(m)
    if bounds is None:
        bounds = _bounds([layer.collection for layer in layers])
    if bounds is None and fallback_extent is not None:
        west, south, east, north = fallback_extent
        bounds = [[south, west], [north, east]]
    if bounds is not None:
        m.fit_bounds(bounds, padding=(20, 20), max_zoom=max_zoom)
    if layer_control and len(layers) > 1:
        LayerControl(collapsed=False).add_to(m)
    root = m.get_root()
    root.render()
    data = Markup("").join(
        Markup('<script type="application/json" class="gs-features" id="{}">{}</script>').format(
            escape(data_id), json_script(value)
        )
        for data_id, value in labels
    )
    return {
        "header": Markup(root.header.render()),
        "html": Markup(root.html.render()) + data,
        "script": Markup(root.script.render()),
    }
