"""The feedback-list confirmation page in headless Chromium on the demo county: a matched row
is confirmed with one button, an unmatched row by clicking its spot on the map; no script
errors, nothing leaves 127.0.0.1."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from geoservice.models import User
from geoservice.notifications import intake
from tests.browser import chromium_path
from tests.test_map_browser import Live, live  # noqa: F401  (the module's live server)
from tests.world import PASSWORD

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (scripts/test installs it)"
)


ROW = "(n => document.querySelector(`#rows tr[data-row='${n}']`))"


def _list(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["序号", "问题地址", "问题类别", "问题描述"])
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _status(server: Live, batch_id: int) -> dict[int, tuple[str, int | None]]:
    server.db.rollback()
    rows = server.db.execute(
        text("SELECT row_number, status, issue_id FROM intake_rows WHERE batch_id = :b"),
        {"b": batch_id},
    ).all()
    return {r.row_number: (r.status, r.issue_id) for r in rows}


def test_rows_are_confirmed_by_button_and_by_a_click_on_the_map(live):  # noqa: F811
    db = live.db
    road = db.execute(
        text("SELECT p.name FROM places p WHERE p.layer = 'compound' ORDER BY p.id LIMIT 1")
    ).scalar_one()
    planner = db.execute(text("SELECT id FROM users WHERE username = 'map_planner'")).scalar()
    batch = intake.create_batch(
        db,
        _list([(1, f"{road}东门", "环境卫生", "垃圾"), (2, "某某不存在的地方", "环境卫生", "x")]),
        "浏览器测试.xlsx",
        "测评反馈",
        {"环境卫生": 24},
        db.get(User, planner),
    )
    db.commit()
    assert _status(live, batch.id) == {1: ("matched", None), 2: ("unmatched", None)}

    page = live.browser.new_page(isolated=True)
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(f"{live.url}/intake/{batch.id}")
    page.wait_for("document.querySelectorAll('#rows tbody tr').length === 2")
    # Row 2: "在地图上指定", then a click inside the county.
    lon, lat = db.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM admin_areas"
            " WHERE level = 'community' ORDER BY code LIMIT 1) s"
        )
    ).one()
    page.evaluate(
        "[...document.querySelectorAll('#rows tbody tr')[1].querySelectorAll('button')]"
        ".find(b => b.textContent === '在地图上指定').click()"
    )
    page.evaluate(f"void gsIntake.map.setView([{lat}, {lon}], 17, {{animate: false}})")
    x, y = page.evaluate(
        "(() => { const r = gsIntake.map.getContainer().getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    page.click(x, y)
    page.wait_for(f"{ROW}(2)?.dataset.status === 'confirmed'", timeout=30)
    # Row 1: the "确认全部已匹配的行" button.
    page.evaluate("document.getElementById('confirm-matched').click()")
    page.wait_for(f"{ROW}(1)?.dataset.status === 'confirmed'", timeout=30)
    status = _status(live, batch.id)
    assert status[1][0] == "confirmed" and status[2][0] == "confirmed"
    x2, y2 = db.execute(
        text("SELECT ST_X(geom), ST_Y(geom) FROM issues WHERE id = :id"), {"id": status[2][1]}
    ).one()
    assert abs(x2 - lon) < 1e-4 and abs(y2 - lat) < 1e-4  # where the planner clicked
    outside = [
        u for u in page.requests if not u.startswith((live.url + "/", "data:", "blob:", "about:"))
    ]
    assert outside == [] and page.exceptions == []
