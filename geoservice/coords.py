"""WGS-84 ⇄ GCJ-02 (the 国测局 offset used by 高德/腾讯 maps), the standard published algorithm.

GCJ-02 shifts points inside China by up to ~500 m. The forward transform is closed-form; the
inverse has no closed form and is solved by fixed-point iteration to below a millimetre.
Points outside China's bounding box are not shifted (as every implementation does).
"""

from __future__ import annotations

import math

# Krasovsky 1940 ellipsoid, as in the published algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323


def out_of_china(lon: float, lat: float) -> bool:
    """The rough bounding box outside which GCJ-02 equals WGS-84."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _offset(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 shift (dlon, dlat) in degrees at a WGS-84 point."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 (lon, lat) → GCJ-02 (lon, lat)."""
    if out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float, tolerance_deg: float = 1e-9) -> tuple[float, float]:
    """GCJ-02 (lon, lat) → WGS-84 (lon, lat), iterated until forward(result) matches the input
    to within `tolerance_deg` (1e-9° ≈ 0.1 mm); converges in a handful of steps."""
    if out_of_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        if abs(dlon) < tolerance_deg and abs(dlat) < tolerance_deg:
            break
        wlon, wlat = wlon - dlon, wlat - dlat
    return wlon, wlat


COORD_SYSTEMS = ("wgs84", "gcj02")


def to_wgs84(lon: float, lat: float, coord_sys: str) -> tuple[float, float]:
    """Input coordinates in `coord_sys` ("wgs84" or "gcj02") → WGS-84."""
    if coord_sys == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if coord_sys == "wgs84":
        return lon, lat
    raise ValueError(f"unknown coordinate system {coord_sys!r}")
