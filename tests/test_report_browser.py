"""The report page in headless Chromium (a phone-sized window) on the demo county of
tests/test_map_browser.py: a spot placed by ?lon/lat shows who answers for it, exactly as the
API says; the grids and roads around it are drawn with their names; a spot outside the service
area shows the API's message and the submit button stays off until a valid spot is chosen.
Nothing leaves 127.0.0.1."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from tests.browser import chromium_path
from tests.test_map_browser import Live, live  # noqa: F401  (the module's live server)
from tests.world import PASSWORD

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (scripts/test installs it)"
)

STATE = "document.getElementById('spot').dataset.state"


def at_minute(sentence: str) -> str:
    """An attribution rule sentence with its time of asking blanked."""
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "…", sentence)


SETTLED = f"['assigned', 'unassigned', 'refused', 'unknown'].includes({STATE})"


def answered_spot(server: Live) -> tuple[float, float]:
    """A point inside a grid with a current primary leader."""
    return tuple(
        server.db.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) AS p FROM grids g"
                " JOIN assignments a ON a.place_id = g.id AND a.is_primary AND a.valid_to IS NULL"
                " ORDER BY g.id LIMIT 1) s"
            )
        ).one()
    )


def click_map_centre(page) -> None:
    x, y = page.evaluate(
        "(() => { const r = gsReport.map.getContainer().getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    page.click(x, y)


def test_the_report_page_says_who_answers_for_the_spot_and_refuses_outside(live):  # noqa: F811
    lon, lat = answered_spot(live)
    page = live.browser.new_page(isolated=True, size=(390, 1400))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(f"{live.url}/issues/new?lon={lon}&lat={lat}")
    page.wait_for(SETTLED, timeout=30)
    api = page.evaluate(
        f"fetch('/api/attribution?lon={lon:.7f}&lat={lat:.7f}').then(r => r.json())"
    )["attribution"]
    line = page.evaluate("document.getElementById('spot-line').textContent")
    assert page.evaluate(STATE) == "assigned"
    primary = api["primary_place"]
    assert line.startswith(f"此处归属：{primary['layer_title']}「{primary['name']}」")
    assert f"包保领导 {api['leader']['name']}" in line
    # The sentence names the moment it was asked for (上报时（… HH:MM）): the page's request
    # and this one may fall on either side of a minute.
    assert at_minute(page.evaluate("document.getElementById('spot-rule').textContent")) == (
        at_minute(api["rule"])
    )
    assert page.evaluate("document.getElementById('submit').disabled") is False
    # Street level: the places around the spot, named, fetched by bbox from our items API.
    page.wait_for("document.querySelectorAll('.ctx-label').length > 0", timeout=30)
    assert any("/items?bbox=" in u for u in page.requests)

    # Move to a spot far outside the service area and tap it: the API's message, no submit.
    box = live.db.execute(
        text("SELECT ST_XMin(e), ST_YMin(e) FROM (SELECT ST_Extent(geom) e FROM admin_areas) s")
    ).one()
    page.evaluate(f"void gsReport.map.setView([{box[1] - 0.2}, {box[0] - 0.2}], 15)")
    click_map_centre(page)
    page.wait_for(f"{STATE} === 'refused'", timeout=30)
    refused = page.evaluate("document.getElementById('spot-line').textContent")
    assert "不在本系统的服务范围内" in refused
    assert page.evaluate("document.getElementById('submit').disabled") is True

    # Back to a valid spot: the button is usable again.
    page.evaluate(f"void gsReport.map.setView([{lat}, {lon}], 17)")
    click_map_centre(page)
    page.wait_for(f"{STATE} !== 'refused' && {SETTLED}", timeout=30)
    assert page.evaluate("document.getElementById('submit').disabled") is False

    outside = [
        u for u in page.requests if not u.startswith((live.url + "/", "data:", "blob:", "about:"))
    ]
    assert outside == [] and page.exceptions == []
