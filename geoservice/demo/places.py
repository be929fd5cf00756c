"""The demo county generator: roads, markets, compounds (built in metres)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from geoservice.demo.names import (
    _LANE_STEMS,
    _MAIN_STEMS,
    _SECONDARY_STEMS,
    _cn_number,
    _Names,
    _pick,
)
from geoservice.vocab import (
    COMPOUND_TYPES,
    ROAD_GRADES,
)


class _Bins:
    """A tiny dynamic spatial index (uniform buckets) for incremental placement checks."""

    def __init__(self, cell: float) -> None:
        self.cell = cell
        self.bins: dict[tuple[int, int], list[int]] = {}
        self.geoms: list[BaseGeometry] = []

    def _keys(self, bounds: Sequence[float]) -> Iterator[tuple[int, int]]:
        x0, y0, x1, y1 = (math.floor(v / self.cell) for v in bounds)
        for i in range(x0, x1 + 1):
            for j in range(y0, y1 + 1):
                yield i, j

    def add(self, geom: BaseGeometry) -> int:
        idx = len(self.geoms)
        self.geoms.append(geom)
        for k in self._keys(geom.bounds):
            self.bins.setdefault(k, []).append(idx)
        return idx

    def query(self, geom: BaseGeometry) -> list[int]:
        out: set[int] = set()
        for k in self._keys(geom.bounds):
            out.update(self.bins.get(k, ()))
        return sorted(out)


@dataclass
class _Road:
    name: str
    stem: str
    grade: str
    line: LineString  # metres
    lanes: int = 0  # lanes numbered after this road ("人民路二巷")


class _LineSampler:
    """Uniform points (with tangents) along a set of lines, weighted per line."""

    def __init__(self, lines: Sequence[LineString], weight: Sequence[float]) -> None:
        a_list, b_list, owner = [], [], []
        for i, ln in enumerate(lines):
            c = np.asarray(ln.coords)
            a_list.append(c[:-1])
            b_list.append(c[1:])
            owner.append(np.full(len(c) - 1, i))
        self.a = np.concatenate(a_list)
        self.b = np.concatenate(b_list)
        self.owner = np.concatenate(owner)
        d = self.b - self.a
        self.length = np.hypot(d[:, 0], d[:, 1])
        ok = self.length > 0
        self.a, self.b, self.owner, self.length = (
            self.a[ok],
            self.b[ok],
            self.owner[ok],
            self.length[ok],
        )
        self.tangent = (self.b - self.a) / self.length[:, None]
        self.cum = np.cumsum(self.length * np.asarray(weight, dtype=float)[self.owner])

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        seg = np.searchsorted(self.cum, rng.random(n) * self.cum[-1], side="right")
        seg = np.minimum(seg, len(self.cum) - 1)
        t = rng.random(n)[:, None]
        pts = self.a[seg] + t * (self.b[seg] - self.a[seg])
        return pts, self.tangent[seg], self.owner[seg]


def _longest_part(geom: BaseGeometry) -> LineString | None:
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, LineString) and not p.is_empty]
    if not parts:
        return None
    return max(parts, key=lambda p: p.length)


def _road_name(stem: str, suffix: str, direction: str) -> str:
    if not direction:
        return stem + suffix
    if suffix == "大道":
        return f"{stem}大道{direction}段"
    return stem + direction + suffix


class _Town:
    """Mutable state while placing roads, markets and compounds (all in metres)."""

    def __init__(self, rng: np.random.Generator, outline: Polygon, scale: float) -> None:
        self.rng = rng
        self.scale = scale
        self.outline = outline
        self.clip = outline.buffer(-1.0)
        self.inner = outline.buffer(-6.0)
        shapely.prepare(self.clip)
        shapely.prepare(self.inner)
        self.radius = math.sqrt(outline.area / math.pi)
        theta0 = rng.uniform(-0.25, 0.25)
        self.fam_angles = (theta0, theta0 + math.pi / 2 + rng.uniform(-0.08, 0.08))
        self.roads: list[_Road] = []
        self.road_bins = _Bins(500.0)
        self.used_road_names: set[str] = set()
        self.road_names = _Names(rng, _MAIN_STEMS + _SECONDARY_STEMS, self.used_road_names)
        self.lane_names = _Names(rng, _LANE_STEMS, self.used_road_names)
        self.cores = np.zeros((1, 2))
        # name stem of the community around a point (set by the builder), for lane names
        self.neighbourhood: Callable[[tuple[float, float]], str] = lambda xy: "新"
        self.hood_lanes: dict[str, int] = {}

    def core_weight(self, xy: np.ndarray) -> np.ndarray:
        """1 in the old town cores, → 0 far away (old compounds, lanes, markets cluster)."""
        d2 = ((xy[:, None, :] - self.cores[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        return np.exp(-d2 / (1400.0**2))

    def random_inside(self, n: int) -> np.ndarray:
        xmin, ymin, xmax, ymax = self.outline.bounds
        out = np.empty((0, 2))
        while len(out) < n:
            c = self.rng.uniform((xmin, ymin), (xmax, ymax), size=(2 * n + 8, 2))
            out = np.concatenate([out, c[shapely.contains_xy(self.inner, c[:, 0], c[:, 1])]])
        return out[:n]

    def add_road(self, road: _Road) -> None:
        self.roads.append(road)
        self.road_bins.add(road.line)

    # -- 主干道 --------------------------------------------------------------------------------
    def main_roads(self, spacing: float = 1600.0, max_section: float = 5000.0) -> None:
        rng = self.rng
        coords = np.asarray(self.outline.exterior.coords)
        for fam, ang in enumerate(self.fam_angles):
            u = np.array([math.cos(ang), math.sin(ang)])
            v = np.array([-math.sin(ang), math.cos(ang)])
            pv, pu = coords @ v, coords @ u
            span = pv.max() - pv.min()
            n_lines = max(1, round(span / spacing))
            gap = span / n_lines
            for i in range(n_lines):
                c = pv.min() + (i + 0.5 + rng.uniform(-0.2, 0.2)) * gap
                t = np.arange(pu.min() - 100.0, pu.max() + 100.0, 50.0)
                amp1, amp2 = rng.uniform(40, 160), rng.uniform(5, 35)
                wl1, wl2 = rng.uniform(2500, 6000), rng.uniform(700, 1500)
                ph1, ph2 = rng.uniform(0, 2 * math.pi, 2)
                off = (
                    c
                    + amp1 * np.sin(2 * math.pi * t / wl1 + ph1)
                    + amp2 * np.sin(2 * math.pi * t / wl2 + ph2)
                )
                line = LineString(np.outer(t, u) + np.outer(off, v))
                parts = [
                    p
                    for p in shapely.get_parts(shapely.intersection(line, self.clip))
                    if isinstance(p, LineString) and p.length >= 500.0
                ]
                parts.sort(key=lambda p: float(np.asarray(p.centroid.coords[0]) @ u))
                sections: list[LineString] = []
                for p in parts:
                    if float(np.asarray(p.coords[-1]) @ u) < float(np.asarray(p.coords[0]) @ u):
                        p = p.reverse()
                    k = max(1, math.ceil(p.length / max_section))
                    sections += [
                        substring(p, j / k, (j + 1) / k, normalized=True) for j in range(k)
                    ]
                if not sections:
                    continue
                n_chunks = math.ceil(len(sections) / 3)
                for chunk in np.array_split(np.arange(len(sections)), n_chunks):
                    suffix = _pick(rng, ("路", "大道", "街"), (0.72, 0.18, 0.10))
                    if len(chunk) == 1:
                        dirs = ("",)
                    elif len(chunk) == 2:
                        dirs = ("西", "东") if fam == 0 else ("南", "北")
                    else:
                        dirs = ("西", "中", "东") if fam == 0 else ("南", "中", "北")
                    stem, _ = self.road_names.take(
                        lambda s, suffix=suffix, dirs=dirs: _road_name(s, suffix, dirs[0])
                    )
                    for j, d in zip(chunk.tolist(), dirs, strict=True):
                        name = _road_name(stem, suffix, d)
                        self.used_road_names.add(name)
                        self.add_road(_Road(name, stem, ROAD_GRADES[0], sections[j]))

    def _parallel_conflict(
        self, line: LineString, dist: float, frac: float, skip: int = -1
    ) -> bool:
        """Whether `line` runs alongside an existing road within `dist` metres for more than
        `frac` of the shorter one (frac < 1) or more than `frac` metres (frac >= 1)."""
        buf = line.buffer(dist)
        cands = [i for i in self.road_bins.query(buf) if i != skip]
        if not cands:
            return False
        others = np.array([self.roads[i].line for i in cands], dtype=object)
        overlap = shapely.length(shapely.intersection(others, buf))
        limit = frac * np.minimum(shapely.length(others), line.length) if frac < 1 else frac
        return bool((overlap > limit).any())

    # -- 次干道 --------------------------------------------------------------------------------
    def secondary_roads(self, n: int) -> None:
        rng = self.rng
        made = 0
        for _ in range(60 * n + 50):
            if made >= n:
                break
            centre = self.random_inside(1)[0]
            fam = int(rng.integers(2))
            ang = self.fam_angles[fam] + rng.normal(0.0, 0.07)
            u = np.array([math.cos(ang), math.sin(ang)])
            v = np.array([-math.sin(ang), math.cos(ang)])
            length = rng.uniform(800, 2000)
            t = np.linspace(-length / 2, length / 2, 25)
            off = rng.uniform(-50, 50) * np.sin(math.pi * t / length * rng.uniform(0.6, 1.6))
            line = LineString(centre + np.outer(t, u) + np.outer(off, v))
            part = _longest_part(shapely.intersection(line, self.clip))
            if part is None or part.length < 400.0:
                continue
            if self._parallel_conflict(part, 160.0, 0.25):
                continue
            suffix = _pick(rng, ("路", "街"), (0.78, 0.22))
            stem, name = self.road_names.take(lambda s, suffix=suffix: s + suffix)
            self.add_road(_Road(name, stem, ROAD_GRADES[1], part))
            made += 1

    # -- 背街小巷 ------------------------------------------------------------------------------
    def lanes(self, n: int) -> None:
        rng = self.rng
        trunk = [i for i, r in enumerate(self.roads) if r.grade != ROAD_GRADES[2]]
        sampler = _LineSampler([self.roads[i].line for i in trunk], [1.0] * len(trunk))
        made = 0
        for _ in range(60 * n + 50):
            if made >= n:
                break
            pts, tan, own = sampler.sample(rng, 1)
            p, tg = pts[0], tan[0]
            if rng.random() > 0.25 + 0.75 * float(self.core_weight(pts)[0]):
                continue
            anchor = trunk[int(own[0])]
            side = 1.0 if rng.random() < 0.5 else -1.0
            nrm = side * np.array([-tg[1], tg[0]])
            l1 = rng.uniform(100, 330)
            mid = p + nrm * l1 * 0.5 + tg * rng.normal(0, 4)
            coords = [p, mid, p + nrm * l1]
            if rng.random() < 0.4:
                turn = 1.0 if rng.random() < 0.5 else -1.0
                coords.append(coords[-1] + tg * turn * rng.uniform(50, 180))
            part = _longest_part(shapely.intersection(LineString(coords), self.clip))
            if part is None or part.length < 80.0:
                continue
            if self._parallel_conflict(part, 30.0, 40.0, skip=anchor):
                continue
            road = self.roads[anchor]
            got = None
            if rng.random() < 0.6:  # the pool marks its names as used itself
                suffix = _pick(rng, ("巷", "弄", "里"), (0.6, 0.25, 0.15))
                got = self.lane_names.try_take(lambda s, suffix=suffix: s + suffix)
            if got is None:
                if road.name.endswith(("路", "街")) and road.lanes < 30:
                    road.lanes += 1  # numbered after the road it leaves: 人民路二巷
                    got = road.stem, f"{road.name}{_cn_number(road.lanes)}巷"
                else:  # numbered after the neighbourhood: 幸福三巷
                    hood = self.neighbourhood(part.centroid.coords[0])
                    self.hood_lanes[hood] = self.hood_lanes.get(hood, 0) + 1
                    got = hood, f"{hood}{_cn_number(self.hood_lanes[hood])}巷"
                if got[1] in self.used_road_names:
                    continue
                self.used_road_names.add(got[1])
            stem, name = got
            self.add_road(_Road(name, stem, ROAD_GRADES[2], part))
            made += 1


def _rect(cx: float, cy: float, a: float, b: float, ang: float) -> Polygon:
    ca, sa = math.cos(ang), math.sin(ang)
    ux, uy = ca * a / 2, sa * a / 2
    vx, vy = -sa * b / 2, ca * b / 2
    return Polygon(
        [
            (cx - ux - vx, cy - uy - vy),
            (cx + ux - vx, cy + uy - vy),
            (cx + ux + vx, cy + uy + vy),
            (cx - ux + vx, cy - uy + vy),
        ]
    )


@dataclass
class _Market:
    rect: Polygon  # metres
    centre: tuple[float, float]
    angle: float
    a: float
    b: float
    road: int
    is_point: bool = False


@dataclass
class _Compound:
    rect: Polygon
    centre: tuple[float, float]
    angle: float
    a: float
    b: float
    grid: int
    ctype: str


def _place_markets(town: _Town, n: int) -> list[_Market]:
    rng = town.rng
    trunk = [i for i, r in enumerate(town.roads) if r.grade != ROAD_GRADES[2]]
    sampler = _LineSampler([town.roads[i].line for i in trunk], [1.0] * len(trunk))
    markets: list[_Market] = []
    bins = _Bins(500.0)
    for _ in range(200 * n + 50):
        if len(markets) >= n:
            break
        pts, tan, own = sampler.sample(rng, 1)
        if rng.random() > 0.35 + 0.65 * float(town.core_weight(pts)[0]):
            continue
        p, tg = pts[0], tan[0]
        a, b = rng.uniform(40, 120), rng.uniform(40, 120)
        side = 1.0 if rng.random() < 0.5 else -1.0
        nrm = side * np.array([-tg[1], tg[0]])
        c = p + nrm * (b / 2 + rng.uniform(8, 20))
        ang = math.atan2(tg[1], tg[0])
        rect = _rect(float(c[0]), float(c[1]), a, b, ang)
        if not town.inner.contains(rect):
            continue
        near = rect.buffer(3.0)
        if any(town.roads[i].line.intersects(near) for i in town.road_bins.query(near)):
            continue
        far = rect.buffer(350.0)
        if any(bins.geoms[i].intersects(far) for i in bins.query(far)):
            continue
        bins.add(rect)
        markets.append(_Market(rect, (float(c[0]), float(c[1])), ang, a, b, trunk[int(own[0])]))
    if n >= 6:
        k = max(1, round(0.15 * len(markets)))
        for i in sorted(rng.choice(len(markets), size=k, replace=False).tolist()):
            markets[i].is_point = True
    return markets


def _compound_type(rng: np.random.Generator, core: float, rim: float) -> str:
    p_old = 0.12 + 0.6 * core
    p_village = 0.05 + (0.35 if rim > 0.72 else 0.0)
    p_new = max(0.05, 1.0 - p_old - p_village)
    return _pick(rng, COMPOUND_TYPES, (p_new, p_old, p_village))


def _place_compounds(
    town: _Town, n: int, grids_m: np.ndarray, markets: list[_Market]
) -> list[_Compound]:
    rng = town.rng
    areas = shapely.area(grids_m)
    p = areas / areas.sum()
    cum = np.cumsum(p)
    market_bins = _Bins(500.0)
    for m in markets:
        market_bins.add(m.rect)
    trunk_bins = _Bins(500.0)
    for r in town.roads:
        if r.grade != ROAD_GRADES[2]:
            trunk_bins.add(r.line)
    inner_cache: dict[int, BaseGeometry] = {}
    per_grid: dict[int, list[Polygon]] = {}
    out: list[_Compound] = []
    for _ in range(40 * n + 50):
        if len(out) >= n:
            break
        g = min(int(np.searchsorted(cum, rng.random(), side="right")), len(cum) - 1)
        if len(per_grid.get(g, ())) >= 2:
            continue
        if g not in inner_cache:
            inner = grids_m[g].buffer(-4.0)
            shapely.prepare(inner)
            inner_cache[g] = inner
        inner = inner_cache[g]
        if inner.is_empty:
            continue
        if rng.random() < 0.5:
            c = np.asarray(inner.centroid.coords[0]) + rng.normal(0, 15, 2)
        else:
            x0, y0, x1, y1 = inner.bounds
            c = rng.uniform((x0, y0), (x1, y1))
        ang = town.fam_angles[int(rng.integers(2))] + rng.normal(0, 0.04)
        a = rng.uniform(80, 300)
        b = rng.uniform(80, min(a, 260))
        for f in (1.0, 0.85, 0.7, 0.55, 0.42, 0.3):
            aa, bb = max(80.0, a * f), max(80.0, b * f)
            rect = _rect(float(c[0]), float(c[1]), aa, bb, ang)
            if not inner.contains(rect):
                continue
            if any(o.intersects(rect.buffer(8.0)) for o in per_grid.get(g, ())):
                continue
            near = rect.buffer(10.0)
            if any(market_bins.geoms[i].intersects(near) for i in market_bins.query(near)):
                continue
            near = rect.buffer(6.0)
            if any(trunk_bins.geoms[i].intersects(near) for i in trunk_bins.query(near)):
                continue
            xy = np.asarray([c])
            rim = float(np.hypot(*xy[0]) / town.radius)
            ctype = _compound_type(rng, float(town.core_weight(xy)[0]), rim)
            out.append(_Compound(rect, (float(c[0]), float(c[1])), ang, aa, bb, g, ctype))
            per_grid.setdefault(g, []).append(rect)
            break
    return out
