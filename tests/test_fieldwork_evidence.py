"""Photo evidence (issue 16) on constructed photos: an after-photo taken before dispatch, a
photo taken far away, the same file on two issues, a re-saved copy (dHash), an after-photo
equal to the before-photo; flags never refuse, the 存疑 list and counts per unit show them,
and the display copy carries a watermark while the original stays as stored."""

from __future__ import annotations

import hashlib
import io
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from geoservice.fieldwork import evidence, patrols
from geoservice.fieldwork.models import PhotoCheck
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues import issues as issue_service
from geoservice.issues.photos import Upload, add_photos, prepare
from geoservice.issues.workflow import IssueSettings
from geoservice.models import IssueEvent
from geoservice.registry import layers
from tests.factories import add_feature, add_leader, assign, line, metres, rect
from tests.issues.helpers import account, add_area, b64, image_bytes

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2015, 10, 1, tzinfo=TZ)
REPORTED = datetime(2015, 11, 3, 9, 0, tzinfo=TZ)
DISPATCHED = datetime(2015, 11, 3, 15, 0, tzinfo=TZ)


def exif_time(at: datetime) -> str:
    return at.astimezone(TZ).strftime("%Y:%m:%d %H:%M:%S")


def scene(seed: int, size=(320, 240), quality=92, taken=None, gps=None) -> bytes:
    """A busy picture (random rectangles): different seeds look different to a dHash."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), 120, 60))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle(
            (x0, y0, x0 + rng.randrange(20, 120), y0 + rng.randrange(20, 90)),
            fill=tuple(rng.randrange(256) for _ in range(3)),
        )
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[36867] = taken
    if gps:
        lon, lat = gps
        g = exif.get_ifd(0x8825)

        def dms(v):
            d = int(v)
            m = int((v - d) * 60)
            return (d, m, ((v - d) * 60 - m) * 60)

        g[1], g[2], g[3], g[4] = "N", dms(lat), "E", dms(lon)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def resaved(data: bytes) -> bytes:
    """What a phone's "save a copy" or a chat app does: smaller and recompressed."""
    with Image.open(io.BytesIO(data)) as image:
        copy = image.convert("RGB").resize((288, 216))
    out = io.BytesIO()
    copy.save(out, format="JPEG", quality=60)
    return out.getvalue()


@pytest.fixture
def uploads(app, tmp_path, monkeypatch):
    path = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(path))
    return path


@pytest.fixture
def w(app, db_session, uploads):
    s = db_session
    add_area(s, "320999", rect(-9000, -9000, 9000, 9000))
    grid = add_feature(s, "grid", "320999001001001", rect(0, 0, 400, 400), name="一网格")
    leader = add_leader(s, "甲网格员", unit="城南街道")
    assign(s, leader, grid, T0, role="网格员")
    with app.app_context():
        registry = layers(app)
    return {
        "session": s,
        "grid": grid,
        "leader": leader,
        "user": account(s, "leader", leader=leader),
        "planner": account(s, "planner"),
        "registry": registry,
        "settings": FieldSettings(tz=TZ),
        "issue_settings": IssueSettings.from_config(app.config),
    }


def report(w, photo: bytes, x=100, y=100):
    cfg = w["issue_settings"]
    lon, lat = metres(x, y)
    data = issue_service.validate_report(
        {"lon": lon, "lat": lat, "category": "环境卫生", "source": "自查",
         "reported_at": REPORTED.isoformat()},
        cfg,
    )  # fmt: skip
    prepared = prepare(Upload(photo, "p.jpg"), cfg.photo_limits, TZ)
    return issue_service.create_issue(
        w["session"], w["registry"], cfg, data, w["user"][0], [prepared], REPORTED
    )


def add_after(w, issue, photo: bytes):
    s, cfg = w["session"], w["issue_settings"]
    s.add(IssueEvent(issue_id=issue.id, at=DISPATCHED, from_status="accepted",
                     to_status="dispatched"))  # fmt: skip
    fixed = IssueEvent(issue_id=issue.id, at=DISPATCHED + timedelta(days=1),
                       from_status="in_progress", to_status="fixed")  # fmt: skip
    s.add(fixed)
    s.flush()
    prepared = prepare(Upload(photo, "after.jpg"), cfg.photo_limits, TZ)
    return add_photos(s, cfg.store, issue.id, fixed.id, "after", [prepared])[0]


