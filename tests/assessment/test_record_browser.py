"""The phone recording page in headless Chromium at 390 px: an inspector (here a planner)
records a site's standards with a photo for a failure; the results and the issue land in the
database. Uses the live demo server of tests/test_map_browser.py. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import text

from geoservice.assessment import rounds
from geoservice.models import User
from tests.assessment.case import jpeg
from tests.browser import chromium_path
from tests.test_map_browser import Live, live  # noqa: F401  (the module's live server)
from tests.world import PASSWORD

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (scripts/test installs it)"
)


def new_round(server: Live) -> tuple[int, int, list[int]]:
    db = server.db
    site_id, version_id = db.execute(
        text(
            "SELECT s.id, v.id FROM sites s JOIN site_kinds k ON k.id = s.kind_id"
            " CROSS JOIN standard_versions v WHERE k.code = 'bus_stop' ORDER BY s.id LIMIT 1"
        )
    ).one()
    planner = db.query(User).filter_by(username="map_planner").one()
    found = rounds.create_round(
        db,
        {"name": "浏览器测试轮", "starts_on": "2026-11-01", "ends_on": "2026-11-30",
         "version_id": version_id, "site_ids": [site_id]},
        planner,
    )  # fmt: skip
    db.commit()
    standards = db.scalars(
        text(
            "SELECT sd.id FROM standards sd JOIN standard_kinds sk ON sk.standard_id = sd.id"
            " JOIN sites s ON s.kind_id = sk.kind_id WHERE s.id = :s AND sd.version_id = :v"
            " ORDER BY sd.position"
        ),
        {"s": site_id, "v": version_id},
    ).all()
    return found.id, site_id, standards


def test_an_inspector_records_a_site_on_a_phone(live):  # noqa: F811
    round_id, site_id, standards = new_round(live)
    assert len(standards) >= 2
    page = live.browser.new_page(isolated=True, size=(390, 1400))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(f"{live.url}/assessment/record/{round_id}/{site_id}")
    page.wait_for("document.getElementById('record-form') !== null")
    assert page.evaluate("document.documentElement.scrollWidth <= 390")  # no sideways scroll
    photo = base64.b64encode(jpeg("blue")).decode()
    first, *rest = standards
    script = f"""(() => {{
      const pick = (id, value) => document.querySelector(
        'input[name=outcome_' + id + '][value=' + value + ']').click();
      pick({first}, 'fail');
      const bytes = Uint8Array.from(atob('{photo}'), c => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'broken.jpg', {{type: 'image/jpeg'}}));
      document.querySelector('input[name=photo_{first}]').files = dt.files;
      document.querySelector('input[name=note_{first}]').value = '站牌破损';
      {" ".join(f"pick({s}, 'pass');" for s in rest)}
      document.getElementById('record-form').requestSubmit();
      return true;
    }})()"""
    assert page.evaluate(script) is True
    page.wait_for("!document.getElementById('record-done').hidden", timeout=30)
    assert "已提交" in page.evaluate("document.getElementById('record-done').textContent")
    rows = live.db.execute(
        text(
            "SELECT r.standard_id, r.outcome, r.issue_id, r.photo_id FROM assessment_results r"
            " WHERE r.round_id = :r ORDER BY r.standard_id"
        ),
        {"r": round_id},
    ).all()
    assert {r.standard_id for r in rows} == set(standards)
    failed = next(r for r in rows if r.standard_id == first)
    assert failed.outcome == "fail" and failed.issue_id and failed.photo_id
    source, note = live.db.execute(
        text("SELECT source, description FROM issues WHERE id = :i"), {"i": failed.issue_id}
    ).one()
    assert source == "模拟测评" and "站牌破损" in note
    outside = [
        u for u in page.requests if not u.startswith((live.url + "/", "data:", "blob:", "about:"))
    ]
    assert outside == [] and page.exceptions == []


def test_the_assessment_page_fits_a_phone_with_a_long_round_name(live):  # noqa: F811
    db = live.db
    version_id = db.execute(text("SELECT min(id) FROM standard_versions")).scalar_one()
    site_id = db.execute(text("SELECT min(id) FROM sites")).scalar_one()
    planner = db.query(User).filter_by(username="map_planner").one()
    found = rounds.create_round(
        db,
        {"name": "城区第四季度创文模拟测评暨重点点位复查（含背街小巷和农贸市场）",
         "starts_on": "2026-10-01", "ends_on": "2026-10-31", "version_id": version_id,
         "site_ids": [site_id]},
        planner,
    )  # fmt: skip
    db.commit()
    page = live.browser.new_page(isolated=True, size=(390, 844))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(f"{live.url}/assessment?round={found.id}")
    page.wait_for("document.querySelector('select[name=round]') !== null")
    # The page never scrolls sideways (the menu row and wide tables scroll inside themselves).
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
