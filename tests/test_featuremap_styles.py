"""Each feature of a small folium map is drawn in its layer's style, overridden per the feature's
`layer` property (style_by_layer), as the map's script says (geoservice.web.featuremap)."""

from __future__ import annotations

import json
import re

from geoservice.web.featuremap import HIGHLIGHT, MapLayer, feature_map


def point(n: int, layer: str | None) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [120.0 + n * 0.001, 33.0]},
        "properties": {"name": f"点{n}", "layer": layer},
    }


def switch(script: str, function: str) -> list[dict]:
    """Per function of that kind in the script (one per layer, in order): each feature's style
    by id, from folium's `switch(feature.id) { case …: return {…}; default: return {…}; }`."""
    found = []
    pattern = (
        rf"function \w+_{function}\(feature\) \{{\s*switch\(feature\.id\) \{{"
        r"(.*?)default:\s*return (\{.*?\});"
    )
    for body, default in re.findall(pattern, script, re.S):
        styles = {"default": json.loads(default)}
        for cases, style in re.findall(r"((?:case \d+: )+)\s*return (\{.*?\});", body):
            for feature_id in re.findall(r"case (\d+):", cases):
                styles[int(feature_id)] = json.loads(style)
        found.append(styles)
    return found


def style_of(styles: dict, feature_id: int) -> dict:
    return styles.get(feature_id, styles["default"])


def test_each_feature_gets_its_layer_style_and_every_one_the_highlight():
    base = {"color": "#1565c0", "weight": 2}
    mixed = MapLayer(
        "我的包保",
        {"type": "FeatureCollection", "features": [
            point(0, "grid"), point(1, "road"), point(2, "grid"), point(3, "market"),
            point(4, "grid"),
        ]},
        base,
        style_by_layer={"road": {"color": "#ef6c00", "weight": 5}, "market": {"color": "#2e7d32"}},
    )  # fmt: skip
    uniform = MapLayer(
        "点位",
        {"type": "FeatureCollection", "features": [point(n, None) for n in range(5, 9)]},
        {"color": "#c62828", "radius": 4},
    )
    fmap = feature_map([mixed, uniform])
    styled, plain = switch(str(fmap["script"]), "styler")
    assert [style_of(styled, n) for n in range(5)] == [
        base,
        {"color": "#ef6c00", "weight": 5},
        base,
        {"color": "#2e7d32", "weight": 2},
        base,
    ]
    # Features are numbered per layer; one style for all: no case, the default only.
    assert plain == {"default": {"color": "#c62828", "radius": 4}}
    assert switch(str(fmap["script"]), "highlighter") == [{"default": HIGHLIGHT}] * 2


def test_the_scale_bar_is_metric_only():
    collection = {"type": "FeatureCollection", "features": [point(0, None)]}
    fmap = feature_map([MapLayer("点位", collection, {"color": "#c62828"})])
    script = str(fmap["script"])
    assert "L.control.scale({imperial: false})" in script and "L.control.scale()" not in script
