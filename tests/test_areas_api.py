"""POST /api/areas/import (planners and admins of the whole deployment) and GET
/api/service-area."""

from __future__ import annotations

import io
import json

import pytest
from pyproj import Geod
from shapely.geometry import box, mapping, shape
from sqlalchemy import text

from tests.api_support import auth


def upload(features: list[dict]) -> io.BytesIO:
    body = {"type": "FeatureCollection", "features": features}
    return io.BytesIO(json.dumps(body, ensure_ascii=False).encode())


BOXES = [(120.7 + x * 0.01, 31.3, 120.71 + x * 0.01, 31.31) for x in range(3)]


def area(code: str, name: str, x: int) -> dict:
    geom = box(*BOXES[x])
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name},
        "geometry": mapping(geom),
    }


def post(client, headers, level: str, features: list[dict], **form):
    data = {"level": level, "file": (upload(features), "areas.geojson"), **form}
    return client.post("/api/areas/import", data=data, headers=headers)


def test_planner_imports_areas_and_the_hierarchy_is_linked(client, db_session):
    headers = auth(db_session, "planner", "area_planner")
    streets = [area("320599001", "西街道", 0), area("320599002", "东街道", 1)]
    response = post(client, headers, "street", streets)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["imported"] == 2
    community = [area("320599002001", "东一社区", 0)]  # code says 东街道, it lies in 西街道
    body = post(client, headers, "community", community).get_json()
    edge = body["links"]["edges"][0]
    assert edge["counts"] == {"code_vs_geometry": 1} and edge["unresolved"] == 1
    parent = db_session.execute(
        text(
            "SELECT p.code FROM admin_areas c JOIN admin_areas p ON p.id = c.parent_id"
            " WHERE c.code = '320599002001'"
        )
    ).scalar_one()
    assert parent == "320599001"
    logged = db_session.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'areas.import'")
    ).scalar()
    assert logged == 2
    served = client.get("/api/service-area", headers=headers).get_json()
    assert served["properties"]["source"] == "admin_areas"
    assert [a["code"] for a in served["properties"]["areas"]] == ["320599001", "320599002"]
    assert served["geometry"]["type"] in ("Polygon", "MultiPolygon")
    geod = Geod(ellps="WGS84")
    expected = sum(abs(geod.geometry_area_perimeter(box(*b))[0]) for b in BOXES[:2])
    assert served["properties"]["area_m2"] == pytest.approx(expected, rel=1e-3)


def test_rejects_are_422_with_the_report_and_nothing_written(client, db_session):
    headers = auth(db_session, "admin", "area_admin")
    response = post(client, headers, "street", [area("3205990", "短代码", 0)])
    assert response.status_code == 422
    body = response.get_json()
    assert body["field"] == "file" and "全部未写入" in body["error"]
    assert "9 位数字" in body["detail"]["rejected"][0]["error"]
    assert db_session.execute(text("SELECT count(*) FROM admin_areas")).scalar() == 0
    bad = client.post(
        "/api/areas/import",
        data={"level": "town", "file": (upload([]), "a.geojson")},
        headers=headers,
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "level"
    odd = client.post(
        "/api/areas/import",
        data={"level": "street", "file": (io.BytesIO(b"x"), "a.txt")},
        headers=headers,
    )
    assert odd.status_code == 415


def test_only_whole_deployment_writers_import_areas(client, db_session):
    streets = [area("320599001", "西街道", 0)]
    assert post(client, auth(db_session, "admin", "a_admin"), "street", streets).status_code == 201
    viewer = auth(db_session, "viewer", "a_viewer")
    assert post(client, viewer, "street", [area("320599002", "东街道", 1)]).status_code == 403
    bound = auth(db_session, "planner", "a_bound", area_code="320599001")
    assert post(client, bound, "community", [area("320599001001", "西一", 0)]).status_code == 403
    assert client.post("/api/areas/import").status_code == 401
    assert client.get("/api/service-area", headers=viewer).status_code == 200


def test_areas_by_level_and_parent_with_boundaries_for_maps(client, db_session):
    headers = auth(db_session, "admin", "map_admin")
    post(
        client, headers, "street", [area("320599001", "西街道", 0), area("320599002", "东街道", 1)]
    )
    post(client, headers, "community", [area("320599001001", "西一社区", 0)])
    listed = client.get("/api/areas?level=street", headers=headers).get_json()["areas"]
    assert [a["code"] for a in listed] == ["320599001", "320599002"]
    children = client.get("/api/areas?parent=320599001", headers=headers).get_json()["areas"]
    assert [(a["code"], a["parent"]) for a in children] == [("320599001001", "320599001")]
    fc = client.get("/api/areas?level=street&geometry=true", headers=headers).get_json()
    assert fc["type"] == "FeatureCollection" and [f["id"] for f in fc["features"]] == [
        "320599001",
        "320599002",
    ]
    assert shape(fc["features"][0]["geometry"]).bounds == pytest.approx(BOXES[0])
    for bad in ("level=town", "geometry=maybe", "zoom=3"):
        response = client.get(f"/api/areas?{bad}", headers=headers)
        assert response.status_code == 400 and response.get_json()["field"] == bad.split("=")[0]


def test_boundaries_are_served_counter_clockwise_whatever_their_stored_ring(client, db_session):
    """RFC 7946 §3.1.6: exterior rings counter-clockwise, also for an area stored clockwise."""
    from shapely.geometry import LinearRing
    from shapely.geometry.polygon import orient

    clockwise = orient(box(*BOXES[0]), sign=-1.0)
    assert not LinearRing(clockwise.exterior.coords).is_ccw
    db_session.execute(
        text(
            "INSERT INTO admin_areas (level, code, name, geom)"
            " VALUES ('county', '320599', '顺时针县', ST_Multi(ST_GeomFromText(:wkt, 4326)))"
        ),
        {"wkt": clockwise.wkt},
    )
    db_session.flush()
    headers = auth(db_session, "viewer", "ring_viewer")

    def rings(geometry: dict) -> list[bool]:
        polygons = (
            geometry["coordinates"]
            if geometry["type"] == "MultiPolygon"
            else [geometry["coordinates"]]
        )
        return [LinearRing(p[0]).is_ccw for p in polygons]

    listed = client.get("/api/areas?level=county&geometry=true", headers=headers).get_json()
    one = client.get("/api/areas/320599", headers=headers).get_json()
    served = client.get("/api/service-area", headers=headers).get_json()
    for geometry in (listed["features"][0]["geometry"], one["geometry"], served["geometry"]):
        assert all(rings(geometry)), geometry


def test_refusals_over_the_api_name_form_fields_not_command_line_flags(client, db_session):
    headers = auth(db_session, "planner", "flag_planner")
    streets = [area("320599001", "西街道", 0)]
    assert post(client, headers, "street", streets).status_code == 201
    again = post(client, headers, "street", streets)
    assert again.status_code == 422
    text_ = json.dumps(again.get_json(), ensure_ascii=False)
    assert "replace=true" in text_ and "--replace" not in text_
    replaced = post(client, headers, "street", streets, replace="true")
    assert replaced.status_code == 201
