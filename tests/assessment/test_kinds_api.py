"""A kind created over the API is a collection (items, filters, tiles, export) and claims
reports in attribution at once, without a restart; bad input is a clear 4xx."""

from __future__ import annotations

import math

from sqlalchemy import text

from tests.api_support import auth

LON, LAT = 120.30, 33.80


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int(
        (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi)
        / 2
        * n
    )
    return x, y


def collection_ids(client, headers) -> list[str]:
    body = client.get("/api/collections", headers=headers).get_json()
    return [c["id"] for c in body["collections"]]


KIND = {
    "code": "hospital",
    "name": "医院",
    "geometry_type": "point",
    "colour": "#c62828",
    "claim_radius_m": 40,
    "precedence": 90,
    "attributes": [
        {"name": "grade", "title": "等级", "type": "choice", "required": True,
         "choices": ["三级", "二级", "一级"]},
        {"name": "beds", "title": "床位数", "type": "integer"},
        {"name": "opened", "title": "启用日期", "type": "date"},
    ],
}  # fmt: skip


def test_a_kind_created_over_the_api_is_served_without_a_restart(client, db_session):
    headers = auth(db_session, "planner")
    ids = [
        c["id"] for c in client.get("/api/collections", headers=headers).get_json()["collections"]
    ]
    assert "sites" in ids and "site-hospital" not in ids

    created = client.post("/api/assessment/kinds", json=KIND, headers=headers)
    assert created.status_code == 201, created.get_json()
    site = client.post(
        "/api/assessment/sites",
        json={"kind": "hospital", "code": "H1", "name": "县人民医院", "lon": LON, "lat": LAT,
              "attributes": {"grade": "二级", "beds": "300", "opened": "1998-05-01"}},
        headers=headers,
    )  # fmt: skip
    assert site.status_code == 201, site.get_json()
    assert site.get_json()["attributes"] == {"grade": "二级", "beds": 300, "opened": "1998-05-01"}

    ids = [
        c["id"] for c in client.get("/api/collections", headers=headers).get_json()["collections"]
    ]
    assert "site-hospital" in ids
    items = client.get("/api/collections/site-hospital/items?grade=二级", headers=headers)
    assert items.status_code == 200, items.get_json()
    features = items.get_json()["features"]
    assert [f["properties"]["name"] for f in features] == ["县人民医院"]
    assert features[0]["properties"]["beds"] == 300
    assert features[0]["properties"]["kind_name"] == "医院"
    none = client.get("/api/collections/site-hospital/items?grade=一级", headers=headers)
    assert none.get_json()["features"] == []
    bad = client.get("/api/collections/site-hospital/items?grade=特级", headers=headers)
    assert bad.status_code == 400

    z = 16
    x, y = tile_of(LON, LAT, z)
    tile = client.get(f"/api/collections/site-hospital/tiles/{z}/{x}/{y}.pbf", headers=headers)
    assert tile.status_code == 200 and len(tile.data) > 0
    export = client.get("/api/collections/site-hospital/export?f=geojson", headers=headers)
    assert export.status_code == 200 and "县人民医院" in export.get_data(as_text=True)

    # Attribution: 30 m away is inside the 40 m claim radius, the site is the primary place.
    near = client.get(f"/api/attribution?lon={LON + 0.0003}&lat={LAT}", headers=headers)
    assert near.status_code == 200, near.get_json()
    primary = near.get_json()["attribution"]["primary_place"]
    assert primary["layer"] == "site" and primary["name"] == "县人民医院"
    far = client.get(f"/api/attribution?lon={LON + 0.001}&lat={LAT}", headers=headers)
    assert far.get_json()["attribution"]["primary_place"] is None

    # A wider radius takes effect on the next request.
    kind_id = created.get_json()["id"]
    widened = client.patch(f"/api/assessment/kinds/{kind_id}", json={"claim_radius_m": 120},
                           headers=headers)  # fmt: skip
    assert widened.status_code == 200
    far = client.get(f"/api/attribution?lon={LON + 0.001}&lat={LAT}", headers=headers)
    assert far.get_json()["attribution"]["primary_place"]["name"] == "县人民医院"

    # Retired: no longer a collection, no longer claims; the site stays.
    client.patch(f"/api/assessment/kinds/{kind_id}", json={"retired": True}, headers=headers)
    ids = [
        c["id"] for c in client.get("/api/collections", headers=headers).get_json()["collections"]
    ]
    assert "site-hospital" not in ids
    assert client.get("/api/collections/site-hospital/items", headers=headers).status_code == 404
    assert db_session.scalar(text("SELECT count(*) FROM sites")) == 1


def test_bad_sites_and_kinds_are_refused_naming_the_field(client, db_session):
    headers = auth(db_session, "planner")
    assert client.post("/api/assessment/kinds", json=KIND, headers=headers).status_code == 201

    def post_site(**changes):
        body = {"kind": "hospital", "code": "H2", "name": "医院二", "lon": LON, "lat": LAT,
                "attributes": {"grade": "一级"}} | changes  # fmt: skip
        return client.post("/api/assessment/sites", json=body, headers=headers)

    cases = [
        (post_site(kind="zoo"), 422, "kind"),
        (post_site(attributes={}), 422, "attributes.grade"),
        (post_site(attributes={"grade": "一级", "beds": "many"}), 422, "attributes.beds"),
        (post_site(attributes={"grade": "一级", "opened": "2020-13-01"}), 422, "attributes.opened"),
        (post_site(attributes={"grade": "一级", "colour": "red"}), 422, "attributes.colour"),
        (post_site(attributes={"grade": "特级"}), 422, "attributes.grade"),
        (
            post_site(
                geometry={
                    "type": "Polygon",
                    "coordinates": [
                        [[LON, LAT], [LON + 0.001, LAT], [LON, LAT + 0.001], [LON, LAT]]
                    ],
                },
                lon=None,
            ),
            422,
            "geometry",
        ),
    ]
    for response, status, field in cases:
        assert response.status_code == status, response.get_json()
        assert response.get_json()["field"] == field
    assert db_session.scalar(text("SELECT count(*) FROM sites")) == 0

    bad_kind = client.post(
        "/api/assessment/kinds",
        json={
            **KIND,
            "code": "x1",
            "name": "另一类",
            "attributes": [{"name": "a", "type": "float"}],
        },
        headers=headers,
    )
    assert bad_kind.status_code == 422 and bad_kind.get_json()["field"] == "attributes[0].type"
    dup = client.post("/api/assessment/kinds", json=KIND, headers=headers)
    assert dup.status_code == 409 and dup.get_json()["field"] == "code"


