"""What a planner reads when a layer import is refused: the feature at fault and the mistake,
in Chinese — numbers given as text, latitude and longitude swapped, coordinates out of range,
a broken file — never the server's paths or a hint meant for the command line; and nothing
written."""

from __future__ import annotations

import io
import json

from sqlalchemy import text

from geoservice.registry import layers
from tests.api_support import auth


def spec_named(app, name: str):
    return next(s for s in layers(app) if s.name == name)


def square(lon: float, lat: float, d: float = 0.0005) -> dict:
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def upload(client, headers, spec, features: list[dict] | None = None, raw: bytes | None = None):
    body = (
        raw
        if raw is not None
        else json.dumps({"type": "FeatureCollection", "features": features}).encode()
    )
    return client.post(
        f"/api/collections/{spec.collection}/import",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(body), "layer.geojson", "application/geo+json")},
    )


def count(session, spec) -> int:
    return session.execute(text(f"SELECT count(*) FROM {spec.table}")).scalar()


def required(spec) -> dict:
    return {a.name: a.choices[0] for a in spec.attributes if a.required and a.choices}


def test_a_number_given_as_text_is_a_number_and_only_the_bad_value_is_refused(
    app, client, db_session
):
    spec = spec_named(app, "compound")
    planner = auth(db_session, "planner")
    features = [
        {"type": "Feature", "geometry": square(120.26 + i * 0.001, 33.78),
         "properties": {"code": f"XQ{i}", "name": f"小区{i}", "building_count": value,
                        **required(spec)}}
        for i, value in enumerate([3, "5栋", "12"])
    ]  # fmt: skip
    refused = upload(client, planner, spec, features)
    assert refused.status_code == 422
    rejected = refused.get_json()["detail"]["rejected"]
    assert [r["number"] for r in rejected] == [2], rejected
    assert "5栋" in rejected[0]["error"] and "building_count" in rejected[0]["error"]
    assert count(db_session, spec) == 0
    features[1]["properties"]["building_count"] = 5
    done = upload(client, planner, spec, features)
    assert done.status_code == 201, done.get_json()
    stored = db_session.execute(
        text(f"SELECT building_count FROM {spec.table} ORDER BY building_count")
    ).scalars()
    assert list(stored) == [3, 5, 12]


def test_swapped_and_out_of_range_coordinates_are_named_per_feature(app, client, db_session):
    spec = spec_named(app, "market")
    planner = auth(db_session, "planner")
    good = {"type": "Point", "coordinates": [120.2612, 33.7815]}
    for wrong, words in (([33.7815, 120.2612], "颠倒"), ([200.0, 95.0], "超出范围")):
        features = [
            {"type": "Feature", "geometry": good,
             "properties": {"code": "SC1", "name": "城北市场", **required(spec)}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": wrong},
             "properties": {"code": "SC2", "name": "城南市场", **required(spec)}},
        ]  # fmt: skip
        refused = upload(client, planner, spec, features)
        body = refused.get_json()
        assert refused.status_code == 422, body
        assert [r["number"] for r in body["detail"]["rejected"]] == [2], body
        message = body["detail"]["rejected"][0]["error"]
        assert words in message and "看起来是投影坐标" not in body["error"] + message
        assert count(db_session, spec) == 0


def test_a_broken_file_is_explained_without_the_servers_paths(app, client, db_session):
    spec = spec_named(app, "market")
    planner = auth(db_session, "planner")
    for raw in (b"{not json", b'{"type": "FeatureCollection", "features": [', b""):
        refused = upload(client, planner, spec, raw=raw)
        body = refused.get_json()
        assert refused.status_code in (400, 422), body
        assert body["error"].startswith(("无法读取文件：", "文件")), body
        assert "/tmp" not in json.dumps(body, ensure_ascii=False), body


def test_the_import_form_documents_every_field_it_takes(app, client, db_session):
    """The OpenAPI document lists every form field the import reads (others are a 400): a
    client built from it can ask for repair, skip_invalid, defaults…"""
    from geoservice.api.imports import FORM_FIELDS

    spec = spec_named(app, "market")
    doc = client.get("/api/openapi", headers=auth(db_session, "viewer")).get_json()
    form = doc["paths"][f"/collections/{spec.collection}/import"]["post"]["requestBody"]
    schema = form["content"]["multipart/form-data"]["schema"]
    assert set(schema["properties"]) == {"file", *FORM_FIELDS}
    planner = auth(db_session, "planner")
    refused = client.post(
        f"/api/collections/{spec.collection}/import",
        headers=planner,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"{}"), "x.geojson"), "skip_invalid": "sure"},
    )
    assert refused.status_code == 400 and refused.get_json()["field"] == "skip_invalid"


def test_generated_codes_follow_the_chinese_file_name_as_on_the_command_line(
    app, client, db_session
):
    """Two files without codes, 小区.geojson then 老旧小区.geojson: their generated codes
    differ (every Chinese name was "upload", so the second file's collided with the first's)."""
    spec = spec_named(app, "compound")
    planner = auth(db_session, "planner")
    for n, name in enumerate(["小区.geojson", "老旧小区.geojson"]):
        features = [
            {"type": "Feature", "geometry": square(120.26 + i * 0.001, 33.78 + n * 0.01),
             "properties": {"name": f"{name[:-8]}{i}", **required(spec)}}
            for i in range(2)
        ]  # fmt: skip
        body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
        done = client.post(
            f"/api/collections/{spec.collection}/import",
            headers=planner,
            content_type="multipart/form-data",
            data={
                "file": (io.BytesIO(body), name, "application/geo+json"),
                "generate_codes": "true",
            },
        )
        assert done.status_code == 201, done.get_json()
    codes = db_session.execute(text("SELECT code FROM places ORDER BY code")).scalars().all()
    assert codes == [
        "compound-小区-00001",
        "compound-小区-00002",
        "compound-老旧小区-00001",
        "compound-老旧小区-00002",
    ]
