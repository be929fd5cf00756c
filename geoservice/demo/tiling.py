"""The demo county generator: the town outline and the tiling (grids → communities → streets
→ county)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geoservice.demo.frame import to_lonlat, to_metres
from geoservice.demo.graph import (
    _compact,
    _groups,
    _label_pairs,
    _make_contiguous,
    _nearest,
    _neighbours,
    _partition,
    _Retry,
    _shared_edges,
)
from geoservice.demo.names import _STREET_STEMS, _Names


def _make_outline(rng: np.random.Generator, scale: float) -> Polygon:
    s = math.sqrt(scale)
    a, b = 3000.0 * s, 2500.0 * s
    n = 256 if scale <= 4 else 720
    th = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 9):
        r += rng.uniform(0.02, 0.09) / k**0.6 * np.sin(k * th + rng.uniform(0, 2 * math.pi))
    for k in range(9, 25):
        r += rng.uniform(0.0, 0.01) * np.sin(k * th + rng.uniform(0, 2 * math.pi))
    rot = rng.uniform(-0.3, 0.3)
    x0, y0 = a * r * np.cos(th), b * r * np.sin(th)
    x = x0 * math.cos(rot) - y0 * math.sin(rot)
    y = x0 * math.sin(rot) + y0 * math.cos(rot)
    poly = Polygon(np.column_stack([x, y]))
    f = math.sqrt(math.pi * a * b / poly.area)
    poly = Polygon(np.column_stack([x * f, y * f]))
    if not poly.is_valid:
        raise _Retry("outline invalid")
    return poly


def _grid_seeds(rng: np.random.Generator, outline: Polygon, n_target: int) -> np.ndarray:
    """Jittered hexagonal lattice inside the outline, ~n_target points."""
    d = math.sqrt(2 * outline.area / (math.sqrt(3) * n_target))
    pts = np.empty((0, 2))
    xmin, ymin, xmax, ymax = outline.bounds
    for _ in range(3):
        inner = outline.buffer(-0.3 * d)
        shapely.prepare(inner)
        h = d * math.sqrt(3) / 2
        ox, oy = rng.uniform(0, d), rng.uniform(0, h)
        ys = np.arange(ymin - d + oy, ymax + d, h)
        xs = np.arange(xmin - d + ox, xmax + d, d)
        gx, gy = np.meshgrid(xs, ys)
        gx = gx + (np.arange(len(ys)) % 2)[:, None] * d / 2
        cand = np.column_stack([gx.ravel(), gy.ravel()])
        rad = 0.3 * d * np.sqrt(rng.random(len(cand)))
        ang = rng.uniform(0, 2 * math.pi, len(cand))
        cand = cand + np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
        pts = cand[shapely.contains_xy(inner, cand[:, 0], cand[:, 1])]
        if abs(len(pts) - n_target) <= max(2, 0.02 * n_target):
            break
        d *= math.sqrt(len(pts) / n_target)
    if len(pts) < 4:
        raise _Retry("too few seeds")
    return pts


@dataclass
class _Tiling:
    grids: list[Polygon]  # lon/lat, rounded
    grid_xy: np.ndarray  # centroids in metres
    grid_area: np.ndarray  # m²
    grid_comm: np.ndarray
    comm_street: np.ndarray
    comms: list[Polygon | MultiPolygon]
    streets: list[Polygon | MultiPolygon]
    county: Polygon | MultiPolygon
    comm_xy: np.ndarray
    street_xy: np.ndarray
    grid_pairs: np.ndarray
    grid_pair_w: np.ndarray


def _union(parts: Sequence[BaseGeometry]) -> BaseGeometry:
    if len(parts) == 1:
        return parts[0]
    return shapely.coverage_union_all(list(parts))


def _make_tiling(rng: np.random.Generator, outline: Polygon, scale: float) -> _Tiling:
    n_streets = max(4, round(4 * scale))
    n_comms = max(2 * n_streets, round(24 * scale))
    n_grids = max(4 * n_comms, round(300 * scale))
    seeds = _grid_seeds(rng, outline, n_grids)

    # Voronoi edges + outline, noded together once, then polygonised: every shared vertex is
    # computed exactly once, so neighbouring faces share identical coordinates.
    env = shapely.box(*outline.buffer(outline.length / 20).bounds)
    edges = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=env, only_edges=True)
    noded = shapely.union_all([edges, outline.exterior])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    reps = shapely.point_on_surface(faces)
    inside = shapely.contains_xy(outline, shapely.get_x(reps), shapely.get_y(reps))
    faces, reps = faces[inside], reps[inside]
    face_seed = _nearest(seeds, reps)
    faces_ll = to_lonlat(faces)
    if not shapely.is_valid(faces_ll).all() or shapely.is_empty(faces_ll).any():
        raise _Retry("face invalid after rounding")
    face_area = shapely.area(faces)
    f_pairs, f_w = _shared_edges(faces_ll)
    face_grid = _make_contiguous(face_seed, _neighbours(len(faces), f_pairs, f_w), face_area)
    face_grid = _compact(face_grid)
    n_g = int(face_grid.max()) + 1
    grids: list[Polygon] = []
    for nodes in (v for _, v in sorted(_groups(face_grid).items())):
        g = _union([faces_ll[i] for i in nodes])
        if not isinstance(g, Polygon):
            raise _Retry("grid not a single polygon")
        grids.append(g)
    grid_arr = np.array(grids, dtype=object)
    g_pairs, g_w = _label_pairs(f_pairs, f_w, face_grid, n_g)
    grid_m = to_metres(grid_arr)
    grid_xy = shapely.get_coordinates(shapely.centroid(grid_m))
    grid_area = shapely.area(grid_m)

    # communities: nearest community seed (k-means on grid centroids), contiguous, 8–20 grids
    avg = n_g / n_comms
    lo = max(1, round(avg * 0.72))
    hi = max(lo + 2, math.floor(avg * 1.4))
    grid_comm = _partition(grid_xy, g_pairs, g_w, n_comms, rng, np.ones(n_g), lo, hi)
    n_c = int(grid_comm.max()) + 1
    comm_size = np.bincount(grid_comm, minlength=n_c).astype(float)
    comm_xy = (
        np.column_stack(
            [
                np.bincount(grid_comm, weights=grid_area * grid_xy[:, 0], minlength=n_c),
                np.bincount(grid_comm, weights=grid_area * grid_xy[:, 1], minlength=n_c),
            ]
        )
        / np.bincount(grid_comm, weights=grid_area, minlength=n_c)[:, None]
    )
    c_pairs, c_w = _label_pairs(g_pairs, g_w, grid_comm, n_c)

    # streets: nearest street seed on community centroids, contiguous
    avg_s = n_c / n_streets
    lo_s = max(1, round(avg_s * 0.7))
    hi_s = max(lo_s + 1, math.ceil(avg_s * 1.35))
    comm_street = _partition(comm_xy, c_pairs, c_w, n_streets, rng, comm_size, lo_s, hi_s)
    n_s = int(comm_street.max()) + 1
    street_xy = (
        np.column_stack(
            [
                np.bincount(comm_street, weights=comm_size * comm_xy[:, 0], minlength=n_s),
                np.bincount(comm_street, weights=comm_size * comm_xy[:, 1], minlength=n_s),
            ]
        )
        / np.bincount(comm_street, weights=comm_size, minlength=n_s)[:, None]
    )

    comms = [_union([grids[i] for i in v]) for _, v in sorted(_groups(grid_comm).items())]
    streets = [_union([comms[i] for i in v]) for _, v in sorted(_groups(comm_street).items())]
    county = _union(streets)
    return _Tiling(
        grids=grids,
        grid_xy=grid_xy,
        grid_area=grid_area,
        grid_comm=grid_comm,
        comm_street=comm_street,
        comms=comms,
        streets=streets,
        county=county,
        comm_xy=comm_xy,
        street_xy=street_xy,
        grid_pairs=g_pairs,
        grid_pair_w=g_w,
    )


def _multi(g: BaseGeometry) -> MultiPolygon:
    if isinstance(g, MultiPolygon):
        return g
    return MultiPolygon([g])


def _street_names(rng: np.random.Generator, xy: np.ndarray, radius: float) -> list[str]:
    n = len(xy)
    names: list[str | None] = [None] * n
    r = np.hypot(xy[:, 0], xy[:, 1])
    ang = np.degrees(np.arctan2(xy[:, 1], xy[:, 0]))
    if n >= 5:
        c = int(np.argmin(r))
        if r[c] < 0.35 * radius:
            names[c] = "城中街道"
    dirs = {"城东": 0.0, "城北": 90.0, "城西": 180.0, "城南": -90.0}
    eligible = [i for i in range(n) if names[i] is None and (n <= 6 or r[i] < 0.6 * radius)]
    cands = []
    for i in eligible:
        for d, da in dirs.items():
            diff = abs((ang[i] - da + 180.0) % 360.0 - 180.0)
            cands.append((diff, i, d))
    used_dirs: set[str] = set()
    for diff, i, d in sorted(cands):
        if diff > 55.0:
            break
        if names[i] is None and d not in used_dirs:
            names[i] = d + "街道"
            used_dirs.add(d)
    used = {x for x in names if x}
    pool = _Names(rng, _STREET_STEMS, used)
    for i in range(n):
        if names[i] is None:
            suffix = "镇" if n > 6 and r[i] >= 0.7 * radius else "街道"
            names[i] = pool.take(lambda s, suffix=suffix: s + suffix)[1]
    return [x for x in names if x]
