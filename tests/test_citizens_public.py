"""The public map/list and the 曝光台 never show leader names or phones, reporter phones,
descriptions or unapproved photos; sensitive positions are rounded; only screened issues
appear; the planner's switches are planners' only."""

from __future__ import annotations

from sqlalchemy import select

from geoservice.citizens import publish
from geoservice.citizens.models import CitizenReport
from geoservice.models import Issue, Leader, Photo
from tests.citizens_support import file_report
from tests.issues.helpers import at, b64, image_bytes

pytest_plugins = ("tests.citizens_fixtures",)

LEADER_PHONE = "13911112222"
REPORTER_PHONE = "13800138000"
JSON = {"Accept": "application/json"}


def _move(client, layout, issue_id, who, to, **fields):
    response = client.post(
        f"/api/issues/{issue_id}/transitions",
        json={"to": to, **fields},
        headers=layout.headers(who),
    )
    assert response.status_code == 200, response.get_json()


def _public_issue(client, layout, db_session, description="东门垃圾满溢，我家住3号楼"):
    gps = image_bytes(gps=(at(100, 100)["lon"], at(100, 100)["lat"]))
    assert file_report(client, phone=REPORTER_PHONE, photos=[gps], description=description)
    issue_id = db_session.scalar(
        select(CitizenReport.issue_id).order_by(CitizenReport.issue_id.desc())
    )
    db_session.get(Leader, layout.leaders["new"].id).phone = LEADER_PHONE
    db_session.flush()
    _move(client, layout, issue_id, "planner", "accepted")
    _move(client, layout, issue_id, "planner", "dispatched")
    _move(client, layout, issue_id, "leader_new", "in_progress")
    _move(
        client,
        layout,
        issue_id,
        "leader_new",
        "fixed",
        note="李明带队清理",
        photos=[b64(image_bytes(color=(0, 200, 0)))],
    )
    return issue_id


def _photos(db_session, issue_id):
    rows = db_session.execute(select(Photo.id, Photo.kind).where(Photo.issue_id == issue_id)).all()
    return {kind: pid for pid, kind in rows}


def _never_private(text: str) -> None:
    for secret in ("李明", "王建国", LEADER_PHONE, REPORTER_PHONE, "我家住3号楼", "李明带队清理"):
        assert secret not in text, secret


def test_the_public_map_and_list_show_no_personal_data(public_on, client, layout, db_session):
    issue_id = _public_issue(client, layout, db_session)
    body = client.get("/public/api/issues", headers=JSON)
    assert body.status_code == 200
    _never_private(body.get_data(as_text=True))
    feature = next(f for f in body.get_json()["features"] if f["id"] == issue_id)
    assert set(feature["properties"]) == {
        "id", "category", "status", "status_label", "reported_on", "unit", "metoo", "approximate",
    }  # fmt: skip
    assert feature["properties"]["unit"] == "县住建局"
    _never_private(client.get("/public/issues").get_data(as_text=True))


def test_sensitive_positions_are_rounded(public_on, client, layout, db_session):
    issue_id = _public_issue(client, layout, db_session)
    exact = at(100, 100)
    response = client.post(
        f"/citizens/api/issues/{issue_id}/public",
        json={"sensitive": True},
        headers=layout.headers("planner"),
    )
    assert response.status_code == 200
    feature = next(
        f for f in client.get("/public/api/issues", headers=JSON).get_json()["features"]
        if f["id"] == issue_id
    )  # fmt: skip
    lon, lat = feature["geometry"]["coordinates"]
    assert (lon, lat) == (round(exact["lon"], 3), round(exact["lat"], 3))
    assert feature["properties"]["approximate"] is True


def test_only_screened_issues_are_public(public_on, client, layout, db_session):
    file_report(client, x=300, y=300)  # waits for screening
    rejected = file_report(client, x=320, y=300).get_json()
    rejected_id = db_session.scalar(
        select(CitizenReport.issue_id).where(CitizenReport.ticket == rejected["ticket"])
    )
    _move(client, layout, rejected_id, "planner", "rejected", note="重复")
    body = client.get("/public/api/issues", headers=JSON).get_json()
    assert body["features"] == [] and sum(body["counts"].values()) == 0


