"""条块 routing: category × area/layer → unit (牵头/配合), effective-dated; the place's 包保
leader is informed or co-responsible; the rule sentence says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from geoservice.issues import attribution, routing_rules
from geoservice.issues.issues import Report, create_issue
from geoservice.issues.workflow import is_responsible
from geoservice.models import Leader, RoutingRule
from tests.factories import LAYERS, add_leader, metres
from tests.issues.helpers import account
from tests.ranking_case import at, build
from tests.ranking_history_case import SETTINGS


@pytest.fixture
def world(db_session, app):
    case = build(db_session)
    s = db_session
    head = add_leader(s, "城管局长", unit="县城管局")
    head.is_unit_head = True
    add_leader(s, "城管科员", unit="县城管局")
    publicity = add_leader(s, "宣传部长", unit="县委宣传部")
    s.flush()
    case.leaders.update(head=head.id, publicity=publicity.id)
    case.units.update(城管=head.unit_id, 宣传=publicity.unit_id)
    return case


def rule(session, case, **kw):
    fields = {"category": "占道经营", "unit_id": case.units["城管"], "role": "lead",
              "valid_from": at(1, 0, month=10).isoformat(), **kw}  # fmt: skip
    return routing_rules.create_rule(
        session, LAYERS, ["占道经营", "公益广告", "环境卫生"], None, fields
    )


def report(session, case, category, grid="g3", when=None):
    x, y = {"g1": (50, 50), "g3": (250, 50)}[grid]
    lon, lat = metres(x, y)
    settings = SETTINGS.__class__(
        **{**SETTINGS.__dict__, "categories": {"占道经营": 24, "公益广告": 48, "环境卫生": 24},
           "sources": ("暗访督查",), "report_min_photos": 0}
    )  # fmt: skip
    r = Report(lon=lon, lat=lat, category=category, source="暗访督查", description="测试",
               reported_at=when or at(18, 9))  # fmt: skip
    return create_issue(session, LAYERS, settings, r, None, now=when or at(18, 9))


def test_category_routed_to_the_unit_head_place_leader_informed(db_session, world):
    rule(db_session, world)
    issue = report(db_session, world, "占道经营")
    assert (issue.leader_id, issue.unit_id) == (world.leaders["head"], world.units["城管"])
    routing = issue.attribution["routing"]
    assert routing["place_leader_id"] == world.leaders["D"] and not routing["co_responsible"]
    text = attribution.describe(db_session, LAYERS, issue.attribution, issue.leader_id,
                                issue.unit_id, "11月18日09:00")["rule"]  # fmt: skip
    assert "「占道经营」问题由县城管局牵头办理" in text
    assert "地点包保领导丁领导知悉" in text and "交由城管局长办理" in text
    d_user, _ = account(db_session, "leader", leader=db_session.get(Leader, world.leaders["D"]))
    assert not is_responsible(db_session, d_user, issue)
    # Other categories keep the place attribution.
    assert report(db_session, world, "环境卫生").leader_id == world.leaders["D"]


def test_most_specific_rule_wins_and_assist_units_are_listed(db_session, world):
    rule(db_session, world)  # county-wide
    rule(db_session, world, area_id=world.areas["甲"], unit_id=world.units["宣传"],
         co_responsible=True)  # fmt: skip
    rule(db_session, world, role="assist", unit_id=world.units["二局"])
    in_a = report(db_session, world, "占道经营", grid="g1")  # community 甲
    assert in_a.unit_id == world.units["宣传"]
    assert in_a.leader_id is None  # 宣传部 has no head: the queue, with the unit set
    assert in_a.attribution["routing"]["assist_unit_ids"] == [world.units["二局"]]
    assert in_a.attribution["routing"]["co_responsible"]
    in_b = report(db_session, world, "占道经营", grid="g3")  # community 乙: the county rule
    assert in_b.unit_id == world.units["城管"]
    # Co-responsible: grid 1's leader at that time (A) may act on the issue.
    a_user, _ = account(db_session, "leader", leader=db_session.get(Leader, world.leaders["A"]))
    assert is_responsible(db_session, a_user, in_a) is False  # no holder yet (queue)


def test_rules_are_effective_dated(db_session, world):
    r = rule(db_session, world, valid_from=at(19, 0).isoformat())
    assert report(db_session, world, "占道经营", when=at(18, 9)).leader_id == world.leaders["D"]
    assert report(db_session, world, "占道经营", when=at(19, 9)).unit_id == world.units["城管"]
    routing_rules.end_rule(db_session, r.id, at(20, 0))
    assert report(db_session, world, "占道经营", when=at(20, 9)).leader_id == world.leaders["D"]
    assert db_session.get(RoutingRule, r.id).valid_to == at(20, 0).astimezone(UTC)


def test_routing_rules_api_is_audited(client, db_session, world):
    _, planner = account(db_session, "planner")
    _, viewer = account(db_session, "viewer")
    body = {"category": "环境卫生", "unit_id": world.units["宣传"], "role": "lead"}
    assert client.post("/api/routing-rules", json=body, headers=viewer).status_code == 403
    r = client.post("/api/routing-rules", json={**body, "category": "外星人"}, headers=planner)
    assert r.status_code == 422 and r.get_json()["field"] == "category"
    r = client.post("/api/routing-rules", json=body, headers=planner)
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    items = client.get("/api/routing-rules", headers=viewer).get_json()["items"]
    assert [i["id"] for i in items] == [rid]
    # `at`: a day (its start, local time) or a time; given empty it is a mistake, not "now".
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()  # after now in any zone
    later = client.get(f"/api/routing-rules?at={day}", headers=viewer).get_json()["items"]
    assert [i["id"] for i in later] == [rid]
    empty = client.get("/api/routing-rules?at=", headers=viewer)
    assert empty.status_code == 400 and empty.get_json()["field"] == "at"
    # The body is optional (valid_to defaults to now): a POST without one ends the rule.
    r = client.post(f"/api/routing-rules/{rid}/end", headers=planner)
    assert r.status_code == 200 and r.get_json()["valid_to"]
    from sqlalchemy import text

    actions = (
        db_session.execute(
            text("SELECT action FROM audit_log WHERE entity_type = 'routing_rule' ORDER BY id")
        )
        .scalars()
        .all()
    )
    assert actions == ["routing_rule.create", "routing_rule.end"]


def test_a_rule_names_a_known_layer_a_street_or_community_and_a_readable_year(
    client, db_session, world
):
    _, planner = account(db_session, "planner")
    body = {"category": "环境卫生", "unit_id": world.units["宣传"], "role": "lead"}
    layer = client.post("/api/routing-rules", json={**body, "layer": "nope"}, headers=planner)
    assert layer.status_code == 422 and layer.get_json()["field"] == "layer"
    county = db_session.execute(
        text("SELECT id FROM admin_areas WHERE level = 'county' LIMIT 1")
    ).scalar()
    area = client.post("/api/routing-rules", json={**body, "area_id": county}, headers=planner)
    assert area.status_code == 422 and area.get_json()["field"] == "area_id"  # never applied
    far = {**body, "valid_from": "9999-12-31T23:59:59-12:00"}  # year 10000 in UTC
    assert client.post("/api/routing-rules", json=far, headers=planner).status_code == 422
    _, admin = account(db_session, "admin")
    weights = {"key": "ranking_bottom_n", "value": 4, "note": "测试", **far}
    refused = client.post("/api/rule-settings", json=weights, headers=admin)
    assert refused.status_code == 422 and refused.get_json()["field"] == "valid_from"
    assert client.get("/api/rule-settings", headers=admin).status_code == 200
