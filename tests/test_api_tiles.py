"""Vector tiles (MVT) of layers and issues, decoded with mapbox-vector-tile."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from geoservice.catalogue import tilecache
from geoservice.catalogue.tilegrid import FINEST_LEVEL
from geoservice.catalogue.tiles import AGGREGATE_MAX_ZOOM
from tests.api_support import assign, auth, insert_issue, insert_leader, insert_place
from tests.clock import hold_wall_clock
from tests.test_api_read import attrs_for, polygon_spec, road_spec


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture
def viewer(db_session):
    return auth(db_session, "viewer")


def get_tile(client, headers, collection, z, lon, lat, query=""):
    x, y = tile_of(lon, lat, z)
    response = client.get(
        f"/api/collections/{collection}/tiles/{z}/{x}/{y}.pbf{query}", headers=headers
    )
    assert response.status_code == 200, response.get_data()[:300]
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(response.get_data())


def test_layer_tile_carries_properties_and_the_primary_leader(app, client, db_session, viewer):
    spec = road_spec(app)
    fid = insert_place(
        db_session,
        spec,
        "R1",
        "文昌路",
        "MULTILINESTRING((120.100 33.700, 120.102 33.701))",
        **attrs_for(spec),
    )
    leader = insert_leader(db_session, "张三", "城管局")
    assign(db_session, leader, fid, "道路长")
    layers_ = get_tile(client, viewer, spec.collection, 15, 120.101, 33.7005)
    (feature,) = layers_[spec.collection]["features"]
    assert feature["id"] == fid
    assert feature["properties"]["name"] == "文昌路"
    assert feature["properties"]["leader"] == "张三"
    assert feature["geometry"]["type"] in ("LineString", "MultiLineString")
    empty = get_tile(client, viewer, spec.collection, 15, 10.0, 10.0)
    assert not empty.get(spec.collection, {}).get("features")


def test_low_zoom_issue_tiles_are_aggregated_counts(client, db_session, viewer):
    for i in range(40):
        insert_issue(
            db_session,
            120.10 + (i % 8) * 0.001,
            33.70 + (i // 8) * 0.001,
            status="closed" if i % 4 == 0 else "reported",
        )
    for _ in range(5):
        insert_issue(db_session, 120.30, 33.80, status="dispatched")
    tile = get_tile(client, viewer, "issues", 8, 120.2, 33.75)
    features = tile["issues"]["features"]
    assert all(f["properties"]["cluster"] for f in features)
    assert sum(f["properties"]["count"] for f in features) == 45
    assert sum(f["properties"]["open"] for f in features) == 35
    assert 2 <= len(features) < 45  # nearby issues share a cell
    open_only = get_tile(client, viewer, "issues", 8, 120.2, 33.75, "?status=open")
    assert sum(f["properties"]["count"] for f in open_only["issues"]["features"]) == 35


def test_high_zoom_issue_tiles_are_the_issues_capped_open_first(
    app, client, db_session, viewer, monkeypatch
):
    leader = insert_leader(db_session, "李四")
    closed = [insert_issue(db_session, 120.1001, 33.7001, status="closed") for _ in range(3)]
    opened = [insert_issue(db_session, 120.1001, 33.7001, leader_id=leader) for _ in range(2)]
    z = AGGREGATE_MAX_ZOOM + 2
    tile = get_tile(client, viewer, "issues", z, 120.1001, 33.7001)
    features = tile["issues"]["features"]
    assert sorted(f["id"] for f in features) == sorted(closed + opened)
    by_id = {f["id"]: f["properties"] for f in features}
    assert by_id[opened[0]]["leader_id"] == leader
    assert by_id[closed[0]]["status"] == "closed"
    monkeypatch.setitem(app.config, "TILE_MAX_FEATURES", 2)
    # Never silently dropped: more issues than the cap are counted instead, also beyond the
    # finest tile counts and with a filter the counts cannot answer.
    far = FINEST_LEVEL + 1
    for query in ("", "?overdue=false"):
        counted = get_tile(client, viewer, "issues", far, 120.1001, 33.7001, query)
        features = counted["issues"]["features"]
        assert all(f["properties"]["cluster"] for f in features)
        assert sum(f["properties"]["count"] for f in features) == 5
    # More issues in the tile than the cap, at a zoom the tile counts cover: counts instead.
    dense = get_tile(client, viewer, "issues", z, 120.1001, 33.7001)["issues"]["features"]
    assert all(f["properties"]["cluster"] for f in dense)
    assert sum(f["properties"]["count"] for f in dense) == 5


def test_tile_errors_and_tilejson(app, client, viewer):
    spec = road_spec(app)
    assert (
        client.get(
            f"/api/collections/{spec.collection}/tiles/3/8/0.pbf", headers=viewer
        ).status_code
        == 404
    )
    assert (
        client.get("/api/collections/issues/tiles/3/1/1.pbf?colour=1", headers=viewer).status_code
        == 400
    )
    assert (
        client.get(
            f"/api/collections/{spec.collection}/tiles/3/1/1.pbf?status=open", headers=viewer
        ).status_code
        == 400
    )
    assert client.get("/api/collections/issues/tiles/3/1/1.pbf").status_code == 401
    body = client.get(f"/api/collections/{spec.collection}/tiles", headers=viewer).get_json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith(
        f"/api/collections/{spec.collection}/tiles/{{z}}/{{x}}/{{y}}.pbf"
    )
    # A road tile at low zoom holds two layers (tiles.py: the roads, and those under a pixel
    # folded into counts): both described, so a style built from the TileJSON knows them.
    assert [layer["id"] for layer in body["vector_layers"]] == [
        spec.collection,
        f"{spec.collection}_folded",
    ]
    assert "count" in body["vector_layers"][1]["fields"]
    issues = client.get("/api/collections/issues/tiles", headers=viewer).get_json()
    assert [layer["id"] for layer in issues["vector_layers"]] == ["issues"]
    collection = client.get(f"/api/collections/{spec.collection}", headers=viewer).get_json()
    assert any(link["type"] == "application/vnd.mapbox-vector-tile" for link in collection["links"])


# --- filtered low-zoom tiles, generalised layers, caching ------------------------------------


def tile_count(client, headers, z, lon, lat, query=""):
    features = get_tile(client, headers, "issues", z, lon, lat, query).get("issues", {})
    return sum(f["properties"].get("count", 1) for f in features.get("features", []))


def test_filtered_tiles_count_exactly_the_matching_issues_at_every_zoom(client, db_session, viewer):
    """Whatever the filter and zoom, a tile's counts add up to the matching issues in it:
    from the facets (category, source, whole report days, status), counted on the fly
    (leader, overdue) or the issues themselves; and the facets follow updates and deletes."""
    leader = insert_leader(db_session, "王五")
    shanghai = "+08:00"
    rows = []
    for i in range(60):
        rows.append(
            {
                "lon": 120.0975 + (i % 10) * 0.0004,  # all within one z16 tile
                "lat": 33.6975 + (i // 10) * 0.0006,
                "category": ("环境卫生", "占道经营", "车辆违停")[i % 3],
                "source": ("自查", "随手拍")[i % 2],
                "status": "closed" if i % 5 == 0 else "reported",
                # 2015-03-01 … 03-04, one of them a minute before local midnight
                "reported_at": f"2015-03-0{1 + i % 4}T23:59:00{shanghai}",
                "leader_id": leader if i % 7 == 0 else None,
                "deadline": f"2015-03-1{i % 2}T00:00:00{shanghai}",
            }
        )
    ids = [insert_issue(db_session, **row) for row in rows]

    def expected(match) -> int:
        return sum(1 for row in rows if match(row))

    cases = [
        ("?category=占道经营", lambda r: r["category"] == "占道经营"),
        (
            "?status=open&source=随手拍",
            lambda r: r["source"] == "随手拍" and r["status"] != "closed",
        ),
        (
            "?category=环境卫生,车辆违停&source=自查",
            lambda r: r["category"] != "占道经营" and r["source"] == "自查",
        ),
        ("?datetime=2015-03-02/2015-03-03", lambda r: r["reported_at"][9] in "23"),
        ("?datetime=2015-03-02T00:00:00Z/..", lambda r: r["reported_at"][9] in "234"),
        (f"?leader_id={leader}", lambda r: r["leader_id"] == leader),
        ("?overdue=true", lambda r: r["status"] != "closed"),  # deadlines in 2015: all past
    ]
    for query, match in cases:
        for z in (4, 8, 11, 13, 16):
            assert tile_count(client, viewer, z, 120.0995, 33.6990, query) == expected(match), (
                query,
                z,
            )
    # The facets follow writes: a category changed, an issue deleted.
    db_session.execute(
        text("UPDATE issues SET category = '占道经营' WHERE id = :id"), {"id": ids[0]}
    )
    rows[0]["category"] = "占道经营"
    db_session.execute(text("DELETE FROM issues WHERE id = :id"), {"id": ids[1]})
    del rows[1]
    for z in (8, 11):
        assert tile_count(client, viewer, z, 120.0995, 33.6990, "?category=占道经营") == expected(
            lambda r: r["category"] == "占道经营"
        )


def test_low_zoom_polygons_are_simplified_keep_ids_and_fold_what_is_under_a_pixel(
    app, client, db_session, viewer
):
    spec = polygon_spec(app)
    # A big many-sided polygon (a circle of 0.1° radius, 720 vertices) and 12 tiny squares.
    angles = [math.radians(a / 2) for a in range(720)]
    ring = ", ".join(f"{120.2 + 0.1 * math.cos(t)} {33.7 + 0.1 * math.sin(t)}" for t in angles)
    first = ring.split(", ")[0]
    big = insert_place(
        db_session, spec, "BIG", "大片区", f"MULTIPOLYGON((({ring}, {first})))", **attrs_for(spec)
    )
    for i in range(12):
        x0, y0 = 120.45 + i * 0.003, 33.60
        insert_place(
            db_session,
            spec,
            f"S{i}",
            f"小院{i}",
            f"MULTIPOLYGON((({x0} {y0}, {x0 + 0.0005} {y0}, {x0 + 0.0005} {y0 + 0.0005},"
            f" {x0} {y0 + 0.0005}, {x0} {y0})))",
            **attrs_for(spec),
        )
    z = 8
    tile = get_tile(client, viewer, spec.collection, z, 120.2, 33.7)
    (feature,) = tile[spec.collection]["features"]
    assert feature["id"] == big  # the click needs the id …
    if spec.style_by is not None:  # … and the map styles by this
        assert spec.style_by[0] in feature["properties"]
    assert "name" not in feature["properties"]  # per-feature text waits for higher zooms
    coordinates = feature["geometry"]["coordinates"]
    outer = coordinates[0] if feature["geometry"]["type"] == "Polygon" else coordinates[0][0]
    assert len(outer) < 200  # simplified to the pixel
    extent = tile[spec.collection]["extent"]
    area = abs(
        sum(
            x0 * y1 - x1 * y0
            for (x0, y0), (x1, y1) in zip(outer, outer[1:] + outer[:1], strict=True)
        )
        / 2
    )
    # The circle's area in tile units: in Mercator an ellipse, stretched by 1/cos(lat) in y.
    size = 2 * math.pi * 6378137 / 2**z
    radius = math.radians(0.1) * 6378137 / size * extent
    want = math.pi * radius**2 / math.cos(math.radians(33.7))
    assert abs(area - want) / want < 0.05
    folded = tile[f"{spec.collection}_folded"]["features"]
    assert sum(f["properties"]["count"] for f in folded) == 12
    # Zoomed in, the full feature with its properties.
    near = get_tile(client, viewer, spec.collection, 15, 120.45, 33.6002)
    assert "小院0" in [f["properties"]["name"] for f in near[spec.collection]["features"]]


def test_a_crowded_low_zoom_tile_draws_its_largest_features_and_counts_the_rest(
    app, client, db_session, viewer, monkeypatch
):
    """More features above the pixel than a low-zoom tile may draw: the largest are drawn, the
    others are counted in `<id>_folded` — every feature is drawn or counted, none twice."""
    from geoservice.catalogue import tiles

    monkeypatch.setattr(tiles, "LOW_DETAIL_MAX_FEATURES", 4)
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)
    spec = polygon_spec(app)
    ids = []
    for i in range(10):  # squares of 0.02° … 0.11° (all several pixels at z8)
        side, x0, y0 = 0.02 + 0.01 * i, 120.05 + 0.12 * (i % 5), 33.55 + 0.15 * (i // 5)
        ids.append(
            insert_place(
                db_session,
                spec,
                f"Q{i}",
                f"方块{i}",
                f"MULTIPOLYGON((({x0} {y0}, {x0 + side} {y0}, {x0 + side} {y0 + side},"
                f" {x0} {y0 + side}, {x0} {y0})))",
                **attrs_for(spec),
            )
        )
    tile = get_tile(client, viewer, spec.collection, 8, 120.3, 33.65)
    drawn = sorted(f["id"] for f in tile[spec.collection]["features"])
    assert drawn == sorted(ids[-4:])  # the four largest
    folded = tile[f"{spec.collection}_folded"]["features"]
    assert sum(f["properties"]["count"] for f in folded) == 6
    monkeypatch.setattr(tiles, "LOW_DETAIL_MAX_FEATURES", 100)
    tile = get_tile(client, viewer, spec.collection, 8, 120.3, 33.65)
    assert len(tile[spec.collection]["features"]) == 10
    assert not tile.get(f"{spec.collection}_folded", {}).get("features")


def test_tiles_revalidate_with_etags_and_a_write_shows_on_the_next_request(
    app, client, db_session, viewer, monkeypatch
):
    hold_wall_clock(monkeypatch, tilecache)  # issue tiles' ETags carry the minute
    insert_issue(db_session, 120.1, 33.7)
    x, y = tile_of(120.1, 33.7, 10)
    path = f"/api/collections/issues/tiles/10/{x}/{y}.pbf?category=环境卫生"
    first = client.get(path, headers=viewer)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = client.get(path, headers={**viewer, "If-None-Match": etag})
    assert again.status_code == 304 and not again.get_data()
    assert client.get(path, headers=viewer).get_data() == first.get_data()  # the worker's cache
    insert_issue(db_session, 120.1005, 33.7005)  # a write: the next request sees it
    fresh = client.get(path, headers={**viewer, "If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert tile_count(client, viewer, 10, 120.1, 33.7, "?category=环境卫生") == 2
    # A layer tile: unchanged by issues, changed by a write to a layer.
    spec = road_spec(app)
    layer_path = f"/api/collections/{spec.collection}/tiles/10/{x}/{y}.pbf"
    layer_etag = client.get(layer_path, headers=viewer).headers["ETag"]
    insert_issue(db_session, 120.1006, 33.7006)
    assert (
        client.get(layer_path, headers={**viewer, "If-None-Match": layer_etag}).status_code == 304
    )
    insert_place(
        db_session,
        spec,
        "R9",
        "新路",
        "MULTILINESTRING((120.1 33.7, 120.2 33.71))",
        **attrs_for(spec),
    )
    assert (
        client.get(layer_path, headers={**viewer, "If-None-Match": layer_etag}).status_code == 200
    )


def pin_database_clock(session, at: str) -> None:
    """Makes `now()` in this test's transaction read `at` (rolled back with the test): the
    overdue boundary is `deadline < now()`, so it is checked on a clock set to 2015."""
    session.execute(text("SET LOCAL search_path = public, pg_catalog"))
    session.execute(
        text(
            "CREATE OR REPLACE FUNCTION public.now() RETURNS timestamptz"
            f" LANGUAGE sql STABLE AS $$ SELECT timestamptz '{at}' $$"
        )
    )


def test_overdue_tiles_count_exactly_across_the_deadline_boundary(
    app, client, db_session, viewer, monkeypatch
):
    """overdue=true|false from the facets (deadline days before today: by day; today's
    deadlines: each against now()) equals the issues' own `deadline < now()` at every zoom,
    with other filters, past the cap, in the heat map; it follows the clock and extensions."""
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)  # the clock moves between requests
    cst = "+08:00"
    deadlines = [
        f"2015-03-09T23:59:00{cst}",  # yesterday (local)
        f"2015-03-10T00:30:00{cst}",  # today local, still 2015-03-09 in UTC
        f"2015-03-10T09:59:00{cst}",  # today, before now
        f"2015-03-10T10:01:00{cst}",  # today, after now
        f"2015-03-11T08:00:00{cst}",  # tomorrow
        None,  # no deadline: never overdue
    ]
    rows = []
    for i in range(48):
        rows.append(
            {
                "lon": 120.0975 + (i % 8) * 0.0004,  # all within one z16 tile
                "lat": 33.6975 + (i // 8) * 0.0004,
                "category": ("环境卫生", "占道经营")[i % 2],
                "status": ("reported", "fixed", "closed", "dispatched")[(i // 6) % 4],
                "reported_at": f"2015-03-0{1 + i % 5}T12:00:00{cst}",
                "deadline": deadlines[i % 6],
            }
        )
    ids = [insert_issue(db_session, **row) for row in rows]

    def overdue(row, now: str) -> bool:
        from datetime import datetime

        return (
            row["status"] != "closed"
            and row["deadline"] is not None
            and datetime.fromisoformat(row["deadline"]) < datetime.fromisoformat(now)
        )

    def check(now: str) -> None:
        pin_database_clock(db_session, now)
        cases = [
            ("?overdue=true", lambda r: overdue(r, now)),
            ("?overdue=false", lambda r: not overdue(r, now)),
            (
                "?overdue=true&category=占道经营",
                lambda r: overdue(r, now) and r["category"] == "占道经营",
            ),
            (
                "?overdue=false&status=open",
                lambda r: not overdue(r, now) and r["status"] != "closed",
            ),
            (
                "?overdue=true&datetime=2015-03-02/2015-03-03",
                lambda r: overdue(r, now) and r["reported_at"][9] in "23",
            ),
        ]
        for query, match in cases:
            want = sum(1 for row in rows if match(row))
            for z in (4, 8, 11, 13, 15, 16):
                assert tile_count(client, viewer, z, 120.0995, 33.6995, query) == want, (
                    now,
                    query,
                    z,
                )
        heat = client.get(
            "/api/map/heat?bbox=120.09,33.69,120.11,33.71&z=13&overdue=true", headers=viewer
        ).get_json()
        assert sum(n for _lat, _lon, n in heat["points"]) == sum(
            1 for row in rows if overdue(row, now)
        )

    check(f"2015-03-10T10:00:00{cst}")
    check(f"2015-03-10T10:02:00{cst}")  # 10:01 has passed
    check(f"2015-03-11T00:00:30{cst}")  # a new day: yesterday's deadlines from the facets
    # More matching issues than the cap at z15–16: counted per cell, nothing dropped.
    monkeypatch.setitem(app.config, "TILE_MAX_FEATURES", 5)
    check(f"2015-03-10T10:00:00{cst}")
    monkeypatch.setitem(app.config, "TILE_MAX_FEATURES", 5000)
    # An extension moves the deadline (and the facets with it); closing an issue too.
    db_session.execute(
        text("UPDATE issues SET deadline = :d WHERE id = ANY(:ids)"),
        {"d": f"2015-03-12T00:00:00{cst}", "ids": ids[:6]},
    )
    for row in rows[:6]:
        row["deadline"] = f"2015-03-12T00:00:00{cst}"
    db_session.execute(text("UPDATE issues SET status = 'closed' WHERE id = :id"), {"id": ids[7]})
    rows[7]["status"] = "closed"
    check(f"2015-03-10T10:00:00{cst}")


def test_the_number_of_issues_in_a_tile_counts_its_own_issues_at_every_zoom(db_session):
    """The cap check of high-zoom tiles counts a tile's issues from the coarsest tile-count
    level that tiles it exactly: issues on either side of its edges are in or out exactly as
    their points are."""
    from geoservice.catalogue.items import ItemsQuery
    from geoservice.catalogue.tiles import _issues_in_tile

    z0 = AGGREGATE_MAX_ZOOM + 1
    x, y = tile_of(120.1001, 33.7001, z0)
    n = 2**z0
    west = x / n * 360 - 180
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    step = 1e-7  # far below a finest cell (~75 m), far above the float rounding
    points = [(west + step, north - step), (west - step, north - step),
              (west + step, north + step), (west + 0.001, north - 0.001)]  # fmt: skip
    for lon, lat in points:
        insert_issue(db_session, lon, lat)
    for z in range(z0, FINEST_LEVEL + 1):
        tx, ty = tile_of(west + step, north - step, z)
        inside = sum(1 for lon, lat in points if tile_of(lon, lat, z) == (tx, ty))
        assert _issues_in_tile(db_session, z, tx, ty, ItemsQuery()) == inside, z


def test_issues_either_side_of_a_tile_edge_are_counted_once(client, db_session, viewer):
    """Counted on the fly (a filter no pre-aggregated table answers): an issue a centimetre
    west of a tile's edge belongs to the west tile only, though the index's boxes (float4,
    rounded outwards) put it in the east tile's window too."""
    x, _ = tile_of(120.1, 33.7, 11)
    edge = x / 2**11 * 360 - 180  # a z11 tile's west edge: a tile edge at z13 as well
    insert_issue(db_session, edge - 1e-7, 33.7, severity=2)
    insert_issue(db_session, edge + 1e-7, 33.7, severity=2)
    for zoom in (11, 13):
        west = tile_count(client, viewer, zoom, edge - 1e-4, 33.7, "?severity=2")
        east = tile_count(client, viewer, zoom, edge + 1e-4, 33.7, "?severity=2")
        assert (west, east) == (1, 1), zoom
