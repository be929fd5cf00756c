"""OGC API – Features Part 4 style writes: validation errors, all-or-nothing, ETag, 409."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from geoservice.registry import layers
from tests.api_support import assign, auth, insert_issue, insert_leader, insert_place
from tests.test_api_read import attrs_for, polygon_spec, road_spec

SQUARE = [[[120.10, 33.70], [120.12, 33.70], [120.12, 33.72], [120.10, 33.72], [120.10, 33.70]]]
BOWTIE = [[[120.10, 33.70], [120.12, 33.72], [120.12, 33.70], [120.10, 33.72], [120.10, 33.70]]]


@pytest.fixture
def planner(db_session):
    return auth(db_session, "planner")


@pytest.fixture
def spec(app):
    return polygon_spec(app)


def feature(spec, coords=SQUARE, kind="Polygon", **props):
    properties = {"code": "C001", "name": "幸福小区", **attrs_for(spec), **props}
    return {
        "type": "Feature",
        "geometry": {"type": kind, "coordinates": coords},
        "properties": properties,
    }


def post(client, spec, body, headers, query=""):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        f"/api/collections/{spec.collection}/items{query}",
        data=data,
        headers=headers,
        content_type="application/geo+json",
    )


def count(db_session, spec):
    return db_session.execute(text(f"SELECT count(*) FROM {spec.table}")).scalar()


def test_post_creates_a_feature_with_location_and_etag(client, db_session, planner, spec):
    response = post(client, spec, feature(spec), planner)
    assert response.status_code == 201, response.get_json()
    location = response.headers["Location"]
    created = json.loads(response.get_data())
    assert location.endswith(f"/api/collections/{spec.collection}/items/{created['id']}")
    assert response.headers["ETag"]
    fetched = client.get(location, headers=planner)
    assert fetched.status_code == 200
    assert fetched.headers["ETag"] == response.headers["ETag"]
    assert fetched.get_json(force=True)["properties"]["name"] == "幸福小区"
    geometry_type = db_session.execute(
        text(f"SELECT GeometryType(geom) FROM {spec.table} WHERE id = :id"), {"id": created["id"]}
    ).scalar()
    assert geometry_type.startswith(("MULTIPOLYGON", "POLYGON"))


def expect_error(response, status, field=None, contains=""):
    assert response.status_code == status, (response.status_code, response.get_data()[:400])
    body = response.get_json()
    assert body is not None and body["error"], response.get_data()
    if field is not None:
        assert body.get("field") == field, body
    assert contains in json.dumps(body, ensure_ascii=False), body
    return body


def test_bad_inputs_are_4xx_with_a_clear_message_and_nothing_is_written(
    app, client, db_session, planner, spec
):
    road = road_spec(app)
    insert_place(
        db_session,
        spec,
        "C009",
        "已有小区",
        "MULTIPOLYGON(((120.1 33.7, 120.2 33.7, 120.2 33.8, 120.1 33.7)))",
        **attrs_for(spec),
    )
    before = count(db_session, spec)
    cases = [
        ("{not json", 400, "body", "不是有效的 JSON"),
        ("", 400, "body", "请求体为空"),
        (
            '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [NaN, 1]}}',
            400,
            "body",
            "NaN",
        ),
        ([1, 2, 3], 400, "type", "Feature"),
        ({"type": "Point", "coordinates": [120, 33]}, 400, "type", "Feature"),
        (feature(spec, [120.1, 33.7], "Point"), 422, "geometry.type", "几何类型"),
        (feature(spec, BOWTIE), 422, "geometry", "自相交"),
        (
            feature(spec, [[[120.1, 33.7], [120.12, 33.7], [120.12, 33.72], [120.1, 33.72]]]),
            400,
            "geometry.coordinates",
            "未闭合",
        ),
        (
            feature(spec, [[[200.1, 33.7], [200.12, 33.7], [200.12, 33.72], [200.1, 33.7]]]),
            422,
            "geometry.coordinates",
            "超出范围",
        ),
        (feature(spec, [[[p[1], p[0]] for p in SQUARE[0]]]), 422, "geometry.coordinates", "颠倒"),
        (
            feature(spec, [[[10.1, 3.7], [10.12, 3.7], [10.12, 3.72], [10.1, 3.7]]]),
            422,
            "geometry.coordinates",
            "远离服务范围",
        ),
        (feature(spec, name=None), 422, "properties.name", "缺少必填属性"),
        (feature(spec, colour="红"), 422, "properties.colour", "未知属性"),
        (feature(spec, code="C009"), 409, "properties.code", "已被"),
        ({**feature(spec), "crs": {"type": "name"}}, 400, "crs", "crs"),
        (
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": "x"},
            },
            400,
            "geometry.coordinates",
            "坐标格式错误",
        ),
    ]
    required = next((a for a in spec.attributes if a.required), None)
    if required is not None:
        cases.append(
            (
                feature(spec, **{required.name: None}),
                422,
                f"properties.{required.name}",
                "缺少必填属性",
            )
        )
    if required is not None and required.choices:
        cases.append(
            (
                feature(spec, **{required.name: "不存在"}),
                422,
                f"properties.{required.name}",
                "不在可选范围",
            )
        )
    for body, status, field, contains in cases:
        expect_error(post(client, spec, body, planner), status, field, contains)
    line = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[120, 33]]},
        "properties": {"code": "X", "name": "y"},
    }
    expect_error(post(client, road, line, planner), 400, "geometry.coordinates", "至少需要 2")
    assert count(db_session, spec) == before


def test_invalid_geometry_reports_where_and_repair_says_so(client, db_session, planner, spec):
    body = expect_error(post(client, spec, feature(spec, BOWTIE), planner), 422, "geometry")
    assert body["detail"]["location"] == [120.11, 33.71]
    response = post(client, spec, feature(spec, BOWTIE), planner, "?repair=true")
    assert response.status_code == 201
    created = json.loads(response.get_data())
    assert any("ST_MakeValid" in n for n in created["notices"])
    valid = db_session.execute(
        text(f"SELECT ST_IsValid(geom) FROM {spec.table} WHERE id = :id"), {"id": created["id"]}
    ).scalar()
    assert valid is True


def test_code_format_of_the_layer_is_checked(app, client, planner):
    spec = next((s for s in layers(app) if s.code_pattern), None)
    if spec is None:
        pytest.skip("no layer declares a code pattern")
    body = feature(spec, code="ABC")
    expect_error(post(client, spec, body, planner), 422, "properties.code", "格式")


def test_oversized_body_is_413(app, client, planner, spec, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    body = feature(spec, name="很" * 2000)
    response = post(client, spec, body, planner)
    assert response.status_code == 413
    assert response.get_json()["error"]


def test_bulk_post_is_all_or_nothing(client, db_session, planner, spec):
    good = [feature(spec, code=f"B{i}", name=f"小区{i}") for i in range(3)]
    bad = feature(spec, BOWTIE, code="B9")
    before = count(db_session, spec)
    response = post(client, spec, {"type": "FeatureCollection", "features": [*good, bad]}, planner)
    body = expect_error(response, 422, contains="全部未写入")
    assert [r["index"] for r in body["detail"]["rejected"]] == [3]
    assert count(db_session, spec) == before
    dupes = [feature(spec, code="D1"), feature(spec, code="D1")]
    response = post(client, spec, {"type": "FeatureCollection", "features": dupes}, planner)
    expect_error(response, 409, contains="本批数据中重复")
    response = post(client, spec, {"type": "FeatureCollection", "features": good}, planner)
    assert response.status_code == 201
    assert response.get_json()["inserted"] == 3
    assert count(db_session, spec) == before + 3


def test_bulk_post_has_a_feature_limit(app, client, planner, spec, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_FEATURES_PER_REQUEST", 2)
    many = [feature(spec, code=f"M{i}") for i in range(3)]
    response = post(client, spec, {"type": "FeatureCollection", "features": many}, planner)
    expect_error(response, 413, "features")


def test_put_and_patch_with_if_match(client, db_session, planner, spec):
    created = post(client, spec, feature(spec), planner)
    url = created.headers["Location"]
    etag = created.headers["ETag"]
    replaced = feature(spec, name="新名字")
    stale = client.put(url, json=replaced, headers={**planner, "If-Match": '"0000"'})
    expect_error(stale, 412, "If-Match")
    ok = client.put(url, json=replaced, headers={**planner, "If-Match": etag})
    assert ok.status_code == 200
    assert ok.headers["ETag"] != etag
    assert ok.get_json(force=True)["properties"]["name"] == "新名字"
    expect_error(
        client.patch(
            url, json={"properties": {"name": "再改"}}, headers={**planner, "If-Match": etag}
        ),
        412,
    )
    patched = client.patch(
        url,
        json={"properties": {"name": "再改"}},
        headers={**planner, "If-Match": ok.headers["ETag"]},
    )
    assert patched.status_code == 200
    props = patched.get_json(force=True)["properties"]
    assert props["name"] == "再改" and props["code"] == "C001"  # merged, code kept
    moved = [[[x + 0.01, y] for x, y in SQUARE[0]]]
    patched = client.patch(
        url, json={"geometry": {"type": "Polygon", "coordinates": moved}}, headers=planner
    )
    assert patched.status_code == 200
    geometry = patched.get_json(force=True)["geometry"]
    assert min(p[0] for p in geometry["coordinates"][0][0]) == pytest.approx(120.11)
    expect_error(
        client.patch(url, json={"properties": {"name": None}}, headers=planner),
        422,
        "properties.name",
    )
    expect_error(client.put(url.rsplit("/", 1)[0] + "/999999", json=replaced, headers=planner), 404)


def test_put_cannot_take_a_code_already_used(client, db_session, planner, spec):
    post(client, spec, feature(spec, code="A1"), planner)
    second = post(client, spec, feature(spec, code="A2"), planner)
    response = client.put(
        second.headers["Location"], json=feature(spec, code="A1"), headers=planner
    )
    expect_error(response, 409, "properties.code")
    same = client.put(second.headers["Location"], json=feature(spec, code="A2"), headers=planner)
    assert same.status_code == 200


def test_delete_refuses_features_with_open_issues_or_active_assignments(
    app, client, db_session, planner, spec
):
    held = json.loads(post(client, spec, feature(spec, code="H1"), planner).get_data())["id"]
    leader = insert_leader(db_session, "张三", "城管局")
    assign(db_session, leader, held, "楼栋长")
    issue = insert_issue(db_session, 120.11, 33.71, primary_place_id=held, status="dispatched")
    url = f"/api/collections/{spec.collection}/items/{held}"
    body = expect_error(client.delete(url, headers=planner), 409, "featureId")
    assert str(issue) in body["error"] and "张三" in body["error"]
    kinds = {h["kind"] for h in body["detail"]["holders"]}
    assert kinds == {"open_issues", "active_assignments"}
    assert client.get(url, headers=planner).status_code == 200

    free = post(client, spec, feature(spec, code="F1"), planner)
    stale = client.delete(free.headers["Location"], headers={**planner, "If-Match": '"x"'})
    expect_error(stale, 412)
    gone = client.delete(
        free.headers["Location"], headers={**planner, "If-Match": free.headers["ETag"]}
    )
    assert gone.status_code == 204
    assert client.get(free.headers["Location"], headers=planner).status_code == 404


def test_who_may_write(client, db_session, spec):
    viewer = auth(db_session, "viewer")
    integration = auth(
        db_session, "integration", scopes=[f"layers.write:{spec.collection}", "issues.read"]
    )
    unscoped = auth(db_session, "integration", username="unscoped")
    expect_error(post(client, spec, feature(spec), viewer), 403)
    expect_error(post(client, spec, feature(spec), {}), 401)
    expect_error(post(client, spec, feature(spec), unscoped), 403)
    assert post(client, spec, feature(spec), integration).status_code == 201
    issue = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [120.1, 33.7]},
        "properties": {},
    }
    # Issues are reported through the issues workflow (geoservice/api/issues.py), which needs
    # issues.report: this token may write layers but not report.
    response = client.post("/api/collections/issues/items", json=issue, headers=integration)
    expect_error(response, 403)


def test_positions_with_and_without_height_may_be_mixed(client, planner, spec):
    # RFC 7946 allows a height; it is dropped. Mixing both was a 422 "几何无法解析".
    ring = [[120.10, 33.70, 5.0], [120.12, 33.70], [120.12, 33.72, 1.5], [120.10, 33.72]]
    response = post(client, spec, feature(spec, [[*ring, ring[0]]]), planner)
    assert response.status_code == 201, response.get_json()


def test_a_position_has_two_or_three_numbers(client, planner, spec):
    ring = [[120.10, 33.70, 5.0, "x"], [120.12, 33.70], [120.12, 33.72], [120.10, 33.72]]
    response = post(client, spec, feature(spec, [[*ring, ring[0]]]), planner)
    expect_error(response, 400, "geometry.coordinates")
