"""Reporting an issue through the API: input forms, attribution with its rule, the queue, bad
input (a clear 4xx with nothing written)."""

import io
from datetime import UTC, datetime

import pytest

from geoservice.coords import wgs84_to_gcj02
from geoservice.models import Issue, Photo
from tests.issues.conftest import T0, T1
from tests.issues.helpers import at, b64, counts, files_in, image_bytes

URL = "/api/collections/issues/items"


def report(client, layout, x, y, who="inspector", **fields):
    body = {
        **at(x, y),
        "category": "环境卫生",
        "source": "暗访督查",
        "description": "垃圾堆积",
        "photos": [b64(image_bytes())],
        **fields,
    }
    return client.post(URL, json=body, headers=layout.headers(who))


def props(response):
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["properties"]


def test_a_report_is_stored_attributed_and_returned_with_its_rule(client, layout, db_session):
    response = report(client, layout, 100, 170, description="楼道堆物")
    assert response.status_code == 201
    feature = response.get_json()
    location = response.headers["Location"]
    assert location.endswith(f"/api/collections/issues/items/{feature['id']}")
    assert client.get(location, headers=layout.headers("viewer")).status_code == 200
    p = feature["properties"]
    assert p["status"] == "reported" and p["status_label"] == "已上报"
    assert p["reported_by"]["id"] == layout.user("inspector").id
    attribution = p["attribution"]
    # Inside the compound and 30 m from the main road: the compound wins on precedence.
    assert attribution["primary_place"]["place_id"] == layout.places["compound"].id
    assert [c["layer"] for c in attribution["places"]] == ["compound", "road", "grid"]
    assert attribution["leader"]["name"] == "李明"
    assert attribution["leader"]["unit"]["name"] == "县住建局"
    assert "阳光小区" in attribution["rule"] and "人民路" in attribution["rule"]
    assert "居民小区 > 道路" in attribution["rule"]
    road = attribution["places"][1]
    assert road["distance_m"] == pytest.approx(30, abs=1)
    assert "40 米认领范围" in road["rule_text"]
    issue = db_session.get(Issue, feature["id"])
    assert issue.leader_id == layout.leaders["new"].id
    assert issue.grid_id == layout.places["g1"].id
    assert p["timeline"][0]["to"] == "reported" and p["timeline"][0]["action"] == "report"
    assert len(p["photos"]) == 1 and p["photos"][0]["kind"] == "before"
    assert p["photos"][0]["url"] and p["timeline"][0]["photo_ids"] == [p["photos"][0]["id"]]


def test_the_leader_at_report_time_is_recorded(client, layout):
    before = props(
        report(client, layout, 100, 100, who="planner", reported_at="2015-10-20T09:00:00+08:00")
    )
    after = props(
        report(client, layout, 100, 100, who="planner", reported_at="2015-11-10T09:00:00+08:00")
    )
    assert before["attribution"]["leader"]["name"] == "王建国"
    assert after["attribution"]["leader"]["name"] == "李明"
    assert "2015-10-20 09:00" in before["attribution"]["rule"]


def test_a_point_on_the_shared_grid_edge_is_claimed_by_both_grids(client, layout, db_session):
    p = props(report(client, layout, 400, 300))
    grids = [c for c in p["attribution"]["places"] if c["layer"] == "grid"]
    assert {c["place_id"] for c in grids} == {layout.places["g1"].id, layout.places["g2"].id}
    issue = db_session.get(Issue, p["id"])
    # The grid recorded is the primary one among them (the same for every such point).
    assert issue.grid_id == issue.primary_place_id == grids[0]["place_id"]


def test_within_tolerance_of_two_roads_the_nearer_one_answers(client, layout):
    p = props(report(client, layout, 305, 190))  # 5 m from the lane, 10 m from the main road
    attribution = p["attribution"]
    assert attribution["primary_place"]["name"] == "书院巷"
    assert [c["name"] for c in attribution["places"] if c["layer"] == "road"] == [
        "书院巷",
        "人民路",
    ]


def test_outside_every_place_the_issue_joins_the_unassigned_queue(client, layout):
    p = props(report(client, layout, 1000, 1000))
    assert p["attribution"]["places"] == []
    assert p["attribution"]["unassigned"] is True and p["attribution"]["reason"] == "no_place"
    assert "待派遣队列" in p["attribution"]["rule"]
    queue = client.get("/api/issues/unassigned", headers=layout.headers("planner")).get_json()
    assert [i["id"] for i in queue["issues"]] == [p["id"]]
    assert queue["issues"][0]["reason"] == "no_place"


