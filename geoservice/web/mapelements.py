"""folium elements of the map pages: overlays made by the page's script (static/js/map.js).

Each element renders one line of JavaScript — `var layer_x = GeoMap.layer("grids");` — so the
layers are folium layers (LayerControl lists them, `show` decides which are on) while the
data stays out of the page: the script loads it as vector tiles or JSON. Every asset is local
(geoservice.web.assets serves /vendor and /static).
"""

from __future__ import annotations

import json

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template

from geoservice.web.assets import FOLIUM_CSS, FOLIUM_JS, PAGE_ASSETS

SCRIPTS = [
    ("gcj02", "/static/js/gcj02.js"),  # before the map is made: it defines L.CRS.GCJ02
    ("vectorgrid", PAGE_ASSETS["vectorgrid"]),
    ("leaflet-heat", FOLIUM_JS["leaflet-heat.js"]),
    ("geomap", "/static/js/map.js"),
]
STYLES = [("geomap_css", "/static/css/map.css")]


class LeafletMap(folium.Map):
    """A folium map that loads Leaflet only: the map pages use no jQuery, Bootstrap or icon
    fonts (folium.Map loads them all; ~0.5 MB less on a cold start)."""

    default_js = [("leaflet", FOLIUM_JS["leaflet"])]
    default_css = [("leaflet_css", FOLIUM_CSS["leaflet_css"])]


class MetricScale(MacroElement):
    """The map's scale bar in metres and kilometres only (folium's adds feet and miles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


class LayerControl(folium.LayerControl):
    """folium's layer list, folded into its button on a phone-sized screen, where the open list
    would cover most of the map."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            let {{ this.get_name() }} = L.control.layers(
                {
                    {%- for key, val in this.base_layers.items() %}
                    {{ key|tojson }}: {{ val }},
                    {%- endfor %}
                },
                {
                    {%- for key, val in this.overlays.items() %}
                    {{ key|tojson }}: {{ val }},
                    {%- endfor %}
                },
                Object.assign(
                    {{ this.options|tojavascript }},
                    window.matchMedia("(max-width: 720px)").matches ? {collapsed: true} : {}
                )
            ).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


class Overlay(JSCSSMixin, Layer):
    """A layer made by `GeoMap.<factory>(<argument>)` in the browser."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = GeoMap.{{ this.factory }}({{ this.argument }});
        {% endmacro %}
        """
    )
    default_js = SCRIPTS
    default_css = STYLES

    def __init__(
        self, factory: str, argument: str | None, name: str, overlay: bool = True, show: bool = True
    ) -> None:
        super().__init__(name=name, overlay=overlay, control=True, show=show)
        self._name = "GeoMapOverlay"
        self.factory = factory
        self.argument = json.dumps(argument) if argument is not None else ""


class Call(JSCSSMixin, MacroElement):
    """`GeoMap.<function>(map)`: `view` (added first, so no tile is fetched for folium's
    placeholder view) and `start` (added last: the panel, clicks, the URL)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            GeoMap.{{ this.function }}({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )
    default_js = SCRIPTS
    default_css = STYLES

    def __init__(self, function: str) -> None:
        super().__init__()
        self._name = "GeoMapCall"
        self.function = function
