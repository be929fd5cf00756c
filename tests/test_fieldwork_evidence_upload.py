"""Issue photos are checked as evidence when they are uploaded (issue 16), not when someone
first opens the 存疑 list: through the API or a form, once the answer has been sent (the
response closed, as a WSGI server does after writing it), in a transaction of their own;
elsewhere in the transaction that stores them. Report photos over the API, after-photos, the
same picture sent twice, and a photo raised from a visit (not doubt: its own visit's picture).
Uses the constructed photos and world of tests/test_fieldwork_evidence.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from geoservice.fieldwork import evidence, patrols
from geoservice.fieldwork.models import PatrolTask, PhotoCheck
from geoservice.issues.photos import PHOTOS_TO_CHECK
from geoservice.models import Photo
from tests import test_fieldwork_evidence as ev
from tests.issues.helpers import b64

w = ev.w
uploads = ev.uploads
URL = "/api/collections/issues/items"


def _post(client, w, photo, x=100, y=100, close=True):
    lon, lat = ev.metres(x, y)
    response = client.post(
        URL,
        json={"lon": lon, "lat": lat, "category": "环境卫生", "source": "自查",
              "description": "垃圾", "photos": [b64(photo)]},
        headers=w["planner"][1],
    )  # fmt: skip
    response.get_data()
    if close:  # the answer sent: what runs after it runs now
        response.close()
    return response


def _check(w, issue_id):
    photo_id = w["session"].scalar(select(Photo.id).where(Photo.issue_id == issue_id))
    return w["session"].scalar(select(PhotoCheck).where(PhotoCheck.photo_id == photo_id))


def test_report_photos_are_checked_when_uploaded(client, w):
    original = ev.scene(51, gps=ev.HERE)
    first = _post(client, w, original, close=False)
    assert first.status_code == 201, first.get_json()
    # The answer did not wait for the check: it runs once the response is closed.
    assert _check(w, first.get_json()["id"]) is None
    first.close()
    # Checked already: nobody has opened the 存疑 list (no scan ran).
    check = _check(w, first.get_json()["id"])
    assert check is not None and check.flags == ["no_exif_time"] and not check.suspicious
    assert check.dhash is not None
    second = _post(client, w, original, x=300, y=300)
    again = _check(w, second.get_json()["id"])
    assert again.suspicious and "reused_exact" in again.flags
    copy = _post(client, w, ev.resaved(original), x=200, y=50)
    assert "reused_similar" in _check(w, copy.get_json()["id"]).flags
    # The dHash from the thumbnail in hand equals the one read back from the stored thumbnail.
    row = w["session"].get(Photo, again.photo_id)
    stored = evidence._stored_dhash(w["issue_settings"].store, row.sha256, row.content_type)
    assert stored == again.dhash
    # Nothing is left for the lazy scan, and the 存疑 list shows the two.
    assert (
        evidence.scan_pending(w["session"], w["registry"], w["settings"], w["issue_settings"].store)
        == 0
    )
    listed = client.get("/api/fieldwork/evidence/suspicious", headers=w["planner"][1])
    assert len(listed.get_json()["photos"]) == 2


def test_an_after_photo_taken_before_dispatch_is_flagged_at_upload(w):
    s = w["session"]
    issue = ev.report(w, ev.scene(1, taken=ev.exif_time(ev.REPORTED), gps=ev.HERE))
    after = ev.add_after(
        w, issue, ev.scene(2, taken=ev.exif_time(ev.DISPATCHED - timedelta(hours=2)), gps=ev.HERE)
    )
    # Both photos were listed by add_photos; the commit hook checks them in id order.
    assert [p[0] for p in s.info[PHOTOS_TO_CHECK]][-1] == after.id
    assert evidence.check_new_photos(s, w["settings"]) == 2
    assert PHOTOS_TO_CHECK not in s.info
    check = s.scalar(select(PhotoCheck).where(PhotoCheck.photo_id == after.id))
    assert "before_dispatch" in check.flags and check.suspicious
    assert check.unit_id is not None  # counted for the issue's unit


def test_a_rolled_back_upload_leaves_nothing_to_check(w):
    s = w["session"]
    ev.report(w, ev.scene(3, gps=ev.HERE))
    assert s.info.get(PHOTOS_TO_CHECK)
    s.rollback()
    assert PHOTOS_TO_CHECK not in s.info


def test_an_issue_raised_from_a_visit_is_checked_with_the_visit_known(client, w):
    patrols.create_schedule(
        w["session"], w["registry"], [], {"layer": "grid", "role": "网格员", "period": "week"},
        None,
    )  # fmt: skip
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], ev.REPORTED.date())
    task = w["session"].scalar(select(PatrolTask))
    photo = ev.scene(61, taken=ev.exif_time(ev.REPORTED), gps=ev.HERE)
    response = client.post(
        "/api/fieldwork/visits",
        json={"task_id": task.id, "visited_at": ev.REPORTED.isoformat(), "lon": ev.HERE[0],
              "lat": ev.HERE[1], "photos": [b64(photo)],
              "issues": [{"category": "环境卫生", "description": "垃圾"}]},
        headers=w["user"][1],
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    response.close()  # the answer sent
    (issue_id,) = response.get_json()["issue_ids"]
    check = _check(w, issue_id)
    assert check is not None, "checked at upload"
    assert "reused_exact" not in check.flags and "reused_similar" not in check.flags
    total = w["session"].scalar(select(func.count()).select_from(PhotoCheck))
    assert total == 2  # the visit's photo and the issue's


def test_the_migration_writes_the_same_bands_as_the_code(client, w):
    """Migration 0022 recomputes stored bands as 16-bit quarters, in SQL: same as Python."""
    import importlib.util
    from pathlib import Path

    from sqlalchemy import text

    path = next(Path("migrations/versions").glob("*_0022_inspection_rounds.py"))
    spec = importlib.util.spec_from_file_location("migration_0022", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for seed in (71, 72, 73):
        assert _post(client, w, ev.scene(seed, gps=ev.HERE)).status_code == 201
    s = w["session"]
    s.execute(text("UPDATE photo_checks SET dhash_bands = NULL"))
    s.execute(text(module.QUARTERS))
    rows = s.execute(select(PhotoCheck.dhash, PhotoCheck.dhash_bands)).all()
    assert len(rows) == 3
    for value, bands in rows:
        assert bands == evidence.dhash_bands(value)
    # Negative hashes (the top bit set) too: two's complement quarters in SQL and Python.
    for value in (-1, -(1 << 63), (1 << 63) - 1, -123456789012345):
        sql_bands = s.execute(
            text(
                "SELECT ARRAY(SELECT i * 65536 + ((CAST(:h AS bigint) >> (16 * i)) & 65535)::int"
                " FROM generate_series(0, 3) i)"
            ),
            {"h": value},
        ).scalar_one()
        assert sql_bands == evidence.dhash_bands(value)


def test_the_migration_lists_each_checked_file_once_as_the_code_does(client, w):
    """Migration 0055 fills photo_hashes from the checks: one row per file, as the checks
    themselves write it."""
    import importlib.util
    from pathlib import Path

    from sqlalchemy import text

    path = next(Path("migrations/versions").glob("*_0055_photo_hashes.py"))
    spec = importlib.util.spec_from_file_location("migration_0055", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    same = ev.scene(81, gps=ev.HERE)
    for photo in (same, same, ev.scene(82, gps=ev.HERE)):
        assert _post(client, w, photo).status_code == 201
    s = w["session"]
    query = text("SELECT sha256, dhash, dhash_bands FROM photo_hashes ORDER BY sha256")
    written = s.execute(query).all()
    assert len(written) == 2
    s.execute(text("DELETE FROM photo_hashes"))
    s.execute(text(module.FILES))
    assert s.execute(query).all() == written


def test_a_photo_checked_meanwhile_is_skipped_by_the_scan(client, w, monkeypatch):
    """The check after the answer and a reader's scan may take the same photo: the second
    insert conflicts on the photo's unique check and is skipped (no error, one check)."""
    response = _post(client, w, ev.scene(81, gps=ev.HERE), close=False)
    issue_id = response.get_json()["id"]
    real = evidence.check_issue_photo

    def raced(session, settings, store, photo, thumb=None):
        real(session, settings, store, photo, thumb)  # "the other transaction" got there first
        return real(session, settings, store, photo, thumb)

    monkeypatch.setattr(evidence, "check_issue_photo", raced)
    s = w["session"]
    assert evidence.scan_pending(s, w["registry"], w["settings"], w["issue_settings"].store) == 0
    monkeypatch.undo()
    photo_id = s.scalar(select(Photo.id).where(Photo.issue_id == issue_id))
    checks = select(func.count()).select_from(PhotoCheck).where(PhotoCheck.photo_id == photo_id)
    assert s.scalar(checks) == 0  # the conflicting check was rolled back to its savepoint
    response.close()  # the check after the answer
    assert s.scalar(checks) == 1
