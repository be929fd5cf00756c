"""User text never runs as script, in a real browser (issue 13 §2).

A payload is put into every user-writable text (tests/xss_world.py: place names and codes,
area names, leader names and titles, unit names, issue descriptions and notes, usernames, an
import's file name); every page and popup that shows them is opened in headless Chromium
against a live server. Each payload, if it ran, would set `window.__pwned` and
`document.title`: both stay untouched, no inline script or handler is even attempted (no CSP
violation), and the texts are displayed literally in the tooltips and popups of the maps.

Skipped, with the reason, when Chromium is not installed (scripts/test installs it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geoservice import create_app, migrate
from geoservice.registry import layers
from tests.browser import Browser, chromium_path, serve
from tests.scratch import create_scratch_database, drop_scratch_database
from tests.test_script_injection import pages
from tests.world import PASSWORD, build_world
from tests.xss_world import Payloads, poison

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (scripts/test installs it)"
)

# Installed before any script of a page: records what the CSP refused to run.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
"""
NOTHING_RAN = "window.__pwned === undefined && !/^X[0-9]+$/.test(document.title)"

OPEN_TOOLTIPS = """
(() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const texts = [];
  map.eachLayer(l => {
    if (l.getTooltip && l.getTooltip()) {
      l.openTooltip(l.getLatLng ? l.getLatLng() : l.getBounds().getCenter());
      texts.push(l.getTooltip().getElement().textContent);
    }
  });
  return texts;
})()
"""

OPEN_POPUPS = """
(() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const out = [];
  map.eachLayer(l => {
    if (l.getPopup && l.getPopup()) {
      l.openPopup(l.getLatLng ? l.getLatLng() : l.getBounds().getCenter());
      const a = document.querySelector('.leaflet-popup-content a');
      out.push([a.textContent, a.getAttribute('href')]);
    }
  });
  return out;
})()
"""


@dataclass
class Live:
    url: str
    browser: Browser
    world: dict
    payloads: Payloads


@pytest.fixture(scope="module")
def live(engine) -> Iterator[Live]:
    name, url = create_scratch_database(engine, "xss")
    url = url.render_as_string(hide_password=False)
    scratch = create_engine(url)
    try:
        with scratch.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        migrate.upgrade(scratch)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "xss-browser-test",
                "SESSION_COOKIE_SECURE": False,
                "REMEMBER_COOKIE_SECURE": False,
                "RATE_LIMIT_WRITES_PER_MINUTE": 0,
                "HOME_CACHE_SECONDS": 0,
                "MAP_SCREEN_CACHE_SECONDS": 0,
            }
        )
        with Session(bind=scratch) as db, app.app_context():
            world = build_world(db, layers(app))
            payloads = poison(db, world)
            db.commit()
        with serve(app) as base, Browser.launch() as browser:
            yield Live(base, browser, world, payloads)
    finally:
        scratch.dispose()
        drop_scratch_database(engine, name)


