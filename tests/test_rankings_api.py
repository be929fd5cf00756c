"""The rankings API: parameters, access, drill-down, scorecards, the page and the download."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from geoservice.accounts.auth import create_user, issue_token
from tests.ranking_case import build


@pytest.fixture
def case(db_session):
    return build(db_session)


@pytest.fixture
def token(db_session):
    made = []

    def make(role: str, leader_id: int | None = None) -> dict[str, str]:
        made.append(role)
        user = create_user(db_session, f"{role}-{len(made)}", role, leader_id=leader_id)
        return {"Authorization": f"Bearer {issue_token(db_session, user)}"}

    return make


def test_rankings_json_has_every_indicator_and_the_rank(client, case, token):
    r = client.get("/api/rankings?of=leader&period=week&from=2015-W47", headers=token("viewer"))
    assert r.status_code == 200
    body = r.get_json()
    assert body["period"]["label"] == "2015-W47"
    assert body["period"]["from"] == "2015-11-16T00:00:00+08:00"
    assert body["period"]["to"] == "2015-11-23T00:00:00+08:00"
    a = next(x for x in body["rows"] if x["key"] == case.leaders["A"])
    assert (a["name"], a["score"], a["rank"], a["bottom"]) == ("甲领导", 49.5, 2, True)
    assert set(body["indicators"]) >= {"received", "close_rate", "score", "median_hours_to_close"}
    # A date inside the week names the same week.
    same = client.get("/api/rankings?of=leader&from=2015-11-18", headers=token("planner"))
    assert same.get_json()["rows"] == body["rows"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("of=planet", "of"),
        ("of=leader&period=year", "period"),
        ("of=leader&period=week&from=2015-W60", "from"),
        ("of=leader&period=week&from=last-week", "from"),
        ("of=leader&period=month&from=2015-13", "from"),
        ("of=leader&period=custom&from=2015-11-20&to=2015-11-10", "to"),
        ("of=leader&period=custom&from=2015-11-20", "from"),
        ("of=leader&period=custom&from=2015-11-01&to=tomorrow", "to"),
        ("of=leader&period=week&from=2015-W47&to=2015-11-30", "to"),
        # The calendar's ends (a period of year 9999 ends in 10000; trends reach back from 1).
        ("of=leader&period=week&from=9999-W52", "from"),
        ("of=leader&period=month&from=9999-12", "from"),
        ("of=leader&period=quarter&from=0001-Q1", "from"),
        ("of=leader&period=week&from=0001-01-01", "from"),
        ("of=leader&period=custom&from=2026-11-01&to=9999-12-31", "to"),
    ],
)
def test_bad_parameters_are_400_json_naming_the_field(client, token, query, field):
    r = client.get(f"/api/rankings?{query}", headers=token("viewer"))
    assert r.status_code == 400
    body = r.get_json()
    assert body["field"] == field and body["error"]


@pytest.mark.parametrize(
    "path",
    ["/api/rankings/charts", "/api/rankings/trend", "/api/rankings/report.xlsx", "/rankings"],
)
def test_periods_at_the_calendars_ends_are_400_everywhere(client, token, path):
    for query in ("period=week&from=9999-W52", "period=week&from=0001-W01"):
        r = client.get(f"{path}?{query}", headers=token("planner"))
        assert r.status_code == 400, (path, query, r.status_code)


def test_custom_and_quarter_periods(client, case, token):
    r = client.get(
        "/api/rankings?of=unit&period=custom&from=2015-11-16&to=2015-11-23", headers=token("viewer")
    )
    custom = {x["key"]: x["score"] for x in r.get_json()["rows"]}
    assert custom[case.units["一局"]] == 58.0
    q = client.get("/api/rankings?of=unit&period=quarter&from=2015-Q4", headers=token("viewer"))
    assert q.get_json()["period"]["title"] == "2015年第四季度"


def test_drill_down_lists_the_issues_behind_a_number(client, case, token):
    url = "/api/rankings/issues?of=leader&from=2015-W47&indicator=overdue_end&key="
    r = client.get(url + str(case.leaders["A"]), headers=token("viewer"))
    assert r.status_code == 200
    body = r.get_json()
    assert body["total"] == 2
    assert {i["id"] for i in body["issues"]} == {case.issues["I6"], case.issues["I8"]}
    assert all(i["leader"] == "甲领导" for i in body["issues"])
    unassigned = client.get(
        "/api/rankings/issues?of=leader&from=2015-W47&indicator=received&key=none",
        headers=token("viewer"),
    ).get_json()
    assert [i["id"] for i in unassigned["issues"]] == [case.issues["I12"]]
    bad = client.get(url + "abc", headers=token("viewer"))
    assert (bad.status_code, bad.get_json()["field"]) == (400, "key")
    huge = client.get(url + "99999999999999999999", headers=token("viewer")).get_json()
    assert huge["field"] == "key" and "未保存" not in huge["error"]
    bad = client.get(
        "/api/rankings/issues?of=leader&from=2015-W47&indicator=score&key=1",
        headers=token("viewer"),
    )
    assert (bad.status_code, bad.get_json()["field"]) == (400, "indicator")
    bad = client.get(url + "1&limit=0", headers=token("viewer"))
    assert (bad.status_code, bad.get_json()["field"]) == (400, "limit")


def test_rankings_need_a_reading_role(client, case, token):
    assert client.get("/api/rankings?of=leader").status_code == 401
    r = client.get("/api/rankings?of=leader", headers=token("inspector"))
    assert r.status_code == 403 and r.get_json()["error"]
    assert client.get("/api/rankings?of=leader", headers=token("admin")).status_code == 200
    page = client.get("/rankings")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_the_issues_behind_a_number_are_listed_within_the_callers_scope(
    client, case, token, db_session
):
    from geoservice.accounts import scope
    from geoservice.models import User

    b = case.leaders["B"]
    url = f"/api/rankings/issues?of=leader&from=2015-W47&indicator=received&key={b}"
    everyone = client.get(url, headers=token("viewer")).get_json()
    # 丙 (二局) is not of B's unit (一局), whose leaders see its issues (accounts.scope).
    leader_c = token("leader", case.leaders["C"])
    seen_by_c = client.get(url, headers=leader_c).get_json()
    assert everyone["total"] > 0
    assert seen_by_c["total"] < everyone["total"]
    account_c = db_session.query(User).filter_by(leader_id=case.leaders["C"]).one()
    for issue in seen_by_c["issues"]:
        assert scope.visible_issue(db_session, account_c, issue["id"]) is not None


def test_a_leader_sees_only_their_own_scorecard(client, case, token):
    a, b = case.leaders["A"], case.leaders["B"]
    mine = token("leader", a)
    r = client.get(f"/api/leaders/{a}/scorecard?from=2015-W47", headers=mine)
    assert r.status_code == 200
    card = r.get_json()
    assert (card["row"]["score"], card["row"]["rank"], card["ranked_count"]) == (49.5, 2, 4)
    assert card["trend"]["periods"][-1] == "2015-W47" and len(card["trend"]["score"]) == 8
    assert {i["id"] for i in card["overdue"]["issues"]} == {case.issues["I6"], case.issues["I8"]}
    assert client.get(f"/api/leaders/{b}/scorecard", headers=mine).status_code == 403
    assert client.get(f"/api/leaders/{b}/scorecard", headers=token("planner")).status_code == 200
    assert client.get("/api/leaders/999999/scorecard", headers=token("planner")).status_code == 404
    fragment = client.get(f"/rankings/scorecard/{a}?from=2015-W47", headers=mine)
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert "甲领导" in html and "49.50" in html and "2 / 4" in html and "<html" not in html


def test_the_page_embeds_the_ranking_and_loads_charts_locally(client, case, token):
    r = client.get("/rankings?of=unit&from=2015-W47", headers=token("viewer"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "督查考核排名" in html and "红榜" in html and "黑榜" in html
    assert "/vendor/echarts/dist/echarts.min.js" in html and "https://" not in html
    assert "一局" in html  # the first ranking is in the page
    assert client.get("/vendor/echarts/dist/echarts.min.js").status_code == 200


def test_charts_and_trend_endpoints(client, case, token):
    charts = client.get("/api/rankings/charts?from=2015-W47", headers=token("viewer")).get_json()
    assert charts["weekly"]["weeks"][-1] == "2015-W47" and len(charts["weekly"]["weeks"]) == 8
    assert charts["weekly"]["received"][-1] == 9
    assert charts["overdue_by_category"] == [
        {"key": "环境卫生", "name": "环境卫生", "value": 2},
        {"key": "道路破损", "name": "道路破损", "value": 1},
    ]
    trend = client.get(
        "/api/rankings/trend?of=leader&from=2015-W47&periods=3", headers=token("viewer")
    )
    assert trend.get_json()["periods"] == ["2015-W45", "2015-W46", "2015-W47"]
    bad = client.get("/api/rankings/trend?of=leader&periods=99", headers=token("viewer"))
    assert bad.status_code == 400


def test_report_download_is_a_workbook(client, case, token):
    r = client.get("/api/rankings/report.xlsx?from=2015-W47", headers=token("viewer"))
    assert r.status_code == 200
    assert "attachment" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["封面", "包保领导排名", "责任单位排名", "网格排名", "超期问题"]


def test_city_wide_figures_are_zeros_for_a_period_without_issues(client, token):
    # A city just set up (no issues yet): the page's cards read of=all's one row.
    body = client.get(
        "/api/rankings?of=all&period=week&from=2015-W47", headers=token("viewer")
    ).get_json()
    assert len(body["rows"]) == 1
    row = body["rows"][0]
    assert row["name"] == "全域"
    assert (row["received"], row["closed"], row["open_end"], row["overdue_end"]) == (0, 0, 0, 0)
    assert row["close_rate"] is None and row["score"] is None


def test_the_rankings_json_encoder_gives_flasks_json(app):
    """GET /api/rankings is encoded by orjson (api.rankings.json_response): the same JSON as
    Flask's jsonify, what orjson does not encode itself going through Flask's default."""
    import json
    from datetime import UTC, date, datetime
    from decimal import Decimal
    from enum import StrEnum

    from flask import jsonify

    from geoservice.api.rankings import json_response

    class Kind(StrEnum):
        GRID = "grid"

    payload = {
        "rows": [{"key": 1, "name": "甲网格", "detail": {"code": "A1"}, "rate": 0.0001}],
        "at": datetime(2015, 11, 23, tzinfo=UTC),
        "day": date(2015, 11, 23),
        "amount": Decimal("1.50"),
        "kind": Kind.GRID,
        "by_id": {7: "七"},
        "none": None,
        "big": 2**62,
    }
    with app.test_request_context():
        ours, flasks = json_response(payload), jsonify(payload)
    assert ours.mimetype == flasks.mimetype == "application/json"
    assert ours.get_data().endswith(b"\n") and "甲网格".encode() in ours.get_data()
    assert json.loads(ours.get_data()) == json.loads(flasks.get_data())


def test_the_reports_overdue_sheet_lists_the_callers_issues_only(client, case, token):
    """The 通报's 超期问题 sheet is the list behind 期末超期: within the caller's scope, as
    the drill-down; the rankings sheets stay county-wide."""

    def overdue_ids(headers) -> list:
        r = client.get("/api/rankings/report.xlsx?from=2015-W47", headers=headers)
        rows = list(load_workbook(io.BytesIO(r.data))["超期问题"].iter_rows(values_only=True))
        return [row[1] for row in rows if row and isinstance(row[1], int)]  # 问题编号

    def drilled(headers) -> list:
        url = "/api/rankings/issues?of=all&key=all&indicator=overdue_end&from=2015-W47"
        return sorted(i["id"] for i in client.get(url, headers=headers).get_json()["issues"])

    everyone = token("viewer")
    assert overdue_ids(everyone) and sorted(overdue_ids(everyone)) == drilled(everyone)
    narrower = 0
    for name in ("A", "B", "C", "D"):
        leader = token("leader", case.leaders[name])
        assert sorted(overdue_ids(leader)) == drilled(leader)
        narrower += len(drilled(leader)) < len(drilled(everyone))
    assert narrower  # some leader sees fewer than the county


def test_downloads_carry_a_meaningful_ascii_file_name(client, case, token):
    """RFC 6266: the Chinese name in filename*, and an ASCII filename for clients that ignore
    it — never ".xlsx" or a leading dash."""
    headers = token("admin")
    for url, fallback in (
        ("/api/rankings/report.xlsx?from=2015-W47", 'filename="report-2015-W47.xlsx"'),
        ("/api/roster/template.xlsx", 'filename="roster-template.xlsx"'),
        ("/api/assessment/sites/export", 'filename="sites.xlsx"'),
    ):
        disposition = client.get(url, headers=headers).headers["Content-Disposition"]
        assert fallback in disposition and "filename*=UTF-8''" in disposition, url