def flags_of(w, photo_id):
    evidence.scan_pending(w["session"], w["registry"], w["settings"], w["issue_settings"].store)
    check = w["session"].scalar(select(PhotoCheck).where(PhotoCheck.photo_id == photo_id))
    return set(check.flags)


def first_photo(w, issue):
    from geoservice.models import Photo

    return w["session"].scalar(select(Photo.id).where(Photo.issue_id == issue.id))


HERE = metres(100, 100)


def test_an_honest_report_photo_has_no_doubt(w):
    issue = report(w, scene(1, taken=exif_time(REPORTED - timedelta(minutes=5)), gps=HERE))
    assert flags_of(w, first_photo(w, issue)) == set()


def test_an_after_photo_taken_before_dispatch_is_flagged(w):
    issue = report(w, scene(1, taken=exif_time(REPORTED), gps=HERE))
    after = add_after(
        w, issue, scene(2, taken=exif_time(DISPATCHED - timedelta(hours=2)), gps=HERE)
    )
    assert "before_dispatch" in flags_of(w, after.id)
    honest = report(w, scene(3, taken=exif_time(REPORTED), gps=HERE))
    ok = add_after(w, honest, scene(4, taken=exif_time(DISPATCHED + timedelta(hours=20)), gps=HERE))
    assert flags_of(w, ok.id) == set()


def test_a_photo_taken_far_away_is_flagged(w):
    issue = report(w, scene(1, taken=exif_time(REPORTED), gps=metres(5000, 5000)))
    check_flags = flags_of(w, first_photo(w, issue))
    assert check_flags == {"far"}
    check = w["session"].scalar(select(PhotoCheck).where(PhotoCheck.flags.contains(["far"])))
    assert check.details["far"]["distance_m"] > 6000


def test_the_same_picture_on_two_issues_and_a_resaved_copy_are_flagged(w):
    original = scene(9, taken=exif_time(REPORTED), gps=HERE)
    first = report(w, original)
    second = report(w, original, x=300, y=300)  # the very same file on another issue
    copy = report(w, resaved(original), x=200, y=50)  # re-saved: other bytes, same picture
    assert flags_of(w, first_photo(w, first)) == set()  # the first use is not the reuse
    assert "reused_exact" in flags_of(w, first_photo(w, second))
    resaved_flags = flags_of(w, first_photo(w, copy))
    assert "reused_similar" in resaved_flags and "reused_exact" not in resaved_flags
    other = report(w, scene(10, taken=exif_time(REPORTED), gps=HERE))
    assert flags_of(w, first_photo(w, other)) == set()  # a different scene is not "similar"


def test_copies_of_a_picture_are_one_similar_file_named_by_its_first_use(w):
    """However many times a file was uploaded, a re-saved copy names it once (its first
    check); exact reuse names the first five uses, in order."""
    original = scene(12, taken=exif_time(REPORTED), gps=HERE)
    uses = [report(w, original, x=20 * i, y=20 * i) for i in range(7)]
    for issue in uses:
        flags_of(w, first_photo(w, issue))
    copy = report(w, resaved(original), x=200, y=50)
    assert "reused_similar" in flags_of(w, first_photo(w, copy))
    checks = {
        c.photo_id: c for c in w["session"].scalars(select(PhotoCheck)).all()
    }  # fmt: skip
    first_subject = checks[first_photo(w, uses[0])].subject
    similar = checks[first_photo(w, copy)].details["reused_similar"]
    assert len(similar) == 1 and similar[0].startswith(first_subject + "（差")
    last = checks[first_photo(w, uses[-1])].details["reused_exact"]
    assert last == [checks[first_photo(w, u)].subject for u in uses[:5]]


def test_an_after_photo_equal_to_the_before_photo_is_flagged(w):
    before = scene(11, taken=exif_time(REPORTED), gps=HERE)
    issue = report(w, before)
    after = add_after(w, issue, before)
    assert "reused_exact" in flags_of(w, after.id)


