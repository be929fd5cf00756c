"""The /field app in headless Chromium at phone size: today's task is listed, a visit with a
photo is recorded while the network is off (DevTools network emulation) and waits as
"待上传 1 条" in IndexedDB, survives a reload, and is uploaded exactly once when the network
returns. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import request
from geoalchemy2.shape import from_shape
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geoservice import create_app, migrate
from geoservice.accounts.accounts import create_user
from geoservice.fieldwork import patrols
from geoservice.models import AdminArea, Assignment, Leader, Unit
from geoservice.registry import layers
from tests import clock
from tests.browser import Browser, chromium_path, serve
from tests.factories import metres, rect
from tests.issues.helpers import image_bytes
from tests.scratch import create_scratch_database, drop_scratch_database
from tests.world import PASSWORD

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed"),
    # The phone's clock stamps the visit; it cannot follow a shifted server clock.
    pytest.mark.skipif(
        clock.shift_from_environment() != timedelta(0), reason="TEST_CLOCK_SHIFT is set"
    ),
]

OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
ONLINE = {**OFFLINE, "offline": False}


@pytest.fixture(scope="module")
def live(engine, tmp_path_factory) -> Iterator[tuple[str, Browser, Session, int]]:
    name, url = create_scratch_database(engine, "field")
    url = url.render_as_string(hide_password=False)
    scratch = create_engine(url)
    try:
        with scratch.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        scratch.dispose()
        migrate.upgrade(scratch)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "field-browser-test",
                "SESSION_COOKIE_SECURE": False,
                "REMEMBER_COOKIE_SECURE": False,
                "RATE_LIMIT_WRITES_PER_MINUTE": 0,
                "UPLOAD_DIR": str(tmp_path_factory.mktemp("field-uploads")),
            }
        )
        hits: list[str] = []
        app.after_request(lambda response: hits.append(request.path) or response)
        db = Session(bind=scratch)
        with app.app_context():
            registry = layers(app)
            county = from_shape(rect(-2000, -2000, 2000, 2000), srid=4326)
            db.add(AdminArea(level="county", code="320999", name="测试县", geom=county))
            grid = registry.get("grid").model(
                code="320999001001001", name="幸福里网格",
                geom=from_shape(rect(0, 0, 400, 400), srid=4326),
            )  # fmt: skip
            unit = Unit(name="城南街道")
            db.add_all([grid, unit])
            db.flush()
            leader = Leader(name="王网格员", title="网格员", unit_id=unit.id, level="社区级")
            db.add(leader)
            db.flush()
            db.add(Assignment(leader_id=leader.id, place_id=grid.id, role="网格员",
                              valid_from=datetime.now(UTC) - timedelta(days=30)))  # fmt: skip
            create_user(db, "field_leader", "leader", PASSWORD, leader_id=leader.id,
                        display_name="王网格员")  # fmt: skip
            colleague = Leader(name="李网格员", title="网格员", unit_id=unit.id, level="社区级")
            db.add(colleague)
            db.flush()
            create_user(db, "field_colleague", "leader", PASSWORD, leader_id=colleague.id,
                        display_name="李网格员")  # fmt: skip
            patrols.create_schedule(
                db, registry, [], {"layer": "grid", "role": "网格员", "period": "day"}, None
            )
        db.commit()
        with serve(app) as base, Browser.launch() as browser:
            yield base, browser, db, grid.id, hits
        db.close()
    finally:
        scratch.dispose()
        drop_scratch_database(engine, name)


def sign_in(page, base: str, username: str = "field_leader") -> None:
    """Through the login form (with its CSRF token), landing on /field/ itself: the app does
    not depend on any other page."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base}/login?next=/field/", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"username": username, "password": PASSWORD,
                                   "csrf_token": token, "next": "/field/"}).encode()  # fmt: skip
    opener.open(f"{base}/login", data, timeout=30).read()
    (cookie,) = [c for c in jar if "session" in c.name]
    page.cookie(cookie.name, cookie.value or "", "127.0.0.1")


def network(browser: Browser, page, conditions: dict) -> None:
    """Network conditions for the page and for the service worker (whose own fetches the
    page's emulation does not cover)."""
    page.send("Network.emulateNetworkConditions", conditions)
    for target in browser.send("Target.getTargets")["targetInfos"]:
        if target["type"] == "service_worker":
            session = WORKER_SESSIONS.get(target["targetId"])
            if session is None:
                session = browser.send(
                    "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
                )["sessionId"]
                browser.send("Network.enable", session=session)
                WORKER_SESSIONS[target["targetId"]] = session
            browser.send("Network.emulateNetworkConditions", conditions, session=session)


