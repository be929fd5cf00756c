"""The GCJ-02 shift of the map (高德 basemaps): the browser's copy (static/js/gcj02.js, run in
node) agrees with geoservice/coords.py and with published reference pairs to well within 1 m,
and shifting a whole vector tile by the shift at its centre stays within a pixel."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from geoservice.catalogue.tilegrid import WORLD, datum_offset, mercator, tile_lat, tile_lon
from geoservice.config import PROJECT_ROOT
from geoservice.coords import gcj02_to_wgs84, wgs84_to_gcj02

GCJ_JS = PROJECT_ROOT / "static" / "js" / "gcj02.js"

# (wgs84 lon, lat, gcj02 lon, lat): eviltransform's published test table.
PAIRS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # 上海
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # 深圳
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # 北京
]
# Points across China (and two outside it, where nothing moves).
SAMPLES = [
    (lon + 0.37 * k, lat + 0.23 * k)
    for lon, lat in ((120.26, 33.78), (87.6, 43.8), (126.6, 45.7), (108.9, 34.3), (102.7, 25.0))
    for k in range(4)
] + [(2.35, 48.85), (-74.0, 40.7)]


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[1] + b[1]) / 2)
    return math.hypot((a[0] - b[0]) * 111_320 * math.cos(lat), (a[1] - b[1]) * 110_574)


@pytest.fixture(scope="module")
def js() -> dict[str, list]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/lib.sh installs it with npm)")
    points = [(w[0], w[1]) for w in PAIRS] + SAMPLES
    gcj_points = [(g[2], g[3]) for g in PAIRS] + [wgs84_to_gcj02(*p) for p in SAMPLES]
    program = f"""
const g = require({json.dumps(str(GCJ_JS))});
const forward = {json.dumps(points)}.map(p => g.wgs84ToGcj02(p[0], p[1]));
const inverse = {json.dumps(gcj_points)}.map(p => g.gcj02ToWgs84(p[0], p[1]));
console.log(JSON.stringify({{forward, inverse}}));
"""
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_js_forward_matches_the_reference_pairs(js):
    for (_, _, glon, glat), got in zip(PAIRS, js["forward"], strict=False):
        assert metres(tuple(got), (glon, glat)) < 0.01


def test_js_inverse_recovers_the_reference_wgs84_points(js):
    for (wlon, wlat, _, _), got in zip(PAIRS, js["inverse"], strict=False):
        assert metres(tuple(got), (wlon, wlat)) < 0.01


def test_js_matches_the_python_module_everywhere(js):
    for point, got in zip(SAMPLES, js["forward"][len(PAIRS) :], strict=True):
        assert metres(tuple(got), wgs84_to_gcj02(*point)) < 1.0
    for point, got in zip(SAMPLES, js["inverse"][len(PAIRS) :], strict=True):
        assert metres(tuple(got), point) < 1.0
        assert metres(tuple(got), gcj02_to_wgs84(*wgs84_to_gcj02(*point))) < 1.0
    # The shift is real inside China (hundreds of metres) and nil outside.
    assert metres(tuple(js["forward"][len(PAIRS)]), SAMPLES[0]) > 100
    assert js["forward"][-1] == list(SAMPLES[-1])


@pytest.mark.parametrize("z", range(6, 21))
def test_a_tile_moved_by_the_shift_at_its_centre_is_within_a_pixel(z):
    """Vector tiles on a GCJ-02 basemap are moved as a whole
    (geoservice.catalogue.tilegrid.datum_offset); the true shift of every point of the tile differs
    from that by less than a pixel."""
    n = 2**z
    pixel = WORLD / n / 256
    for lon, lat in ((120.26, 33.78), (116.4, 39.9), (113.9, 22.5), (87.6, 43.8), (126.6, 45.7)):
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        dx, dy = datum_offset("gcj02", z, x, y)
        for fx in (0, 0.5, 1):
            for fy in (0, 0.5, 1):
                glon, glat = tile_lon(x + fx, z), tile_lat(y + fy, z)
                target, source = mercator(glon, glat), mercator(*gcj02_to_wgs84(glon, glat))
                ex, ey = target[0] - source[0], target[1] - source[1]
                assert math.hypot(ex - dx, ey - dy) < pixel
