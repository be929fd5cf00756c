"""The demo county generator: generate_county, putting the sections together."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from geoservice.demo.assignments import _FeatureRef, _make_assignments
from geoservice.demo.frame import to_lonlat, to_metres
from geoservice.demo.graph import _Retry
from geoservice.demo.issues import _IssueSampler
from geoservice.demo.model import (
    COUNTY_CODE,
    COUNTY_NAME,
    WIDENED_BY_M,
    DemoArea,
    DemoCounty,
    DemoFeature,
    SurveyDefects,
)
from geoservice.demo.names import _COMMUNITY_STEMS, _COMPOUND_STEMS, _OLD_WORK_UNITS, _Names, _pick
from geoservice.demo.people import _make_people
from geoservice.demo.places import _place_compounds, _place_markets, _Town
from geoservice.demo.tiling import _make_outline, _make_tiling, _multi, _street_names
from geoservice.vocab import (
    COMPOUND_TYPES,
    GRID_TYPES,
    PROPERTY_TYPES,
)


def _sort_key(xy: np.ndarray, band: float) -> list[tuple[int, float]]:
    return [(math.floor(-y / band), float(x)) for x, y in xy]


def _build(seed: int, scale: float, today: date, rng: np.random.Generator) -> DemoCounty:
    outline = _make_outline(rng, scale)
    tl = _make_tiling(rng, outline, scale)
    radius = math.sqrt(outline.area / math.pi)

    # --- admin areas: order, codes, names ---------------------------------------------------
    n_s = len(tl.streets)
    s_ang = np.arctan2(tl.street_xy[:, 1], tl.street_xy[:, 0]) % (2 * math.pi)
    s_order = sorted(range(n_s), key=lambda i: (float(s_ang[i]), i))
    s_rank = np.empty(n_s, dtype=np.int64)
    s_rank[s_order] = np.arange(n_s)
    street_names = _street_names(rng, tl.street_xy[s_order], radius)
    county_area = DemoArea("county", COUNTY_CODE, COUNTY_NAME, None, _multi(tl.county))
    streets = [
        DemoArea(
            "street",
            f"{COUNTY_CODE}{r + 1:03d}",
            street_names[r],
            COUNTY_CODE,
            _multi(tl.streets[i]),
        )
        for r, i in enumerate(s_order)
    ]
    comm_street = s_rank[tl.comm_street]  # community → street rank
    comm_keys = _sort_key(tl.comm_xy, 1000.0)
    c_order = sorted(range(len(tl.comms)), key=lambda i: (int(comm_street[i]), comm_keys[i], i))
    c_rank = np.empty(len(c_order), dtype=np.int64)
    c_rank[c_order] = np.arange(len(c_order))
    comm_pool = _Names(rng, _COMMUNITY_STEMS, set())
    communities: list[DemoArea] = []
    seq_in_street: dict[int, int] = {}
    for i in c_order:
        s = int(comm_street[i])
        seq_in_street[s] = seq_in_street.get(s, 0) + 1
        name = comm_pool.take(lambda x: x + "社区")[1]
        code = f"{streets[s].code}{seq_in_street[s]:03d}"
        communities.append(DemoArea("community", code, name, streets[s].code, _multi(tl.comms[i])))
    grid_comm = c_rank[tl.grid_comm]  # grid → community rank
    comm_street_r = np.empty(len(communities), dtype=np.int64)
    for i in range(len(c_order)):
        comm_street_r[c_rank[i]] = comm_street[i]

    grid_keys = _sort_key(tl.grid_xy, 150.0)
    g_order = sorted(range(len(tl.grids)), key=lambda i: (int(grid_comm[i]), grid_keys[i], i))
    grid_arr = np.array(tl.grids, dtype=object)[g_order]
    grid_comm = grid_comm[g_order]
    grids_m = to_metres(grid_arr)
    seq_in_comm: dict[int, int] = {}
    grid_codes: list[str] = []
    grid_names: list[str] = []
    for c in grid_comm.tolist():
        seq_in_comm[c] = seq_in_comm.get(c, 0) + 1
        grid_codes.append(f"{communities[c].code}{seq_in_comm[c]:03d}")
        grid_names.append(f"{communities[c].name}第{seq_in_comm[c]}网格")

    grid_tree = shapely.STRtree(grids_m)

    def locate(xy: np.ndarray) -> np.ndarray:
        pts = shapely.points(xy)
        res = grid_tree.query(pts, predicate="intersects")
        out = np.full(len(xy), -1, dtype=np.int64)
        out[res[0][::-1]] = res[1][::-1]  # first hit per point
        miss = out < 0
        if miss.any():
            near = grid_tree.query_nearest(pts[miss], all_matches=False)
            out[np.flatnonzero(miss)[near[0]]] = near[1]
        return out

    # --- roads ------------------------------------------------------------------------------
    town = _Town(rng, outline, scale)
    if scale > 1.5:
        k = max(1, n_s // 3)
        picks = rng.choice(n_s, size=k, replace=False)
        town.cores = np.concatenate([town.cores, tl.street_xy[np.sort(picks)]])
    town.neighbourhood = lambda xy: communities[
        int(grid_comm[locate(np.asarray([xy]))[0]])
    ].name.removesuffix("社区")
    town.main_roads()
    town.secondary_roads(max(1, round(25 * scale)))
    town.lanes(max(1, round(90 * scale)))
    roads = town.roads
    road_mid = shapely.get_coordinates(
        shapely.line_interpolate_point([r.line for r in roads], 0.5, normalized=True)
    )
    road_grid = locate(road_mid)

    # --- markets and compounds ----------------------------------------------------------------
    markets = _place_markets(town, max(2, round(12 * scale)))
    market_grid = locate(np.array([m.centre for m in markets]).reshape(-1, 2))
    compounds = _place_compounds(town, max(1, round(80 * scale)), grids_m, markets)

    # --- features ---------------------------------------------------------------------------
    grid_type = np.where(rng.random(len(grid_arr)) < 0.05, GRID_TYPES[1], GRID_TYPES[0])
    grid_type[market_grid] = GRID_TYPES[1]
    feats_grid = [
        DemoFeature(
            "grid",
            grid_codes[i],
            grid_names[i],
            _multi(grid_arr[i]),
            {"community_code": communities[int(grid_comm[i])].code, "grid_type": str(grid_type[i])},
        )
        for i in range(len(grid_arr))
    ]
    road_geoms = to_lonlat(np.array([r.line for r in roads], dtype=object))
    feats_road = [
        DemoFeature("road", f"R{i + 1:04d}", r.name, road_geoms[i], {"grade": r.grade})
        for i, r in enumerate(roads)
    ]

    used_market_names: set[str] = set()
    market_names: list[str] = []
    feats_market: list[DemoFeature] = []
    seen_street: set[int] = set()
    for i, m in enumerate(markets):
        g = int(market_grid[i])
        c = int(grid_comm[g])
        s = int(comm_street_r[c])
        sname = streets[s].name
        road = roads[m.road]
        options = [
            road.stem + "菜市场",
            communities[c].name.removesuffix("社区") + "农贸市场",
            road.stem + "综合市场",
            communities[c].name.removesuffix("社区") + "菜市场",
        ]
        if s not in seen_street and sname.startswith("城"):
            options.insert(0, sname.removesuffix("街道") + "农贸市场")
        seen_street.add(s)
        name = next((o for o in options if o not in used_market_names), f"演示县第{i + 1}菜市场")
        used_market_names.add(name)
        market_names.append(name)
        geom = Point(m.centre) if m.is_point else m.rect
        addr = f"{COUNTY_NAME}{sname}{road.name}{int(rng.integers(1, 400))}号"
        feats_market.append(
            DemoFeature("market", f"M{i + 1:03d}", name, to_lonlat(geom), {"address": addr})
        )

    cp_used: set[str] = set()
    cp_pool = _Names(rng, _COMPOUND_STEMS, cp_used, cycle=True)
    suffixes = {
        COMPOUND_TYPES[0]: (
            ("花园", "家园", "苑", "华府", "名邸", "雅苑", "华庭", "公馆", "嘉园", "府"),
            None,
        ),
        COMPOUND_TYPES[1]: (("新村", "小区", "公寓", "里"), (4, 3, 2, 1)),
        COMPOUND_TYPES[2]: (("家园", "新村", "安置小区", "新苑"), (3, 3, 2, 2)),
    }
    prop_p = {
        COMPOUND_TYPES[0]: (0.9, 0.05, 0.05),
        COMPOUND_TYPES[1]: (0.2, 0.45, 0.35),
        COMPOUND_TYPES[2]: (0.1, 0.3, 0.6),
    }
    per_building = {COMPOUND_TYPES[0]: 2200.0, COMPOUND_TYPES[1]: 1500.0, COMPOUND_TYPES[2]: 1800.0}
    compound_names: list[str] = []
    feats_compound: list[DemoFeature] = []
    cp_geoms = to_lonlat(np.array([c.rect for c in compounds], dtype=object))
    old_units = list(_OLD_WORK_UNITS)
    for i, cpd in enumerate(compounds):
        opts, w = suffixes[cpd.ctype]
        suffix = _pick(rng, opts, w)
        name = ""
        if cpd.ctype == COMPOUND_TYPES[1] and old_units and rng.random() < 0.25:
            cand = old_units.pop(int(rng.integers(len(old_units)))) + _pick(
                rng, ("宿舍", "新村", "小区")
            )
            if cand not in cp_used:
                cp_used.add(cand)
                name = cand
        if not name:
            name = cp_pool.take(lambda s, suffix=suffix: s + suffix)[1]
        compound_names.append(name)
        area = cpd.a * cpd.b
        bcount = max(2, round(area / per_building[cpd.ctype] * rng.uniform(0.7, 1.3)))
        feats_compound.append(
            DemoFeature(
                "compound",
                f"C{i + 1:04d}",
                name,
                cp_geoms[i],
                {
                    "compound_type": cpd.ctype,
                    "property_type": _pick(rng, PROPERTY_TYPES, prop_p[cpd.ctype]),
                    "building_count": bcount,
                },
            )
        )

    # --- units, leaders, assignments ----------------------------------------------------------
    units, leaders, meta = _make_people(rng, scale, streets, communities, comm_street_r)
    refs: dict[str, list[_FeatureRef]] = {"grid": [], "road": [], "market": [], "compound": []}
    for i, f in enumerate(feats_grid):
        c = int(grid_comm[i])
        refs["grid"].append(_FeatureRef("grid", f.code, int(comm_street_r[c]), c, ""))
    for i, f in enumerate(feats_road):
        c = int(grid_comm[road_grid[i]])
        refs["road"].append(_FeatureRef("road", f.code, int(comm_street_r[c]), c, roads[i].grade))
    for i, f in enumerate(feats_market):
        c = int(grid_comm[market_grid[i]])
        refs["market"].append(_FeatureRef("market", f.code, int(comm_street_r[c]), c, ""))
    for i, f in enumerate(feats_compound):
        c = int(grid_comm[compounds[i].grid])
        refs["compound"].append(
            _FeatureRef("compound", f.code, int(comm_street_r[c]), c, compounds[i].ctype)
        )
    assignments = _make_assignments(rng, today, refs, meta, len(streets), len(communities))

    sampler = _IssueSampler(
        seed=seed,
        today=today,
        outline=outline.buffer(-0.5),
        roads=roads,
        markets=markets,
        compounds=compounds,
        compound_names=compound_names,
        market_names=market_names,
        grids_m=grids_m,
        grid_comm_name=[communities[int(c)].name for c in grid_comm],
    )
    return DemoCounty(
        seed=seed,
        scale=scale,
        today=today,
        county=county_area,
        streets=streets,
        communities=communities,
        features={
            "grid": feats_grid,
            "road": feats_road,
            "market": feats_market,
            "compound": feats_compound,
        },
        units=units,
        leaders=leaders,
        assignments=assignments,
        _sampler=sampler,
    )


def generate_county(
    seed: int = 1, scale: float = 1.0, today: date | None = None, defects: bool = True
) -> DemoCounty:
    """Builds the demo county. Same (seed, scale, today, defects) ⇒ identical output.

    `today` (default: date.today()) anchors assignment dates (valid_from within the last ~6
    months) and the issue window (the 8 weeks ending with `today`). `defects` plants one gap
    and one overlap in the grid layer (see SurveyDefects); without them the grids tile the
    communities exactly.
    """
    if not scale > 0:
        raise ValueError("scale must be positive")
    if today is None:
        today = date.today()
    base = int(seed) % (1 << 63)
    for attempt in range(12):
        rng = np.random.default_rng([base, attempt])
        try:
            county = _build(base, scale, today, rng)
        except _Retry:
            continue
        if defects:
            _plant_survey_defects(county)
        return county
    raise RuntimeError("could not build a valid demo county")


def _plant_survey_defects(county: DemoCounty) -> None:
    """Withholds one grid (a gap) and widens another into its neighbours (an overlap)."""
    grids = county.features["grid"]
    if len(grids) < 3:
        return
    withheld = grids[len(grids) // 3]
    widened = grids[(2 * len(grids)) // 3]
    outline = to_metres(county.county.geom)
    grown = to_metres(widened.geom).buffer(WIDENED_BY_M, join_style="mitre").intersection(outline)
    widened.geom = _as_multi(to_lonlat(grown))
    county.features["grid"] = [g for g in grids if g is not withheld]
    county.defects = SurveyDefects(ungridded=[withheld.code], widened=[widened.code])


def _as_multi(geom: Any) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    return MultiPolygon([g for g in geom.geoms if isinstance(g, Polygon)])
