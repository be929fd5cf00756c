"""Invariants of the synthetic demo county (geoservice.demo): pure shapely/numpy, no database."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from geoservice.demo import (
    COUNTY_CODE,
    ISSUE_WINDOW_DAYS,
    TZ,
    DemoCounty,
    DemoIssue,
    generate_county,
    to_metres,
)
from geoservice.vocab import (
    ASSIGNMENT_ROLES,
    CATEGORY_DEADLINE_HOURS,
    COMPOUND_TYPES,
    GRID_TYPES,
    ISSUE_SOURCES,
    ISSUE_STATUSES,
    LEADER_LEVELS,
    PROPERTY_TYPES,
    ROAD_GRADES,
    SEVERITIES,
)

TODAY = date(2025, 6, 30)
END_OF_TODAY = datetime(2025, 7, 1, tzinfo=TZ)
LAYERS = ("grid", "road", "market", "compound")
ALLOWED_TRANSITIONS = {
    (None, "reported"),
    ("reported", "accepted"),
    ("reported", "rejected"),
    ("accepted", "dispatched"),
    ("dispatched", "in_progress"),
    ("in_progress", "fixed"),
    ("fixed", "in_progress"),
    ("fixed", "closed"),
}
ROLES_BY_LAYER = {
    "grid": {"网格长", "网格员", "包保责任人"},
    "road": {"道路长", "包保责任人", "联点领导"},
    "market": {"点长", "联点领导", "包保责任人"},
    "compound": {"楼栋长", "包保责任人", "单元长", "社区长"},
}
PRIMARY_ROLE = {"grid": {"网格长"}, "road": {"道路长"}, "market": {"点长", "联点领导"}}


@pytest.fixture(scope="module")
def county() -> DemoCounty:
    return generate_county(seed=7, scale=1.0, today=TODAY, defects=False)


@pytest.fixture(scope="module")
def small() -> DemoCounty:
    return generate_county(seed=11, scale=0.3, today=TODAY, defects=False)


@pytest.fixture(scope="module")
def issues(county: DemoCounty) -> list[DemoIssue]:
    return list(county.issues())


# --- helpers --------------------------------------------------------------------------------


def _metres(geoms: list[Any]) -> np.ndarray:
    return to_metres(np.array(geoms, dtype=object))


def _assert_no_overlaps(geoms_m: np.ndarray) -> None:
    tree = shapely.STRtree(geoms_m)
    i, j = tree.query(geoms_m, predicate="intersects")
    keep = i < j
    areas = shapely.area(shapely.intersection(geoms_m[i[keep]], geoms_m[j[keep]]))
    assert (areas < 0.01).all(), f"overlap of {areas.max():.4f} m²"


def _assert_tiles(children: list[Any], parent: Any) -> None:
    """Children do not overlap and their union equals the parent (measured in metres)."""
    kids = _metres(children)
    _assert_no_overlaps(kids)
    union = shapely.union_all(kids)
    assert shapely.area(shapely.symmetric_difference(union, to_metres(parent))) < 1.0


def _assert_rounded(geom: Any) -> None:
    coords = shapely.get_coordinates(geom)
    assert np.allclose(coords, np.round(coords, 7), rtol=0, atol=1e-10)


def _rect_sides(geom_m: Polygon) -> list[float]:
    ring = np.asarray(shapely.minimum_rotated_rectangle(geom_m).exterior.coords)
    return sorted(float(np.hypot(*(ring[k + 1] - ring[k]))) for k in range(2))


def _check_tiling(c: DemoCounty) -> None:
    grids = c.features["grid"]
    by_comm: dict[str, list[Any]] = defaultdict(list)
    for g in grids:
        by_comm[g.attrs["community_code"]].append(g.geom)
    comm_by_street: dict[str, list[Any]] = defaultdict(list)
    for cm in c.communities:
        comm_by_street[cm.parent_code or ""].append(cm.geom)
    assert set(by_comm) == {cm.code for cm in c.communities}
    assert set(comm_by_street) == {s.code for s in c.streets}
    _assert_no_overlaps(_metres([g.geom for g in grids]))
    for cm in c.communities:
        _assert_tiles(by_comm[cm.code], cm.geom)
    for st in c.streets:
        _assert_tiles(comm_by_street[st.code], st.geom)
    _assert_tiles([s.geom for s in c.streets], c.county.geom)
    assert bool(shapely.coverage_is_valid(np.array([g.geom for g in grids], dtype=object)))
    assert bool(shapely.coverage_is_valid(np.array([x.geom for x in c.communities], dtype=object)))
    assert bool(shapely.coverage_is_valid(np.array([x.geom for x in c.streets], dtype=object)))
    # each community and street is one contiguous polygon
    assert all(len(x.geom.geoms) == 1 for x in c.communities + c.streets)


def _fingerprint(c: DemoCounty, n_issues: int = 300) -> list[Any]:
    out: list[Any] = [c.county.geom.wkb]
    for a in c.streets + c.communities:
        out.append((a.level, a.code, a.name, a.parent_code, a.geom.wkb))
    for layer in LAYERS:
        for f in c.features[layer]:
            out.append((f.layer, f.code, f.name, f.geom.wkb, sorted(f.attrs.items())))
    out += [repr(u) for u in c.units] + [repr(ld) for ld in c.leaders]
    out += [repr(a) for a in c.assignments]
    out += [repr(i) for i in itertools.islice(c.issues(), n_issues)]
    return out


# --- admin areas and grids ----------------------------------------------------------------


def test_counts_at_scale_1(county: DemoCounty) -> None:
    assert len(county.streets) == 4
    assert 20 <= len(county.communities) <= 28
    grids = county.features["grid"]
    assert 250 <= len(grids) <= 350
    per_comm = Counter(g.attrs["community_code"] for g in grids)
    assert min(per_comm.values()) >= 8 and max(per_comm.values()) <= 20
    assert 60 <= len(county.features["compound"]) <= 90
    assert 10 <= len(county.features["market"]) <= 14
    assert 18 <= len(county.units) <= 22
    assert 50 <= len(county.leaders) <= 70


def test_codes_are_unique_numeric_and_nested(county: DemoCounty) -> None:
    c = county
    assert c.county.code == COUNTY_CODE and c.county.level == "county"
    assert c.county.parent_code is None
    street_codes = {s.code for s in c.streets}
    for s in c.streets:
        assert s.level == "street" and re.fullmatch(r"\d{9}", s.code)
        assert s.code.startswith(COUNTY_CODE) and s.parent_code == COUNTY_CODE
    for cm in c.communities:
        assert cm.level == "community" and re.fullmatch(r"\d{12}", cm.code)
        assert cm.parent_code in street_codes and cm.code.startswith(cm.parent_code)
    comm_codes = {cm.code for cm in c.communities}
    for g in c.features["grid"]:
        assert re.fullmatch(r"\d{15}", g.code)
        assert g.attrs["community_code"] in comm_codes
        assert g.code.startswith(g.attrs["community_code"])
        assert g.attrs["grid_type"] in GRID_TYPES
        assert g.name.endswith("网格") and g.name
    patterns = {"grid": r"\d{15}", "road": r"R\d{4,}", "market": r"M\d{3,}", "compound": r"C\d{4,}"}
    for layer in LAYERS:
        codes = [f.code for f in c.features[layer]]
        assert len(codes) == len(set(codes))
        assert all(re.fullmatch(patterns[layer], x) for x in codes)
        assert all(f.layer == layer for f in c.features[layer])
    areas = [c.county, *c.streets, *c.communities]
    assert len({a.code for a in areas}) == len(areas)
    assert len({a.name for a in c.streets + c.communities}) == len(c.streets) + len(c.communities)


def test_geometries_valid_typed_and_rounded(county: DemoCounty) -> None:
    c = county
    for a in [c.county, *c.streets, *c.communities]:
        assert isinstance(a.geom, MultiPolygon) and a.geom.is_valid and not a.geom.is_empty
        _assert_rounded(a.geom)
    expected = {
        "grid": (MultiPolygon,),
        "road": (LineString, shapely.MultiLineString),
        "market": (Polygon, Point),
        "compound": (Polygon,),
    }
    for layer in LAYERS:
        for f in c.features[layer]:
            assert isinstance(f.geom, expected[layer])
            assert f.geom.is_valid and not f.geom.is_empty
            _assert_rounded(f.geom)
    lon, lat = c.county.geom.centroid.coords[0]
    assert abs(lon - 120.26) < 0.02 and abs(lat - 33.78) < 0.02
    minx, miny, maxx, maxy = to_metres(c.county.geom).bounds
    assert 4500 < maxx - minx < 8500 and 3500 < maxy - miny < 7500


def test_tiling_is_exact_and_contiguous(county: DemoCounty) -> None:
    _check_tiling(county)


def test_small_scale_tiling_and_counts(small: DemoCounty) -> None:
    _check_tiling(small)
    assert len(small.streets) == 4  # at least 4 streets
    assert 60 <= len(small.features["grid"]) <= 120
    assert 15 <= len(small.features["compound"]) <= 30
    assert small.issue_count() == 3000
    area = shapely.area(to_metres(small.county.geom))
    assert 0.2 * 23.6e6 < area < 0.4 * 23.6e6  # area ∝ scale


def test_counts_grow_with_scale() -> None:
    big = generate_county(seed=5, scale=2.0, today=TODAY)
    assert len(big.streets) == 8
    assert 40 <= len(big.communities) <= 56
    assert 500 <= len(big.features["grid"]) <= 700
    grades = Counter(f.attrs["grade"] for f in big.features["road"])
    assert grades["次干道"] == 50 and grades["背街小巷"] == 180
    assert len(big.leaders) >= 95 and big.issue_count() == 20_000


# --- roads, markets, compounds ------------------------------------------------------------


def test_roads_named_graded_and_clipped(county: DemoCounty) -> None:
    roads = county.features["road"]
    names = [r.name for r in roads]
    assert all(n and n.strip() for n in names)
    assert len(set(names)) == len(names)
    assert all(r.attrs["grade"] in ROAD_GRADES for r in roads)
    grades = Counter(r.attrs["grade"] for r in roads)
    assert 6 <= grades["主干道"] <= 16
    assert 20 <= grades["次干道"] <= 30
    assert 80 <= grades["背街小巷"] <= 100
    county_m = to_metres(county.county.geom)
    lengths: dict[str, list[float]] = defaultdict(list)
    for r in roads:
        geom_m = to_metres(r.geom)
        assert geom_m.within(county_m.buffer(0.05))
        lengths[r.attrs["grade"]].append(geom_m.length)
        if r.attrs["grade"] == "背街小巷":
            assert r.name.endswith(("巷", "弄", "里"))
        else:
            assert re.search(r"(路|街|大道|段)$", r.name)
    assert np.mean(lengths["主干道"]) > 2000
    assert np.mean(lengths["背街小巷"]) < 500
    assert max(lengths["背街小巷"]) < 800


def test_markets_and_compounds(county: DemoCounty) -> None:
    markets = county.features["market"]
    compounds = county.features["compound"]
    assert len({m.name for m in markets}) == len(markets)
    assert len({c.name for c in compounds}) == len(compounds)
    assert any(isinstance(m.geom, Point) for m in markets)
    county_m = to_metres(county.county.geom)
    for m in markets:
        assert "市场" in m.name and m.attrs["address"].startswith("演示县")
        geom_m = to_metres(m.geom)
        assert geom_m.within(county_m)
        if isinstance(m.geom, Polygon):
            lo, hi = _rect_sides(geom_m)
            assert lo >= 39 and hi <= 121
    grids = county.features["grid"]
    grids_m = _metres([g.geom for g in grids])
    tree = shapely.STRtree(grids_m)
    for c in compounds:
        assert c.attrs["compound_type"] in COMPOUND_TYPES
        assert c.attrs["property_type"] in PROPERTY_TYPES
        assert isinstance(c.attrs["building_count"], int) and c.attrs["building_count"] > 0
        geom_m = to_metres(c.geom)
        lo, hi = _rect_sides(geom_m)
        assert lo >= 79 and hi <= 301
        hits = [int(k) for k in tree.query(geom_m, predicate="intersects")]
        hits = [k for k in hits if shapely.area(shapely.intersection(geom_m, grids_m[k])) > 0.01]
        assert len(hits) == 1, f"{c.code} spans grids {hits}"
        assert c.geom.within(grids[hits[0]].geom)
    polys = [m.geom for m in markets if isinstance(m.geom, Polygon)] + [c.geom for c in compounds]
    _assert_no_overlaps(_metres(polys))
    types = Counter(c.attrs["compound_type"] for c in compounds)
    assert all(types[t] > 0 for t in COMPOUND_TYPES)


# --- people and assignments ---------------------------------------------------------------


def test_units_and_leaders(county: DemoCounty) -> None:
    units = county.units
    assert len({u.name for u in units}) == len(units)
    assert 1 <= sum(u.is_lead for u in units) <= 3
    unit_names = {u.name for u in units}
    leaders = county.leaders
    assert [ld.key for ld in leaders] == list(range(len(leaders)))
    assert len({ld.name for ld in leaders}) == len(leaders)
    assert len({ld.phone for ld in leaders}) == len(leaders)
    for ld in leaders:
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", ld.name)
        assert re.fullmatch(r"1(3|5|8|9)\d{9}", ld.phone)
        assert ld.level in LEADER_LEVELS and ld.unit_name in unit_names and ld.title
    levels = Counter(ld.level for ld in leaders)
    assert all(levels[level] > 0 for level in LEADER_LEVELS)


def test_assignments_cover_almost_everything(county: DemoCounty) -> None:
    c = county
    keys = {ld.key for ld in c.leaders}
    by_feature: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for a in c.assignments:
        assert a.leader_key in keys
        assert a.role in ASSIGNMENT_ROLES and a.role in ROLES_BY_LAYER[a.layer]
        assert a.valid_from.tzinfo is not None
        assert END_OF_TODAY - timedelta(days=190) <= a.valid_from < END_OF_TODAY
        assert a.valid_to is None or a.valid_from < a.valid_to < END_OF_TODAY
        by_feature[(a.layer, a.code)].append(a)
    history = 0
    for layer in LAYERS:
        feats = c.features[layer]
        codes = {f.code for f in feats}
        covered = {code for (lay, code) in by_feature if lay == layer}
        assert covered <= codes
        gap = len(codes - covered)
        assert gap >= 1 and gap / len(codes) <= 0.1, (layer, gap)
        for code in covered:
            rows = by_feature[(layer, code)]
            current = [a for a in rows if a.is_primary and a.valid_to is None]
            assert len(current) == 1, (layer, code)
            if layer in PRIMARY_ROLE:
                assert current[0].role in PRIMARY_ROLE[layer]
            for old in (a for a in rows if a.valid_to is not None):
                history += 1
                assert old.is_primary
                nxt = [a for a in rows if a.is_primary and a.valid_from == old.valid_to]
                assert len(nxt) == 1 and nxt[0].leader_key != old.leader_key
    n_covered = sum(1 for _ in by_feature)
    assert 0.02 * n_covered <= history <= 0.1 * n_covered
    assert any(not a.is_primary for a in c.assignments)
    idle = keys - {a.leader_key for a in c.assignments}
    assert 1 <= len(idle) <= 3


# --- determinism --------------------------------------------------------------------------


def test_deterministic_for_same_inputs(small: DemoCounty) -> None:
    again = generate_county(seed=11, scale=0.3, today=TODAY, defects=False)
    assert _fingerprint(again) == _fingerprint(small)
    other = generate_county(seed=12, scale=0.3, today=TODAY, defects=False)
    assert other.county.geom.wkb != small.county.geom.wkb
    assert [f.name for f in other.features["road"]] != [f.name for f in small.features["road"]]
    first = [repr(i) for i in itertools.islice(other.issues(), 50)]
    assert first != [repr(i) for i in itertools.islice(small.issues(), 50)]


# --- issues -------------------------------------------------------------------------------


def test_issue_event_chains_are_consistent(county: DemoCounty, issues: list[DemoIssue]) -> None:
    assert len(issues) == county.issue_count() == 10_000
    window_start = END_OF_TODAY - timedelta(days=ISSUE_WINDOW_DAYS)
    for iss in issues:
        ev = iss.events
        assert ev[0].from_status is None and ev[0].to_status == "reported"
        assert ev[0].at == iss.reported_at and window_start <= iss.reported_at < END_OF_TODAY
        for a, b in itertools.pairwise(ev):
            assert a.to_status == b.from_status and a.at < b.at
        assert all((e.from_status, e.to_status) in ALLOWED_TRANSITIONS for e in ev)
        assert all(e.to_status in ISSUE_STATUSES and e.note for e in ev)
        assert ev[-1].at < END_OF_TODAY
        assert iss.status == ev[-1].to_status
        assert iss.rework_count == sum(
            1 for e in ev if (e.from_status, e.to_status) == ("fixed", "in_progress")
        )
        dispatched = [e.at for e in ev if e.to_status == "dispatched"]
        if dispatched:
            hours = CATEGORY_DEADLINE_HOURS[iss.category]
            assert iss.deadline == dispatched[0] + timedelta(hours=hours)
        else:
            assert iss.deadline is None
        if iss.status == "closed":
            assert iss.closed_at == ev[-1].at
        else:
            assert iss.closed_at is None
        assert iss.category in CATEGORY_DEADLINE_HOURS and iss.source in ISSUE_SOURCES
        assert iss.severity in SEVERITIES and iss.description
        assert round(iss.lon, 7) == iss.lon and round(iss.lat, 7) == iss.lat
        assert iss.reported_at.tzinfo is not None


def test_issue_mix_is_realistic(county: DemoCounty, issues: list[DemoIssue]) -> None:
    n = len(issues)
    status = Counter(i.status for i in issues)
    assert 0.01 <= status["rejected"] / n <= 0.06
    assert all(status[s] > 0 for s in ISSUE_STATUSES)
    old = [i for i in issues if i.reported_at < END_OF_TODAY - timedelta(days=21)]
    assert sum(i.status in ("closed", "rejected") for i in old) / len(old) > 0.85
    recent = [i for i in issues if i.reported_at >= END_OF_TODAY - timedelta(days=2)]
    assert sum(i.status not in ("closed", "rejected") for i in recent) / len(recent) > 0.5
    today_start = END_OF_TODAY - timedelta(days=1)
    overdue = [
        i for i in issues if i.deadline and i.deadline < today_start and i.status != "closed"
    ]
    assert len(overdue) > 10
    rework = Counter(i.rework_count for i in issues)
    assert rework[1] > 0 and rework[2] > 0 and set(rework) <= {0, 1, 2}
    assert 0 < sum(i.negative_list for i in issues) / n < 0.02
    assert len({i.category for i in issues}) == len(CATEGORY_DEADLINE_HOURS)
    assert len({i.source for i in issues}) == len(ISSUE_SOURCES)
    assert len({i.description for i in issues}) > 0.5 * n
    # inside the town, and clustered on the road network
    xy = shapely.get_coordinates(to_metres(shapely.points([(i.lon, i.lat) for i in issues])))
    town = to_metres(county.county.geom).buffer(0.05)
    assert shapely.contains_xy(town, xy[:, 0], xy[:, 1]).all()
    roads = shapely.union_all(
        to_metres(np.array([r.geom for r in county.features["road"]], dtype=object))
    ).buffer(30)
    near_road = shapely.contains_xy(roads, xy[:, 0], xy[:, 1]).mean()
    assert near_road > 1.5 * shapely.area(roads) / shapely.area(town)


def test_the_issue_stream_yields_the_announced_count(small: DemoCounty) -> None:
    assert sum(1 for _ in small.issues()) == small.issue_count() == round(10_000 * small.scale)


def test_survey_defects_plant_exactly_one_gap_and_one_overlap(county: DemoCounty) -> None:
    flawed = generate_county(seed=7, scale=1.0, today=TODAY)
    exact = {g.code: g for g in county.features["grid"]}
    grids = {g.code: g for g in flawed.features["grid"]}
    (gap_code,) = flawed.defects.ungridded
    (wide_code,) = flawed.defects.widened
    assert gap_code in exact and gap_code not in grids
    assert set(exact) - set(grids) == {gap_code}
    changed = [c for c in grids if not grids[c].geom.equals(exact[c].geom)]
    assert changed == [wide_code]
    # The gap is exactly the withheld grid, the overlap a ~20 m band around the widened one.
    union = shapely.union_all([to_metres(g.geom) for g in grids.values()])
    uncovered = to_metres(flawed.county.geom).difference(union)
    assert uncovered.area == pytest.approx(to_metres(exact[gap_code].geom).area, rel=1e-3)
    wide = to_metres(grids[wide_code].geom)
    overlap = sum(
        wide.intersection(to_metres(g.geom)).area for c, g in grids.items() if c != wide_code
    )
    assert 0 < overlap < wide.length * 20.0
    assert flawed.defects == generate_county(seed=7, scale=1.0, today=TODAY).defects
