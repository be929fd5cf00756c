"""Abuse limits of the public 随手拍: per IP, per phone, the proof-of-work (missing, wrong,
forged, too easy, expired, reused), photo size/count/type, EXIF stripped, and the duplicate
suggestion with "me too" instead of a new issue."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from PIL import Image
from sqlalchemy import func, select

from geoservice.citizens import challenge
from geoservice.citizens.models import CitizenReport, IssuePublic
from geoservice.models import Issue, Photo, RateCounter
from tests.citizens_support import file_report, headers, proof
from tests.issues.helpers import at, counts, image_bytes

pytest_plugins = ("tests.citizens_fixtures",)


def _issues(session) -> int:
    return session.scalar(select(func.count()).select_from(Issue))


def test_reports_per_ip_are_limited(public_on, client, layout, db_session, monkeypatch):
    monkeypatch.setitem(public_on.config, "CITIZEN_REPORTS_PER_IP_HOUR", 2)
    assert file_report(client).status_code == 201
    assert file_report(client).status_code == 201
    refused = file_report(client)
    body = refused.get_json()
    assert refused.status_code == 429 and "提交次数已达上限" in body["error"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert _issues(db_session) == 2
    other = file_report(client, environ={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 201


def test_unsolved_attempts_do_not_eat_the_quota_of_a_shared_address(
    public_on, client, layout, monkeypatch
):
    monkeypatch.setitem(public_on.config, "CITIZEN_REPORTS_PER_IP_HOUR", 1)
    for _ in range(3):
        assert file_report(client, solved={"challenge": "x", "solution": "y"}).status_code == 403
    assert file_report(client).status_code == 201
    assert file_report(client).status_code == 429


def test_reports_per_phone_are_limited(public_on, client, layout, db_session, monkeypatch):
    monkeypatch.setitem(public_on.config, "CITIZEN_REPORTS_PER_PHONE_DAY", 1)
    assert file_report(client, phone="13800138000").status_code == 201
    # The same number written differently, from another network.
    refused = file_report(client, phone="+86 138-0013-8000", environ={"REMOTE_ADDR": "10.9.9.9"})
    assert refused.status_code == 429 and refused.get_json()["field"] == "phone"
    assert file_report(client, phone="13900139000").status_code == 201
    # The counter's key never holds the number.
    keys = db_session.scalars(select(RateCounter.key)).all()
    assert any(k.startswith("citizen:phone:") for k in keys)
    assert not any("13800138000" in k for k in keys)


def test_the_challenge_must_be_solved_signed_fresh_and_unused(
    public_on, client, layout, db_session
):
    secret = public_on.config["SECRET_KEY"]
    fresh = proof(client)
    forged = fresh["challenge"].split(".")
    forged[1] = "0"  # claim difficulty 0, keep the signature
    easy = challenge.issue(secret, 1, 600)
    expired = challenge.issue(secret, 4, 600, now=datetime.now(UTC) - timedelta(hours=1))
    cases = {
        "missing": {"challenge": "", "solution": ""},
        "unsolved": {"challenge": fresh["challenge"], "solution": "not-it"},
        "forged": {"challenge": ".".join(forged), "solution": "0"},
        "too easy": {"challenge": easy.token, "solution": challenge.solve(easy.token, 1)},
        "expired": {"challenge": expired.token, "solution": challenge.solve(expired.token, 4)},
    }
    if challenge.solves(fresh["challenge"], "not-it", 4):  # astronomically unlikely
        del cases["unsolved"]
    before = counts(db_session)
    for name, solved in cases.items():
        response = file_report(client, solved=solved)
        assert response.status_code == 403, name
        assert (
            response.get_json()["field"] == "challenge" and "校验" in response.get_json()["error"]
        )
    assert counts(db_session) == before
    # A refused report does not spend its challenge; a stored one does.
    assert file_report(client, solved=fresh, category="").status_code == 422
    assert file_report(client, solved=fresh).status_code == 201
    again = file_report(client, solved=fresh)
    assert again.status_code == 403 and "已使用" in again.get_json()["error"]


def test_photo_size_count_and_type_are_limited(public_on, client, layout, db_session, monkeypatch):
    monkeypatch.setitem(public_on.config, "CITIZEN_PHOTO_MAX_BYTES", 20_000)
    before = counts(db_session)
    big = file_report(
        client, photos=[image_bytes(size=(800, 600), color=(1, 2, 3)) + b"\0" * 30_000]
    )
    assert big.status_code == 413 and big.get_json()["field"] == "photos"
    many = file_report(client, photos=[image_bytes()] * 4)
    assert many.status_code == 422 and "最多上传 3 张" in many.get_json()["error"]
    not_image = file_report(client, photos=[b"%PDF-1.4 not a photo"])
    assert not_image.status_code == 415
    # A body larger than its photos may be is refused before it is read (CSRF check included).
    whole = file_report(client, photos=[b"\xff\xd8" + b"\0" * 400_000])
    assert whole.status_code == 413 and "上传内容过大" in whole.get_json()["error"]
    assert counts(db_session) == before


def test_exif_is_stripped_from_stored_photos(public_on, client, layout, db_session, uploads):
    lon, lat = at(100, 100)["lon"], at(100, 100)["lat"]
    gps_photo = image_bytes(gps=(lon, lat), taken="2026:11:20 09:30:00")
    assert b"Exif" in gps_photo
    assert file_report(client, photos=[gps_photo]).status_code == 201
    photo = db_session.scalar(select(Photo).order_by(Photo.id.desc()))
    stored = next(uploads.rglob(f"{photo.sha256}.jpg"))
    data = stored.read_bytes()
    assert b"Exif" not in data
    assert not Image.open(io.BytesIO(data)).getexif()


def test_nearby_reports_are_suggested_and_me_too_adds_weight(public_on, client, layout, db_session):
    assert file_report(client, x=100, y=100).status_code == 201
    first = db_session.scalar(select(CitizenReport.issue_id))
    near = client.get(
        "/public/api/nearby",
        query_string={**at(110, 100), "category": "环境卫生"},
        headers={"Accept": "application/json"},
    ).get_json()
    assert near["count"] == 1 and near["message"] == "附近已有 1 条同类问题，是否为同一问题？"
    assert near["issues"][0]["id"] == first and near["issues"][0]["distance_m"] == 10
    assert set(near["issues"][0]) == {"id", "status_label", "reported_on", "distance_m", "metoo"}
    other_kind = client.get(
        "/public/api/nearby",
        query_string={**at(110, 100), "category": "道路破损"},
        headers={"Accept": "application/json"},
    ).get_json()
    assert other_kind["count"] == 0 and other_kind["message"] is None
    # Marked sensitive (its public position rounded): never suggested, nor "me too"-able —
    # in or out of the radius, asked from spot after spot, would give back its exact place.
    db_session.merge(IssuePublic(issue_id=first, sensitive=True))
    db_session.flush()
    for x in (110, 130):
        hidden = client.get(
            "/public/api/nearby",
            query_string={**at(x, 100), "category": "环境卫生"},
            headers={"Accept": "application/json"},
        ).get_json()
        assert hidden["count"] == 0 and hidden["issues"] == []
    refused = client.post(
        f"/public/api/issues/{first}/metoo",
        json={**at(110, 100), **proof(client)},
        headers=headers(client),
    )
    assert refused.status_code == 404
    db_session.merge(IssuePublic(issue_id=first, sensitive=False))
    db_session.flush()

    before = _issues(db_session)
    for expected in (1, 2):
        response = client.post(
            f"/public/api/issues/{first}/metoo",
            json={**at(110, 100), **proof(client)},
            headers=headers(client),
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["metoo"] == expected
    assert _issues(db_session) == before
    assert db_session.get(IssuePublic, first).metoo_count == 2
    # Far from the spot, or without a solved challenge: refused.
    far = client.post(
        f"/public/api/issues/{first}/metoo",
        json={**at(900, 900), **proof(client)},
        headers=headers(client),
    )
    assert far.status_code == 404
    unsolved = client.post(
        f"/public/api/issues/{first}/metoo", json=at(110, 100), headers=headers(client)
    )
    assert unsolved.status_code == 403
    assert db_session.get(IssuePublic, first).metoo_count == 2
