"""The report page and the issue page (Chinese, offline assets only)."""

import json
import re

from geoservice.registry import layers
from tests.issues.helpers import at
from tests.issues.test_transitions import AFTER, move, new_issue, ok


def test_the_report_page_offers_gps_camera_and_a_map(client, layout):
    response = client.get("/issues/new", headers=layout.headers("inspector"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'accept="image/*" capture="environment" multiple' in html
    assert "navigator.geolocation" in html
    assert "/vendor/leaflet/dist/leaflet.js" in html
    assert "<option>道路破损</option>" in html and "12345热线" in html
    settings = report_map(html)
    assert settings["area"]["type"] in ("Polygon", "MultiPolygon")  # the service area
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing from a CDN


def report_map(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-map">(.*?)</script>', html, re.S)
    assert found, "the report page carries its map settings"
    return json.loads(found.group(1))


def test_the_report_map_asks_who_answers_and_draws_every_readable_layer(app, client, layout):
    html = client.get("/issues/new", headers=layout.headers("inspector")).get_data(as_text=True)
    settings = report_map(html)
    assert settings["attribution"] == "/api/attribution"
    assert [layer["items"] for layer in settings["layers"]] == [
        f"/api/collections/{spec.collection}/items" for spec in layers(app)
    ]
    assert settings["basemap"] == {"shift": None, "choices": []}  # offline by default
    # The URLs the page fetches answer this account (items by bbox, the preview).
    lon, lat = at(100, 170).values()
    bbox = f"{lon - 0.003},{lat - 0.003},{lon + 0.003},{lat + 0.003}"  # ±300 m
    for layer in settings["layers"]:
        page = client.get(
            f"{layer['items']}?bbox={bbox}&limit={settings['contextLimit']}",
            headers=layout.headers("inspector"),
        )
        assert page.status_code == 200
    names = {
        f["properties"].get("name")
        for layer in settings["layers"]
        for f in client.get(
            f"{layer['items']}?bbox={bbox}", headers=layout.headers("inspector")
        ).get_json()["features"]
    }
    assert {"阳光小区", "人民路", "书院巷"} <= names
    answer = client.get(
        settings["attribution"],
        query_string={"lon": lon, "lat": lat},
        headers=layout.headers("inspector"),
    )
    assert answer.get_json()["attribution"]["leader"]["name"] == "李明"


def test_a_token_without_layer_access_gets_no_context_layers(client, layout):
    html = client.get("/issues/new", headers=layout.headers("integration")).get_data(as_text=True)
    settings = report_map(html)
    assert settings["layers"] == []  # its token may report and read issues, not layers
    assert settings["attribution"] == "/api/attribution"


def test_on_a_gcj02_basemap_the_report_map_shifts_like_the_map_page(
    app, client, layout, monkeypatch
):
    monkeypatch.setitem(app.config, "BASEMAP", "amap")
    html = client.get("/issues/new", headers=layout.headers("inspector")).get_data(as_text=True)
    settings = report_map(html)
    assert settings["basemap"]["shift"] == "gcj02"
    assert [c["title"] for c in settings["basemap"]["choices"]] == ["高德矢量", "高德影像"]
    assert "/static/js/gcj02.js" in html and "L.CRS.GCJ02" in html


def test_pages_need_an_account(client, layout):
    issue_id = new_issue(client, layout)
    for path in ("/issues/new", f"/issues/{issue_id}", f"/issues/{issue_id}/map"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_issue_page_shows_who_why_photos_and_timeline(client, layout):
    issue_id = new_issue(client, layout, 100, 170, description="楼道堆放杂物")
    ok(move(client, layout, issue_id, "planner", "accepted"))
    ok(move(client, layout, issue_id, "planner", "dispatched"))
    ok(move(client, layout, issue_id, "leader_new", "in_progress"))
    ok(move(client, layout, issue_id, "leader_new", "fixed", note="已清理完毕", photos=AFTER))
    html = client.get(f"/issues/{issue_id}", headers=layout.headers("planner")).get_data(
        as_text=True
    )
    assert "楼道堆放杂物" in html
    assert "李明" in html and "县住建局" in html
    assert "阳光小区" in html and "人民路" in html  # the claims and the rule
    assert "整改前" in html and "整改后" in html
    assert html.count("/api/photos/") >= 4  # before/after thumbnails and timeline thumbnails
    assert "已清理完毕" in html
    assert "复核通过并销号" in html and "返工" in html  # the planner's moves
    assert f"/issues/{issue_id}/map" in html


def test_a_leader_sees_only_their_own_moves(client, layout):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    ok(move(client, layout, issue_id, "planner", "dispatched"))
    mine = client.get(f"/issues/{issue_id}", headers=layout.headers("leader_new"))
    viewer = client.get(f"/issues/{issue_id}", headers=layout.headers("viewer"))
    theirs = client.get(f"/issues/{issue_id}", headers=layout.headers("leader_other"))
    assert "开始整改" in mine.get_data(as_text=True)
    assert "开始整改" not in viewer.get_data(as_text=True)
    assert theirs.status_code == 404


def test_the_issue_map_is_offline_folium(client, layout):
    issue_id = new_issue(client, layout, 100, 170)
    response = client.get(f"/issues/{issue_id}/map", headers=layout.headers("viewer"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/vendor/leaflet/dist/leaflet.js" in html
    assert not re.search(r"(src|href)=\"https?://", html)
    assert "阳光小区" in html and "GeoFeatures.bind" in html


def test_an_unknown_issue_page_is_404(client, layout):
    response = client.get("/issues/999999", headers=layout.headers("viewer"))
    assert response.status_code == 404 and "没有编号为 999999 的问题" in response.get_data(
        as_text=True
    )


def test_the_queue_page_lists_unassigned_issues_for_planners(client, layout):
    issue_id = new_issue(client, layout, 1000, 1000)
    response = client.get("/issues/unassigned", headers=layout.headers("planner"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"#{issue_id}" in html and "不在任何图层范围内" in html
    assert "陈道路" in html  # leaders to choose from
    assert client.get("/issues/unassigned", headers=layout.headers("inspector")).status_code == 403


def test_the_navigation_offers_reporting_and_the_queue_by_permission(client, layout):
    planner = client.get("/issues/new", headers=layout.headers("planner")).get_data(as_text=True)
    viewer = client.get("/", headers=layout.headers("viewer")).get_data(as_text=True)
    assert 'href="/issues/new"' in planner and 'href="/issues/unassigned"' in planner
    assert 'href="/issues/new"' not in viewer and 'href="/issues/unassigned"' not in viewer
