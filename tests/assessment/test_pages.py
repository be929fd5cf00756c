"""/assessment pages on the hand-built round: the figures, the drill-down, the phone pages, the
QR sheet and codes, and the 点位清单 round trip."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from geoservice.assessment import sites
from tests.api_support import auth
from tests.assessment import case


@pytest.fixture
def world(app, db_session, tmp_path):
    return case.recorded(app, db_session, tmp_path)


def test_the_assessment_page_shows_scores_ranks_and_the_map(client, world):
    headers = auth(world["session"], "planner", "planner_page")
    page = client.get(f"/assessment?round={world['round'].id}&of=leader", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "85.42" in html and "50.0%" in html  # county score and 点位达标率
    assert "王三" in html and "66.67" in html and "低于85分" in html
    assert "leaflet" in html.lower()  # the folium map, drawn from our own assets
    assert "cdn." not in html.lower() and "unpkg" not in html.lower()


def test_the_assessment_page_scores_each_round_once(client, world, monkeypatch):
    """The shown round's site scores serve its table, map and trend point (a city's round
    took ~0.35 s to score at scale 100); the trend's point equals the table's totals."""
    from geoservice.assessment import scores

    computed = []
    real = scores.site_scores

    def counted(session, round_id, settings):
        computed.append(round_id)
        return real(session, round_id, settings)

    monkeypatch.setattr(scores, "site_scores", counted)
    headers = auth(world["session"], "planner", "planner_page")
    page = client.get(f"/assessment?round={world['round'].id}", headers=headers)
    assert page.status_code == 200
    assert computed.count(world["round"].id) == 1
    assert "85.42" in page.get_data(as_text=True)


def test_drill_down_lists_the_failed_standards(client, world):
    headers = auth(world["session"], "viewer", "viewer_page")
    rid = world["round"].id
    page = client.get(f"/assessment/rounds/{rid}/failures", headers=headers)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "无乱贴乱画" in html and "无大面积垃圾堆积" in html
    one = client.get(
        f"/assessment/rounds/{rid}/failures?of=leader&key={world['leaders']['L3'].id}",
        headers=headers,
    ).get_data(as_text=True)
    assert "无大面积垃圾堆积" in one and "无乱贴乱画" not in one


def test_the_phone_pages_list_the_inspectors_sites(client, world):
    session = world["session"]
    from geoservice.accounts.auth import issue_token

    token = issue_token(session, world["inspector"])
    headers = {"Authorization": f"Bearer {token}"}
    listing = client.get("/assessment/record", headers=headers)
    assert listing.status_code == 200 and "school1" in listing.get_data(as_text=True)
    site = world["sites"]["school1"]
    sheet = client.get(f"/assessment/record/{world['round'].id}/{site.id}", headers=headers)
    assert sheet.status_code == 200
    assert "已录入：不合格" in sheet.get_data(as_text=True)


def test_qr_codes_open_the_report_page_at_the_site(client, world):
    headers = auth(world["session"], "viewer", "viewer_qr")
    site = world["sites"]["bus1"]
    png = client.get(f"/api/assessment/sites/{site.id}/qr", headers=headers)
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    svg = client.get(f"/api/assessment/sites/{site.id}/qr?format=svg", headers=headers)
    assert svg.status_code == 200 and b"<svg" in svg.data
    sheet = client.get("/assessment/qr?street=320900001", headers=headers).get_data(as_text=True)
    assert "bus1" in sheet and "school1" in sheet and "school2" not in sheet
    from geoservice.assessment.sites import qr_target, site_json

    target = qr_target("http://x/", site_json(world["session"], site.id))
    assert target == f"http://x/qr/site/{site.id}"  # one code for whoever scans it
    landing = f"/qr/site/{site.id}"
    staff = client.get(landing, headers=auth(world["session"], "inspector", "inspector_qr"))
    assert staff.status_code == 302
    assert staff.headers["Location"].startswith("/issues/new?lon=")
    assert f"site={site.id}" in staff.headers["Location"]
    anonymous = client.get(landing)  # the citizens' way in is closed here: sign in first
    assert anonymous.status_code == 302 and "/login?next=" in anonymous.headers["Location"]
    client.application.config["CITIZENS_PUBLIC"] = True
    try:
        citizen = client.get(landing)
    finally:
        client.application.config["CITIZENS_PUBLIC"] = False
    assert citizen.status_code == 302
    assert citizen.headers["Location"] == "/public/report?site=site:bus1"
    assert client.get("/qr/site/999999").status_code == 404


def import_site_list(client, headers: dict, data: bytes):
    return client.post(
        "/api/assessment/sites/import",
        data={"file": (io.BytesIO(data), "点位清单.xlsx")},
        headers=headers,
        content_type="multipart/form-data",
    )


def test_the_site_list_round_trips_through_excel(client, world):
    headers = auth(world["session"], "planner", "planner_xlsx")
    exported = client.get("/api/assessment/sites/export", headers=headers)
    assert exported.status_code == 200
    wb = load_workbook(io.BytesIO(exported.data))
    rows = list(wb.active.iter_rows(values_only=True))
    assert rows[0][:3] == ("点位编码", "点位名称", "点位类别")
    assert {r[0] for r in rows[1:]} == {"school1", "bus1", "school2", "bus2"}
    school1 = next(r for r in rows if r[0] == "school1")
    assert school1[9] == "张一" and school1[11] == "stage=小学"

    # Re-importing the same list changes nothing but counts the rows as updates.
    again = import_site_list(client, headers, exported.data)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["updated"] == 4 and again.get_json()["created"] == 0


def test_a_polygon_site_round_trips_through_the_site_list(client, world):
    """A 公园 (polygon kind) is exported without one point, so the list imports back and the
    site keeps its outline (its point was refused: a park must be a polygon)."""
    from geoservice.assessment import kinds

    session = world["session"]
    kinds.create_kind(session, {"code": "park", "name": "公园", "geometry_type": "polygon"})
    lon, lat = case.LON0 + 0.01, case.LAT0 + 0.01
    ring = [[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001], [lon, lat + 0.001],
            [lon, lat]]  # fmt: skip
    sites.create_site(
        session,
        {"code": "park1", "name": "人民公园", "kind": "park",
         "geometry": {"type": "Polygon", "coordinates": [ring]}},
    )  # fmt: skip
    headers = auth(session, "planner", "planner_park")
    exported = client.get("/api/assessment/sites/export", headers=headers)
    rows = list(load_workbook(io.BytesIO(exported.data)).active.iter_rows(values_only=True))
    park = next(r for r in rows if r[0] == "park1")
    assert park[6] is None and park[7] is None  # 经度, 纬度
    again = import_site_list(client, headers, exported.data)
    assert again.status_code == 200, again.get_json()
    kept = session.execute(
        text("SELECT GeometryType(geom) FROM sites s JOIN places p ON p.id = s.id"
             " WHERE p.code = 'park1'")
    ).scalar()  # fmt: skip
    assert kept in ("POLYGON", "MULTIPOLYGON")


def test_a_bad_row_refuses_the_whole_site_list(client, world):
    from openpyxl import Workbook

    session = world["session"]
    headers = auth(session, "planner", "planner_bad")
    wb = Workbook()
    ws = wb.active
    ws.append(["点位编码", "点位名称", "点位类别", "街道", "社区", "经度", "纬度", "坐标系",
               "点长姓名", "点长电话", "类别属性"])  # fmt: skip
    ws.append(["N1", "新站台", "公交站台", "东街", "东社区", case.LON0, case.LAT0, "GCJ-02",
               "赵六", "13900000000", None])  # fmt: skip
    ws.append(["N2", "新学校", "学校周边", "东街", "东社区", case.LON0, case.LAT0, "WGS-84",
               None, None, "stage=大学"])  # fmt: skip
    ws.append(["N3", "怪点", "动物园", None, None, case.LON0, case.LAT0, None, None, None, None])
    out = io.BytesIO()
    wb.save(out)
    before = session.scalar(text("SELECT count(*) FROM sites"))
    response = import_site_list(client, headers, out.getvalue())
    assert response.status_code == 422
    errors = response.get_json()["detail"]["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(3, "类别属性"), (4, "点位类别")]
    assert session.scalar(text("SELECT count(*) FROM sites")) == before
    assert session.scalar(text("SELECT count(*) FROM leaders WHERE name = '赵六'")) == 0


def test_a_planner_creates_a_kind_on_the_page(client, world):
    headers = auth(world["session"], "planner", "planner_form")
    response = client.post(
        "/assessment/kinds",
        data={"name": "网吧", "code": "netcafe", "geometry_type": "point", "colour": "#37474f",
              "claim_radius_m": "25", "precedence": "61",
              "attributes": "seats|座位数|integer|否\nlevel|等级|choice|是|甲、乙"},
        headers=headers,
    )  # fmt: skip
    assert response.status_code == 302
    kind = client.get("/api/assessment/kinds", headers=headers).get_json()["kinds"]
    made = next(k for k in kind if k["code"] == "netcafe")
    assert made["attributes"][1] == {
        "name": "level", "title": "等级", "type": "choice", "required": True,
        "choices": ["甲", "乙"],
    }  # fmt: skip
    assert made["claim_radius_m"] == 25 and made["precedence"] == 61
    collections = client.get("/api/collections", headers=headers).get_json()["collections"]
    assert "site-netcafe" in [c["id"] for c in collections]
    viewer = auth(world["session"], "viewer", "viewer_form")
    refused = client.post("/assessment/kinds", data={"name": "x", "code": "x"}, headers=viewer)
    assert refused.status_code == 403


def test_a_planner_creates_a_sampled_round_on_the_page(client, world):
    headers = auth(world["session"], "planner", "planner_round")
    response = client.post(
        "/assessment/rounds",
        data={"name": "第二轮", "starts_on": "2026-12-01", "ends_on": "2026-12-03",
              "version_id": str(world["version"].id), "sample_per_kind": "1", "seed": "7"},
        headers=headers,
    )  # fmt: skip
    assert response.status_code == 302
    rounds = client.get("/api/assessment/rounds", headers=headers).get_json()["rounds"]
    second = next(r for r in rounds if r["name"] == "第二轮")
    assert second["sites"] == 4 and second["seed"] == 7  # 1 per kind per street: all four here
    bad = client.post(
        "/assessment/rounds",
        data={"name": "坏轮", "starts_on": "2026-12-05", "ends_on": "2026-12-01",
              "version_id": str(world["version"].id)},
        headers=headers,
    )  # fmt: skip
    assert bad.status_code == 302
    names = [
        r["name"]
        for r in client.get("/api/assessment/rounds", headers=headers).get_json()["rounds"]
    ]
    assert "坏轮" not in names


def test_the_standards_page_and_an_empty_county(client, world, db_session):
    headers = auth(world["session"], "viewer", "viewer_std")
    page = client.get(f"/assessment/standards/{world['version'].id}", headers=headers)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "周边无垃圾" in html and "不可修改" in html


def test_the_assessment_page_without_rounds(client, db_session):
    headers = auth(db_session, "viewer", "viewer_empty")
    page = client.get("/assessment", headers=headers)
    assert page.status_code == 200 and "还没有测评轮次" in page.get_data(as_text=True)
    assert client.get("/assessment?round=999", headers=headers).status_code == 404
    assert client.get("/assessment?of=planet", headers=headers).status_code == 400


def test_the_inspectors_list_pages_searches_and_puts_the_sites_to_record_first(
    client, world, monkeypatch
):
    """A city's round holds tens of thousands of sites: the phone list shows a page at a time,
    the sites still to record first, with a search and a filter; every page says how many."""
    from geoservice.accounts.auth import issue_token
    from geoservice.web import assessment as pages

    session = world["session"]
    headers = {"Authorization": f"Bearer {issue_token(session, world['inspector'])}"}
    monkeypatch.setattr(pages, "RECORD_PAGE_SITES", 2)
    late = sites.create_site(  # added to the round after the others were recorded
        session, {"code": "bus9", "name": "bus9", "kind": "bus", "lon": 120.3, "lat": 33.7}
    )
    session.execute(
        text("INSERT INTO round_sites (round_id, site_id, inspector_id) VALUES (:r, :s, :i)"),
        {"r": world["round"].id, "s": late.id, "i": world["inspector"].id},
    )

    def names(html: str) -> list[str]:
        return re.findall(r"<b>(\w+)</b> <span class=\"muted\">", html)

    first = client.get("/assessment/record", headers=headers).get_data(as_text=True)
    assert names(first)[0] == "bus9" and len(names(first)) == 2
    assert "共 5 个点位，已录完 4 个" in first and "全部 5 个，显示第 1–2 个" in first
    assert "第 1 / 3 页" in first and "page=2" in first
    pages_seen = [names(first)] + [
        names(client.get(f"/assessment/record?page={n}", headers=headers).get_data(as_text=True))
        for n in (2, 3)
    ]
    assert sorted(n for page in pages_seen for n in page) == [
        "bus1",
        "bus2",
        "bus9",
        "school1",
        "school2",
    ]
    todo = client.get("/assessment/record?show=todo", headers=headers).get_data(as_text=True)
    assert names(todo) == ["bus9"] and "待录入 1 个" in todo
    found = client.get("/assessment/record?q=BUS", headers=headers).get_data(as_text=True)
    assert names(found) == ["bus9", "bus1"] and "全部且含“BUS” 3 个" in found
    none = client.get("/assessment/record?q=无此点位", headers=headers).get_data(as_text=True)
    assert names(none) == [] and "没有全部且含“无此点位”的点位" in none
    bad = client.get("/assessment/record?page=x&show=<b>", headers=headers)
    assert bad.status_code == 200 and names(bad.get_data(as_text=True))[0] == "bus9"


def test_rounds_planned_ahead_or_of_others_never_hide_an_inspectors_round(client, world):
    from geoservice.accounts.auth import issue_token
    from geoservice.assessment import rounds
    from geoservice.models import User

    session = world["session"]
    other = User(username="inspector_other", role="inspector", display_name="另一测评员")
    session.add(other)
    session.flush()
    for n in range(1, 7):
        rounds.create_round(
            session,
            {"name": f"预排第{n}轮", "starts_on": f"2098-0{n}-01", "ends_on": f"2098-0{n}-05",
             "version_id": world["version"].id, "inspector_id": other.id},
            world["planner"],
        )  # fmt: skip
    headers = {"Authorization": f"Bearer {issue_token(session, world['inspector'])}"}
    page = client.get("/assessment/record", headers=headers).get_data(as_text=True)
    assert "第一轮" in page and "预排第" not in page


def test_the_failures_and_the_qr_sheet_are_paged_with_nothing_left_out(client, world, monkeypatch):
    """A city's round fails ~10,000 standards (each with a photo) and holds ~17,000 sites: the
    failures list and the QR sheet show a page at a time, say how many there are, and every
    row is on some page; thumbnails load when scrolled to."""
    from geoservice.web import assessment as pages

    headers = auth(world["session"], "planner", "planner_paged")
    rid = world["round"].id
    monkeypatch.setattr(pages, "FAILURES_PAGE_ROWS", 1)
    shown = []
    for n in (1, 2):
        html = client.get(f"/assessment/rounds/{rid}/failures?page={n}", headers=headers)
        html = html.get_data(as_text=True)
        assert f"2 条，第 {n}–{n} 条" in html and f"第 {n} / 2 页" in html
        shown += re.findall(r"<b>([^<]+)</b> [^<]*<", html.split('id="failures"')[1])
        assert all('loading="lazy"' in tag for tag in re.findall(r"<img [^>]*>", html))
    assert len(shown) == 2 and len(set(shown)) == 2  # the case's two failures, one a page

    monkeypatch.setattr(pages, "QR_SHEET_SITES", 1)
    codes = []
    for n in (1, 2):
        html = client.get(f"/assessment/qr?street=320900001&page={n}", headers=headers)
        html = html.get_data(as_text=True)
        assert "共 2 个点位" in html and f"第 {n} / 2 页" in html
        codes += re.findall(r"<small>(\w+) · ", html)
    assert sorted(codes) == ["bus1", "school1"]
    every = client.get("/assessment/qr", headers=headers).get_data(as_text=True)
    assert "共 4 个点位" in every and "（2 个点位）" in every  # each street offered, counted


def test_a_citys_round_is_drawn_small_and_on_a_canvas(app):
    """~9,000 sites at the size of a county's few hundred made one blot (and one SVG element
    each): drawn smaller the more there are, on a canvas past a thousand."""
    from geoservice.web import assessment as pages

    def site(n: int) -> dict:
        return {"site_id": n, "lon": 120 + n * 1e-4, "lat": 33.7, "name": f"点位{n}",
                "kind_name": "学校", "score": 90.0, "leader_name": None,
                "negative": False, "passed": n % 2 == 0, "failed": n % 2 == 1}  # fmt: skip

    def drawn(count: int) -> tuple[set, bool]:
        with app.test_request_context():
            fmap = pages._map([site(n) for n in range(count)], 1)
        script = str(fmap["script"]) + str(fmap["header"])
        radii = set(re.findall(r'return \{[^}]*"radius": (\d+)', script))  # the styles
        return radii, '"preferCanvas": true' in script

    assert drawn(20) == ({"7"}, False)
    assert drawn(1200) == ({"5"}, True)
    assert drawn(3001) == ({"3"}, True)


def test_the_ranking_table_is_paged_and_names_the_bottom_rows_on_other_pages(
    client, world, monkeypatch
):
    from geoservice.web import assessment as pages

    monkeypatch.setattr(pages, "RANKING_PAGE_ROWS", 1)
    headers = auth(world["session"], "planner", "planner_ranked")
    rid = world["round"].id
    names = []
    for n in (1, 2, 3, 4):
        html = client.get(f"/assessment?round={rid}&of=site&page={n}", headers=headers)
        html = html.get_data(as_text=True)
        assert f"共 4 个，第 {n}–{n} 个" in html and f"第 {n} / 4 页" in html
        table = html.split('id="ranking"')[1].split("</table>")[0]
        (name,) = re.findall(r'<td class="name">([^<]+)</td>', table)
        names.append(name)
        bottom = re.search(r'<p class="bottom-line">([^<]*)</p>', html)
        flagged_here = "后3名</span>" in table
        assert bottom is not None or flagged_here  # the bottom rows are named on every page
        if bottom is not None:
            assert name not in bottom.group(1)
    assert len(set(names)) == 4  # every site on some page
