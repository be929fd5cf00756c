"""随手拍 without an account: the report goes through the staff checks and attribution with
source 随手拍, waits for screening, answers a ticket and a private link; the ticket page shows
the unit's name only; unknown or tampered links are the same 404; everything is off by
default."""

from __future__ import annotations

import re

from sqlalchemy import select

from geoservice.citizens.models import CitizenReport
from geoservice.models import Issue, IssueEvent
from tests.citizens_support import file_report, token_of
from tests.issues.helpers import at, counts

pytest_plugins = ("tests.citizens_fixtures",)


def test_public_pages_are_off_by_default(client, layout, db_session):
    for path in ("/public/report", "/public/issues", "/public/exposure", "/public/t/x"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "未找到" in response.get_data(as_text=True)
    response = client.get("/public/api/challenge", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.get_json()["error"] == "未找到"
    before = counts(db_session)
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/public/x").text)
    posted = client.post(
        "/public/api/reports",
        data={**at(100, 100), "category": "环境卫生"},
        headers={"Accept": "application/json", "X-CSRFToken": token.group(1)},
    )
    assert posted.status_code == 404 and counts(db_session) == before


def test_a_citizen_files_a_report_and_follows_it_by_the_link(public_on, client, layout, db_session):
    response = file_report(client, phone="138 0013 8000")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["ticket"].startswith("SP") and body["link"].startswith("/public/t/")
    row = db_session.scalar(select(CitizenReport).where(CitizenReport.ticket == body["ticket"]))
    issue = db_session.get(Issue, row.issue_id)
    # The staff report path: attribution, source 随手拍, waiting for screening, no account.
    assert issue.source == "随手拍" and issue.status == "reported"
    assert issue.reported_by_id is None
    assert issue.leader_id == layout.leaders["new"].id  # the compound's leader at (100, 100)
    assert row.phone == "13800138000"
    assert token_of(body["link"]) not in (row.token_hash, "")  # only the hash is stored

    page = client.get(body["link"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and body["ticket"] in html and "已上报" in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "李明" not in html and "县住建局" not in html  # not dispatched yet: no unit either

    # A planner screens it (立案) and dispatches it: the ticket shows the unit, never the leader.
    planner = layout.headers("planner")
    for to in ("accepted", "dispatched"):
        moved = client.post(f"/api/issues/{issue.id}/transitions", json={"to": to}, headers=planner)
        assert moved.status_code == 200, moved.get_json()
    html = client.get(body["link"]).get_data(as_text=True)
    assert "县住建局" in html and "已交办" in html
    assert "李明" not in html and "13800138000" not in html
    as_json = client.get(
        "/public/api/tickets/" + token_of(body["link"]), headers={"Accept": "application/json"}
    ).get_json()
    assert as_json["unit"] == "县住建局"
    assert "李明" not in str(as_json) and "leader" not in str(as_json)


def test_a_rejection_shows_its_reason_to_the_citizen(public_on, client, layout, db_session):
    body = file_report(client).get_json()
    issue_id = db_session.scalar(
        select(CitizenReport.issue_id).where(CitizenReport.ticket == body["ticket"])
    )
    client.post(
        f"/api/issues/{issue_id}/transitions",
        json={"to": "rejected", "note": "该处属私人院落，不在创文范围"},
        headers=layout.headers("planner"),
    )
    html = client.get(body["link"]).get_data(as_text=True)
    assert "不予立案" in html and "该处属私人院落，不在创文范围" in html


def test_unknown_and_tampered_links_are_the_same_404(public_on, client, layout):
    link = file_report(client).get_json()["link"]
    token = token_of(link)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    pages = [client.get(f"/public/t/{t}") for t in (tampered, "x" * 32, "short", "../../etc")]
    assert all(p.status_code == 404 for p in pages)
    assert len({p.get_data(as_text=True) for p in pages}) == 1
    api = client.get(f"/public/api/tickets/{tampered}", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.get_json() == {"error": "未找到"}


def test_bad_input_is_a_chinese_message_and_writes_nothing(public_on, client, layout, db_session):
    before = counts(db_session)
    cases = [
        ({"category": ""}, "category", "缺少问题类别"),
        ({"lon": "", "lat": ""}, "geometry", "请先定位"),
        ({"phone": "12345"}, "phone", "手机号格式不正确"),
        ({"description": "长" * 501}, "description", "不能超过 500 字"),
    ]
    for fields, field, text in cases:
        response = file_report(client, **fields)
        body = response.get_json()
        assert response.status_code == 422, body
        assert body["field"] == field and text in body["error"]
    outside = file_report(client, x=5000, y=5000)  # beyond the county
    assert outside.status_code == 422 and "服务范围" in outside.get_json()["error"]
    no_photo = file_report(client, photos=[])
    assert no_photo.status_code == 422 and no_photo.get_json()["field"] == "photos"
    assert counts(db_session) == before
    assert db_session.scalar(select(IssueEvent).where(IssueEvent.note == "随手拍上报")) is None


def test_a_site_from_a_qr_link_places_the_spot(public_on, client, layout):
    html = client.get("/public/report?site=compound:C1").get_data(as_text=True)
    assert "阳光小区" in html and '"site": {' in html
    html = client.get("/public/report?site=nope").get_data(as_text=True)
    assert '"site": null' in html
