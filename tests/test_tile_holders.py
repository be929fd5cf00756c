"""Low-zoom issue tiles filtered by unit or leader (责任单位 / 包保领导, with or without a status)
come from issue_tile_holders (migration 0036) and equal what counting the matching issues on
the fly gives, cell by cell, through inserts, 改派 / re-attribution, status changes, moves and
deletes, with issues of no unit or no leader among them."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from geoservice.catalogue.catalogue import issues_collection
from geoservice.catalogue.items import ItemsQuery
from geoservice.catalogue.tiles import (
    HOLDER_LEVELS,
    HOLDER_MAX_ZOOM,
    _snapped_issue_tile,
    held,
    holder_level,
    render_tile,
)
from geoservice.vocab import OPEN_STATUSES
from tests.api_support import auth, insert_leader
from tests.test_api_tiles import tile_count, tile_of
from tests.test_tile_count_updates import CELLS as FACET_CELLS

KEY = "level, cx, cy, status, unit_id, leader_id"
CELLS = FACET_CELLS.replace(
    "status, category, source,",
    "status, COALESCE(unit_id, 0) AS unit_id, COALESCE(leader_id, 0) AS leader_id,",
)
STATUSES = ("reported", "accepted", "dispatched", "in_progress", "fixed", "closed", "rejected")
# Issues spread over ~1.5° (several cells of every holder level, several tiles at z ≥ 5).
LON0, LAT0, SPAN = 119.6, 33.1, 1.5


def assert_table_exact(session, phase: str) -> None:
    stored = session.execute(
        text(
            f"SELECT {KEY}, sum(n), sum(sx), sum(sy) FROM issue_tile_holders"
            f" GROUP BY {KEY} HAVING sum(n) <> 0"
        )
    ).all()
    expected = session.execute(
        text(
            f"SELECT {KEY}, count(*), sum(ST_X(geom)), sum(ST_Y(geom))"
            f" FROM ({CELLS.replace('lv AS level,', 'lv AS level, geom,')}) c GROUP BY {KEY}"
        ),
        {"levels": list(HOLDER_LEVELS)},
    ).all()
    assert {r[:7] for r in stored} == {r[:7] for r in expected}, phase
    sums = {r[:6]: r[7:] for r in expected}
    for r in stored:  # the centroid sums
        assert r[7:] == pytest.approx(sums[r[:6]], abs=1e-7), (phase, r)


def features(tile: bytes) -> list[tuple[int, int, tuple[int, int]]]:
    layer = mapbox_vector_tile.decode(tile).get("issues", {"features": []})
    return sorted(
        (f["properties"]["count"], f["properties"]["open"], tuple(f["geometry"]["coordinates"]))
        for f in layer["features"]
    )


def occupied_tiles(session, z: int) -> set[tuple[int, int]]:
    points = session.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM issues")).all()
    return {tile_of(lon, lat, z) for lon, lat in points}


def assert_tiles_equal(session, query: ItemsQuery) -> None:
    """At zooms where the holder level is the on-the-fly path's (z + 3) the tiles are the same
    cells with the same counts (centroids within a unit of the 4096 grid); at the others, the
    same totals."""
    collection = issues_collection()
    assert held(collection, query)
    for z in range(3, HOLDER_MAX_ZOOM + 1):
        for x, y in sorted(occupied_tiles(session, z)):
            ours = features(render_tile(session, collection, z, x, y, query, cap=1000))
            theirs = features(_snapped_issue_tile(session, collection, z, x, y, query))
            if holder_level(z) == z + 3:
                assert [f[:2] for f in ours] == [f[:2] for f in theirs], (query, z, x, y)
                for a, b in zip(ours, theirs, strict=True):
                    assert all(abs(p - q) <= 1 for p, q in zip(a[2], b[2], strict=True))
            for i in (0, 1):  # issues and open ones
                assert sum(f[i] for f in ours) == sum(f[i] for f in theirs), (query, z, x, y)


def queries(units: list[int], leaders: list[int]) -> list[ItemsQuery]:
    open_ = list(OPEN_STATUSES)
    return [
        ItemsQuery(filters={"unit_id": units[0]}),
        ItemsQuery(filters={"unit_id": units[0], "status": open_}),
        ItemsQuery(filters={"unit_id": units[1], "status": ["closed"]}),
        ItemsQuery(filters={"leader_id": leaders[0]}),
        ItemsQuery(filters={"leader_id": leaders[2], "status": open_}),
        ItemsQuery(filters={"unit_id": units[0], "leader_id": leaders[1]}),
        ItemsQuery(filters={"unit_id": units[1], "leader_id": leaders[0], "status": open_}),
    ]


def check(session, units: list[int], leaders: list[int], phase: str) -> None:
    assert_table_exact(session, phase)
    for query in queries(units, leaders):
        assert_tiles_equal(session, query)


def test_holder_tiles_equal_the_on_the_fly_counts_through_writes(db_session):
    leaders = [insert_leader(db_session, f"领导{k}", f"单位{k}") for k in range(3)]
    rows = db_session.execute(
        text("SELECT unit_id FROM leaders WHERE id = ANY(:ids) ORDER BY id"), {"ids": leaders}
    ).scalars()
    units = list(rows)
    # A second leader of the first unit; an issue may also have a unit and no leader.
    db_session.execute(
        text("UPDATE leaders SET unit_id = :u WHERE id = :l"), {"u": units[0], "l": leaders[1]}
    )
    db_session.execute(
        text(
            """
