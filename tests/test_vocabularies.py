"""City rules as data, effective-dated: a weight changed mid-month applies from the first period
starting after it; closed periods keep their rules; changes are audited and never retroactive."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geoservice.ranking import vocabularies
from geoservice.service_errors import InvalidInput
from tests.issues.helpers import account
from tests.ranking_case import at, build


@pytest.fixture
def case(db_session):
    return build(db_session)


NEW_WEIGHTS = {"on_time_rate": 50, "close_rate": 50, "rework_free": 0}


def score_of(client, headers, case, label):
    body = client.get(f"/api/rankings?of=leader&period=week&from={label}", headers=headers)
    rows = {r["key"]: r for r in body.get_json()["rows"]}
    return rows[case.leaders["A"]]["score"], body.get_json()["settings"]["weights"]


def test_a_weight_changed_mid_month(client, db_session, app, case):
    _, headers = account(db_session, "planner")
    before = score_of(client, headers, case, "2015-W47")
    # Decided on Fri 20th, in force from Mon 23rd (W48).
    vocabularies.set_rule(db_session, None, "ranking_weights", NEW_WEIGHTS, at(23, 0),
                          "2015年12月起按新办法考核", now=at(20, 9))  # fmt: skip
    # W47 started before: its rules and score are unchanged (49.5 = 60·0.4 + 30·0.6 + 10·0.75).
    assert score_of(client, headers, case, "2015-W47") == before
    assert before[0] == 49.5
    # W48: A had I8 closed late and I6, I7 overdue at the end: 应结 3, 结案 1, 按期 0, 返工率 0.
    # New weights: 100 × (50·0 + 50·1/3 + 0·1) / 100 = 16.67 (old ones would give 20.0).
    score, weights = score_of(client, headers, case, "2015-W48")
    assert (score, weights["close_rate"]) == (16.67, 50)
    # November started before the change: old weights for the month.
    month = client.get("/api/rankings?of=leader&period=month&from=2015-11", headers=headers)
    assert month.get_json()["settings"]["weights"]["on_time_rate"] == 60
    # A trend over both weeks uses each week's own rules.
    trend = client.get(
        "/api/rankings/trend?of=leader&period=week&from=2015-W48&periods=2", headers=headers
    ).get_json()
    a = next(r for r in trend["rows"] if r["key"] == case.leaders["A"])
    assert a["score"] == [49.5, 16.67]


def test_category_time_limit_from_a_date(db_session, app, case):
    vocabularies.set_rule(db_session, None, "category_deadline_hours", {"环境卫生": 48},
                          at(21, 0), "汛期放宽", now=at(20, 9))  # fmt: skip
    config = app.config
    default = config["ISSUE_CATEGORIES"]["环境卫生"]
    assert vocabularies.issue_settings(db_session, config, at(20, 23)).categories["环境卫生"] == (
        default
    )
    assert vocabularies.issue_settings(db_session, config, at(21, 1)).categories["环境卫生"] == 48


def test_changes_are_checked_and_never_retroactive(db_session, case):
    with pytest.raises(InvalidInput):  # in the past
        vocabularies.set_rule(db_session, None, "ranking_threshold", 80, at(19, 0), "x",
                              now=at(20, 9))  # fmt: skip
    with pytest.raises(InvalidInput):
        vocabularies.set_rule(db_session, None, "ranking_weights", {"speed": 1}, None, "x",
                              now=at(20, 9))  # fmt: skip
    with pytest.raises(InvalidInput):  # no reason
        vocabularies.set_rule(db_session, None, "ranking_bottom_n", 5, None, " ", now=at(20, 9))
    with pytest.raises(InvalidInput):
        vocabularies.set_rule(db_session, None, "planet", 5, None, "x", now=at(20, 9))


def test_rule_settings_api_admin_only_and_audited(client, db_session, case):
    _, planner = account(db_session, "planner")
    _, admin = account(db_session, "admin")
    body = {"key": "ranking_threshold", "value": 80, "note": "市创文办通知"}
    assert client.post("/api/rule-settings", json=body, headers=planner).status_code == 403
    r = client.post("/api/rule-settings", json={**body, "value": 180}, headers=admin)
    assert r.status_code == 422 and r.get_json()["field"] == "value"
    r = client.post("/api/rule-settings", json=body, headers=admin)
    assert r.status_code == 201, r.get_json()
    overview = client.get("/api/rule-settings", headers=planner).get_json()
    threshold = next(x for x in overview["rules"] if x["key"] == "ranking_threshold")
    assert threshold["value"] == 80 and threshold["history"][0]["note"] == "市创文办通知"
    assert (
        db_session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'rule_setting.create'")
        ).scalar()
        == 1
    )


def test_rules_page(client, db_session, case):
    _, admin = account(db_session, "admin")
    vocabularies.set_rule(db_session, None, "ranking_threshold", 80, None, "通知<script>")
    page = client.get("/admin/rules", headers=admin)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "考核规则与条块分工" in html and "通知&lt;script&gt;" in html
    # A start in local time (TIMEZONE, Beijing): a change from a day's 00:00 reads so.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    start = datetime(2098, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    vocabularies.set_rule(db_session, None, "ranking_bottom_n", 4, start, "下月起")
    html = client.get("/admin/rules", headers=admin).get_data(as_text=True)
    assert "2098-03-01 00:00 起" in html and "2098-02-28 16:00" not in html
    assert 'data-url="/api/routing-rules"' in html
    _, viewer = account(db_session, "viewer")
    html = client.get("/admin/rules", headers=viewer).get_data(as_text=True)
    assert 'data-url="/api/rule-settings"' not in html


def test_category_photo_rule_and_negative_list_from_a_date(db_session, app, case):
    from geoservice.issues.issues import Report, create_issue
    from tests.factories import LAYERS, metres

    vocabularies.set_rule(db_session, None, "category_min_photos", {"环境卫生": 0}, at(21, 0),
                          "暗访随手记可无照片", now=at(20, 9))  # fmt: skip
    vocabularies.set_rule(db_session, None, "negative_list_categories", ["环境卫生"], at(21, 0),
                          "列入负面清单", now=at(20, 9))  # fmt: skip
    lon, lat = metres(250, 50)

    def report(when):
        settings = vocabularies.issue_settings(db_session, app.config, when)
        r = Report(lon=lon, lat=lat, category="环境卫生", source="暗访督查", reported_at=when)
        return create_issue(db_session, LAYERS, settings, r, None, now=when)

    with pytest.raises(InvalidInput) as err:  # before: REPORT_MIN_PHOTOS (1) applies
        report(at(20, 23))
    assert err.value.field == "photos"
    issue = report(at(21, 1))
    assert issue.negative_list is True
