"""包保 JSON API: CRUD, assignments with history, role checks, a leader's features as GeoJSON."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import LinearRing, shape

from geoservice.models import Assignment, Issue
from geoservice.responsibility.responsibility import now
from tests.factories import add_issue, assign, metres, rect
from tests.support_responsibility import add_person, add_place, add_unit, day, token_headers


def days_ago(n: int) -> str:
    """A date n days before today in Beijing (the app's TIMEZONE), as the API takes it: the
    tests hold on any date (TEST_CLOCK_SHIFT)."""
    return (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=n)).date().isoformat()


@pytest.fixture
def planner(db_session):
    return token_headers(db_session, "planner")


@pytest.fixture
def viewer(db_session):
    return token_headers(db_session, "viewer")


def test_planner_creates_unit_and_leader_and_bad_phone_is_a_chinese_400(client, planner):
    unit = client.post(
        "/api/units", json={"name": "县城市管理局", "is_lead": True}, headers=planner
    )
    assert unit.status_code == 201 and unit.get_json()["is_lead"] is True
    unit_id = unit.get_json()["id"]
    again = client.post("/api/units", json={"name": "县城市管理局"}, headers=planner)
    assert again.status_code == 409

    bad = client.post(
        "/api/leaders",
        json={"name": "张伟", "level": "县级", "phone": "12345", "unit_id": unit_id},
        headers=planner,
    )
    assert bad.status_code == 400
    body = bad.get_json()
    assert body["field"] == "phone" and "电话号码" in body["error"]

    ok = client.post(
        "/api/leaders",
        json={"name": "张伟", "level": "县级", "phone": "0515 8888 1234", "unit_id": unit_id},
        headers=planner,
    )
    assert ok.status_code == 201, ok.get_json()
    leader = ok.get_json()
    assert leader["phone"] == "051588881234" and leader["unit"] == "县城市管理局"

    level = client.patch(f"/api/leaders/{leader['id']}", json={"level": "部级"}, headers=planner)
    assert level.status_code == 400 and level.get_json()["field"] == "level"
    assert client.post("/api/leaders", data="x", headers=planner).status_code == 400
    missing = client.patch("/api/leaders/999999", json={"title": "局长"}, headers=planner)
    assert missing.status_code == 404 and missing.get_json()["error"]


def test_assign_reassign_and_query_both_dates_through_the_api(client, db_session, planner):
    grid = add_place(db_session, "grid", "320999001001001", "第一网格")
    a = add_person(db_session, "王芳")
    b = add_person(db_session, "李强")
    created = client.post(
        "/api/assignments",
        json={
            "leader_id": a.id,
            "layer": "网格",
            "code": grid.code,
            "role": "网格长",
            "valid_from": days_ago(300),
        },
        headers=planner,
    )
    assert created.status_code == 201, created.get_json()
    first = created.get_json()
    assert first["place"]["layer_title"] == "网格" and first["is_primary"] is True

    moved = client.post(
        f"/api/assignments/{first['id']}/reassign",
        json={"leader_id": b.id, "at": days_ago(150)},
        headers=planner,
    )
    assert moved.status_code == 201, moved.get_json()
    assert moved.get_json()["closed"][0]["valid_to"].startswith(f"{days_ago(150)}T00:00:00+08:00")

    def who(at):
        r = client.get(f"/api/responsible?place_id={grid.id}&at={at}", headers=planner)
        assert r.status_code == 200
        primary = r.get_json()["primary"]
        return primary and primary["leader"]

    assert who(days_ago(200)) == "王芳"
    assert who(days_ago(100)) == "李强"
    assert who(days_ago(400)) is None
    history = client.get(f"/api/assignments?place_id={grid.id}&history=1", headers=planner)
    assert [x["leader"] for x in history.get_json()["assignments"]] == ["李强", "王芳"]
    assert (
        client.get(f"/api/responsible?place_id={grid.id}&at=yesterday", headers=planner).status_code
        == 400
    )


def test_second_primary_is_a_409_naming_the_current_one(client, db_session, planner):
    market = add_place(db_session, "market", "M01", "城北农贸市场")
    a = add_person(db_session, "孙丽")
    b = add_person(db_session, "周杰")
    assign(db_session, a, market, day("2026-01-01"), role="点长")
    body = {"leader_id": b.id, "place_id": market.id, "role": "联点领导"}
    refused = client.post("/api/assignments", json=body, headers=planner)
    assert refused.status_code == 409 and "孙丽" in refused.get_json()["error"]
    held = refused.get_json()["detail"]["assignments"][0]["place"]
    assert held["layer_title"] == "农贸市场"
    replaced = client.post(
        "/api/assignments", json=body | {"replace_primary": True}, headers=planner
    )
    assert replaced.status_code == 201
    assert [x["leader"] for x in replaced.get_json()["closed"]] == ["孙丽"]
    unknown = client.post(
        "/api/assignments", json=body | {"role": "大总管", "is_primary": False}, headers=planner
    )
    assert unknown.status_code == 400 and unknown.get_json()["field"] == "role"
    ghost = client.post(
        "/api/assignments",
        json={"leader_id": b.id, "layer": "网格", "code": "nope", "role": "网格长"},
        headers=planner,
    )
    assert ghost.status_code == 404


def test_leader_delete_is_409_listing_active_assignments(client, db_session, planner):
    grid = add_place(db_session, "grid", "320999001001009", "第九网格")
    a = add_person(db_session, "沈腾")
    assign(db_session, a, grid, day("2026-01-01"), role="网格长")
    refused = client.delete(f"/api/leaders/{a.id}", headers=planner)
    assert refused.status_code == 409
    listed = refused.get_json()["detail"]["active_assignments"]
    assert [x["place"]["code"] for x in listed] == ["320999001001009"]
    assert listed[0]["place"]["layer_title"] == "网格"

    off = client.post(f"/api/leaders/{a.id}/deactivate", json={}, headers=planner)
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert len(off.get_json()["ended"]) == 1
    assert db_session.query(Assignment).filter_by(leader_id=a.id, valid_to=None).count() == 0

    fresh = add_person(db_session, "韩梅")
    assert client.delete(f"/api/leaders/{fresh.id}", headers=planner).status_code == 204


def test_roles_anonymous_viewer_planner_leader(client, db_session, planner, viewer):
    unit = add_unit(db_session, "县交通局")
    mine = add_person(db_session, "钱进", unit)
    other = add_person(db_session, "赵敏", unit)
    leader = token_headers(db_session, "leader", mine)
    grid = add_place(db_session, "grid", "320999001001010", "第十网格")
    road = add_place(db_session, "road", "R9", "解放路")
    assign(db_session, mine, grid, day("2026-01-01"), role="网格长")
    assign(db_session, other, road, day("2026-01-01"), role="道路长")

    # Anonymous: 401 everywhere, JSON.
    for url in ("/api/units", "/api/leaders", f"/api/leaders/{mine.id}/features", "/api/coverage"):
        r = client.get(url)
        assert r.status_code == 401 and r.is_json, url
    assert client.post("/api/units", json={"name": "县公安局"}).status_code == 401

    # Viewer: reads everything, writes nothing.
    assert client.get("/api/leaders", headers=viewer).status_code == 200
    assert client.get(f"/api/leaders/{other.id}", headers=viewer).status_code == 200
    assert client.get("/api/coverage", headers=viewer).status_code == 200
    assert client.post("/api/units", json={"name": "县公安局"}, headers=viewer).status_code == 403
    assert client.delete(f"/api/leaders/{other.id}", headers=viewer).status_code == 403
    end = client.post(f"/api/assignments/{_active(db_session, other)}/end", headers=viewer)
    assert end.status_code == 403

    # Leader: their own record and places only.
    listed = client.get("/api/leaders", headers=leader).get_json()["leaders"]
    assert [x["name"] for x in listed] == ["钱进"]
    assert client.get(f"/api/leaders/{mine.id}", headers=leader).status_code == 200
    # Out of scope answers like unknown: 404.
    assert client.get(f"/api/leaders/{other.id}", headers=leader).status_code == 404
    assert client.get(f"/api/leaders/{other.id}/features", headers=leader).status_code == 404
    assert client.get(f"/api/responsible?place_id={road.id}", headers=leader).status_code == 404
    assert client.get(f"/api/responsible?place_id={grid.id}", headers=leader).status_code == 200
    assert client.get("/api/coverage", headers=leader).status_code == 403
    assert client.get("/api/roster.xlsx", headers=leader).status_code == 403
    assign_own = client.post(
        "/api/assignments",
        json={"leader_id": mine.id, "place_id": road.id, "role": "包保责任人"},
        headers=leader,
    )
    assert assign_own.status_code == 403

    # Planner: edits.
    assert client.post("/api/units", json={"name": "县公安局"}, headers=planner).status_code == 201
    end = client.post(f"/api/assignments/{_active(db_session, other)}/end", headers=planner)
    assert end.status_code == 200 and end.get_json()["active"] is False


def _active(session, leader) -> int:
    return session.query(Assignment).filter_by(leader_id=leader.id, valid_to=None).one().id


def test_leader_features_are_rfc7946_geojson_of_their_own_places_with_issue_counts(
    client, db_session, viewer
):
    unit = add_unit(db_session, "县住建局")
    head = add_person(db_session, "杨帆", unit, is_unit_head=True)
    member = add_person(db_session, "朱琳", unit)
    outsider = add_person(db_session, "秦岚")
    grid = add_place(db_session, "grid", "320999001001011", "十一网格", rect(0, 0, 400, 400))
    compound = add_place(db_session, "compound", "C11", "幸福小区", rect(1000, 0, 1100, 100))
    other = add_place(db_session, "grid", "320999001001012", "十二网格", rect(400, 0, 800, 400))
    assign(db_session, head, grid, day("2026-01-01"), role="网格长")
    assign(db_session, member, compound, day("2026-01-01"), role="楼栋长")
    assign(db_session, outsider, other, day("2026-01-01"), role="网格长")
    ended = assign(db_session, head, other, day("2025-01-01"), day("2025-06-01"), role="网格员")
    assert ended.valid_to is not None

    # Two open issues in the grid, one of them overdue; one closed (not counted).
    late = add_issue(db_session, 100, 100, now() - timedelta(days=5))
    late.grid_id, late.status, late.deadline = grid.id, "dispatched", now() - timedelta(days=1)
    fresh = add_issue(db_session, 120, 100, now() - timedelta(hours=2))
    fresh.grid_id, fresh.status, fresh.deadline = grid.id, "reported", now() + timedelta(days=1)
    done = add_issue(db_session, 130, 100, now() - timedelta(days=9))
    done.grid_id, done.status = grid.id, "closed"
    db_session.flush()
    assert db_session.query(Issue).count() == 3

    own = client.get(f"/api/leaders/{head.id}/features", headers=viewer)
    assert own.status_code == 200 and own.mimetype == "application/geo+json"
    fc = own.get_json()
    assert fc["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in fc["features"]] == ["320999001001011"]
    feature = fc["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"]["open_issues"] == 2
    assert feature["properties"]["overdue_issues"] == 1
    # lon, lat order (RFC 7946) and the geometry is the stored one.
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert 120 < lon < 121 and 33 < lat < 34
    assert shape(feature["geometry"]).hausdorff_distance(rect(0, 0, 400, 400)) < 1e-7
    assert LinearRing(feature["geometry"]["coordinates"][0][0]).is_ccw  # right-hand rule
    west, south, east, north = fc["bbox"]
    assert (west, south) == pytest.approx(metres(0, 0)) and (east, north) == pytest.approx(
        metres(400, 400)
    )

    unit_view = client.get(f"/api/leaders/{head.id}/features?scope=unit", headers=viewer)
    codes = sorted(f["properties"]["code"] for f in unit_view.get_json()["features"])
    assert codes == ["320999001001011", "C11"]
    member_unit = client.get(f"/api/leaders/{member.id}/features?scope=unit", headers=viewer)
    assert member_unit.status_code == 400

    # The unit head's own account may read the member's places; the member may not read theirs.
    head_headers = token_headers(db_session, "leader", head)
    member_headers = token_headers(db_session, "leader", member)
    assert client.get(f"/api/leaders/{member.id}/features", headers=head_headers).status_code == 200
    assert client.get(f"/api/leaders/{head.id}/features", headers=member_headers).status_code == 404


def test_area_bound_planner_assigns_only_inside_its_area(world, world_client):
    """The world's planner is bound to street S1: G1 is inside, G2 (street S2) is not."""
    headers = {"Authorization": f"Bearer {world['tokens']['planner']}"}
    leader = world["leaders"]["L3"]
    body = {"leader_id": leader, "role": "网格员", "is_primary": False}
    outside = world_client.post(
        "/api/assignments", json=body | {"place_id": world["places"]["G2"]}, headers=headers
    )
    unknown = world_client.post("/api/assignments", json=body | {"place_id": 0}, headers=headers)
    assert outside.status_code == unknown.status_code == 404
    inside = world_client.post(
        "/api/assignments", json=body | {"place_id": world["places"]["G1"]}, headers=headers
    )
    assert inside.status_code == 201, inside.get_json()
    held = world_client.get(f"/api/assignments?leader_id={leader}", headers=headers).get_json()
    assert world["places"]["G1"] in [a["place"]["id"] for a in held["assignments"]]


def test_writes_are_in_the_audit_log_with_who_did_them(client, db_session):
    from geoservice.accounts.audit import query

    planner = token_headers(db_session, "planner")
    grid = add_place(db_session, "grid", "320999001001020", "二十网格")
    a = add_person(db_session, "王芳")
    b = add_person(db_session, "李强")
    first = client.post(
        "/api/assignments",
        json={
            "leader_id": a.id,
            "place_id": grid.id,
            "role": "网格长",
            "valid_from": days_ago(300),
        },
        headers=planner,
    ).get_json()
    client.post(
        f"/api/assignments/{first['id']}/reassign",
        json={"leader_id": b.id, "at": days_ago(150)},
        headers=planner,
    )
    entries = db_session.scalars(query(entity="assignment")).all()
    assert sorted((e.action, e.actor) for e in entries) == [
        ("assignment.create", "planner-none"),
        ("assignment.create", "planner-none"),
        ("assignment.end", "planner-none"),
    ]
    ended = next(e for e in entries if e.action == "assignment.end")
    assert ended.entity_id == str(first["id"])
    assert ended.after["valid_to"].startswith(days_ago(150))


def test_a_page_of_assignments_is_read_in_a_few_statements_whatever_its_length(
    client, db_session, planner
):
    """Each assignment comes with its place, leader and unit: loaded with the page, not one
    statement per row (a city's page of 1,000 was 2,000 more statements, 1.2 s)."""
    from sqlalchemy import event

    def statements_for(count: int) -> tuple[int, list[dict]]:
        seen: list[str] = []
        keep = lambda *args: seen.append(args[2])  # noqa: E731
        connection = db_session.connection()
        event.listen(connection, "before_cursor_execute", keep)
        try:
            r = client.get(f"/api/assignments?layer=grid&limit={count}", headers=planner)
        finally:
            event.remove(connection, "before_cursor_execute", keep)
        assert r.status_code == 200, r.get_json()
        return len(seen), r.get_json()["assignments"]

    for n in range(12):
        unit = add_unit(db_session, f"第{n}单位")
        leader = add_person(db_session, f"领导{n}", unit)
        grid = add_place(db_session, "grid", f"32099900100{n:04d}", f"第{n}网格")
        assign(db_session, leader, grid, now() - timedelta(days=1))
    statements_for(1)  # the token's first use of the minute is recorded (one more statement)
    few, two = statements_for(2)
    many, twelve = statements_for(12)
    assert len(two) == 2 and len(twelve) == 12
    assert many == few
    by_code = {a["place"]["code"]: a for a in twelve}
    first = by_code["320999001000000"]
    assert (first["leader"], first["unit"], first["place"]["name"]) == (
        "领导0",
        "第0单位",
        "第0网格",
    )


def test_assignment_lists_by_layer_and_plain_messages(client, db_session, planner):
    """`layer` alone lists that layer's assignments (it was ignored: everything came back); an
    unknown leader is a 404; a missing leader_id says so (not “None”); a back-dated primary
    that replacing cannot end says why, in Chinese."""
    market = add_place(db_session, "market", "M02", "城南农贸市场")
    grid = add_place(db_session, "grid", "320999001001009", "南门网格")
    a, b = add_person(db_session, "钱多"), add_person(db_session, "吴用")
    assign(db_session, a, market, day("2026-01-01"), role="点长")
    assign(db_session, b, grid, day("2026-01-01"), role="网格长")
    listed = client.get("/api/assignments?layer=market", headers=planner).get_json()
    assert {x["place"]["code"] for x in listed["assignments"]} == {"M02"}
    assert listed["numberMatched"] == 1
    assert client.get("/api/assignments?leader_id=987654", headers=planner).status_code == 404
    missing = client.post(
        "/api/assignments", json={"place_id": market.id, "role": "点长"}, headers=planner
    ).get_json()
    assert missing["field"] == "leader_id" and "None" not in missing["error"]
    # A primary back-dated before 钱多 took office: replacing cannot end that (later) term.
    early = {"leader_id": b.id, "place_id": market.id, "role": "联点领导",
             "valid_from": "2025-06-01T00:00:00+08:00", "replace_primary": True}  # fmt: skip
    refused = client.post("/api/assignments", json=early, headers=planner).get_json()
    assert "钱多" in refused["error"] and "重叠" in refused["error"]
    assert "reassign" not in refused["error"] and "替换现任" not in refused["error"]


def test_an_assignment_before_2000_is_refused(client, db_session, planner):
    """1888-08-08 in Beijing time was stored as 1888-08-08T00:00:00+08:05:43 (local mean
    time), and answered `responsible?at=1899…` ever after."""
    market = add_place(db_session, "market", "M88", "老街市场")
    person = add_person(db_session, "周老")
    body = {"leader_id": person.id, "place_id": market.id, "role": "点长",
            "valid_from": "1888-08-08", "is_primary": False}  # fmt: skip
    refused = client.post("/api/assignments", json=body, headers=planner)
    assert refused.status_code == 400 and refused.get_json()["field"] == "valid_from"


def test_a_title_and_a_note_keep_their_chinese_punctuation(client, db_session, planner):
    made = client.post(
        "/api/leaders",
        json={"name": "钱多", "title": "主任（兼）：联络员，Ａ组", "level": "县级"},
        headers=planner,
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["title"] == "主任（兼）：联络员，A组"