WORKER_SESSIONS: dict[str, str] = {}


def visits(db: Session) -> list[tuple]:
    db.rollback()  # a fresh snapshot
    return db.execute(
        text(
            "SELECT v.id, v.idempotency_key, v.outcome, v.note, count(f.id), v.far, v.distance_m"
            " FROM patrol_visits v"
            " LEFT JOIN field_photos f ON f.visit_id = v.id GROUP BY v.id"
        )
    ).all()


def test_a_visit_recorded_offline_is_uploaded_exactly_once(live, tmp_path):
    """FIELD_SCREENSHOTS=<dir> keeps the screenshots (docs/field.md uses them)."""
    base, browser, db, grid_id, hits = live
    shots = Path(os.environ.get("FIELD_SCREENSHOTS") or tmp_path)
    page = browser.new_page(isolated=True, size=(390, 844))
    sign_in(page, base)
    page.goto(f"{base}/field/")
    page.wait_for("window.gsField && gsField.state.ready && gsField.state.tasks.length === 1")
    task = page.evaluate("gsField.state.tasks[0]")
    assert task["place"]["id"] == grid_id and task["place"]["name"] == "幸福里网格"
    # The service worker takes over (app shell and today's tasks cached for offline use).
    page.wait_for("navigator.serviceWorker.ready.then(r => !!r.active)", timeout=30)
    page.goto(f"{base}/field/")
    page.wait_for("navigator.serviceWorker.controller !== null && gsField.state.ready")
    page.screenshot(shots / "field-tasks.png")
    page.evaluate("document.querySelector('[data-tab=map]').click()")
    page.wait_for("!!(gsField.state.map && gsField.state.layer)")
    page.screenshot(shots / "field-map.png")
    page.evaluate("document.querySelector('[data-tab=tasks]').click()")
    # The phone's position: inside the grid (granted like a user tapping 允许).
    lon, lat = metres(200, 200)
    context = page.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
    browser.send(
        "Browser.grantPermissions",
        {"origin": base, "permissions": ["geolocation"], "browserContextId": context},
    )
    page.send("Emulation.setGeolocationOverride",
              {"latitude": lat, "longitude": lon, "accuracy": 10})  # fmt: skip

    network(browser, page, OFFLINE)
    page.wait_for("navigator.onLine === false")
    served_before_offline = len(hits)
    photo = base64.b64encode(
        image_bytes(size=(640, 480), gps=(lon, lat),
                    taken=datetime.now().strftime("%Y:%m:%d %H:%M:%S"))
    ).decode()  # fmt: skip
    page.evaluate(
        f"""(async () => {{
          gsField.openVisit(gsField.state.tasks[0]);
          const bytes = Uint8Array.from(atob('{photo}'), c => c.charCodeAt(0));
          gsField.addPhoto(new File([bytes], 'scene.jpg', {{type: 'image/jpeg'}}), 'camera');
          document.querySelector('textarea[name=note]').value = '道路整洁，未见问题';
        }})()"""
    )
    page.wait_for("document.getElementById('checkin').textContent.startsWith('已签到')")
    page.screenshot(shots / "field-visit.png")
    page.evaluate("gsField.saveVisit()")
    page.wait_for("gsField.pending().then(n => n === 1)")
    # An issue seen on the way, reported outside the visit, also waits on the phone.
    page.evaluate(
        f"""(async () => {{
          gsField.openReport();
          await new Promise(r => setTimeout(r, 50));
          const bytes = Uint8Array.from(atob('{photo}'), c => c.charCodeAt(0));
          gsField.addReportPhoto(new File([bytes], 'lane.jpg', {{type: 'image/jpeg'}}), 'camera');
          document.querySelector('#report-form textarea[name=description]').value = '井盖缺失';
        }})()"""
    )
    page.wait_for("!!gsField.rep.where")
    page.evaluate("gsField.saveReport()")
    page.wait_for("gsField.pending().then(n => n === 2)")
    assert page.evaluate("document.getElementById('pending').textContent") == "待上传 2 条"
    page.screenshot(shots / "field-pending.png")
    page.evaluate("gsField.sync()")  # offline: nothing is sent
    assert visits(db) == []

    # Still offline, the app reloads from the service worker's cache and keeps the records.
    page.goto(f"{base}/field/")
    page.wait_for("window.gsField && gsField.state.ready && gsField.state.tasks.length === 1")
    page.wait_for("gsField.pending().then(n => n === 2)")
    assert visits(db) == []

    # Nothing reached the server while offline: the reload came from the worker's cache.
    assert hits[served_before_offline:] == []
    network(browser, page, ONLINE)
    page.wait_for("navigator.onLine === true")
    page.wait_for("gsField.pending().then(n => n === 0)", timeout=30)
    page.evaluate("gsField.sync()")  # a second push finds nothing to send
    rows = visits(db)
    assert len(rows) == 1
    _, key, outcome, note, photos, far, distance = rows[0]
    assert key and outcome == "ok" and note == "道路整洁，未见问题" and photos == 1
    assert far is False and distance == 0  # checked in inside the grid
    reports = db.execute(
        text(
            "SELECT i.source, i.description, count(p.id) FROM field_reports r"
            " JOIN issues i ON i.id = r.issue_id LEFT JOIN photos p ON p.issue_id = i.id"
            " GROUP BY i.id, i.source, i.description"
        )
    ).all()
    assert reports == [("自查", "井盖缺失", 1)]
    page.wait_for("gsField.state.tasks[0].done === true", timeout=30)
    assert page.evaluate("document.getElementById('pending').hidden") is True
    page.evaluate("document.querySelector('[data-tab=visits]').click()")
    page.wait_for("document.querySelectorAll('#visit-list li').length === 1")
    page.screenshot(shots / "field-visits.png")
    # Times as the county reads them (TIMEZONE), not the API's UTC.
    visited = db.execute(text("SELECT visited_at FROM patrol_visits")).scalar_one()
    local = visited.astimezone(ZoneInfo("Asia/Shanghai"))
    listed = page.evaluate("document.querySelector('#visit-list li').textContent")
    assert f"{local:%Y-%m-%d %H:%M}" in listed, listed
    tag = page.evaluate("document.querySelector('#task-list .tag.done').textContent")
    assert tag == f"已巡查 {local:%H:%M}", tag
    assert page.exceptions == []
    outside = [u for u in page.requests if not u.startswith((base + "/", "data:", "blob:"))]
    assert outside == [], outside


