"""The demo county generator: the local metric frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from geoservice.demo.model import CENTER_LAT, CENTER_LON, M_PER_DEG_LAT, M_PER_DEG_LON


def _xy_to_lonlat(xy: np.ndarray) -> np.ndarray:
    out = np.empty(xy.shape, dtype=float)
    out[:, 0] = np.round(CENTER_LON + xy[:, 0] / M_PER_DEG_LON, 7)
    out[:, 1] = np.round(CENTER_LAT + xy[:, 1] / M_PER_DEG_LAT, 7)
    return out


def _lonlat_to_xy(ll: np.ndarray) -> np.ndarray:
    out = np.empty(ll.shape, dtype=float)
    out[:, 0] = (ll[:, 0] - CENTER_LON) * M_PER_DEG_LON
    out[:, 1] = (ll[:, 1] - CENTER_LAT) * M_PER_DEG_LAT
    return out


def to_metres(geom: Any) -> Any:
    """EPSG:4326 lon/lat → local metres (x east, y north) around the county centre.

    Accepts a geometry or an array of geometries.
    """
    return shapely.transform(geom, _lonlat_to_xy)


def to_lonlat(geom: Any) -> Any:
    """Local metres → EPSG:4326 lon/lat, coordinates rounded to 7 decimals (≈ 1 cm)."""
    return shapely.remove_repeated_points(shapely.transform(geom, _xy_to_lonlat), 0.0)
