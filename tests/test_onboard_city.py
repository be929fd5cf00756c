"""Onboarding a city from its own files (tests/city_files.py): a zipped Shapefile with GBK
attributes and no .prj in a local Gauss-Krüger projection, a GeoJSON in EPSG:4490 and a
GeoPackage in the local projection; linking; the audit's findings on the constructed
code/geometry disagreements; decisions; the service area and the rankings by area."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from geoservice.areas import hierarchy, hierarchy_audit, service_area
from geoservice.issues.attribution import attribute_issues
from geoservice.ranking import ranking
from geoservice.ranking.periods import week_period
from geoservice.registry import BASE_LAYER
from tests.api_support import auth, insert_issue
from tests.city_files import (
    GK_PROJ,
    STRADDLE_M2,
    UNCOVERED_M2,
    UNTILED_M2,
    local,
    local_point,
    lonlat,
    write_city,
)
from tests.factories import LAYERS
from tests.ranking_case import TZ


def run(app, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


@pytest.fixture
def city(app, db_session, tmp_path):
    files = write_city(tmp_path)
    streets = run(
        app,
        "import-areas",
        "street",
        str(files.streets),
        "--encoding",
        "GBK",
        "--map",
        "街道代码=code",
        "--map",
        "街道名称=name",
        "--crs",
        GK_PROJ,
    )
    assert streets.exit_code == 0, streets.output
    communities = run(
        app,
        "import-areas",
        "community",
        str(files.communities),
        "--map",
        "社区代码=code",
        "--map",
        "社区名称=name",
    )
    assert communities.exit_code == 0, communities.output
    grids = run(
        app, "import-layer", "grids", str(files.grids), "--map", "网格编码=code",
        "--map", "网格名称=name",
    )  # fmt: skip
    assert grids.exit_code == 0, grids.output
    return {"files": files, "output": streets.output + communities.output + grids.output}


def parents(session, sql: str) -> dict[str, str | None]:
    return dict(session.execute(text(sql)).all())


AREA_PARENTS = (
    "SELECT a.code, p.code FROM admin_areas a LEFT JOIN admin_areas p ON p.id = a.parent_id"
)
GRID_COMMUNITIES = (
    "SELECT p.code, a.code FROM grids g JOIN places p ON p.id = g.id"
    " LEFT JOIN admin_areas a ON a.id = g.community_id"
)


def test_files_in_three_formats_and_crss_build_the_city(app, db_session, city):
    rows = db_session.execute(text("SELECT level, code, name FROM admin_areas ORDER BY code")).all()
    assert [(r.level, r.code, r.name) for r in rows] == [
        ("street", "320599001", "西街道"),
        ("community", "320599001001", "西一社区"),
        ("community", "320599001002", "西二社区"),
        ("street", "320599002", "东街道"),
        ("community", "320599002001", "东一社区"),
    ]  # GBK names read right, codes from the mapped columns
    # The Shapefile's metres and the GeoPackage's projection land on the GeoJSON's lon/lat.
    west = db_session.execute(
        text(
            "SELECT ST_X(ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1)),"
            " ST_Y(ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1)),"
            " ST_Area(geom::geography) FROM admin_areas WHERE code = '320599001'"
        )
    ).one()
    corners = [local_point(x, y) for x in (0, 1000) for y in (0, 1000)]
    assert min(abs(west[0] - x) + abs(west[1] - y) for x, y in corners) < 1e-7
    assert west[2] == pytest.approx(1000 * 1000, rel=1e-3)  # m² on the spheroid
    grid_m2 = db_session.execute(
        text(
            "SELECT ST_Area(g.geom::geography) FROM grids g JOIN places p ON p.id = g.id"
            " WHERE p.code = '320599002001001'"
        )
    ).scalar_one()
    assert grid_m2 == pytest.approx(500 * 800, rel=1e-3)
    assert "文件声明的坐标系" not in city["output"]  # the GeoPackage's own CRS was used


def test_links_follow_codes_where_they_agree_and_geometry_where_not(db_session, city):
    assert parents(db_session, AREA_PARENTS) == {
        "320599001": None,
        "320599002": None,
        "320599001001": "320599001",
        "320599001002": "320599001",
        "320599002001": "320599002",
    }
    assert parents(db_session, GRID_COMMUNITIES) == {
        "320599001001001": "320599001001",
        "320599001001002": "320599001001",
        "320599001002001": "320599001002",
        "320599001001003": "320599001002",  # code says 西一, it lies in 西二: geometry wins
        "320599002001001": "320599002001",
        "320599002009001": "320599002001",  # its code names no community
    }
    report = hierarchy.analyse(db_session, LAYERS)
    statuses = {link.code: link.status for e in report.edges for link in e.links}
    assert statuses["320599001001003"] == "code_vs_geometry"
    assert statuses["320599002009001"] == "code_unmatched"
    assert statuses["320599001001001"] == "agree"  # straddles, but mostly in its community
    output = city["output"]
    assert "320599001001003" in output and "编码与位置不一致" in output
    assert "编码前缀 320599002009 无对应社区/村" in output


def test_audit_finds_the_constructed_faults_with_areas_in_square_metres(app, db_session, city):
    result = hierarchy_audit.audit(db_session, LAYERS, BASE_LAYER, 1.0)
    s = result["summary"]
    assert s["disagreements"] == s["unresolved"] == 2
    uncovered = {i["code"]: i for i in result["uncovered"]["items"]}
    assert set(uncovered) == {"320599001001"}
    assert uncovered["320599001001"]["uncovered_m2"] == pytest.approx(UNCOVERED_M2, rel=2e-3)
    straddling = {i["code"]: i for i in result["links"]["straddling"]}
    assert set(straddling) == {"320599001001001"}
    overlaps = {p["code"]: p["overlap_m2"] for p in straddling["320599001001001"]["parents"]}
    assert overlaps["320599001002"] == pytest.approx(STRADDLE_M2, rel=2e-3)
    assert overlaps["320599001001"] == pytest.approx(500 * 500, rel=2e-3)
    assert result["links"]["outside"] == []  # every grid lies within some community
    not_tiled = {i["code"]: i for i in result["not_tiled"]["items"]}
    assert set(not_tiled) == {"320599002"}
    assert not_tiled["320599002"]["gap_m2"] == pytest.approx(UNTILED_M2, rel=2e-3)
    assert not_tiled["320599002"]["overflow_m2"] < 1
    assert s["malformed_codes"] == s["duplicate_codes"] == s["unlinked"] == 0
    # The same findings reach the coverage report, its text and the page.
    client = app.test_client()
    headers = auth(db_session, "admin", "audit_admin")
    body = client.get("/api/coverage", headers=headers).get_json()
    assert body["hierarchy"]["summary"] == s
    assert body["summary"]["hierarchy"] == hierarchy_audit.finding_count(result)
    page = client.get("/coverage", headers=headers).get_data(as_text=True)
    assert "层级检查" in page and "320599001001003" in page and "未被下级区划铺满" in page
    cli = app.test_cli_runner().invoke(args=["coverage"])
    assert "320599002 东街道（1 个社区/村）：空白 200" in cli.output


def test_accepting_the_code_side_is_kept_and_reported(app, db_session, city):
    accepted = run(app, "link-areas", "--accept", "code", "--only", "320599001001003")
    assert accepted.exit_code == 0, accepted.output
    assert "✓ 320599001001003" in accepted.output
    assert parents(db_session, GRID_COMMUNITIES)["320599001001003"] == "320599001001"
    refused = run(app, "link-areas", "--accept", "code", "--only", "320599002009001")
    assert refused.exit_code == 1 and "无对应上级" in refused.output
    assert parents(db_session, GRID_COMMUNITIES)["320599002009001"] == "320599002001"
    agreed = run(app, "link-areas", "--accept", "geometry", "--only", "320599001002001")
    assert "无需确认" in agreed.output
    # Re-linking (e.g. after another import) applies the decision again.
    hierarchy.link(db_session, LAYERS)
    assert parents(db_session, GRID_COMMUNITIES)["320599001001003"] == "320599001001"
    report = hierarchy.analyse(db_session, LAYERS)
    link = report.find("320599001001003")[0]
    assert link.status == "code_vs_geometry" and link.accepted == "code"
    assert report.unresolved == 1
    decided = db_session.execute(
        text("SELECT kind, accept, parent_code FROM area_link_decisions")
    ).all()
    assert [tuple(r) for r in decided] == [("grid", "code", "320599001001")]
    # Changing one's mind adds a row; the latest is in force, the first is history.
    run(app, "link-areas", "--accept", "geometry", "--only", "320599001001003")
    assert parents(db_session, GRID_COMMUNITIES)["320599001001003"] == "320599001002"
    count = db_session.execute(text("SELECT count(*) FROM area_link_decisions")).scalar()
    assert count == 2


def test_service_area_is_the_union_of_the_imported_streets(app, db_session, city):
    found = service_area.definition(db_session, LAYERS)
    assert found.source == "admin_areas" and found.levels == ("street",)
    assert service_area.contains(db_session, *local_point(1500, 900), LAYERS)
    assert not service_area.contains(db_session, *local_point(2100, 500), LAYERS)
    summary = service_area.summary(db_session, LAYERS)
    assert summary["area_m2"] == pytest.approx(2000 * 1000, rel=1e-3)
    assert [a["code"] for a in summary["areas"]] == ["320599001", "320599002"]
    # Configured instead: one street only; then derived again.
    result = run(app, "service-area", "--use", "320599001")
    assert result.exit_code == 0 and "指定的服务范围区划" in result.output
    assert not service_area.contains(db_session, *local_point(1500, 900), LAYERS)
    assert "没有这些代码" in run(app, "service-area", "--use", "999").output
    run(app, "service-area", "--derive")
    assert service_area.contains(db_session, *local_point(1500, 900), LAYERS)
    # The API's "far outside" check uses it: 1° east of the city is refused.
    lon, lat = local_point(500, 500)
    headers = auth(db_session, "planner", "far_planner")
    far = {
        "type": "Feature",
        "properties": {"code": "320599001001099", "name": "远处网格"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[lon + 1, lat], [lon + 1.001, lat], [lon + 1.001, lat + 0.001], [lon + 1, lat]]
            ],
        },
    }
    response = app.test_client().post("/api/collections/grids/items", json=far, headers=headers)
    assert response.status_code == 422
    assert "服务范围" in response.get_json()["error"]


def test_rankings_group_issues_by_the_imported_streets_and_communities(db_session, city):
    week = week_period(2026, 47, TZ)
    at = week.start + timedelta(days=1)
    ids = [
        insert_issue(db_session, *local_point(x, y), reported_at=at)
        for x, y in ((100, 100), (300, 700), (700, 200), (1200, 400), (1700, 400))
    ]
    attribute_issues(db_session, LAYERS, min(ids), max(ids))
    rows = ranking.ranking(db_session, LAYERS, "street", week)
    streets = {r["name"]: r["received"] for r in rows}
    assert streets == {"西街道": 3, "东街道": 2}
    communities = {
        r["name"]: r["received"] for r in ranking.ranking(db_session, LAYERS, "community", week)
    }
    assert communities == {"西一社区": 2, "西二社区": 1, "东一社区": 2}


def test_a_county_imported_later_becomes_the_parent_and_the_service_area(app, db_session, city):
    path = city["files"].communities.parent / "county.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "320599", "name": "样例区"},
                        "geometry": mapping(lonlat(local((-10, -10, 2010, 1010)))),
                    }
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    result = run(app, "import-areas", "district", str(path))
    assert result.exit_code == 0, result.output
    assert "街道/镇 → 区：2 个，编码与位置一致 2" in result.output
    assert parents(db_session, AREA_PARENTS)["320599001"] == "320599"
    assert service_area.definition(db_session, LAYERS).source == "admin_areas"
    assert service_area.place_name(db_session) == "样例区"
    assert service_area.contains(db_session, *local_point(2005, 500), LAYERS)  # the district's
