"""Text holding NUL (U+0000), which PostgreSQL cannot store, is refused with a 400 naming the
field wherever it comes in — query string, form fields, JSON bodies, GeoJSON, uploaded files —
and nothing of the request is written. Before, a NUL in a category name reached psycopg2 in the
middle of a flush: a 500 (found by the API contract test with more examples)."""

from __future__ import annotations

import io
import json

from sqlalchemy import text

from geoservice.edge.text_input import unstorable_path
from tests.api_support import auth
from tests.test_import_export import layer_count, point_spec
from tests.world import bearer

SKIPPED = ("token", "deactivate", "revoke", "password", "logout", "login", "/vendor/", "/static/")


def test_unstorable_path_names_where_the_character_is():
    assert unstorable_path({"a": "x", "b": [1, {"c": "y\x00"}]}) == "b[1].c"
    assert unstorable_path({"a": ["ok", "lone \ud800"]}) == "a[1]"
    assert unstorable_path(json.loads('{"pair": "\\ud83d\\ude0d"}')) is None  # JSON joins a pair
    assert unstorable_path({"k\x00": 1}) == "k\x00"
    assert unstorable_path("\x00") == ""
    assert unstorable_path({"a": ["x", None, 2.5, True], "b": {"c": "NUL"}}) is None


def test_a_category_named_with_nul_is_refused_and_nothing_is_written(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    session = world["session"]
    before = session.scalar(text("SELECT count(*) FROM rule_settings"))
    response = world_client.post(
        "/api/rule-settings/categories",
        headers=admin,
        json={"name": "\x00乱码", "deadline_hours": 24, "note": "ok"},
    )
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["field"] == "name"
    assert "NUL" in body["error"]
    assert session.scalar(text("SELECT count(*) FROM rule_settings")) == before
    nested = world_client.post(
        "/api/rule-settings/categories",
        headers=admin,
        json={"name": "占道经营2", "deadline_hours": 24, "extra": {"list": ["a", "b\x00"]}},
    )
    assert nested.status_code == 400
    assert nested.get_json()["field"] == "extra.list[1]"


def test_a_lone_surrogate_in_json_is_refused_and_nothing_is_written(world, world_client):
    """JSON may spell half a UTF-16 pair (`\\ud800`); UTF-8, hence PostgreSQL, cannot hold it.
    It reached the database as invalid JSON for the audit log (a 500 before)."""
    admin = bearer(world["tokens"]["admin"])
    session = world["session"]
    before = session.scalar(text("SELECT count(*) FROM rule_settings"))
    for raw in (
        '{"name": "坏\\ud800名", "deadline_hours": 24, "note": "x"}',
        '{"name": "占道", "deadline_hours": 24, "\\udc00": 1}',
    ):
        response = world_client.post(
            "/api/rule-settings/categories",
            headers=admin,
            data=raw,
            content_type="application/json",
        )
        assert response.status_code == 400, response.get_data(as_text=True)
        assert "代理项" in response.get_json()["error"]
    assert response.get_json()["field"] == "\\udc00"
    assert session.scalar(text("SELECT count(*) FROM rule_settings")) == before


def test_query_strings_and_form_fields_with_nul_are_refused(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    page = world_client.get("/admin/users?q=%00", headers=admin)
    assert page.status_code == 400
    assert "NUL" in page.get_data(as_text=True)
    assert "代理项" not in page.get_data(as_text=True)  # a query string cannot hold one
    api = world_client.get("/api/issues?category=a%00b", headers=admin)
    assert api.status_code == 400
    assert api.get_json()["field"] == "category"
    named = world_client.get("/api/issues?%00=1", headers=admin)
    assert named.status_code == 400
    assert named.get_json()["field"] == "\\u0000"
    form = world_client.post(
        "/api/collections/issues/items",
        headers=admin,
        content_type="multipart/form-data",
        data={"lon": "120.26", "lat": "33.78", "category": "环境卫生", "description": "x\x00y"},
    )
    assert form.status_code == 400
    assert form.get_json()["field"] == "description"


def test_geojson_and_uploaded_files_with_nul_are_refused_whole(app, client, db_session):
    spec = point_spec(app)
    planner = auth(db_session, "planner")
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [120.26, 33.78]},
        "properties": {"code": "N1", "name": "市场\x00"},
    }
    written = client.post(
        f"/api/collections/{spec.collection}/items",
        headers=planner,
        data=json.dumps(feature),
        content_type="application/geo+json",
    )
    assert written.status_code == 400, written.get_json()
    assert written.get_json()["field"] == "properties.name"
    # A file's cells are not request text: psycopg2 refuses the string, the import rolls back.
    data = "code,name,lon,lat\nU1,好市场,120.26,33.78\nU2,坏\x00市场,120.25,33.77\n".encode()
    uploaded = client.post(
        f"/api/collections/{spec.collection}/import",
        headers=planner,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "m.csv")},
    )
    assert 400 <= uploaded.status_code < 500, uploaded.get_json()
    assert uploaded.get_json()["error"]
    assert layer_count(db_session, spec) == 0


def test_no_route_answers_nul_text_with_a_server_error(app, world, world_client):
    admin = bearer(world["tokens"]["admin"])
    words = ("name", "note", "title", "description", "reason", "username", "category", "q")
    body = {word: f"值\x00{word}" for word in words}
    crashed, called = [], 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or any(word in rule.rule for word in SKIPPED):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", "1")
            for converter in ("int", "string", "path"):
                path = path.replace(f"<{converter}:{name}>", "1")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method == "GET":
                attempts = [{"query_string": {word: "a\x00" for word in words}}]
            else:
                attempts = [
                    {"json": body},
                    {"data": dict(body), "content_type": "multipart/form-data"},
                ]
            for attempt in attempts:
                response = world_client.open(path, method=method, headers=admin, **attempt)
                called += 1
                if response.status_code >= 500:
                    crashed.append((method, path, response.status_code))
    assert called > 300
    assert crashed == []