def test_a_used_kind_cannot_be_deleted_but_can_be_retired(client, db_session):
    headers = auth(db_session, "planner")
    kind_id = client.post("/api/assessment/kinds", json=KIND, headers=headers).get_json()["id"]
    client.post(
        "/api/assessment/sites",
        json={"kind": "hospital", "code": "H3", "name": "医院三", "lon": LON, "lat": LAT,
              "attributes": {"grade": "一级"}},
        headers=headers,
    )  # fmt: skip
    refused = client.delete(f"/api/assessment/kinds/{kind_id}", headers=headers)
    assert refused.status_code == 409 and refused.get_json()["detail"]["sites"] == 1
    retired = client.patch(f"/api/assessment/kinds/{kind_id}", json={"retired": True},
                           headers=headers)  # fmt: skip
    assert retired.status_code == 200 and retired.get_json()["retired"] is True


def test_viewers_read_but_do_not_write_kinds(client, db_session):
    viewer = auth(db_session, "viewer")
    assert client.get("/api/assessment/kinds", headers=viewer).status_code == 200
    assert client.post("/api/assessment/kinds", json=KIND, headers=viewer).status_code == 403


def test_a_new_kind_is_importable_at_once_from_excel_and_geojson(client, db_session):
    import io
    import json

    from openpyxl import Workbook

    headers = auth(db_session, "planner")
    assert client.post("/api/assessment/kinds", json=KIND, headers=headers).status_code == 201
    wb = Workbook()
    wb.active.append(["点位名称", "点位类别", "经度", "纬度", "坐标系", "点长姓名", "类别属性"])
    wb.active.append(["中医院", "医院", LON, LAT, "WGS-84", "孙七", "grade=二级；beds=120"])
    out = io.BytesIO()
    wb.save(out)
    xlsx = client.post(
        "/api/assessment/sites/import",
        data={"file": (io.BytesIO(out.getvalue()), "点位清单.xlsx")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert xlsx.status_code == 200, xlsx.get_json()
    assert xlsx.get_json()["created"] == 1 and xlsx.get_json()["leaders_created"] == 1

    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [LON + 0.01, LAT]},
         "properties": {"code": "H9", "name": "妇幼保健院", "kind": "hospital", "grade": "一级"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [LON + 0.02, LAT]},
         "properties": {"code": "H10", "name": "无等级医院", "kind": "hospital"}},
    ]}  # fmt: skip
    refused = client.post(
        "/api/assessment/sites/import",
        data={"file": (io.BytesIO(json.dumps(collection).encode()), "sites.geojson")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert refused.get_json()["detail"]["errors"][0]["row"] == 2
    assert refused.get_json()["detail"]["errors"][0]["column"] == "attributes.grade"
    collection["features"].pop()
    accepted = client.post(
        "/api/assessment/sites/import",
        data={"file": (io.BytesIO(json.dumps(collection).encode()), "sites.geojson")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert accepted.status_code == 200 and accepted.get_json()["created"] == 1
    items = client.get("/api/collections/site-hospital/items", headers=headers).get_json()
    assert sorted(f["properties"]["name"] for f in items["features"]) == ["中医院", "妇幼保健院"]


def test_features_posted_to_a_kind_collection_are_checked_against_the_kind(client, db_session):
    headers = auth(db_session, "planner")
    assert client.post("/api/assessment/kinds", json=KIND, headers=headers).status_code == 201
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [LON, LAT]},
        "properties": {"code": "H20", "name": "口腔医院", "grade": "一级", "beds": 40},
    }
    created = client.post("/api/collections/site-hospital/items", json=feature, headers=headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["properties"]["kind"] == "hospital"
    assert created.get_json()["properties"]["beds"] == 40
    bad = {**feature, "properties": {"code": "H21", "name": "x", "grade": "五级"}}
    refused = client.post(
        "/api/collections/site-hospital/items",
        json={"type": "FeatureCollection", "features": [{**feature, "properties": {
            "code": "H22", "name": "好医院", "grade": "二级"}}, bad]},
        headers=headers,
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.get_json()["detail"]["rejected"][0]["index"] == 1
    assert refused.get_json()["field"] == "attributes.grade"
    assert db_session.scalar(text("SELECT count(*) FROM sites")) == 1
    viewer = auth(db_session, "viewer", "viewer_post")
    denied = client.post("/api/collections/site-hospital/items", json=feature, headers=viewer)
    assert denied.status_code == 403


def test_other_writes_on_a_sites_collection_point_to_the_sites_api(client, db_session):
    headers = auth(db_session, "planner")
    response = client.delete("/api/collections/sites/items/1", headers=headers)
    assert response.status_code == 405
    assert "/api/assessment/sites" in response.get_json()["detail"]