def test_on_a_shared_phone_a_record_is_sent_only_under_the_account_that_made_it(live):
    base, browser, db, _grid, _hits = live
    page = browser.new_page(isolated=True, size=(390, 844))
    sign_in(page, base)
    page.goto(f"{base}/field/")
    page.wait_for("window.gsField && gsField.state.ready")
    # The upload fails (a dead spot); the record waits on the phone.
    page.send("Network.setBlockedURLs", {"urls": ["*/api/fieldwork/reports*"]})
    lon, lat = metres(100, 100)
    photo = base64.b64encode(image_bytes(size=(320, 240))).decode()
    page.evaluate(
        f"""(async () => {{
          gsField.openReport();
          gsField.rep.where = {{lon: {lon}, lat: {lat}}};
          const bytes = Uint8Array.from(atob('{photo}'), c => c.charCodeAt(0));
          gsField.addReportPhoto(new File([bytes], 'kerb.jpg', {{type: 'image/jpeg'}}), 'camera');
          document.querySelector('#report-form textarea[name=description]').value = '路沿石破损';
          await gsField.saveReport();
        }})()"""
    )
    page.wait_for("gsField.pending().then(n => n === 1)")

    def reported() -> list[tuple]:
        db.rollback()
        return db.execute(
            text(
                "SELECT u.username FROM issues i JOIN users u ON u.id = i.reported_by_id"
                " WHERE i.description = '路沿石破损'"
            )
        ).all()

    # The colleague signs in on the same phone, the network is back: the record waits for
    # the account that made it.
    page.send("Network.deleteCookies", {"name": "session", "url": base})
    sign_in(page, base, "field_colleague")
    page.send("Network.setBlockedURLs", {"urls": []})
    page.goto(f"{base}/field/")
    page.wait_for("window.gsField && gsField.state.ready")
    page.evaluate("gsField.sync()")
    page.wait_for("!document.getElementById('others-pending').hidden")
    assert page.evaluate("gsField.pending()") == 0
    assert reported() == []
    # Back under the account that recorded it, it goes out, as its own.
    page.send("Network.deleteCookies", {"name": "session", "url": base})
    sign_in(page, base)
    page.goto(f"{base}/field/")
    page.wait_for("window.gsField && gsField.state.ready")
    page.evaluate(
        "(async () => { const all = await gsField.outbox(); all.forEach(r => { r.next = 0; }); })()"
    )
    # (after the back-off of the failed attempt)
    page.wait_for("gsField.sync().then(() => gsField.pending()).then(n => n === 0)", timeout=30)
    assert reported() == [("field_leader",)]