def test_a_place_without_a_leader_sends_the_issue_to_the_queue(client, layout):
    p = props(report(client, layout, 265, 35))  # inside the market nobody answers for
    assert p["attribution"]["primary_place"]["name"] == "城南菜市场"
    assert p["attribution"]["reason"] == "no_leader"
    assert p["leader_id"] is None
    queue = client.get("/api/issues/unassigned", headers=layout.headers("planner")).get_json()
    assert queue["numberMatched"] == 1 and queue["issues"][0]["reason"] == "no_leader"


def test_a_geojson_feature_is_accepted(client, layout):
    lon, lat = at(100, 100).values()
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "category": "乱贴乱画",
            "source": "12345热线",
            "severity": 2,
            "negative_list": True,
        },
    }
    p = props(client.post(URL, json=body, headers=layout.headers("integration")))
    assert (p["category"], p["severity"], p["negative_list"]) == ("乱贴乱画", 2, True)
    assert p["photos"] == []  # hotline tickets may come without photos


def test_gcj02_input_is_converted_to_wgs84(client, layout, db_session):
    lon, lat = at(100, 100).values()
    glon, glat = wgs84_to_gcj02(lon, lat)
    response = client.post(
        URL + "?coord_sys=gcj02",
        json={
            "lon": glon,
            "lat": glat,
            "category": "环境卫生",
            "source": "随手拍",
            "photos": [b64(image_bytes())],
        },
        headers=layout.headers("inspector"),
    )
    feature = response.get_json()
    stored_lon, stored_lat = feature["geometry"]["coordinates"]
    assert stored_lon == pytest.approx(lon, abs=1e-7) and stored_lat == pytest.approx(lat, abs=1e-7)
    assert feature["properties"]["attribution"]["primary_place"]["name"] == "阳光小区"
    assert feature["properties"]["timeline"][0]["data"]["input"]["coord_sys"] == "gcj02"


def test_multipart_with_photos_keeps_their_exif(client, layout, uploads):
    lon, lat = at(100, 100).values()
    photo = image_bytes(gps=(lon, lat), taken="2015:11:20 08:15:00")
    data = {
        **{k: str(v) for k, v in at(100, 100).items()},
        "category": "垃圾外溢",
        "source": "随手拍",
        "photos": [
            (io.BytesIO(photo), "IMG_0001.jpg", "image/jpeg"),
            (io.BytesIO(image_bytes("PNG")), "screen.png", "image/png"),
        ],
    }
    response = client.post(
        URL, data=data, headers=layout.headers("inspector"), content_type="multipart/form-data"
    )
    p = props(response)
    first, second = p["photos"]
    assert first["exif_lon"] == pytest.approx(lon, abs=1e-5)
    assert first["exif_lat"] == pytest.approx(lat, abs=1e-5)
    # EXIF time has no zone: it is read as the service's local time (Asia/Shanghai).
    assert datetime.fromisoformat(first["taken_at"]) == datetime(2015, 11, 20, 0, 15, tzinfo=UTC)
    assert second["content_type"] == "image/png"
    assert len(files_in(uploads)) == 4  # two photos, two thumbnails
    image = client.get(first["url"], headers=layout.headers("viewer"))
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert b"Exif" not in image.data[:200]  # the stored copy carries no location
    thumb = client.get(first["thumb_url"], headers=layout.headers("viewer"))
    assert thumb.status_code == 200 and thumb.data != image.data


def test_a_heic_photo_is_converted_to_jpeg(client, layout):
    p = props(report(client, layout, 100, 100, photos=[b64(image_bytes("HEIF"))]))
    assert p["photos"][0]["content_type"] == "image/jpeg"


