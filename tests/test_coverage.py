"""Coverage audit on constructed layouts with a known gap and a known overlap.

Expected areas come from pyproj's geodesic polygon area (Karney) on the same lon/lat shapes,
an implementation independent of PostGIS.
"""

from __future__ import annotations

import pytest
from geoalchemy2.shape import from_shape
from pyproj import Geod
from shapely.geometry import shape
from shapely.ops import unary_union
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from geoservice.models import AdminArea
from geoservice.registry import BASE_LAYER, layers
from geoservice.responsibility.coverage import coverage_report
from tests.factories import assign, rect
from tests.support_responsibility import add_person, add_place, day, token_headers

GEOD = Geod(ellps="WGS84")


def geodesic_m2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def add_grid(session, n: int, geom):
    return add_place(session, "grid", f"320999001001{n:03d}", f"第{n}网格", geom)


@pytest.fixture
def county(db_session):
    """County 0..1000 m square; G1 west half, G2 south-east, G3 north-east reaching 50 m into
    G1: a gap 500..1000 × 600..700 and an overlap 450..500 × 700..1000."""
    area = rect(0, 0, 1000, 1000)
    db_session.add(
        AdminArea(level="county", code="320999", name="演示县", geom=from_shape(area, srid=4326))
    )
    grids = {
        1: add_grid(db_session, 1, rect(0, 0, 500, 1000)),
        2: add_grid(db_session, 2, rect(500, 0, 1000, 600)),
        3: add_grid(db_session, 3, rect(450, 700, 1000, 1000)),
    }
    db_session.flush()
    return area, grids


def test_gap_and_overlap_are_found_with_areas_in_square_metres(app, db_session, county):
    area, _grids = county
    report = coverage_report(db_session, layers(app), BASE_LAYER)

    expected_gap = area.difference(
        unary_union([rect(0, 0, 500, 1000), rect(500, 0, 1000, 600), rect(450, 700, 1000, 1000)])
    )
    gaps = report["gaps"]
    assert gaps["service_area_source"] == "admin_areas"
    assert gaps["count"] == 1
    gap = gaps["features"]["features"][0]
    assert gap["properties"]["area_m2"] == pytest.approx(geodesic_m2(expected_gap), abs=1.0)
    assert geodesic_m2(expected_gap) == pytest.approx(500 * 100, rel=0.01)  # sanity: ~5 ha
    assert shape(gap["geometry"]).hausdorff_distance(expected_gap) < 1e-6

    overlaps = report["overlaps"]
    assert overlaps["count"] == 1  # G1|G2 share an edge only: not an overlap
    overlap = overlaps["features"]["features"][0]
    expected_overlap = rect(450, 700, 500, 1000)
    assert overlap["properties"]["area_m2"] == pytest.approx(geodesic_m2(expected_overlap), abs=1.0)
    assert {overlap["properties"]["a"]["code"], overlap["properties"]["b"]["code"]} == {
        "320999001001001",
        "320999001001003",
    }
    assert shape(overlap["geometry"]).hausdorff_distance(expected_overlap) < 1e-6
    assert report["summary"]["gaps"] == 1 and report["summary"]["overlaps"] == 1


def test_without_admin_areas_the_holes_inside_the_grids_are_gaps(app, db_session):
    ring = [
        rect(0, 0, 300, 100),
        rect(0, 200, 300, 300),
        rect(0, 100, 100, 200),
        rect(200, 100, 300, 200),
    ]
    for n, geom in enumerate(ring, start=1):
        add_grid(db_session, n, geom)
    report = coverage_report(db_session, layers(app), BASE_LAYER)
    gaps = report["gaps"]
    assert gaps["service_area_source"] == "base_layer"
    assert gaps["count"] == 1
    hole = rect(100, 100, 200, 200)
    assert gaps["area_m2"] == pytest.approx(geodesic_m2(hole), abs=1.0)
    assert report["overlaps"]["count"] == 0


def test_unassigned_no_primary_idle_leaders_and_integrity(app, db_session, county):
    _area, grids = county
    road = add_place(db_session, "road", "R1", "人民路")
    market = add_place(db_session, "market", "M1", "城北市场")
    active = add_person(db_session, "张伟")
    gone = add_person(db_session, "李娜", active=False)
    idle = add_person(db_session, "王强")
    retired = add_person(db_session, "赵敏")
    assign(db_session, active, grids[1], day("2026-01-01"), role="网格长")
    # G2: its only assignment ended → unassigned again.
    assign(db_session, retired, grids[2], day("2025-01-01"), day("2026-01-01"), role="网格长")
    # G3: held by a deactivated leader → nobody active answers for it.
    assign(db_session, gone, grids[3], day("2026-01-01"), role="网格长")
    # The road has a helper but no primary.
    assign(db_session, active, road, day("2026-01-01"), role="包保责任人", is_primary=False)

    report = coverage_report(db_session, layers(app), BASE_LAYER)
    by_layer = {item["layer"]: item for item in report["layers"]}
    unassigned = {
        layer: sorted(f["properties"]["code"] for f in item["unassigned"]["features"]["features"])
        for layer, item in by_layer.items()
    }
    assert unassigned["grid"] == ["320999001001002", "320999001001003"]
    assert unassigned["market"] == [market.code]
    assert unassigned["road"] == []
    no_primary = by_layer["road"]["no_primary"]
    assert no_primary["count"] == 1
    assert no_primary["features"]["features"][0]["properties"]["code"] == "R1"
    assert by_layer["grid"]["unassigned"]["count"] == 2
    assert sorted(x["name"] for x in report["idle_leaders"]) == sorted([idle.name, retired.name])

    checks = {c["check"]: c["count"] for c in report["integrity"]}
    assert checks == {"missing_place": 0, "missing_feature": 0}
    # The foreign key refuses deleting a place that has assignments …
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(text("DELETE FROM places WHERE id = :id"), {"id": grids[1].id})
    # … but a feature row removed behind its place's back is caught by the audit.
    db_session.execute(text("DELETE FROM grids WHERE id = :id"), {"id": grids[1].id})
    report = coverage_report(db_session, layers(app), BASE_LAYER)
    missing = next(c for c in report["integrity"] if c["check"] == "missing_feature")
    assert missing["count"] == 1 and missing["items"][0]["place_id"] == grids[1].id


def test_coverage_api_and_cli(app, client, db_session, county):
    viewer = token_headers(db_session, "viewer")
    response = client.get("/api/coverage", headers=viewer)
    assert response.status_code == 200
    body = response.get_json()
    assert body["summary"]["gaps"] == 1 and body["summary"]["overlaps"] == 1
    assert body["gaps"]["features"]["type"] == "FeatureCollection"
    assert client.get("/api/coverage?min_area_m2=abc", headers=viewer).status_code == 400
    # A threshold above the gap's area hides it.
    assert (
        client.get("/api/coverage?min_area_m2=60000", headers=viewer).get_json()["summary"]["gaps"]
        == 0
    )

    result = app.test_cli_runner().invoke(args=["coverage"])
    assert result.exit_code == 0, result.output
    assert "网格空白：1 处" in result.output and "网格重叠：1 处" in result.output
    assert "320999001001001 与 320999001001003 重叠" in result.output
