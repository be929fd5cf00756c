"""Tile arithmetic (Web-Mercator tile grid): tile ↔ lon/lat, the stored count levels, the
datum shift of a tile. Plain math, no SQL: items (bbox → finest cells), tiles and the maps'
figures all use it."""

from __future__ import annotations

import math

from geoservice.coords import gcj02_to_wgs84  # the published GCJ-02 algorithm (issue 5)

COUNT_LEVELS = (5, 7, 9, 11, 13, 15, 17, 19)  # levels stored in issue_tile_counts
FINEST_LEVEL = COUNT_LEVELS[-1]
MAX_ZOOM = 22


WORLD = 2 * math.pi * 6378137.0  # width of the Web-Mercator plane in metres

# A translation of every geometry in EPSG:3857 metres (dx, dy), to draw our WGS-84 data on a
# basemap in another datum (GCJ-02): the API computes it per tile (geoservice.api.tiles).
Offset = tuple[float, float]


def tile_in_range(z: int, x: int, y: int) -> bool:
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


def count_level(z: int) -> int:
    """The stored cell level used for a tile at zoom z: 32–64 cells across the tile."""
    return next((level for level in COUNT_LEVELS if level >= z + 5), FINEST_LEVEL)


def tile_center(z: int, x: int, y: int) -> tuple[float, float]:
    """(lon, lat) of the centre of tile z/x/y."""
    return tile_lon(x + 0.5, z), tile_lat(y + 0.5, z)


SHIFTS = ("gcj02",)  # datums our WGS-84 tiles can be shifted to for display


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """EPSG:3857 metres of a lon/lat."""
    r = WORLD / (2 * math.pi)
    return r * math.radians(lon), r * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def datum_offset(shift: str, z: int, x: int, y: int) -> Offset:
    """The translation that draws WGS-84 data in tile z/x/y of a `shift` (GCJ-02) basemap: the
    datum shift at the tile's centre. Within one tile the true shift varies by far less than a
    pixel (docs/maps.md), so the whole tile moves as one."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}")
    lon, lat = tile_center(z, x, y)  # a point of the GCJ-02 plane
    source = mercator(*gcj02_to_wgs84(lon, lat))
    target = mercator(lon, lat)
    return target[0] - source[0], target[1] - source[1]


def tile_lon(x: float, level: int) -> float:
    """Longitude of the west edge of tile column x."""
    return x / 2**level * 360.0 - 180.0


def tile_lat(y: float, level: int) -> float:
    """Latitude of the north edge of tile row y."""
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2**level))))


def tile_y(lat: float, level: int) -> float:
    """Fractional tile row of a latitude (the triggers' formula)."""
    lat = min(max(lat, -85.0511), 85.0511)
    r = math.radians(lat)
    return (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * 2**level
