"""Vocabularies as effective-dated data (issue 17 §3): issue sources, the categories in use,
leader levels and 包保 roles change from a date, through the API and the rules page, audited;
writes read the list in force at their moment; a retired value stays on the rows that have it
and in closed periods' rankings. Hand-built 2015 dates (tests/ranking_case.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from geoservice import rules
from geoservice.issues.issues import validate_report
from geoservice.models import Assignment, Leader
from geoservice.ranking import vocabularies
from geoservice.registry import layers
from geoservice.responsibility import responsibility as resp
from geoservice.responsibility import roster
from geoservice.service_errors import Conflict, InvalidInput
from geoservice.vocab import ASSIGNMENT_ROLES, CATEGORY_DEADLINE_HOURS, ISSUE_SOURCES, LEADER_LEVELS
from tests.factories import metres
from tests.issues.helpers import account
from tests.ranking_case import at, build
from tests.support_responsibility import add_person, add_place
from tests.test_roster import workbook


@pytest.fixture
def case(db_session):
    return build(db_session)


def payload(category="环境卫生", source="暗访督查"):
    lon, lat = metres(250, 50)
    return {"lon": lon, "lat": lat, "category": category, "source": source}


def settings_at(db_session, app, when):
    return vocabularies.issue_settings(db_session, app.config, when)


def vocab_at(client, headers, instant: str):
    return client.get("/api/vocabularies", query_string={"at": instant}, headers=headers)


def audit_count(db_session) -> int:
    return db_session.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'rule_setting.create'")
    ).scalar()


def test_a_source_added_from_a_date(db_session, app, client):
    # Decided on Fri 20 Nov, in force from Sat 21 Nov 00:00.
    vocabularies.set_rule(db_session, None, "issue_sources", [*ISSUE_SOURCES, "网络舆情"],
                          at(21, 0), "网信办转来的舆情线索", now=at(20, 9))  # fmt: skip
    with pytest.raises(InvalidInput) as err:
        validate_report(payload(source="网络舆情"), settings_at(db_session, app, at(20, 23)))
    assert err.value.field == "source" and "网络舆情" in err.value.error
    assert "不在现行来源中" in err.value.error
    report = validate_report(payload(source="网络舆情"), settings_at(db_session, app, at(21, 1)))
    assert report.source == "网络舆情"
    # The API lists the vocabularies in force at a given time.
    _, viewer = account(db_session, "viewer")
    before = vocab_at(client, viewer, "2015-11-20T23:00:00+08:00")
    after = vocab_at(client, viewer, "2015-11-21T01:00:00+08:00")
    assert before.status_code == after.status_code == 200
    assert "网络舆情" not in before.get_json()["sources"]
    assert after.get_json()["sources"][-1] == "网络舆情"


def test_a_category_retired_mid_month(db_session, app, client, case):
    _, planner = account(db_session, "planner")

    def ranked():
        week = client.get("/api/rankings?of=leader&period=week&from=2015-W47", headers=planner)
        month = client.get("/api/rankings?of=leader&period=month&from=2015-11", headers=planner)
        return week.get_json()["rows"], month.get_json()["rows"]

    before = ranked()
    # 环境卫生 (the category of most of the case's issues) retired from Wed 18 Nov 00:00.
    in_use = [c for c in CATEGORY_DEADLINE_HOURS if c != "环境卫生"]
    vocabularies.set_rule(db_session, None, "issue_categories", in_use, at(18, 0),
                          "并入垃圾外溢", now=at(17, 9), config=app.config)  # fmt: skip
    # A report of the 17th still takes it; one of the 18th is refused, in Chinese, saying why.
    assert validate_report(payload(), settings_at(db_session, app, at(17, 23))).category == (
        "环境卫生"
    )
    with pytest.raises(InvalidInput) as err:
        validate_report(payload(), settings_at(db_session, app, at(18, 1)))
    assert err.value.field == "category"
    assert "问题类别「环境卫生」已停用，不再受理新上报" in err.value.error
    assert "垃圾外溢" in err.value.error
    # Old issues keep it: their deadlines are still set by its limit (24 h) ...
    later = settings_at(db_session, app, at(25, 9))
    assert "环境卫生" not in later.categories and later.retired_categories["环境卫生"] == 24
    assert later.deadline_for("环境卫生", at(25, 9)) == at(26, 9)
    # ... and the rankings of the week and month it was retired in are unchanged.
    assert ranked() == before
    listing = vocab_at(client, planner, "2015-11-18T01:00:00+08:00")
    retired = listing.get_json()["retired_categories"]
    assert [c["name"] for c in retired] == ["环境卫生"] and retired[0]["deadline_hours"] == 24


def test_categories_in_use_need_a_time_limit(db_session, app):
    with pytest.raises(InvalidInput) as err:
        vocabularies.set_rule(db_session, None, "issue_categories",
                              [*CATEGORY_DEADLINE_HOURS, "井盖缺失"], at(21, 0), "新增",
                              now=at(20, 9), config=app.config)  # fmt: skip
    assert "井盖缺失" in err.value.error and "没有处置时限" in err.value.error
    # Added with its limit, the category keeps one: a later set of limits without it is refused.
    vocabularies.set_category(db_session, None, app.config, {
        "name": "井盖缺失", "deadline_hours": 12, "valid_from": at(21, 0), "note": "新增类别",
    }, now=at(20, 9))  # fmt: skip
    with pytest.raises(InvalidInput) as err:
        vocabularies.set_rule(db_session, None, "category_deadline_hours", {"环境卫生": 48},
                              at(22, 0), "汛期", now=at(20, 9), config=app.config)  # fmt: skip
    assert "井盖缺失" in err.value.error
    vocabularies.set_rule(db_session, None, "category_deadline_hours",
                          {"井盖缺失": 12, "环境卫生": 48}, at(22, 0), "汛期", now=at(20, 9),
                          config=app.config)  # fmt: skip
    assert settings_at(db_session, app, at(22, 1)).categories["环境卫生"] == 48


def test_a_category_added_in_one_change(db_session, app):
    rows = vocabularies.set_category(db_session, None, app.config, {
        "name": "井盖缺失", "deadline_hours": 12, "min_photos": 2, "negative_list": True,
        "valid_from": at(21, 0), "note": "新增类别",
    }, now=at(20, 9))  # fmt: skip
    assert sorted(r.key for r in rows) == [
        "category_deadline_hours",
        "category_min_photos",
        "issue_categories",
        "negative_list_categories",
    ]
    assert {r.valid_from for r in rows} == {at(21, 0)}
    assert "井盖缺失" not in settings_at(db_session, app, at(20, 23)).categories
    after = settings_at(db_session, app, at(21, 1))
    assert after.categories["井盖缺失"] == 12 and after.category_min_photos["井盖缺失"] == 2
    assert "井盖缺失" in after.negative_list_categories
    assert after.categories["环境卫生"] == 24  # the others unchanged
    # A later change planned for one of those rules would drop it: refused.
    vocabularies.set_rule(db_session, None, "category_deadline_hours", {"环境卫生": 48},
                          at(28, 0), "汛期", now=at(20, 9))  # fmt: skip
    with pytest.raises(Conflict):
        vocabularies.set_category(db_session, None, app.config, {
            "name": "井盖缺失", "deadline_hours": 6, "valid_from": at(22, 0), "note": "收紧",
        }, now=at(20, 9))  # fmt: skip


def test_a_new_role_usable_in_roster_import_after_its_date(db_session, app):
    add_place(db_session, "grid", "320999001001001", "城东一网格")
    vocabularies.set_rule(db_session, None, "assignment_roles", [*ASSIGNMENT_ROLES, "巷长"],
                          at(21, 0), "背街小巷设巷长", now=at(20, 9))  # fmt: skip
    rows = [["王芳", "社区书记", "", "13812345678", "村社区", "巷长", "网格",
             "320999001001001", "", "是"]]  # fmt: skip

    def run(when):
        vocab = rules.vocabularies(db_session, app.config, when)
        return roster.import_roster(db_session, layers(app), workbook(rows), roles=vocab.roles,
                                    levels=vocab.levels, timezone="Asia/Shanghai")  # fmt: skip

    refused = run(at(20, 23))
    assert not refused.ok and "巷长" in refused.rows[0].line(refused.applied)
    applied = run(at(21, 1))
    assert applied.ok, [r.line(applied.applied) for r in applied.rows]
    role = db_session.scalar(select(Assignment.role).where(Assignment.valid_to.is_(None)))
    assert role == "巷长"


def test_a_role_in_use_cannot_be_removed(db_session, app, client):
    leader = add_person(db_session, "张伟")
    place = add_place(db_session, "grid", "320999001001001", "城东一网格")
    resp.assign(db_session, leader_id=leader.id, place_id=place.id, role="楼栋长",
                roles=ASSIGNMENT_ROLES)  # fmt: skip
    fewer = [r for r in ASSIGNMENT_ROLES if r != "楼栋长"]
    with pytest.raises(Conflict) as err:
        vocabularies.set_rule(db_session, None, "assignment_roles", fewer, None, "精简角色")
    assert "楼栋长（1 条）" in err.value.error and err.value.detail == {"in_use": {"楼栋长": 1}}
    _, admin = account(db_session, "admin")
    change = {"key": "assignment_roles", "value": fewer, "note": "精简角色"}
    r = client.post("/api/rule-settings", headers=admin, json=change)
    assert r.status_code == 409 and "楼栋长" in r.get_json()["error"]
    # A role nobody holds may go.
    fewer = [r for r in ASSIGNMENT_ROLES if r != "单元长"]
    r = client.post("/api/rule-settings", headers=admin, json={**change, "value": fewer})
    assert r.status_code == 201, r.get_json()


def test_a_source_the_service_itself_uses_cannot_be_retired(db_session, app, client):
    _, admin = account(db_session, "admin")
    without_hotline = [s for s in ISSUE_SOURCES if s not in ("12345热线", "随手拍")]
    change = {"key": "issue_sources", "value": without_hotline, "note": "精简来源"}
    r = client.post("/api/rule-settings", headers=admin, json=change)
    body = r.get_json()
    assert r.status_code == 409 and body["field"] == "value"
    assert "Open311" in body["error"] and "群众随手拍" in body["error"]
    assert body["detail"] == {"required": ["12345热线", "随手拍"]}
    assert audit_count(db_session) == 0
    # The Open311 source follows the configuration: another name is the one that must stay.
    config = {**app.config, "OPEN311_SOURCE": "12345政务热线"}
    kept = [*ISSUE_SOURCES, "12345政务热线"]
    with pytest.raises(Conflict) as err:
        vocabularies.set_rule(db_session, None, "issue_sources", list(ISSUE_SOURCES), None, "改名",
                              config=config)  # fmt: skip
    assert err.value.detail == {"required": ["12345政务热线"]}
    retire_others = [s for s in kept if s not in ("回头看", "12345热线")]
    row = vocabularies.set_rule(db_session, None, "issue_sources", retire_others, None, "改名",
                                config=config)  # fmt: skip
    assert "回头看" not in row.value and "12345政务热线" in row.value


def test_a_leader_level_change(db_session, app):
    # From 21 Nov: 村社区 is split into 村 and 社区.
    levels = ["市级", "县级", "镇街", "村", "社区"]
    vocabularies.set_rule(db_session, None, "leader_levels", levels, at(21, 0),
                          "村、社区分列", now=at(20, 9))  # fmt: skip
    old = add_person(db_session, "李红", level="村社区")
    before = rules.vocabularies(db_session, app.config, at(20, 23)).levels
    after = rules.vocabularies(db_session, app.config, at(21, 1)).levels
    assert before == tuple(LEADER_LEVELS) and after == tuple(levels)
    with pytest.raises(resp.Invalid):
        resp.create_leader(db_session, {"name": "王强", "level": "社区"}, before)
    assert resp.create_leader(db_session, {"name": "王强", "level": "社区"}, after).level == "社区"
    with pytest.raises(resp.Invalid):  # a new leader cannot take the retired level
        resp.create_leader(db_session, {"name": "赵敏", "level": "村社区"}, after)
    # A leader keeps the retired level through an edit (the form sends it back unchanged).
    resp.update_leader(db_session, old.id, {"title": "社区书记", "level": "村社区"}, after)
    assert db_session.get(Leader, old.id).level == "村社区"
    retired = rules.retired(db_session, app.config, "leader_levels", at(21, 1), after)
    assert retired == ["村社区"]


def test_vocabulary_api_admin_only_audited_and_checked(db_session, client):
    _, planner = account(db_session, "planner")
    _, admin = account(db_session, "admin")
    body = {"key": "issue_sources", "value": [*ISSUE_SOURCES, "网络舆情"], "note": "网信办通知"}
    category = {"name": "井盖缺失", "deadline_hours": 12, "note": "新增类别"}
    assert client.post("/api/rule-settings", json=body, headers=planner).status_code == 403
    r = client.post("/api/rule-settings/categories", json=category, headers=planner)
    assert r.status_code == 403
    assert client.get("/api/vocabularies").status_code == 401
    bad = [
        ("/api/rule-settings", {**body, "value": "网络舆情"}, "value"),
        ("/api/rule-settings", {**body, "value": ["暗访督查", "暗访督查"]}, "value"),
        ("/api/rule-settings", {**body, "value": ["暗访督查", ""]}, "value"),
        ("/api/rule-settings", {**body, "value": ["暗访督查、模拟测评"]}, "value"),
        ("/api/rule-settings", {**body, "key": "leader_levels", "value": []}, "value"),
        ("/api/rule-settings/categories", {**category, "deadline_hours": 0}, "deadline_hours"),
        ("/api/rule-settings/categories", {**category, "deadline_hours": "12"}, "deadline_hours"),
        ("/api/rule-settings/categories", {**category, "name": ""}, "name"),
        ("/api/rule-settings/categories", {**category, "min_photos": 10}, "min_photos"),
        ("/api/rule-settings/categories", {**category, "negative_list": "是"}, "negative_list"),
        ("/api/rule-settings/categories", {**category, "note": " "}, "note"),
    ]
    for url, payload_, field in bad:
        r = client.post(url, json=payload_, headers=admin)
        assert r.status_code == 422 and r.get_json()["field"] == field, (payload_, r.get_json())
        assert r.get_json()["error"]
    assert client.get("/api/vocabularies?at=yesterday", headers=planner).status_code == 400
    assert audit_count(db_session) == 0
    assert client.post("/api/rule-settings", json=body, headers=admin).status_code == 201
    r = client.post("/api/rule-settings/categories", json=category, headers=admin)
    assert r.status_code == 201 and len(r.get_json()["items"]) == 2  # the list and its limit
    assert audit_count(db_session) == 3
    # In force now: the next report may use them; the listing shows them.
    listing = client.get("/api/vocabularies", headers=planner).get_json()
    assert "网络舆情" in listing["sources"]
    assert {"name": "井盖缺失", "deadline_hours": 12.0, "min_photos": 1,
            "negative_list": False} in listing["categories"]  # fmt: skip


def test_rules_page_shows_and_edits_the_vocabularies(client, db_session):
    _, admin = account(db_session, "admin")
    vocabularies.set_rule(db_session, None, "issue_sources", ["暗访督查", "网络舆情"], None,
                          "只留两类")  # fmt: skip
    html = client.get("/admin/rules", headers=admin).get_data(as_text=True)
    assert "词表" in html and 'data-url="/api/rule-settings/categories"' in html
    assert 'value="暗访督查、网络舆情"' in html  # the sources form, prefilled
    assert "模拟测评" in html  # a retired source, listed as such
    assert 'name="key" value="assignment_roles"' in html
    _, viewer = account(db_session, "viewer")
    html = client.get("/admin/rules", headers=viewer).get_data(as_text=True)
    assert 'data-url="/api/rule-settings/categories"' not in html