def week_task(w):
    """A weekly 网格员 schedule and its task for the week of REPORTED (the grid's)."""
    from geoservice.fieldwork.models import PatrolTask

    patrols.create_schedule(
        w["session"], w["registry"], [], {"layer": "grid", "role": "网格员", "period": "week"},
        None,
    )  # fmt: skip
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], REPORTED.date())
    return w["session"].scalar(select(PatrolTask))


def test_a_visit_photo_reused_by_its_own_issue_is_not_doubt_but_a_reused_one_is(client, w):
    task = week_task(w)
    photo = scene(21, taken=exif_time(REPORTED), gps=HERE)
    response = client.post(
        "/api/fieldwork/visits",
        json={"task_id": task.id, "visited_at": REPORTED.isoformat(), "lon": HERE[0],
              "lat": HERE[1], "photos": [b64(photo)], "captures": ["gallery"],
              "issues": [{"category": "环境卫生", "description": "垃圾"}]},
        headers=w["user"][1],
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    (visit_photo,) = body["photos"]
    assert visit_photo["check"]["flags"] == ["gallery"]
    assert visit_photo["check"]["suspicious"] is False
    (issue_id,) = body["issue_ids"]
    evidence.scan_pending(w["session"], w["registry"], w["settings"], w["issue_settings"].store)
    issue_check = w["session"].scalar(
        select(PhotoCheck).where(PhotoCheck.subject == f"issue:{issue_id}:before")
    )
    assert issue_check.suspicious is False, (issue_check.flags, issue_check.details)
    # The same photo later sent as another issue's report photo is doubt.
    later = report(w, photo, x=350, y=350)
    assert "reused_exact" in flags_of(w, first_photo(w, later))


def test_the_doubt_list_counts_per_unit_and_the_watermarked_copy(client, w, uploads):
    original = scene(31, taken=exif_time(REPORTED), gps=HERE)
    report(w, original)
    second = report(w, original, x=300, y=300)
    photo_id = first_photo(w, second)
    headers = w["planner"][1]
    listed = client.get("/api/fieldwork/evidence/suspicious", headers=headers)
    assert listed.status_code == 200
    body = listed.get_json()
    assert [p["photo_id"] for p in body["photos"]] == [photo_id]
    assert body["photos"][0]["flag_titles"] == ["与其他问题或巡查的照片完全相同"]
    units = client.get("/api/fieldwork/evidence/units", headers=headers).get_json()["units"]
    assert {u["unit"]: u["suspicious"] for u in units} == {"城南街道": 1}
    page = client.get("/field/evidence", headers=headers)
    assert page.status_code == 200 and "存疑" in page.get_data(as_text=True)
    leader = client.get("/api/fieldwork/evidence/suspicious", headers=w["user"][1])
    assert leader.status_code == 403
    per_issue = client.get(f"/api/fieldwork/evidence/issues/{second.id}", headers=headers)
    assert per_issue.get_json()["photos"][0]["check"]["suspicious"] is True
    stored = w["issue_settings"].store
    from geoservice.models import Photo

    row = w["session"].get(Photo, photo_id)
    original_path = stored.path(row.sha256, row.content_type)
    before = hashlib.sha256(original_path.read_bytes()).hexdigest()
    shown = client.get(f"/api/fieldwork/issue-photos/{photo_id}/display", headers=headers)
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg"
    assert shown.data != original_path.read_bytes()
    with Image.open(io.BytesIO(shown.data)) as image:
        # The band along the bottom is dark: the watermark is drawn there.
        band = image.convert("L").crop((0, image.height - 10, image.width, image.height))
        assert sum(band.tobytes()) / (band.width * band.height) < 100
    assert hashlib.sha256(original_path.read_bytes()).hexdigest() == before == row.sha256
    lines = evidence.watermark_lines(REPORTED, "一网格", "320999001001001", *HERE)
    assert lines[0].startswith("2015-11-03 09:00:00") and "E" in lines[2]


def test_not_an_image_is_refused_and_nothing_is_checked(w):
    from geoservice.service_errors import UnsupportedMedia

    with pytest.raises(UnsupportedMedia):
        prepare(Upload(b"%PDF-1.4", "x.jpg"), w["issue_settings"].photo_limits, TZ)
    assert image_bytes()  # the helper still makes real images


def test_the_issue_page_marks_doubtful_photos(client, w):
    original = scene(41, taken=exif_time(REPORTED), gps=HERE)
    report(w, original)
    second = report(w, original, x=300, y=300)
    page = client.get(f"/issues/{second.id}", headers=w["planner"][1])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "存疑：与其他问题或巡查的照片完全相同" in html and "水印图" in html


def test_hashes_within_seven_bits_always_share_a_band():
    rng = random.Random(5)
    for _ in range(200):
        value = rng.getrandbits(64) - (1 << 63)
        flipped = value
        for bit in rng.sample(range(64), rng.randrange(0, 8)):
            flipped ^= 1 << bit
        flipped = ((flipped + (1 << 63)) % (1 << 64)) - (1 << 63)
        assert set(evidence.dhash_bands(value)) & set(evidence.dhash_probes(flipped))


def test_an_area_bound_account_lists_only_the_doubtful_field_photos_of_its_area(client, w):
    """A place scope is one EXISTS per layer, OR-ed: a check of a field photo outside the
    area stays out of the list even when another field photo lies on a road inside it."""
    from geoservice.fieldwork.models import FieldPhoto

    s = w["session"]
    add_area(s, "320999001", rect(0, 0, 1000, 1000), level="street")
    road_in = add_feature(
        s, "road", "R-IN", line((100, 500), (900, 500)), grade="主干道", name="城南路"
    )
    grid_out = add_feature(s, "grid", "320999002001001", rect(3000, 0, 3400, 400))
    checks = {}
    for name, place in (("a", road_in), ("b", grid_out)):
        photo = FieldPhoto(place_id=place.id, sha256=name * 64, content_type="image/jpeg",
                           size_bytes=1)  # fmt: skip
        s.add(photo)
        s.flush()
        check = PhotoCheck(field_photo_id=photo.id, subject=f"巡查 {name}", sha256=name * 64,
                           flags=["reused_exact"], suspicious=True)  # fmt: skip
        s.add(check)
        s.flush()
        checks[name] = check.id
    street = account(s, "planner", area_code="320999001")[1]
    listed = client.get("/api/fieldwork/evidence/suspicious", headers=street).get_json()
    assert [p["id"] for p in listed["photos"]] == [checks["a"]]
    everyone = client.get("/api/fieldwork/evidence/suspicious", headers=w["planner"][1])
    assert {p["id"] for p in everyone.get_json()["photos"]} >= set(checks.values())


def test_a_visit_photo_without_gps_is_marked_where_the_visit_checked_in(
    client, w, uploads, monkeypatch
):
    """Not at the place's own coordinates: a photo taken kilometres away would read as taken
    on the spot."""
    task = week_task(w)
    from geoservice.fieldwork.models import FieldPhoto

    far = metres(5000, 5000)
    response = client.post(
        "/api/fieldwork/visits",
        json={"task_id": task.id, "visited_at": REPORTED.isoformat(), "lon": far[0],
              "lat": far[1], "outcome": "ok", "photos": [b64(scene(41))]},
        headers=w["user"][1],
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    photo = w["session"].scalar(select(FieldPhoto))
    drawn: list = []
    original = evidence.watermark_lines
    monkeypatch.setattr(evidence, "watermark_lines", lambda *a: drawn.append(a[3:]) or original(*a))
    shown = client.get(f"/api/fieldwork/photos/{photo.id}/display", headers=w["planner"][1])
    assert shown.status_code == 200
    assert drawn == [pytest.approx(far)]


def test_an_issue_raised_on_a_visit_without_a_position_is_placed_at_the_patrolled_place(
    client, w, uploads
):
    """No GPS fix (the phone saves the visit without a check-in): the issue raised on
    the spot is located at the place patrolled, not refused for a missing longitude."""
    task = week_task(w)
    from geoservice.models import Issue

    response = client.post(
        "/api/fieldwork/visits",
        json={"task_id": task.id, "visited_at": REPORTED.isoformat(), "outcome": "ok",
              "photos": [b64(scene(51))],
              "issues": [{"category": "环境卫生", "description": "垃圾", "photos": [0]}]},
        headers=w["user"][1],
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    (issue_id,) = response.get_json()["issue_ids"]
    issue = w["session"].get(Issue, issue_id)
    assert issue.grid_id == task.place_id  # inside the patrolled grid
