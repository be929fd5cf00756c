"""The map pages in headless Chromium against a live server on 127.0.0.1, on committed demo
data in a scratch database: every layer draws, no request leaves 127.0.0.1, clicks on vector
tiles open popups (Leaflet.VectorGrid patched for Leaflet 1.9), user text stays text, the
filters change what is drawn and the URL, the leader's map and the big screen load.

Skipped, with the reason, when Chromium is not installed (scripts/test installs it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geoservice import create_app, migrate
from geoservice.accounts.accounts import create_user
from geoservice.demo import generate_county
from geoservice.demo.seed import load_demo
from geoservice.registry import layers
from geoservice.web import rankings as web_rankings
from tests import clock
from tests.browser import Browser, chromium_path, serve
from tests.scratch import create_scratch_database, drop_scratch_database
from tests.world import PASSWORD

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (scripts/test installs it)"
)

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">堆物'


@dataclass
class Live:
    url: str
    database_url: str
    browser: Browser
    db: Session
    layer_ids: list[str]
    xss_issue: tuple[int, float, float]
    leader_id: int


@pytest.fixture(scope="module")
def live(engine) -> Iterator[Live]:
    name, url = create_scratch_database(engine, "map")
    url = url.render_as_string(hide_password=False)
    scratch = create_engine(url)
    try:
        with scratch.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
            clock.shift_database(conn)  # the live server's now() follows the suite's clock
        scratch.dispose()
        migrate.upgrade(scratch)
        app = create_app(
            {
                "DATABASE_URL": url,
                "SECRET_KEY": "map-browser-test",
                "SESSION_COOKIE_SECURE": False,
                "REMEMBER_COOKIE_SECURE": False,
                "RATE_LIMIT_WRITES_PER_MINUTE": 0,
            }
        )
        db = Session(bind=scratch)
        with app.app_context():
            load_demo(
                db, layers(app), generate_county(seed=3, scale=0.3, today=clock.local_today())
            )
            leader_id = db.execute(
                text(
                    "SELECT leader_id FROM assignments WHERE valid_to IS NULL"
                    " GROUP BY leader_id ORDER BY count(*) DESC LIMIT 1"
                )
            ).scalar_one()
            create_user(db, "map_planner", "planner", PASSWORD)
            create_user(db, "map_leader", "leader", PASSWORD, leader_id=leader_id)
            issue = db.execute(
                text(
                    "UPDATE issues SET description = :d WHERE id = (SELECT min(id) FROM issues"
                    " WHERE status <> 'closed') RETURNING id, ST_X(geom), ST_Y(geom)"
                ),
                {"d": XSS},
            ).one()
        db.commit()
        with serve(app) as base, Browser.launch() as browser:
            yield Live(
                base,
                url,
                browser,
                db,
                [s.collection for s in layers(app)],
                tuple(issue),
                leader_id,
            )
        db.close()
    finally:
        scratch.dispose()
        drop_scratch_database(engine, name)


def open_page(live: Live, path: str, user: str = "map_planner"):
    page = live.browser.new_page(isolated=True)
    page.sign_in(live.url, user, PASSWORD)
    page.goto(live.url + path)
    return page


def all_drawn(ids: list[str]) -> str:
    wanted = " && ".join(f"gsMap.features[{i!r}] > 0" for i in ids)
    return f"window.gsMap && document.documentElement.dataset.mapStarted && {wanted}"


def assert_offline(live: Live, page) -> None:
    outside = [
        u for u in page.requests if not u.startswith((live.url + "/", "data:", "blob:", "about:"))
    ]
    assert outside == [], outside
    assert page.exceptions == []
    assert page.evaluate("gsMap.errors") == []


def screen_point(page, lat: float, lon: float) -> tuple[float, float]:
    return tuple(
        page.evaluate(
            f"(() => {{ const p = GeoMap.map.latLngToContainerPoint([{lat}, {lon}]);"
            " const r = GeoMap.map.getContainer().getBoundingClientRect();"
            " return [p.x + r.left, p.y + r.top]; })()"
        )
    )


def test_the_planner_map_draws_every_layer_without_leaving_127_0_0_1(live):
    page = open_page(live, "/map")
    page.wait_for(all_drawn([*live.layer_ids, "issues"]), timeout=60)
    page.wait_for("gsMap.summary && gsMap.summary.total > 0")
    assert_offline(live, page)
    # The page states its view in its address (#zoom/lat/lon) and its layers in the query.
    search = page.evaluate("location.search + location.hash")
    assert "status=open" in search and "layers=" in search and "#" in search
    # The heat map and the choropleth (grids coloured by their open issues, with a legend).
    every = ",".join([*live.layer_ids, "issues", "heat"])
    page = open_page(live, f"/map?layers={every}&theme=grid:open")
    page.wait_for(all_drawn([*live.layer_ids, "issues", "heat", "theme"]), timeout=60)
    legend = page.evaluate("document.querySelector('.gs-legend').textContent")
    assert legend.startswith("网格 · 未办结问题") and "–" in legend
    assert_offline(live, page)


def test_clicks_open_popups_and_user_text_stays_text(live):
    issue_id, lon, lat = live.xss_issue
    page = open_page(live, f"/map?layers=grids,issues&status=all#18/{lat}/{lon}")
    page.wait_for(all_drawn(["grids", "issues"]), timeout=60)
    page.wait_for("GeoMap.map && Object.keys(GeoMap.map._layers).length > 0")
    x, y = screen_point(page, lat, lon)
    # The issue's marker is drawn above the grid; a click landing before the issues' canvas has
    # painted its point (a loaded machine) opens the grid's popup, so a user clicks again.
    for _attempt in range(3):
        page.evaluate("void GeoMap.map.closePopup()")
        page.click(x, y)
        page.wait_for("!!document.querySelector('.leaflet-popup-content')", timeout=20)
        content = page.evaluate("document.querySelector('.leaflet-popup-content').textContent")
        if f"问题 #{issue_id}" in content:
            break
        time.sleep(1)
    assert f"问题 #{issue_id}" in content
    assert "<script>window.__xss = 1</script><img src=x" in content  # shown as text
    assert (
        page.evaluate(
            "document.querySelectorAll('.leaflet-popup-content script, #gs-detail script,"
            ' .leaflet-popup-content img[src="x"]\').length'
        )
        == 0
    )
    assert page.evaluate("window.__xss === undefined")
    assert "window.__xss" in page.evaluate("document.getElementById('gs-detail').textContent")

    # A click on a grid where no issue lies goes through the issues' canvas to the grid's.
    grid = live.db.execute(
        text("""