BAD_REPORTS = [
    ({"category": None}, 422, "category"),
    ({"category": "不存在的类别"}, 422, "category"),
    ({"source": ""}, 422, "source"),
    ({"source": "朋友圈"}, 422, "source"),
    ({"lon": "东经120度"}, 422, "lon"),
    ({"lat": None}, 422, "lat"),
    ({"lon": 200.0}, 422, "geometry"),
    ({"lon": 33.78, "lat": 120.26}, 422, "geometry"),  # swapped
    ({"lon": 121.5, "lat": 31.2}, 422, "geometry"),  # Shanghai: outside the service area
    ({"coord_sys": "bd09"}, 422, "coord_sys"),
    ({"severity": 7}, 422, "severity"),
    ({"severity": "严重"}, 422, "severity"),
    ({"negative_list": "maybe"}, 422, "negative_list"),
    ({"description": "长" * 2001}, 422, "description"),
    ({"reported_at": "yesterday"}, 422, "reported_at"),
    ({"reported_at": "2015-11-20T09:00:00"}, 422, "reported_at"),  # no time zone
    ({"reported_at": "2099-01-01T00:00:00+08:00"}, 422, "reported_at"),
    ({"photos": []}, 422, "photos"),  # an inspection report needs a photo
    ({"photos": ["not base64!"]}, 422, "photos"),
    ({"photos": "abc"}, 422, "photos"),
    ({"photos": [b64(b"hello, I am text")]}, 415, "photos"),
    ({"photos": [b64(image_bytes("GIF"))]}, 415, "photos"),
    ({"photos": [{"data": b64(image_bytes("PNG")), "content_type": "image/jpeg"}]}, 415, "photos"),
    ({"photos": [{"data": b64(image_bytes()), "filename": "a.png"}]}, 415, "photos"),
    ({"photos": [b64(image_bytes())] * 10}, 422, "photos"),
]


@pytest.mark.parametrize(("change", "status", "field"), BAD_REPORTS)
def test_bad_reports_are_refused_and_nothing_is_written(
    client, layout, db_session, uploads, change, status, field
):
    before = counts(db_session)
    response = report(client, layout, 100, 100, **change)
    body = response.get_json()
    assert response.status_code == status, body
    assert body["field"] == field
    assert body["error"] and not body["error"].isascii()  # a Chinese message
    assert counts(db_session) == before
    assert files_in(uploads) == []


def test_a_photo_over_the_size_limit_is_refused(client, layout, db_session, uploads, app):
    app.config["PHOTO_MAX_BYTES"], saved = 2_000, app.config["PHOTO_MAX_BYTES"]
    try:
        big = image_bytes(size=(400, 400))
        assert len(big) > 2_000
        response = report(client, layout, 100, 100, photos=[b64(big)])
    finally:
        app.config["PHOTO_MAX_BYTES"] = saved
    assert response.status_code == 413
    assert "超过大小上限" in response.get_json()["error"]
    assert counts(db_session) == (0, 0, 0) and files_in(uploads) == []


def test_a_body_over_the_request_limit_is_refused(client, layout, app, db_session):
    app.config["MAX_CONTENT_LENGTH"], saved = 10_000, app.config["MAX_CONTENT_LENGTH"]
    try:
        response = report(client, layout, 100, 100, photos=[b64(b"x" * 20_000)])
    finally:
        app.config["MAX_CONTENT_LENGTH"] = saved
    assert response.status_code == 413
    assert counts(db_session) == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("lon=1", "text/plain", 415),
    ],
)
def test_malformed_bodies_are_refused(client, layout, db_session, body, content_type, status):
    response = client.post(
        URL, data=body, content_type=content_type, headers=layout.headers("inspector")
    )
    assert response.status_code == status
    assert counts(db_session) == (0, 0, 0)


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "LineString", "coordinates": [[120.26, 33.78], [120.27, 33.79]]},
        {"type": "Point", "coordinates": [120.26]},
        {"type": "Point", "coordinates": "120.26,33.78"},
        "POINT(120.26 33.78)",
    ],
)
def test_broken_geojson_is_refused(client, layout, db_session, geometry):
    body = {"type": "Feature", "geometry": geometry, "properties": {"category": "环境卫生"}}
    response = client.post(URL, json=body, headers=layout.headers("integration"))
    assert response.status_code == 422 and response.get_json()["field"] == "geometry"
    assert counts(db_session) == (0, 0, 0)


@pytest.mark.parametrize("who", ["viewer", "integration_read_only"])
def test_accounts_without_the_report_permission_cannot_report(client, layout, db_session, who):
    response = report(client, layout, 100, 100, who=who)
    assert response.status_code == 403
    assert response.get_json()["detail"]["action"] == "issues.report"
    assert counts(db_session) == (0, 0, 0)


