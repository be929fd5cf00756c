"""随手拍 in headless Chromium at 390 px, on a live server over a scratch database: a citizen
places the spot with a tap, picks a category, attaches a photo and sends (our own
proof-of-work JS); follows the ticket by its link while a planner accepts, dispatches and
closes it; answers the 回访; and finds the issue on the public map. Nothing leaves 127.0.0.1,
no script error, no horizontal scrolling.

Skipped, with the reason, when Chromium is not installed (scripts/test installs it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geoservice import create_app, migrate
from geoservice.accounts.accounts import create_user, issue_token
from tests.browser import Browser, chromium_path, serve
from tests.factories import add_feature, add_leader, assign, metres, rect
from tests.issues.helpers import add_area, b64, image_bytes
from tests.scratch import create_scratch_database, drop_scratch_database

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (scripts/test installs it)"
)


@pytest.fixture
def scratch(engine, tmp_path):
    name, url = create_scratch_database(engine, "citizens")
    url = url.render_as_string(hide_password=False)
    db = create_engine(url)
    try:
        with db.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        migrate.upgrade(db)
        yield url, db
    finally:
        db.dispose()
        drop_scratch_database(engine, name)


def _world(session: Session) -> dict[str, str]:
    since = datetime.now(UTC) - timedelta(days=30)
    add_area(session, "320999", rect(-200, -200, 1200, 1200))
    grid = add_feature(session, "grid", "320999001001001", rect(0, 0, 400, 400), name="一号网格")
    leader = add_leader(session, "张网格", unit="城南街道")
    assign(session, leader, grid, since, role="网格长")
    planner = create_user(session, "cit_planner", "planner")
    fixer = create_user(session, "cit_leader", "leader", leader_id=leader.id)
    return {
        "planner": issue_token(session, planner),
        "leader": issue_token(session, fixer),
    }


def test_a_citizen_reports_follows_answers_and_sees_it_public(scratch, tmp_path):
    url, db = scratch
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "citizens-browser-test",
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "CITIZENS_PUBLIC": True,
            "CITIZEN_POW_DIFFICULTY": 10,
            "PUBLIC_CACHE_SECONDS": 0,
        }
    )
    with Session(bind=db) as session:
        tokens = _world(session)
        session.commit()
    api = app.test_client()

    def move(issue_id: int, who: str, to: str, **fields) -> None:
        response = api.post(
            f"/api/issues/{issue_id}/transitions",
            json={"to": to, **fields},
            headers={"Authorization": f"Bearer {tokens[who]}"},
        )
        assert response.status_code == 200, response.get_json()

    photo = tmp_path / "spot.jpg"
    photo.write_bytes(image_bytes(size=(640, 480), gps=metres(100, 100)))
    lon, lat = metres(100, 100)
    with serve(app) as base, Browser.launch() as browser:
        page = browser.new_page(isolated=True, size=(390, 900))
        page.goto(f"{base}/public/report")
        page.wait_for("window.gsPublic && window.gsPow")
        # Tap the spot on the map.
        page.evaluate(f"void gsPublic.map.setView([{lat}, {lon}], 18, {{animate: false}})")
        x, y = page.evaluate(
            "(() => { const r = gsPublic.map.getContainer().getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        page.click(x, y)
        page.wait_for("document.getElementById('pub-lon').value !== ''")
        tapped = page.evaluate("[+document.getElementById('pub-lon').value,"
                               " +document.getElementById('pub-lat').value]")  # fmt: skip
        assert abs(tapped[0] - lon) < 2e-5 and abs(tapped[1] - lat) < 2e-5  # a couple of metres
        page.evaluate(
            "(() => { const s = document.getElementById('pub-category'); s.value = '环境卫生';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        document = page.send("DOM.getDocument")["root"]["nodeId"]
        node = page.send("DOM.querySelector", {"nodeId": document, "selector": "#pub-photos"})
        page.send("DOM.setFileInputFiles", {"files": [str(photo)], "nodeId": node["nodeId"]})
        page.wait_for("document.getElementById('pub-photos').files.length === 1")
        page.evaluate("document.getElementById('pub-description').value = '路边垃圾堆积'")
        page.evaluate("document.getElementById('pub-submit').click()")
        page.wait_for("!document.getElementById('pub-result').hidden", timeout=60)
        ticket = page.evaluate("document.getElementById('pub-ticket').textContent")
        link = page.evaluate("document.getElementById('pub-link').href")
        assert ticket.startswith("SP") and link.startswith(f"{base}/public/t/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        with Session(bind=db) as session:
            issue_id, status, source, leader = session.execute(
                text(
                    "SELECT i.id, i.status, i.source, l.name FROM citizen_reports c"
                    " JOIN issues i ON i.id = c.issue_id LEFT JOIN leaders l ON l.id = i.leader_id"
                )
            ).one()
        assert (status, source, leader) == ("reported", "随手拍", "张网格")

        def status_text() -> str:
            page.goto(link)
            return page.evaluate("document.getElementById('ticket-status').textContent")

        assert status_text() == "已上报"
        move(issue_id, "planner", "accepted")
        assert status_text() == "已立案"
        move(issue_id, "planner", "dispatched")
        assert status_text() == "已交办"
        html = page.evaluate("document.body.innerText")
        assert "城南街道" in html and "张网格" not in html and "13800000000" not in html
        move(issue_id, "leader", "in_progress")
        move(issue_id, "leader", "fixed", note="已清理", photos=[b64(image_bytes())])
        move(issue_id, "planner", "closed")
        assert status_text() == "已销号"

        # 回访: 满意.
        page.evaluate("document.querySelector('input[name=answer][value=satisfied]').click()")
        page.evaluate("document.querySelector('#feedback form').submit()")
        page.wait_for("!!document.body && document.body.innerText.includes('您的评价')")
        assert "满意" in page.evaluate("document.getElementById('feedback').innerText")

        # The public map and list.
        page.goto(f"{base}/public/issues")
        page.wait_for("window.gsPublicMap && gsPublicMap.count === 1")
        listed = page.evaluate("document.getElementById('pub-issue-list').innerText")
        assert "环境卫生" in listed and "已销号" in listed and "城南街道" in listed
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        outside = [
            u for u in page.requests if not u.startswith((base + "/", "data:", "blob:", "about:"))
        ]
        assert outside == [] and page.exceptions == []
