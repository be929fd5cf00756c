"""Responsibility fallback: when the primary place has nobody at that moment, the next step of
RESPONSIBILITY_FALLBACK with someone answers (another claim such as the grid's 网格长, the
community's, the street's leader) before the queue; the rule sentence names the step."""

from __future__ import annotations

import pytest
from shapely.geometry import Point

from geoservice.issues import attribution
from geoservice.models import AreaAssignment
from tests.factories import LAYERS, add_feature, add_leader, metres, rect
from tests.ranking_case import at, build


@pytest.fixture
def world(db_session):
    case = build(db_session)
    s = db_session
    # A compound inside grid 3 (D's) that nobody answers for; grid 4 has nobody at all.
    add_feature(s, "compound", "C-FB", rect(220, 20, 280, 80), compound_type="老旧小区",
                name="无人小区")  # fmt: skip
    e = add_leader(s, "戊书记", unit="乙社区居委会")
    f = add_leader(s, "己主任", unit="测试街道办")
    s.add(AreaAssignment(area_id=case.areas["乙"], leader_id=e.id, role="社区书记",
                         valid_from=at(1, 0, month=10)))  # fmt: skip
    s.add(AreaAssignment(area_id=case.areas["street"], leader_id=f.id, role="街道包保领导",
                         valid_from=at(1, 0, month=10), valid_to=at(19, 0)))  # fmt: skip
    s.flush()
    case.leaders.update(E=e.id, F=f.id)
    return case


def attribute(session, xy, fallback, when=None):
    lon, lat = metres(*xy)
    row = attribution.attribution_at(session, LAYERS, lon, lat, when or at(18, 9), fallback)
    described = attribution.describe(
        session, LAYERS, row["attribution"], row["leader_id"], row["unit_id"], "11月18日09:00"
    )
    return row, described


def test_no_fallback_configured_means_the_queue(db_session, world):
    row, described = attribute(db_session, (350, 50), ())
    assert row["leader_id"] is None and described["unassigned"]
    assert "待派遣队列" in described["rule"]


def test_fallback_to_the_grids_leader(db_session, world):
    # The compound is the primary place (higher precedence) but has nobody: the grid answers.
    for steps in (("claims",), ("grid", "community")):
        row, described = attribute(db_session, (250, 50), steps)
        assert row["leader_id"] == world.leaders["D"], steps
        assert row["attribution"]["fallback"]["step"] == steps[0]
        assert "无人小区" in described["rule"] and "没有包保领导" in described["rule"]
        assert "按兜底顺序" in described["rule"] and "网格3" in described["rule"]


def test_fallback_to_the_community_then_the_street(db_session, world):
    row, described = attribute(db_session, (350, 50), ("grid", "community", "street"))
    assert row["leader_id"] == world.leaders["E"]
    assert row["attribution"]["fallback"]["step"] == "community"
    assert "所在社区「乙社区」的包保领导戊书记负责" in described["rule"]
    # The order is configurable: the street first.
    row, described = attribute(db_session, (350, 50), ("street", "community"))
    assert row["leader_id"] == world.leaders["F"]
    assert "所在街道「测试街道」" in described["rule"]
    # At that moment: the street's assignment ended on the 19th, so the community answers.
    row, _ = attribute(db_session, (350, 50), ("street", "community"), when=at(20, 9))
    assert row["leader_id"] == world.leaders["E"]


def test_unknown_step_is_refused(db_session, world):
    with pytest.raises(ValueError):
        attribute(db_session, (350, 50), ("district",))


def test_bulk_attribution_uses_the_same_chain(db_session, world):
    from geoalchemy2.shape import from_shape

    from geoservice.models import Issue

    issue = Issue(geom=from_shape(Point(*metres(350, 50)), srid=4326), category="环境卫生",
                  source="暗访督查", status="reported", reported_at=at(18, 9))  # fmt: skip
    db_session.add(issue)
    db_session.flush()
    attribution.attribute_issues(db_session, LAYERS, issue.id, issue.id, ("community",))
    db_session.refresh(issue)
    assert issue.leader_id == world.leaders["E"]
    assert issue.attribution["fallback"]["step"] == "community"


def test_area_assignments_api(client, db_session, world):
    from tests.issues.helpers import account

    _, planner = account(db_session, "planner")
    _, viewer = account(db_session, "viewer")
    body = {"area_id": world.areas["甲"], "leader_id": world.leaders["E"], "role": "社区书记"}
    assert client.post("/api/area-assignments", json=body, headers=viewer).status_code == 403
    bad = client.post("/api/area-assignments", json={**body, "area_id": 0}, headers=planner)
    assert bad.status_code == 422 and bad.get_json()["field"] == "area_id"
    r = client.post("/api/area-assignments", json=body, headers=planner)
    assert r.status_code == 201, r.get_json()
    second = client.post(
        "/api/area-assignments", json={**body, "leader_id": world.leaders["F"]}, headers=planner
    )
    assert second.status_code == 201
    items = client.get("/api/area-assignments", headers=viewer).get_json()["items"]
    mine = [i for i in items if i["area_id"] == world.areas["甲"]]
    assert [i["leader_id"] for i in mine] == [world.leaders["E"], world.leaders["F"]]
    assert mine[0]["valid_to"] == mine[1]["valid_from"]
