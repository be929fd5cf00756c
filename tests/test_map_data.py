"""The map's data on the demo county: what the page's endpoints return is what the filters
select (checked against SQL written here independently), popups escape user text, and the
page itself carries no data and no external URL."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from geoservice.accounts.auth import create_user, issue_token
from geoservice.catalogue.tilegrid import datum_offset, mercator
from geoservice.catalogue.tiles import facet_level
from geoservice.registry import layers
from geoservice.responsibility import myareas
from geoservice.vocab import OPEN_STATUSES
from tests.api_support import auth

OPEN = tuple(OPEN_STATUSES)
OVERDUE = "status IN :open AND deadline IS NOT NULL AND deadline < now()"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def sql(session, statement: str, **params):
    """Plain SQL (tuples bind as IN lists)."""
    return session.execute(text(statement), params)


@pytest.fixture
def planner(demo_session):
    return auth(demo_session, "planner", "map_planner")


def decode(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return mapbox_vector_tile.decode(response.get_data())


def settings_of(html: str) -> dict:
    match = re.search(r'<script[^>]*id="gs-map-config"[^>]*>(.*?)</script>', html, re.S)
    assert match, "no map settings in the page"
    return json.loads(match.group(1))


# --- the page ---------------------------------------------------------------------------------


def test_the_map_page_is_small_local_and_holds_no_data(app, client, demo_session, planner):
    response = client.get("/map", headers=planner)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert len(response.get_data()) < 300_000
    assert not re.findall(r"https?://", html), "an external URL in the page"
    # No feature is inlined: not one grid code or road name appears in the page.
    code, name = sql(demo_session, "SELECT p.code, p.name FROM places p LIMIT 1").one()
    assert code not in html and name not in html
    # Every script carries this response's CSP nonce (JSON data blocks are not scripts).
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    for attrs in re.findall(r"<script\b([^>]*)>", html):
        assert f'nonce="{nonce}"' in attrs or 'type="application/json"' in attrs, attrs
    # Every asset it links to is served by us.
    assets = re.findall(r'(?:src|href)="(/(?:vendor|vendor-folium|static)/[^"]+)"', html)
    assert any("VectorGrid" in a for a in assets) and any("gcj02.js" in a for a in assets)
    for url in assets:
        assert client.get(url).status_code == 200, url
    settings = settings_of(html)
    assert [layer["id"] for layer in settings["layers"]] == [s.collection for s in layers(app)]
    for layer, spec in zip(settings["layers"], layers(app), strict=True):
        assert layer["style"] == dict(spec.style)
        assert layer["tiles"].endswith(
            f"/api/collections/{spec.collection}/tiles/{{z}}/{{x}}/{{y}}.pbf"
        )
    assert settings["basemap"] == {"kind": "none", "shift": None, "choices": []}
    assert "crs: L.CRS.EPSG3857" in html


def test_the_url_keeps_the_state_and_bad_values_are_dropped_with_a_notice(client, planner):
    html = client.get(
        "/map?category=环境卫生&status=all&datetime=2026-11-01/2026-11-10&layers=grids,issues"
        "&theme=community:overdue&source=无此来源",
        headers=planner,
    ).get_data(as_text=True)
    state = settings_of(html)["state"]
    assert state["filters"] == {
        "category": "环境卫生",
        "status": "all",
        "datetime": "2026-11-01/2026-11-10",
    }
    assert state["theme"] == "community:overdue"
    assert "已忽略无法识别的筛选条件：source=无此来源" in html
    # Overlays named in `layers` are added to the map; the others only listed in the control.
    shown = re.findall(r"(geo_map_overlay_\w+)\.addTo\(", html)
    made = dict(re.findall(r"var (geo_map_overlay_\w+) = GeoMap\.\w+\(([^)]*)\)", html))
    assert sorted(made[v] for v in shown) == sorted(['"blank"', '"grids"', "", ""])
    assert "GeoMap.choropleth()" in html and "GeoMap.issues()" in html


def test_no_state_means_open_issues_and_every_layer(app, client, planner):
    html = client.get("/map", headers=planner).get_data(as_text=True)
    assert settings_of(html)["state"]["filters"] == {"status": "open"}
    shown = len(re.findall(r"geo_map_overlay_\w+\.addTo\(", html))
    assert shown == 1 + len(layers(app)) + 1  # blank basemap, every layer, issues


def _busiest_leader(session) -> int:
    return sql(
        session,
        "SELECT leader_id FROM assignments WHERE valid_to IS NULL"
        " GROUP BY leader_id ORDER BY count(*) DESC, leader_id LIMIT 1",
    ).scalar_one()


def test_a_leaders_map_is_zoomed_to_their_places_with_their_counts(app, client, demo_session):
    leader_id = _busiest_leader(demo_session)
    user = create_user(demo_session, "map_leader", "leader", leader_id=leader_id)
    headers = {"Authorization": f"Bearer {issue_token(demo_session, user)}"}
    html = client.get("/map?mine=1", headers=headers).get_data(as_text=True)
    settings = settings_of(html)
    assert settings["state"]["mine"] is True
    assert settings["me"]["leader_id"] == leader_id
    extent = sql(
        demo_session,
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(g.geom) e"
        " FROM assignments a JOIN ("
        + " UNION ALL ".join(f"SELECT id, geom FROM {spec.table}" for spec in layers(app))
        + ") g ON g.id = a.place_id WHERE a.leader_id = :l AND a.valid_to IS NULL) s",
        l=leader_id,
    ).one()
    assert settings["bounds"] == pytest.approx(list(extent))
    rows = myareas.held_places(
        demo_session, layers(app), [leader_id], datetime.now(ZoneInfo("Asia/Shanghai"))
    )
    opened, overdue = sql(
        demo_session,
        f"SELECT count(*) FILTER (WHERE status IN :open), count(*) FILTER (WHERE {OVERDUE})"
        " FROM issues WHERE leader_id = :l",
        open=OPEN,
        l=leader_id,
    ).one()
    kpis = re.findall(r"<span>(包保地点|未办结|超期)</span><b>(\d+)</b>", html)
    assert dict(kpis) == {"包保地点": str(len(rows)), "未办结": str(opened), "超期": str(overdue)}
    assert opened > 0
    # Not a leader: `mine` is ignored.
    other = client.get("/map?mine=1", headers=auth(demo_session, "viewer", "map_viewer"))
    assert settings_of(other.get_data(as_text=True))["state"]["mine"] is False


# --- counts, choropleth, heat ----------------------------------------------------------------


def test_summary_counts_every_display_class_as_sql_does(client, demo_session, planner):
    def expected(where: str = "TRUE"):
        rows = sql(
            demo_session,
            f"""SELECT CASE WHEN {OVERDUE} THEN 'overdue' WHEN status = 'fixed' THEN 'fixed'
                 WHEN status IN ('closed', 'rejected') THEN 'closed' ELSE 'open' END, count(*)
                 FROM issues WHERE {where} GROUP BY 1""",
            open=OPEN,
        ).all()
        return {k: n for k, n in rows}

    def got(query: str = ""):
        body = client.get(f"/api/map/summary{query}", headers=planner).get_json()
        assert body["total"] == sum(c["count"] for c in body["classes"])
        return {c["id"]: c["count"] for c in body["classes"] if c["count"]}

    everything = got()  # the pre-aggregated path
    assert everything == expected()
    assert got("?status=open") == expected("status IN :open")
    assert got("?category=环境卫生") == expected("category = '环境卫生'")  # row by row
    assert got("?category=环境卫生")["open"] < everything["open"]


@pytest.mark.parametrize("measure", ["open", "overdue"])
def test_choropleth_counts_per_grid_and_community_are_the_issues_inside(
    client, demo_session, planner, measure
):
    condition = "status IN :open" if measure == "open" else OVERDUE
    by_grid = dict(
        sql(
            demo_session,
            f"SELECT grid_id::text, count(*) FROM issues WHERE {condition} AND grid_id IS NOT NULL"
            " GROUP BY 1",
            open=OPEN,
        ).all()
    )
    body = client.get(f"/api/map/counts?of=grid&measure={measure}", headers=planner).get_json()
    assert body["counts"] == by_grid and body["total"] == sum(by_grid.values())
    assert body["breaks"] and body["breaks"][-1] == max(by_grid.values())
    by_community = dict(
        sql(
            demo_session,
            f"SELECT g.community_id::text, count(*) FROM issues i JOIN grids g ON g.id = i.grid_id"
            f" WHERE i.{condition.replace('deadline', 'i.deadline')} GROUP BY 1",
            open=OPEN,
        ).all()
    )
    community = client.get(f"/api/map/counts?of=community&measure={measure}", headers=planner)
    assert community.get_json()["counts"] == by_community
    assert community.get_json()["of_title"] == "社区"


def test_filters_change_the_choropleth(client, demo_session, planner):
    leader = _busiest_leader(demo_session)
    whole = client.get("/api/map/counts?of=grid", headers=planner).get_json()
    mine = client.get(f"/api/map/counts?of=grid&leader_id={leader}", headers=planner).get_json()
    expected = dict(
        sql(
            demo_session,
            "SELECT grid_id::text, count(*) FROM issues WHERE status IN :open AND leader_id = :l"
            " AND grid_id IS NOT NULL GROUP BY 1",
            open=OPEN,
            l=leader,
        ).all()
    )
    assert mine["counts"] == expected
    assert 0 < mine["total"] < whole["total"]
    bad = client.get("/api/map/counts?of=planet", headers=planner)
    assert bad.status_code == 400 and bad.get_json()["field"] == "of"
    bad = client.get("/api/map/counts?category=不存在", headers=planner)
    assert bad.status_code == 400 and bad.get_json()["field"] == "category"


def test_heat_cells_weigh_exactly_the_open_issues_in_view(client, demo_session, planner):
    bbox = "120.0,33.5,120.5,34.0"
    open_total = sql(
        demo_session, "SELECT count(*) FROM issues WHERE status IN :open", open=OPEN
    ).scalar_one()
    fast = client.get(f"/api/map/heat?bbox={bbox}&z=13", headers=planner).get_json()
    assert sum(p[2] for p in fast["points"]) == open_total
    assert all(33.5 <= lat <= 34.0 and 120.0 <= lon <= 120.5 for lat, lon, _ in fast["points"])
    category = sql(
        demo_session,
        "SELECT count(*) FROM issues WHERE status IN :open AND category = '占道经营'",
        open=OPEN,
    ).scalar_one()
    slow = client.get(f"/api/map/heat?bbox={bbox}&z=13&category=占道经营", headers=planner)
    assert sum(p[2] for p in slow.get_json()["points"]) == category < open_total
    # Closed issues are never heat, whatever the status filter says.
    closed = client.get(f"/api/map/heat?bbox={bbox}&z=13&status=closed", headers=planner)
    assert closed.get_json()["points"] == []
    assert client.get(f"/api/map/heat?bbox={bbox}", headers=planner).status_code == 400
    huge = client.get("/api/map/heat?bbox=73,18,135,53&z=18", headers=planner)
    assert huge.status_code == 400 and huge.get_json()["field"] == "bbox"


# --- tiles with filters, labels, areas, the GCJ-02 shift --------------------------------------


def test_issue_tiles_draw_only_what_the_filters_select(
    client, demo_session, demo_connection, planner
):
    lon, lat = sql(
        demo_session,
        "SELECT ST_X(geom), ST_Y(geom) FROM issues WHERE category = '占道经营' LIMIT 1",
    ).one()
    z = 17
    x, y = tile_of(lon, lat, z)
    base = f"/api/collections/issues/tiles/{z}/{x}/{y}.pbf"
    every = decode(client.get(base, headers=planner))["issues"]["features"]
    only = decode(client.get(base + "?category=占道经营", headers=planner))["issues"]["features"]
    assert only and {f["properties"]["category"] for f in only} == {"占道经营"}
    assert {f["id"] for f in only} < {f["id"] for f in every}
    # At low zoom the tile is counts; a filter the pre-aggregated counts cannot answer is
    # counted on the fly, and the counts are the filtered issues.
    x, y = tile_of(lon, lat, 11)
    low = f"/api/collections/issues/tiles/11/{x}/{y}.pbf"
    cells = decode(client.get(low + "?category=占道经营", headers=planner))["issues"]["features"]
    assert all(f["properties"]["cluster"] for f in cells)
    in_tile = sql(
        demo_session,
        "SELECT count(*) FROM issues WHERE category = '占道经营'"
        " AND geom && ST_Transform(ST_TileEnvelope(11, :x, :y), 4326)",
        x=x,
        y=y,
    ).scalar_one()
    assert sum(f["properties"]["count"] for f in cells) == in_tile
    # One point per occupied cell (1/8 of the tile at z11: the facets' level), not one for
    # the whole tile.
    n = 2 ** (facet_level(11) - 11)
    occupied = sql(
        demo_session,
        "SELECT count(DISTINCT (floor((ST_X(m) - ST_XMin(t)) / ((ST_XMax(t) - ST_XMin(t)) / :n)),"
        " floor((ST_Y(m) - ST_YMin(t)) / ((ST_YMax(t) - ST_YMin(t)) / :n))))"
        " FROM issues i, ST_TileEnvelope(11, :x, :y) t, ST_Transform(i.geom, 3857) m"
        " WHERE i.category = '占道经营' AND i.geom && ST_Transform(t, 4326)",
        x=x,
        y=y,
        n=n,
    ).scalar_one()
    assert len(cells) == occupied > 1
    last_day = demo_connection.county.today  # the demo's issue window ends on the clock's today
    first_day = last_day - timedelta(days=5)
    dated = decode(client.get(f"{low}?datetime={first_day}/{last_day}", headers=planner))
    in_days = sql(
        demo_session,
        "SELECT count(*) FROM issues WHERE reported_at >= :first AND reported_at < :after"
        " AND geom && ST_Transform(ST_TileEnvelope(11, :x, :y), 4326)",
        first=datetime.combine(first_day, datetime.min.time(), ZoneInfo("Asia/Shanghai")),
        after=datetime.combine(
            last_day + timedelta(days=1), datetime.min.time(), ZoneInfo("Asia/Shanghai")
        ),
        x=x,
        y=y,
    ).scalar_one()
    assert sum(f["properties"]["count"] for f in dated["issues"]["features"]) == in_days


def test_layer_tiles_and_labels_filter_by_leader(client, demo_session, planner):
    leader = _busiest_leader(demo_session)
    held = set(
        sql(
            demo_session,
            "SELECT a.place_id FROM assignments a JOIN grids g ON g.id = a.place_id"
            " WHERE a.leader_id = :l AND a.valid_to IS NULL",
            l=leader,
        ).scalars()
    )
    x, y = tile_of(120.26, 33.78, 8)  # one tile holds the whole demo county
    tiles = decode(
        client.get(
            f"/api/collections/grids/tiles/8/{x}/{y}.pbf?leader_id={leader}", headers=planner
        )
    )
    # At z8 a grid is under a pixel: folded into counted points, none lost.
    drawn = {f["id"] for f in tiles.get("grids", {}).get("features", [])}
    folded = sum(
        f["properties"]["count"] for f in tiles.get("grids_folded", {}).get("features", [])
    )
    assert drawn <= held and len(drawn) + folded == len(held)
    glon, glat = sql(
        demo_session,
        "SELECT ST_X(p), ST_Y(p) FROM grids g, ST_PointOnSurface(g.geom) p WHERE g.id = :id",
        id=min(held),
    ).one()
    x13, y13 = tile_of(glon, glat, 13)
    near = set(
        sql(
            demo_session,
            "SELECT a.place_id FROM assignments a JOIN grids g ON g.id = a.place_id"
            " WHERE a.leader_id = :l AND a.valid_to IS NULL"
            " AND g.geom && ST_Transform(ST_TileEnvelope(13, :x, :y, margin => 1.0 / 64), 4326)",
            l=leader,
            x=x13,
            y=y13,
        ).scalars()
    )
    detailed = decode(
        client.get(
            f"/api/collections/grids/tiles/13/{x13}/{y13}.pbf?leader_id={leader}", headers=planner
        )
    )
    assert min(held) in set(near)
    assert {f["id"] for f in detailed.get("grids", {}).get("features", [])} == set(near)
    labels = decode(
        client.get(f"/api/map/labels/grids/tiles/8/{x}/{y}.pbf?leader_id={leader}", headers=planner)
    )
    codes = dict(
        sql(
            demo_session, "SELECT id, code FROM places WHERE id IN :ids", ids=tuple(held) or (-1,)
        ).all()
    )
    got = {f["id"]: f["properties"]["label"] for f in labels["grids"]["features"]}
    assert got == codes
    assert all(f["geometry"]["type"] == "Point" for f in labels["grids"]["features"])
    assert (
        client.get(f"/api/map/labels/roads/tiles/8/{x}/{y}.pbf", headers=planner).status_code == 404
    )


def test_area_tiles_outline_the_communities_the_account_sees(client, demo_session, planner):
    communities = dict(
        sql(demo_session, "SELECT id, code FROM admin_areas WHERE level = 'community'").all()
    )
    x, y = tile_of(120.26, 33.78, 8)
    area_tile = f"/api/map/areas/community/tiles/8/{x}/{y}.pbf"
    features = decode(client.get(area_tile, headers=planner))
    got = {f["id"]: f["properties"]["code"] for f in features["community"]["features"]}
    assert got == communities
    street = sql(
        demo_session, "SELECT code FROM admin_areas WHERE level = 'street' ORDER BY code LIMIT 1"
    ).scalar_one()
    bound = auth(demo_session, "viewer", "street_viewer", area_code=street)
    features = decode(client.get(area_tile, headers=bound))
    codes = {f["properties"]["code"] for f in features["community"]["features"]}
    assert codes and all(c.startswith(street) for c in codes)
    assert client.get("/api/map/areas/planet/tiles/0/0/0.pbf", headers=planner).status_code == 404


def test_gcj02_tiles_move_the_data_by_the_datum_shift(client, demo_session, planner):
    """`shift=gcj02`: the GCJ-02 tile holds the WGS-84 features moved by the datum shift."""
    fid, lon, lat = sql(
        demo_session, "SELECT id, ST_X(geom), ST_Y(geom) FROM issues ORDER BY id LIMIT 1"
    ).one()
    from geoservice.coords import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(lon, lat)
    z = 17
    x, y = tile_of(glon, glat, z)
    tile = f"/api/collections/issues/tiles/{z}/{x}/{y}.pbf?shift=gcj02"
    shifted = decode(client.get(tile, headers=planner))
    (feature,) = [f for f in shifted["issues"]["features"] if f["id"] == fid]
    # Tile units (y up, as mapbox-vector-tile decodes) back to GCJ-02 Mercator metres.
    size = 2 * math.pi * 6378137 / 2**z
    px, py = feature["geometry"]["coordinates"]
    west, north = -math.pi * 6378137 + x * size, math.pi * 6378137 - y * size
    mx, my = west + px / 4096 * size, north - size + py / 4096 * size
    tx, ty = mercator(glon, glat)
    assert math.hypot(mx - tx, my - ty) < 2 * size / 4096 + 0.5  # a tile unit, plus < 1 px
    dx, dy = datum_offset("gcj02", z, x, y)
    assert 300 < math.hypot(dx, dy) < 900  # hundreds of metres, as GCJ-02 is
    bad = client.get(f"/api/collections/issues/tiles/{z}/{x}/{y}.pbf?shift=bd09", headers=planner)
    assert bad.status_code == 400 and bad.get_json()["field"] == "shift"


# --- popups ------------------------------------------------------------------------------------


def test_issue_popup_escapes_user_text(client, demo_session, planner):
    issue = sql(
        demo_session, "SELECT id FROM issues WHERE leader_id IS NOT NULL LIMIT 1"
    ).scalar_one()
    sql(
        demo_session,
        "UPDATE issues SET description = :d WHERE id = :id",
        d='<script>window.__xss = 1</script><img src=x onerror="alert(1)">路边垃圾',
        id=issue,
    )
    html = client.get(f"/map/popup/issue/{issue}", headers=planner).get_data(as_text=True)
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;&lt;img src=x onerror=" in html
    assert "<script" not in html and "<img src=x" not in html
    leader, phone = sql(
        demo_session,
        "SELECT l.name, l.phone FROM issues i JOIN leaders l ON l.id = i.leader_id"
        " WHERE i.id = :id",
        id=issue,
    ).one()
    assert leader in html and (phone is None or phone in html)
    assert f"问题 #{issue}" in html and f"/issues/{issue}" in html
    assert "<img" not in html  # no photo yet
    photo = sql(
        demo_session,
        "INSERT INTO photos (issue_id, kind, sha256, content_type, size_bytes)"
        " VALUES (:i, 'before', repeat('a', 64), 'image/jpeg', 1000) RETURNING id",
        i=issue,
    ).scalar_one()
    html = client.get(f"/map/popup/issue/{issue}", headers=planner).get_data(as_text=True)
    assert f'<img src="/api/photos/{photo}?thumb=1"' in html
    assert client.get("/map/popup/issue/999999999", headers=planner).status_code == 404


def test_place_popup_lists_leaders_with_phones_and_counts(client, demo_session, planner):
    place, code = sql(
        demo_session,
        "SELECT p.id, p.code FROM places p JOIN assignments a ON a.place_id = p.id"
        " JOIN leaders l ON l.id = a.leader_id WHERE p.layer = 'grid' AND a.valid_to IS NULL"
        " AND l.phone IS NOT NULL LIMIT 1",
    ).one()
    sql(demo_session, "UPDATE places SET name = :n WHERE id = :id", n="<b>网格</b>", id=place)
    html = client.get(f"/map/popup/place/{place}", headers=planner).get_data(as_text=True)
    assert "&lt;b&gt;网格&lt;/b&gt;" in html and "<b>网格</b>" not in html and code in html
    for leader, phone in sql(
        demo_session,
        "SELECT l.name, l.phone FROM assignments a JOIN leaders l ON l.id = a.leader_id"
        " WHERE a.place_id = :p AND a.valid_to IS NULL",
        p=place,
    ):
        assert leader in html and (phone is None or phone in html)
    opened, overdue = sql(
        demo_session,
        f"SELECT count(*) FILTER (WHERE status IN :open), count(*) FILTER (WHERE {OVERDUE})"
        " FROM issues WHERE primary_place_id = :p OR grid_id = :p",
        open=OPEN,
        p=place,
    ).one()
    assert f"未办结 <b>{opened}</b> 件" in html
    assert re.search(r"超期 <b[^>]*>(\d+)</b> 件", html).group(1) == str(overdue)
    assert f"grid_id={place}" in html  # "its issues": the grid's issues
    # An inspector reads places but not leaders' phones.
    inspector = client.get(
        f"/map/popup/place/{place}", headers=auth(demo_session, "inspector", "map_insp")
    )
    phones = [p for (p,) in sql(demo_session, "SELECT phone FROM leaders WHERE phone IS NOT NULL")]
    assert not any(p in inspector.get_data(as_text=True) for p in phones)


# --- the big screen ----------------------------------------------------------------------------


def test_screen_figures(client, demo_session, planner):
    body = client.get("/api/map/screen", headers=planner).get_json()
    open_now = sql(
        demo_session, "SELECT count(*) FROM issues WHERE status IN :open", open=OPEN
    ).scalar_one()
    overdue = sql(
        demo_session, f"SELECT count(*) FROM issues WHERE {OVERDUE}", open=OPEN
    ).scalar_one()
    assert body["open"] == open_now and body["overdue"] == overdue
    monday = datetime.fromisoformat(body["week"]["from"])
    assert monday.weekday() == 0 and monday.hour == 0
    assert datetime.fromisoformat(body["at"]) - monday < timedelta(days=7)
    latest = body["latest"]
    newest = sql(demo_session, "SELECT max(reported_at) FROM issues").scalar_one()
    assert (
        len(latest) == 12
        and latest[0]["reported_at"][:16]
        == newest.astimezone(ZoneInfo("Asia/Shanghai")).isoformat()[:16]
    )
    assert [i["reported_at"] for i in latest] == sorted(
        (i["reported_at"] for i in latest), reverse=True
    )
    page = client.get("/screen", headers=planner)
    assert page.status_code == 200 and len(page.get_data()) < 300_000
    assert "演示县" in page.get_data(as_text=True)
    street = sql(
        demo_session, "SELECT code FROM admin_areas WHERE level = 'street' LIMIT 1"
    ).scalar_one()
    bound = auth(demo_session, "planner", "street_planner", area_code=street)
    assert client.get("/api/map/screen", headers=bound).status_code == 403
    assert client.get("/screen", headers=bound).status_code == 403
