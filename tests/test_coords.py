"""WGS-84 ⇄ GCJ-02 against published reference pairs (to well within 1 m)."""

import math

import pytest

from geoservice.coords import gcj02_to_wgs84, out_of_china, to_wgs84, wgs84_to_gcj02

# (wgs84 lon, lat, gcj02 lon, lat): eviltransform's test table and coordtransform's example.
PAIRS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # 上海
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # 深圳
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # 北京
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),  # 北京 天安门
]


def metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[1] + b[1]) / 2)
    dx = (a[0] - b[0]) * 111_320 * math.cos(lat)
    dy = (a[1] - b[1]) * 110_574
    return math.hypot(dx, dy)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), PAIRS)
def test_forward_matches_the_reference(wlon, wlat, glon, glat):
    assert metres_between(wgs84_to_gcj02(wlon, wlat), (glon, glat)) < 0.01


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), PAIRS)
def test_inverse_recovers_the_wgs84_point(wlon, wlat, glon, glat):
    assert metres_between(gcj02_to_wgs84(glon, glat), (wlon, wlat)) < 0.01


def test_inverse_matches_an_independent_reference():
    # gcoord's test: GCJ-02 (123, 45) → WGS-84 (122.99395597, 44.99804071), given to 1e-5°.
    assert metres_between(gcj02_to_wgs84(123, 45), (122.99395597, 44.99804071)) < 1


def test_the_offset_is_hundreds_of_metres_in_the_demo_county():
    shift = metres_between(wgs84_to_gcj02(120.26, 33.78), (120.26, 33.78))
    assert 100 < shift < 700


def test_outside_china_nothing_moves():
    assert out_of_china(2.35, 48.85)
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)


def test_to_wgs84_dispatches_on_the_coordinate_system():
    assert to_wgs84(120.3, 33.8, "wgs84") == (120.3, 33.8)
    assert metres_between(to_wgs84(*wgs84_to_gcj02(120.3, 33.8), "gcj02"), (120.3, 33.8)) < 0.01
    with pytest.raises(ValueError):
        to_wgs84(120.3, 33.8, "bd09")
