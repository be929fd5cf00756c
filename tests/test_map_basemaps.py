"""Basemaps from config: none by default (offline), 天地图 with a key, 高德 with the GCJ-02
shift, OpenStreetMap, a custom XYZ/WMTS URL; bad settings fail at start-up."""

from __future__ import annotations

import json
import re

import pytest

from geoservice import create_app
from geoservice.basemaps import BasemapError, basemap_from_config
from tests.api_support import auth
from tests.conftest import bound_to


def test_none_is_the_default_and_draws_nothing_from_outside():
    basemap = basemap_from_config({})
    assert basemap.kind == "none" and basemap.choices == () and basemap.origins() == []


def test_tianditu_needs_a_key_and_is_not_shifted():
    with pytest.raises(BasemapError, match="TIANDITU_KEY"):
        basemap_from_config({"BASEMAP": "tianditu"})
    basemap = basemap_from_config({"BASEMAP": "tianditu", "TIANDITU_KEY": "k&y"})
    assert basemap.shift is None
    assert [c.title for c in basemap.choices] == ["天地图矢量", "天地图影像"]
    vector = [s.url for s in basemap.choices[0].sources]
    assert "LAYER=vec" in vector[0] and "LAYER=cva" in vector[1]  # map + labels
    assert all("TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=k%26y" in u for u in vector)
    assert basemap.origins() == ["https://*.tianditu.gov.cn"]


def test_amap_is_gcj02_and_osm_is_not():
    amap = basemap_from_config({"BASEMAP": "amap"})
    assert amap.shift == "gcj02" and amap.origins() == ["https://*.is.autonavi.com"]
    osm = basemap_from_config({"BASEMAP": "osm"})
    assert osm.shift is None and osm.origins() == ["https://tile.openstreetmap.org"]


def test_custom_url_with_subdomains_and_datum():
    with pytest.raises(BasemapError, match=r"\{z\}"):
        basemap_from_config({"BASEMAP": "custom", "BASEMAP_URL": "https://tiles.gov/a.png"})
    with pytest.raises(BasemapError, match="BASEMAP_CRS"):
        basemap_from_config(
            {"BASEMAP": "custom", "BASEMAP_URL": "/t/{z}/{x}/{y}.png", "BASEMAP_CRS": "bd09"}
        )
    wmts = basemap_from_config(
        {
            "BASEMAP": "custom",
            "BASEMAP_URL": "http://t{s}.map.gov.local/wmts?TILEMATRIX={z}&TILEROW={y}&TILECOL={x}",
            "BASEMAP_SUBDOMAINS": "0123",
            "BASEMAP_CRS": "gcj02",
        }
    )
    assert wmts.shift == "gcj02" and wmts.origins() == ["http://*.map.gov.local"]
    same_origin = basemap_from_config(
        {"BASEMAP": "custom", "BASEMAP_URL": "/tiles/{z}/{x}/{y}.png"}
    )
    assert same_origin.origins() == [] and same_origin.shift is None


def test_a_typo_fails_at_start_up(database_url):
    with pytest.raises(BasemapError, match="BASEMAP='amapp'"):
        create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x", "BASEMAP": "amapp"})


def test_an_amap_page_uses_the_gcj02_crs_and_shifted_tiles(database_url, demo_connection):
    app = create_app(
        {"DATABASE_URL": database_url, "SECRET_KEY": "x", "TESTING": True, "BASEMAP": "amap"}
    )
    with bound_to(app, demo_connection.connection) as session:
        with app.app_context():
            headers = auth(session, "planner", "amap_planner")
        response = app.test_client().get("/map", headers=headers)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "crs: L.CRS.GCJ02" in html
        settings = json.loads(re.search(r'id="gs-map-config">(.*?)</script>', html, re.S).group(1))
        assert settings["basemap"]["shift"] == "gcj02"
        assert [c["title"] for c in settings["basemap"]["choices"]] == ["高德矢量", "高德影像"]
        assert "https://*.is.autonavi.com" in response.headers["Content-Security-Policy"]
        # gcj02.js (which defines the CRS) loads before the map is made.
        assert html.index("/static/js/gcj02.js") < html.index("L.map(")