SELECT g.id, p.code, ST_X(s), ST_Y(s) FROM grids g JOIN places p ON p.id = g.id
CROSS JOIN LATERAL ST_PointOnSurface(g.geom) s
WHERE NOT EXISTS (SELECT 1 FROM issues i WHERE ST_DWithin(i.geom::geography, s::geography, 40))
  AND ST_Contains(ST_Buffer(g.geom::geography, -30)::geometry, s)
ORDER BY g.id LIMIT 1""")
    ).one()
    page.evaluate(f"void GeoMap.map.setView([{grid[3]}, {grid[2]}], 18, {{animate: false}})")
    page.wait_for("gsMap.tiles['grids:load'] >= 2 && gsMap.features.grids > 0", timeout=30)
    x, y = screen_point(page, grid[3], grid[2])
    # As above: on a loaded machine the grid tile at z18 may not be painted yet when the first
    # click lands (it then hits nothing and offers to report there), so a user clicks again.
    for _attempt in range(3):
        page.evaluate("void GeoMap.map.closePopup()")
        page.click(x, y)
        page.wait_for("!!document.querySelector('.leaflet-popup-content')", timeout=20)
        content = page.evaluate("document.querySelector('.leaflet-popup-content').textContent")
        if grid[1] in content:
            break
        time.sleep(1)
    assert grid[1] in content
    assert page.evaluate("gsMap.popups") >= 2
    assert "包保责任人" in page.evaluate(
        "document.querySelector('.leaflet-popup-content').textContent"
    )

    # A click outside every feature offers to report an issue there (WGS-84 lon/lat).
    page.evaluate("void GeoMap.map.closePopup()")
    outside = live.db.execute(  # east of the town: no feature there
        text(
            "SELECT ST_XMax(e) + 0.02, ST_Y(ST_Centroid(e))"
            " FROM (SELECT ST_Extent(geom) e FROM grids) s"
        )
    ).one()
    page.evaluate(f"void GeoMap.map.setView([{outside[1]}, {outside[0]}], 16, {{animate: false}})")
    x, y = screen_point(page, outside[1], outside[0])
    page.click(x, y)
    page.wait_for("!!document.querySelector('.leaflet-popup-content a.gs-report')", timeout=10)
    href = page.evaluate("document.querySelector('.leaflet-popup-content a.gs-report').href")
    query = parse_qs(urlsplit(href).query)
    assert urlsplit(href).path == "/issues/new"
    assert math.isclose(float(query["lon"][0]), outside[0], abs_tol=2e-5)
    assert math.isclose(float(query["lat"][0]), outside[1], abs_tol=2e-5)
    assert_offline(live, page)


def test_filters_change_what_is_drawn_and_the_address(live):
    page = open_page(live, "/map?layers=issues")
    page.wait_for(all_drawn(["issues"]), timeout=60)
    page.wait_for("gsMap.summary")
    total = page.evaluate("gsMap.summary.total")
    expected = live.db.execute(
        text(
            "SELECT count(*) FROM issues WHERE category = '占道经营'"
            " AND status NOT IN ('closed', 'rejected')"
        )
    ).scalar_one()
    page.evaluate(
        "(() => { const s = document.querySelector('#gs-filters select[name=category]');"
        " s.value = '占道经营'; s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    page.wait_for(f"gsMap.summary.total === {expected}", timeout=20)
    assert expected < total
    assert "category=%E5%8D%A0%E9%81%93%E7%BB%8F%E8%90%A5" in page.evaluate("location.search")
    page.wait_for(
        "performance.getEntriesByType('resource').some(e => e.name.includes('/issues/tiles/')"
        " && e.name.includes('category=%E5%8D%A0'))",
        timeout=20,
    )
    assert_offline(live, page)


def test_a_from_date_after_the_to_date_says_so_and_shows_no_stale_figures(live):
    page = open_page(live, "/map?layers=issues")
    page.wait_for("gsMap.summary")
    page.evaluate(
        "(() => { const f = document.getElementById('gs-filters');"
        " f.elements.from.value = '2026-11-30'; f.elements.to.value = '2026-11-01';"
        " f.elements.to.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    page.wait_for("document.getElementById('gs-notice').textContent.startsWith('筛选条件有误')")
    assert "开始时间晚于结束时间" in page.evaluate(
        "document.getElementById('gs-notice').textContent"
    )
    assert page.evaluate("document.getElementById('gs-summary').textContent") == ""


def test_a_leader_sees_their_places_and_issues_with_counts(live):
    page = open_page(live, "/map?mine=1", user="map_leader")
    page.wait_for(all_drawn(["issues"]), timeout=60)
    page.wait_for("gsMap.features.grids > 0 || gsMap.features.roads > 0", timeout=30)
    assert "我的包保" in page.evaluate("document.querySelector('.gs-mine').textContent")
    tiles = [u for u in page.requests if "/tiles/" in u and "/api/" in u]
    assert tiles and all(f"leader_id={live.leader_id}" in u for u in tiles)
    extent = live.db.execute(
        text("""
SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(g.geom)) c FROM assignments a
  JOIN (SELECT id, geom FROM grids UNION ALL SELECT id, geom FROM roads
        UNION ALL SELECT id, geom FROM markets UNION ALL SELECT id, geom FROM compounds) g
  ON g.id = a.place_id WHERE a.leader_id = :l AND a.valid_to IS NULL) s"""),
        {"l": live.leader_id},
    ).one()
    assert page.evaluate(f"GeoMap.map.getBounds().contains([{extent[1]}, {extent[0]}])")
    assert_offline(live, page)


PHONE = (390, 844)
READABLE_ON_A_PHONE = """(() => {
  const tall = el => el.getBoundingClientRect().height;
  return {
    sideways: document.documentElement.scrollWidth - window.innerWidth,
    brand: tall(document.querySelector('.topbar > a')),
    menu: tall(document.querySelector('.topnav') || document.body),
    headers: Array.from(document.querySelectorAll('main th')).map(tall),
    buttons: Array.from(document.querySelectorAll('main button:not(.big), main a.rk-button'))
      .filter(b => b.offsetParent !== null).map(tall),
  };
})()"""


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("map_leader", "/my"),
        ("map_leader", "/"),
        ("map_planner", "/issues/new"),
        ("map_planner", "/rankings"),
        ("map_planner", "/coverage"),
    ],
)
def test_pages_a_leader_or_inspector_opens_on_a_phone_are_readable(live, user, path):
    page = live.browser.new_page(isolated=True, size=PHONE)
    page.sign_in(live.url, user, PASSWORD)
    page.goto(live.url + path)
    if path == "/rankings":  # the figures and charts are drawn after their fetch
        page.wait_for("document.querySelectorAll('.rk-chart canvas').length >= 3", timeout=30)
    seen = page.evaluate(READABLE_ON_A_PHONE)
    assert seen["sideways"] <= 0  # the page never scrolls sideways (wide tables scroll inside)
    assert seen["brand"] < 30 and seen["menu"] < 45  # one line each, the menu scrolls instead
    assert all(height < 40 for height in seen["headers"])  # column titles are not squeezed
    assert all(height < 40 for height in seen["buttons"])  # nor the buttons' words
    assert page.exceptions == []


def test_on_a_phone_the_map_layer_list_is_folded_into_its_button(live):
    folded = (
        "!!document.querySelector('.leaflet-control-layers:not(.leaflet-control-layers-expanded)')"
    )
    page = live.browser.new_page(isolated=True, size=PHONE)
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(live.url + "/map")
    page.wait_for("!!document.querySelector('.leaflet-control-layers')")
    assert page.evaluate(folded)  # open, the list covered half the phone's map
    x, y = page.evaluate(
        "(() => { const r = document.querySelector('.leaflet-control-layers-toggle')"
        ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    page.click(x, y)
    page.wait_for(f"!{folded}")  # a tap opens it
    desk = open_page(live, "/map")
    desk.wait_for("!!document.querySelector('.leaflet-control-layers')")
    assert not desk.evaluate(folded)  # on a desk the list stays open


TOP_BAR = """(() => {
  const bar = document.querySelector('.topbar');
  return {
    height: bar.getBoundingClientRect().height,
    menus: Array.from(bar.querySelectorAll('details.menu > summary'))
      .map(s => s.textContent.trim()),
    open: Array.from(bar.querySelectorAll('details.menu')).filter(d => d.open).length,
  };
})()"""


def test_the_planners_top_bar_is_one_line_and_its_menus_lead_to_their_pages(live):
    page = live.browser.new_page(isolated=True, size=(1280, 800))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(live.url + "/")
    bar = page.evaluate(TOP_BAR)
    assert bar["height"] < 50  # one line, no word split over two rows
    assert {"问题处置", "包保责任", "考核督查"} <= set(bar["menus"]) and bar["open"] == 0

    def centre(selector: str) -> tuple[float, float]:
        box = page.evaluate(
            f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2, r.width * r.height]; })()"
        )
        assert box[2] > 0, f"{selector} is not visible"
        return box[0], box[1]

    menu = "details.menu:has(a[href='/rankings']) > summary"
    page.click(*centre(menu))
    page.wait_for("document.querySelectorAll('.topbar details.menu[open]').length === 1")
    page.click(*centre("details.menu[open] a[href='/rankings']"))
    page.wait_for(
        "location.pathname === '/rankings' && document.readyState === 'complete'"
        f" && document.querySelector({menu!r}) !== null"
    )

    page.click(*centre(menu))  # a click elsewhere closes the open menu
    page.wait_for("document.querySelectorAll('.topbar details.menu[open]').length === 1")
    page.click(600, 600)
    page.wait_for("document.querySelectorAll('.topbar details.menu[open]').length === 0")


def test_the_big_screen_shows_the_figures_and_refreshes_itself(live):
    page = open_page(live, "/screen")
    page.wait_for("window.gsScreen && " + all_drawn(["issues"]), timeout=60)
    data = page.evaluate("gsScreen")
    assert page.evaluate("document.getElementById('kpi-open').textContent") == str(data["open"])
    assert page.evaluate("document.querySelectorAll('#gs-latest li').length") == len(data["latest"])
    assert (
        page.evaluate("JSON.parse(document.getElementById('gs-screen-config').textContent)")[
            "refresh"
        ]
        == 60
    )
    assert_offline(live, page)


def test_on_a_gcj02_basemap_the_data_lines_up_with_the_clicks(live):
    """高德-style basemap (a local tile URL that says GCJ-02): the map projects through
    L.CRS.GCJ02, tiles come shifted, and a click where a WGS-84 issue should be finds it."""
    app = create_app(
        {
            "DATABASE_URL": live.database_url,
            "SECRET_KEY": "map-browser-test",
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
            "BASEMAP": "custom",
            "BASEMAP_URL": "/static/no-such-tiles/{z}/{x}/{y}.png",
            "BASEMAP_CRS": "gcj02",
        }
    )
    issue_id, lon, lat = live.xss_issue
    with serve(app) as base:
        page = live.browser.new_page(isolated=True)
        page.sign_in(base, "map_planner", PASSWORD)
        page.goto(f"{base}/map?layers=issues&status=all#18/{lat}/{lon}")
        page.wait_for(all_drawn(["issues"]), timeout=60)
        assert page.evaluate("GeoMap.map.options.crs.code") == "GCJ02"
        tiles = [u for u in page.requests if "/api/collections/issues/tiles/" in u]
        assert tiles and all("shift=gcj02" in u for u in tiles)
        # The WGS-84 point sits hundreds of metres (≫ a screen) from where plain Web Mercator
        # would put it; the shifted tile draws the issue exactly where the CRS projects it.
        x, y = screen_point(page, lat, lon)
        page.click(x, y)
        page.wait_for("gsMap.popups >= 1", timeout=20)
        assert f"问题 #{issue_id}" in page.evaluate(
            "document.querySelector('.leaflet-popup-content').textContent"
        )
        assert page.exceptions == []


TABLE = """(() => ({
  names: Array.from(document.querySelectorAll('#rk-table tbody tr td:nth-child(2)'))
    .map(td => td.firstChild.textContent),
  count: document.querySelector('#rk-pager .rk-count').textContent,
  black: document.querySelector('#rk-black').textContent,
}))()"""


def test_a_long_ranking_is_embedded_by_its_first_page_then_paged_and_searched(live, monkeypatch):
    """The grids' ranking of a city (~30,000 rows, 17 MB) made the page too heavy to open: a
    ranking longer than EMBEDDED_ROWS comes with its first page only, the whole table follows
    from the API, and the table shows one page at a time, with a search over every row."""
    monkeypatch.setattr(web_rankings, "EMBEDDED_ROWS", 4)
    monkeypatch.setattr(web_rankings, "TABLE_PAGE_ROWS", 3)
    page = live.browser.new_page(isolated=True, size=(1280, 900))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(live.url + "/rankings?of=grid")
    embedded = page.evaluate("JSON.parse(document.getElementById('rk-initial').textContent)")
    page.wait_for("document.querySelector('#rk-pager .rk-count').textContent.includes('页')")
    full = page.evaluate(
        "fetch('/api/rankings?of=grid&period=week&from=' + encodeURIComponent("
        "document.getElementById('rk-from').value)).then(r => r.json())"
    )
    names = [row["name"] for row in full["rows"]]
    assert len(names) > 6
    assert embedded["partial"] and embedded["rows_total"] == len(names)
    assert [row["name"] for row in embedded["rows"]] == names[:3]

    shown = page.evaluate(TABLE)
    pages = -(-len(names) // 3)
    assert shown["names"] == names[:3]
    assert f"共 {len(names)} 个，第 1 / {pages} 页" in shown["count"]
    assert "加载中" not in shown["black"]  # the bottom of the ranking came with the whole table
    # Ties (many grids at 100 or at 0 分) are counted past the first ten, not listed.
    for side, rows, more in (
        ("red", [r for r in full["rows"] if r["ranked"] and r["rank"] <= 3], "个并列前三"),
        ("black", [r for r in full["rows"] if r["ranked"] and r["bottom"]], "个并列后"),
    ):
        items = page.evaluate(
            f"Array.from(document.querySelectorAll('#rk-{side} li')).map(li => li.textContent)"
        )
        assert [i for i in items if "另有" not in i] == [
            f"{r['name']} {r['score']:.2f} 分" + ("" if side == "red" else f"（第{r['rank']}名）")
            for r in rows[:10]
        ]
        assert (f"另有 {len(rows) - 10} {more}" in " ".join(items)) == (len(rows) > 10)

    page.evaluate("document.querySelector('#rk-pager button[data-page=next]').click()")
    page.wait_for("document.querySelector('#rk-pager .rk-count').textContent.includes('第 2 /')")
    assert page.evaluate(TABLE)["names"] == names[3:6]
    page.evaluate("document.querySelector('#rk-pager-bottom button[data-page=last]').click()")
    count = "document.querySelector('#rk-pager .rk-count').textContent"
    page.wait_for(f"{count}.includes('第 {pages} /')")
    assert page.evaluate(TABLE)["names"] == names[(pages - 1) * 3 :]

    wanted = names[-1]  # the search reaches rows no page shows yet, and starts at page 1
    page.evaluate(
        f"(() => {{ const box = document.getElementById('rk-search'); box.value = {wanted!r};"
        " box.dispatchEvent(new Event('input')); })()"
    )
    page.wait_for("document.querySelector('#rk-pager .rk-count').textContent.startsWith('找到')")
    found = page.evaluate(TABLE)
    assert wanted in found["names"] and all(wanted in name for name in found["names"])
    assert found["count"].startswith(f"找到 {sum(wanted in name for name in names)} 个")
    assert page.exceptions == []


def test_the_dispatch_queue_lists_the_leaders_once_and_dispatches_to_the_one_picked(live):
    """The queue offered a <select> of every leader on each of its 200 rows: 72 MB of HTML for
    a city of a few thousand leaders. One list now serves every row (type to search)."""
    page = live.browser.new_page(isolated=True, size=(1280, 900))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(live.url + "/issues/unassigned")
    seen = page.evaluate(
        "({rows: document.querySelectorAll('form.dispatch').length,"
        " selects: document.querySelectorAll('form.dispatch select').length,"
        " lists: document.querySelectorAll('datalist').length,"
        " options: Array.from(document.querySelectorAll('#queue-leaders option'), o => o.value)})"
    )
    assert seen["rows"] > 1 and seen["selects"] == 0 and seen["lists"] == 1
    leaders = live.db.execute(text("SELECT id, name FROM leaders WHERE active")).all()
    assert len(seen["options"]) == len(leaders)  # a planner may dispatch to any active leader
    choice = seen["options"][-1]
    leader_id = int(choice.rsplit("#", 1)[1])
    assert choice.startswith(dict(leaders)[leader_id])
    issue_id = int(page.evaluate("document.querySelector('form.dispatch').dataset.id"))
    page.evaluate(
        "(() => { const form = document.querySelector('form.dispatch');"
        f" form.leader.value = {choice!r}; form.requestSubmit(); }})()"
    )
    page.wait_for(f"!document.querySelector('form.dispatch[data-id=\"{issue_id}\"]')")
    live.db.rollback()
    dispatched = live.db.execute(
        text("SELECT leader_id, status FROM issues WHERE id = :id"), {"id": issue_id}
    ).one()
    assert dispatched == (leader_id, "dispatched")
    assert page.exceptions == []


def test_the_overdue_by_category_chart_adds_up_to_the_total(live):
    """The chart draws the nine largest categories and the rest as 其他: its bars add up to
    every overdue issue of the period (it drew the first ten and dropped the rest)."""
    page = live.browser.new_page(isolated=True, size=(1280, 900))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(live.url + "/rankings?of=unit")
    bars = (
        "(() => { const c = echarts.getInstanceByDom(document.getElementById('chart-category'));"
        " const o = c && c.getOption(); return o && o.series.length ? o.series[0].data : null;"
        " })()"
    )
    page.wait_for(f"{bars} !== null")
    drawn = page.evaluate(bars)
    charts = page.evaluate(
        "fetch('/api/rankings/charts?period=week&from=' + encodeURIComponent("
        "document.getElementById('rk-from').value)).then(r => r.json())"
    )
    categories = charts["overdue_by_category"]
    assert len(drawn) == min(len(categories), 10)
    assert sum(drawn) == sum(c["value"] for c in categories)
    assert page.exceptions == []


def test_the_map_page_gives_a_phone_the_whole_width(live):
    """At 390 px the filters sit above the map: side by side they left the map 86 px."""
    page = live.browser.new_page(isolated=True, size=(390, 844))
    page.sign_in(live.url, "map_planner", PASSWORD)
    page.goto(live.url + "/map")
    page.wait_for("document.querySelector('.gs-mapbox') !== null")
    box = page.evaluate(
        "(() => { const r = document.querySelector('.gs-mapbox').getBoundingClientRect();"
        " return [r.width, r.height]; })()"
    )
    assert box[0] >= 380 and box[1] >= 300, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