@pytest.mark.parametrize("who", ["planner", "leader_new"])
def test_planners_and_leaders_may_report_too(client, layout, who):
    assert report(client, layout, 100, 100, who=who).status_code == 201


def test_anonymous_callers_cannot_report(client, layout, db_session):
    assert client.post(URL, json=at(100, 100)).status_code == 401
    assert counts(db_session) == (0, 0, 0)


def test_unknown_ids_are_404(client, layout):
    headers = layout.headers("planner")
    assert client.get("/api/issues/999999", headers=headers).status_code == 404
    assert client.get("/api/photos/999999", headers=headers).status_code == 404
    response = client.post(
        "/api/issues/999999/transitions", json={"to": "accepted"}, headers=headers
    )
    assert response.status_code == 404


def test_reported_at_is_kept_for_attribution_history(client, layout, db_session):
    p = props(
        report(client, layout, 100, 100, who="planner", reported_at="2015-10-05T10:00:00+08:00")
    )
    issue = db_session.get(Issue, p["id"])
    assert issue.reported_at == datetime(2015, 10, 5, 2, 0, tzinfo=UTC)
    assert T0 < issue.reported_at < T1
    assert db_session.query(Photo).filter_by(issue_id=issue.id).count() == 1


def test_a_report_time_with_an_offset_postgresql_cannot_hold_is_the_same_instant(
    client, layout, db_session
):
    """Python reads offsets up to ±23:59, PostgreSQL keeps ±15:59: "+17:25" was a 500."""
    p = props(
        report(client, layout, 100, 100, who="planner", reported_at="2015-10-05T19:25:00+17:25")
    )
    issue = db_session.get(Issue, p["id"])
    assert issue.reported_at == datetime(2015, 10, 5, 2, 0, tzinfo=UTC)
    # Year 1 at +17:25 has no UTC form in Python: outside the service's years, refused by name.
    before = counts(db_session)
    far = report(client, layout, 100, 100, who="planner", reported_at="0001-01-01T00:00:00+17:25")
    assert far.status_code == 422 and far.get_json()["field"] == "reported_at"
    assert counts(db_session) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("reported_at", "2015-10-05T10:00:00+08:00"), ("severity", 3), ("negative_list", True)],
)
def test_only_set_report_meta_may_backdate_or_grade_a_report(
    client, layout, db_session, field, value
):
    """An inspector reports (default time, severity and list) but may not backdate a report
    or set its severity / negative list: 403 naming the field, nothing written. A planner
    (issues.set_report_meta) may."""
    before = counts(db_session)
    refused = report(client, layout, 100, 100, **{field: value})
    assert refused.status_code == 403 and refused.get_json()["field"] == field
    assert "issues.set_report_meta" in refused.get_json()["error"]
    assert counts(db_session) == before
    assert report(client, layout, 100, 100, severity=1, negative_list=False).status_code == 201
    planner = report(client, layout, 100, 100, who="planner", **{field: value})
    assert planner.status_code == 201


def test_a_report_whose_photo_cannot_reach_the_disk_is_not_kept(
    client, layout, db_session, monkeypatch
):
    """The photo's file is flushed to disk before the report commits (in the background while
    the report's statements run); if that fails, the report fails and nothing is kept."""
    from geoservice.issues import photos

    def failing_flush(path):
        raise OSError(5, "Input/output error", str(path))

    monkeypatch.setattr(photos, "_flush", failing_flush)
    response = report(client, layout, 100, 100, photos=[b64(image_bytes(size=(64, 48)))])
    assert response.status_code >= 500
    assert counts(db_session) == (0, 0, 0)


def test_a_lost_thumbnail_is_made_again_from_the_photo(client, layout, uploads):
    photo = props(report(client, layout, 100, 100))["photos"][0]
    thumbs = [p for p in files_in(uploads) if "/thumbs/" in p]
    assert len(thumbs) == 1
    headers = layout.headers("planner")
    first = client.get(photo["thumb_url"], headers=headers)
    assert first.status_code == 200
    from pathlib import Path

    Path(thumbs[0]).write_bytes(b"")  # as a crash may leave a file never written out
    again = client.get(photo["thumb_url"], headers=headers)
    assert again.status_code == 200 and again.get_data() == first.get_data()
    Path(thumbs[0]).unlink()
    assert client.get(photo["thumb_url"], headers=headers).get_data() == first.get_data()
    assert Path(thumbs[0]).stat().st_size == len(first.get_data())
