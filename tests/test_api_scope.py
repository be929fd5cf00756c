"""The features API respects account scope (area-bound accounts) and audits every write."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.api_support import auth, insert_issue, insert_place
from tests.test_api_read import attrs_for, road_spec
from tests.test_api_tiles import get_tile

INSIDE = "MULTILINESTRING((120.10 33.70, 120.11 33.705))"
OUTSIDE = "MULTILINESTRING((120.30 33.70, 120.31 33.705))"


def street(db_session) -> str:
    db_session.execute(
        text(
            "INSERT INTO admin_areas (level, code, name, geom) VALUES ('street', '320999001',"
            " '城东街道', ST_Multi(ST_MakeEnvelope(120.0, 33.6, 120.2, 33.8, 4326)))"
        )
    )
    return "320999001"


def test_an_area_bound_account_sees_only_its_area(app, client, db_session):
    spec = road_spec(app)
    code = street(db_session)
    inside = insert_place(db_session, spec, "IN", "城东路", INSIDE, **attrs_for(spec))
    outside = insert_place(db_session, spec, "OUT", "城西路", OUTSIDE, **attrs_for(spec))
    near = insert_issue(db_session, 120.15, 33.75)
    insert_issue(db_session, 120.35, 33.75)
    local = auth(db_session, "viewer", username="local", area_code=code)
    everyone = auth(db_session, "viewer", username="everyone")
    base = f"/api/collections/{spec.collection}/items"
    body = json.loads(client.get(f"{base}?limit=1", headers=local).get_data())
    assert [f["id"] for f in body["features"]] == [inside] and body["numberMatched"] == 1
    assert client.get(f"{base}/{outside}", headers=local).status_code == 404
    assert client.get(f"{base}/{outside}", headers=everyone).status_code == 200
    issues = json.loads(
        client.get("/api/collections/issues/items?limit=1", headers=local).get_data()
    )
    assert [f["id"] for f in issues["features"]] == [near] and issues["numberMatched"] == 1
    tile = get_tile(client, local, "issues", 6, 120.2, 33.75)
    assert sum(f["properties"]["count"] for f in tile["issues"]["features"]) == 1
    tile = get_tile(client, everyone, "issues", 6, 120.2, 33.75)
    assert sum(f["properties"]["count"] for f in tile["issues"]["features"]) == 2
    exported = client.get(f"/api/collections/{spec.collection}/export", headers=local)
    assert [f["id"] for f in json.loads(exported.get_data())["features"]] == [inside]


def test_an_area_bound_planner_cannot_write_outside_its_area(app, client, db_session):
    spec = road_spec(app)
    code = street(db_session)
    outside = insert_place(db_session, spec, "OUT", "城西路", OUTSIDE, **attrs_for(spec))
    planner = auth(db_session, "planner", username="local_planner", area_code=code)
    url = f"/api/collections/{spec.collection}/items"

    def feature(coords, code_):
        return {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {"code": code_, "name": "新路", **attrs_for(spec)},
        }

    far = client.post(url, json=feature([[120.30, 33.70], [120.31, 33.71]], "N1"), headers=planner)
    assert far.status_code == 403
    assert client.delete(f"{url}/{outside}", headers=planner).status_code == 404
    near = client.post(url, json=feature([[120.10, 33.70], [120.11, 33.71]], "N2"), headers=planner)
    assert near.status_code == 201
    assert db_session.execute(text("SELECT count(*) FROM places WHERE code = 'N1'")).scalar() == 0


def test_writes_are_in_the_audit_log(app, client, db_session):
    spec = road_spec(app)
    planner = auth(db_session, "planner", username="writer")
    url = f"/api/collections/{spec.collection}/items"
    body = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[120.1, 33.7], [120.2, 33.71]]},
        "properties": {"code": "A1", "name": "审计路", **attrs_for(spec)},
    }
    created = client.post(url, json=body, headers=planner)
    fid = json.loads(created.get_data())["id"]
    client.patch(f"{url}/{fid}", json={"properties": {"name": "改名路"}}, headers=planner)
    client.delete(f"{url}/{fid}", headers=planner)
    rows = db_session.execute(
        text(
            "SELECT action, actor, entity_type, before->'properties'->>'name',"
            " after->'properties'->>'name' FROM audit_log WHERE entity_id = :id ORDER BY id"
        ),
        {"id": str(fid)},
    ).all()
    assert [tuple(r) for r in rows] == [
        ("feature.create", "writer", spec.collection, None, "审计路"),
        ("feature.update", "writer", spec.collection, "审计路", "改名路"),
        ("feature.delete", "writer", spec.collection, "改名路", None),
    ]