def open_page(live: Live, account: str, path: str):
    page = live.browser.new_page(isolated=True)
    page.send("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    page.sign_in(live.url, account, PASSWORD)
    page.goto(live.url + path)
    return page


def assert_nothing_ran(page, path: str) -> None:
    assert page.evaluate(NOTHING_RAN), (path, page.evaluate("[window.__pwned, document.title]"))
    assert page.evaluate("window.__csp") == [], path
    assert not any("__pwned" in e for e in page.exceptions), path


def test_no_payload_runs_on_any_page(live):
    tabs = {}  # one signed-in tab per account
    for account, path in pages(live.world):
        if account not in tabs:
            tabs[account] = open_page(live, account, path)
        else:
            tabs[account].goto(live.url + path)
        time.sleep(0.5)  # the maps' scripts and their data requests
        assert_nothing_ran(tabs[account], path)


def test_map_tooltips_and_popups_show_user_text_literally(live):
    issue = live.world["issues"]["I1"]
    tags = re.compile(r"X\d\d")
    for account, path in (
        ("admin", f"/issues/{issue}/map"),
        ("leader", "/my"),
        ("admin", f"/leaders/{live.world['leaders']['L1']}"),
        ("admin", f"/places/{live.world['places']['R1']}/responsibility"),
    ):
        page = open_page(live, account, path)
        page.wait_for("window.L && Object.values(window).some(v => v instanceof L.Map)")
        tooltips = page.evaluate(OPEN_TOOLTIPS)
        assert tooltips, path
        shown = " ".join(tooltips)
        assert tags.search(shown), (path, shown)
        popups = page.evaluate(OPEN_POPUPS)
        for link_text, href in popups:
            assert link_text and re.fullmatch(r"/places/\d+/responsibility", href), (path, popups)
        assert_nothing_ran(page, path)
        if path.endswith("/map"):
            # Both places of the issue are drawn and named, payloads shown as text.
            assert "</script><script>__pwned=" in shown or "<img src=x onerror=" in shown
            assert "问题#1" in shown.replace(" ", "") or f"#{issue}" in shown
    page = open_page(live, "admin", f"/issues/{issue}")
    body = page.evaluate("document.body.textContent")
    assert "</script><script>__pwned=" in body and "<img src=x onerror=" in body
    assert_nothing_ran(page, f"/issues/{issue}")


def test_the_planner_map_popups_show_user_text_literally(live):
    """The big map loads its popups as server-rendered fragments into Leaflet popups and the
    side panel (static/js/map.js): the same path, driven directly."""
    page = open_page(live, "admin", "/map")
    page.wait_for("!!(window.GeoMap && GeoMap.map)")
    for kind, key in (("place", ("places", "R1")), ("issue", ("issues", "I1"))):
        item = live.world[key[0]][key[1]]
        shown = page.evaluate(
            f"fetch('/map/popup/{kind}/{item}', {{credentials: 'same-origin'}})"
            ".then(r => r.text()).then(h => { L.popup().setLatLng(GeoMap.map.getCenter())"
            ".setContent(h).openOn(GeoMap.map);"
            " return document.querySelector('.leaflet-popup-content').textContent; })"
        )
        assert re.search(r"X\d\d", shown), (kind, shown)
        assert "__pwned=" in shown, (kind, shown)
    time.sleep(0.3)
    assert_nothing_ran(page, "/map popups")


def test_the_report_page_shows_place_and_leader_names_as_text(live):
    """The report page names the places around the spot (labels at street level) and who
    answers for it (the attribution preview): user text, shown as text."""
    page = open_page(live, "admin", "/issues/new?lon=120.05&lat=33.05")
    line = page.wait_for(
        "(t => /X[0-9]+/.test(t) && t)(document.getElementById('spot-line').textContent)",
        timeout=30,
    )
    assert "此处归属" in line and re.search(r"X\d\d", line)
    labels = page.wait_for(
        "(t => /X[0-9]+/.test(t) && t)(Array.from(document.querySelectorAll('.ctx-label'))"
        ".map(e => e.textContent).join(' '))",
        timeout=30,
    )
    assert "<" in labels + line  # the payloads' markup, as text
    time.sleep(0.3)
    assert_nothing_ran(page, "/issues/new")


def test_the_rankings_page_shows_names_as_text(live):
    """The rankings table, lists and drill-down are built by static/js/rankings.js from JSON
    (names escaped)."""
    page = open_page(live, "admin", "/rankings?period=month&from=2026-11&of=leader")
    table = page.wait_for(
        "(t => /X[0-9]+/.test(t) && t)(document.getElementById('rk-table').textContent)",
        timeout=30,
    )
    assert "<" in table  # the payloads' markup, as text
    time.sleep(0.5)  # the trend and the charts
    assert_nothing_ran(page, "/rankings")