def test_the_exposure_board_shows_approved_photos_only(public_on, client, layout, db_session):
    issue_id = _public_issue(client, layout, db_session)
    photos = _photos(db_session, issue_id)
    url = f"/citizens/api/issues/{issue_id}/public"
    # Approved but not published: still nothing public.
    client.post(url, json={"approve": [photos["after"]]}, headers=layout.headers("planner"))
    assert client.get(f"/public/photos/{photos['after']}").status_code == 404
    response = client.post(url, json={"published": True}, headers=layout.headers("planner"))
    assert response.status_code == 200
    html = client.get("/public/exposure").get_data(as_text=True)
    _never_private(html)
    assert f"/public/photos/{photos['after']}?thumb=1" in html
    assert f"/public/photos/{photos['before']}" not in html
    assert client.get(f"/public/photos/{photos['after']}?thumb=1").status_code == 200
    assert client.get(f"/public/photos/{photos['before']}").status_code == 404
    board = client.get("/public/api/exposure", headers=JSON).get_json()["issues"]
    assert [i["id"] for i in board] == [issue_id]
    assert board[0]["photos"]["before"] == [] and len(board[0]["photos"]["after"]) == 1
    _never_private(str(board))
    # Withdrawing the approval takes the photo down.
    client.post(url, json={"revoke": [photos["after"]]}, headers=layout.headers("planner"))
    assert client.get(f"/public/photos/{photos['after']}").status_code == 404


def test_the_switches_are_for_planners_and_the_phone_too(public_on, client, layout, db_session):
    issue_id = _public_issue(client, layout, db_session)
    url = f"/citizens/api/issues/{issue_id}"
    planner = client.get(url, headers=layout.headers("planner")).get_json()
    assert planner["phone"] == REPORTER_PHONE and planner["ticket"].startswith("SP")
    viewer = client.get(url, headers=layout.headers("viewer"))
    assert viewer.status_code == 200 and viewer.get_json()["phone"] is None
    refused = client.post(
        f"{url}/public", json={"published": True}, headers=layout.headers("viewer")
    )
    assert refused.status_code == 403
    stranger = client.post(
        f"{url}/public", json={"approve": [999999]}, headers=layout.headers("planner")
    )
    assert stranger.status_code == 422
    waiting = file_report(client, x=300, y=300).get_json()
    waiting_id = db_session.scalar(
        select(CitizenReport.issue_id).where(CitizenReport.ticket == waiting["ticket"])
    )
    early = client.post(
        f"/citizens/api/issues/{waiting_id}/public",
        json={"published": True},
        headers=layout.headers("planner"),
    )
    assert early.status_code == 409 and db_session.get(Issue, waiting_id).status == "reported"


def test_public_answers_are_cached_until_a_planner_switch(
    public_on, client, layout, db_session, monkeypatch
):
    monkeypatch.setitem(public_on.config, "PUBLIC_CACHE_SECONDS", 30)
    publish.CACHE.clear()
    try:
        issue_id = _public_issue(client, layout, db_session)

        def mine():
            response = client.get("/public/api/issues", headers=JSON)
            assert response.headers["Cache-Control"] == "public, max-age=30"
            return next(f for f in response.get_json()["features"] if f["id"] == issue_id)

        assert mine()["properties"]["category"] == "环境卫生"
        db_session.get(Issue, issue_id).category = "道路破损"
        db_session.flush()
        assert mine()["properties"]["category"] == "环境卫生"  # served from the cache
        client.post(
            f"/citizens/api/issues/{issue_id}/public",
            json={"sensitive": True},
            headers=layout.headers("planner"),
        )
        fresh = mine()["properties"]
        assert (fresh["category"], fresh["approximate"]) == ("道路破损", True)
    finally:
        publish.CACHE.clear()