INSERT INTO issues (geom, category, source, status, reported_at, unit_id, leader_id)
SELECT ST_SetSRID(ST_MakePoint(:lon0 + ((k * 37) % 100) / 100.0 * :span,
                               :lat0 + ((k * 61) % 97) / 97.0 * :span), 4326),
       '环境卫生', '自查', (CAST(:statuses AS text[]))[1 + k % 7],
       TIMESTAMPTZ '2015-06-01 09:00+08' + k * interval '1 hour',
       CASE k % 5 WHEN 0 THEN :u0 WHEN 1 THEN :u0 WHEN 2 THEN :u1 WHEN 3 THEN :u0 END,
       CASE k % 5 WHEN 0 THEN :l0 WHEN 1 THEN :l1 WHEN 2 THEN :l2 END
FROM generate_series(1, 600) k"""
        ),
        {
            "lon0": LON0,
            "lat0": LAT0,
            "span": SPAN,
            "statuses": list(STATUSES),
            "u0": units[0],
            "u1": units[1],
            "l0": leaders[0],
            "l1": leaders[1],
            "l2": leaders[2],
        },
    )
    check(db_session, units, leaders, "inserted")

    # Reports one by one (few keys: folded into the rows already there).
    for k in range(5):
        db_session.execute(
            text(
                "INSERT INTO issues (geom, category, source, status, unit_id, leader_id)"
                " VALUES (ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), '环境卫生', '自查',"
                " 'reported', :u, :l)"
            ),
            {
                "lon": LON0 + 0.1 * k,
                "lat": LAT0 + 0.13 * k,
                "u": units[0] if k % 2 else None,
                "l": leaders[0] if k % 2 else None,
            },
        )
    check(db_session, units, leaders, "reported one by one")

    # 改派 / re-attribution in one statement: to another leader and unit, to none, from none.
    db_session.execute(
        text(
            """
UPDATE issues SET
  leader_id = CASE WHEN id % 4 = 0 THEN :l2 WHEN id % 9 = 0 THEN NULL
                   WHEN leader_id IS NULL AND id % 2 = 1 THEN :l0 ELSE leader_id END,
  unit_id = CASE WHEN id % 4 = 0 THEN :u1 WHEN id % 9 = 0 THEN NULL
                 WHEN leader_id IS NULL AND id % 2 = 1 THEN :u0 ELSE unit_id END,
  attribution = '{"places": []}'"""
        ),
        {"l0": leaders[0], "l2": leaders[2], "u0": units[0], "u1": units[1]},
    )
    check(db_session, units, leaders, "re-attributed")
    # One issue reassigned on its own (the 改派 of the issue page).
    one = db_session.scalar(
        text("SELECT min(id) FROM issues WHERE leader_id = :l"), {"l": leaders[0]}
    )
    db_session.execute(
        text("UPDATE issues SET leader_id = :l, unit_id = :u WHERE id = :id"),
        {"l": leaders[1], "u": units[0], "id": one},
    )
    check(db_session, units, leaders, "reassigned one")

    # Status changes (closing, reopening), a move, and deletes.
    db_session.execute(
        text(
            """
UPDATE issues SET
  status = CASE WHEN id % 5 = 1 THEN 'closed' WHEN id % 5 = 2 AND status = 'closed'
                THEN 'reported' ELSE status END,
  geom = CASE WHEN id % 11 = 3 THEN ST_SetSRID(ST_MakePoint(120.0, 33.3), 4326) ELSE geom END"""
        )
    )
    check(db_session, units, leaders, "status changed and moved")
    db_session.execute(text("DELETE FROM issues WHERE id % 6 = 2"))
    check(db_session, units, leaders, "deleted")


def test_the_map_filters_are_answered_from_the_holder_table(client, db_session):
    """The map's query parameters (unit_id, leader_id, status=open) reach the table: the
    tiles of z ≤ 10 follow it (its rows removed, they are empty), those above count issues."""
    viewer = auth(db_session, "viewer")
    leader = insert_leader(db_session, "张三", "城管局")
    unit = db_session.scalar(text("SELECT unit_id FROM leaders WHERE id = :l"), {"l": leader})
    for k in range(20):
        db_session.execute(
            text(
                "INSERT INTO issues (geom, category, source, status, unit_id, leader_id)"
                " VALUES (ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), '环境卫生', '自查',"
                " :status, :u, :l)"
            ),
            {
                "lon": 120.1 + 0.001 * k,
                "lat": 33.7 + 0.001 * k,
                "status": "closed" if k % 4 == 0 else "reported",
                "u": unit if k % 2 == 0 else None,
                "l": leader if k % 3 == 0 else None,
            },
        )
    cases = {
        f"?unit_id={unit}": 10,
        f"?unit_id={unit}&status=open": 5,
        f"?leader_id={leader}&status=open": 5,
        f"?leader_id={leader}&unit_id={unit}": 4,
    }
    for query, want in cases.items():
        for z in (4, 8, 10, 12):
            assert tile_count(client, viewer, z, 120.11, 33.71, query) == want, (query, z)
    assert math.isclose(tile_count(client, viewer, 6, 120.11, 33.71, f"?unit_id={unit}"), 10)
    db_session.execute(text("DELETE FROM issue_tile_holders"))
    # Every area's issue tiles are new (the TRUNCATE marker of issue_cell_changes).
    db_session.execute(text("INSERT INTO issue_cell_changes (cx, cy) VALUES (-1, -1)"))
    assert tile_count(client, viewer, 7, 120.11, 33.71, f"?unit_id={unit}") == 0
    assert tile_count(client, viewer, 11, 120.11, 33.71, f"?unit_id={unit}") == 10
