"""Low-zoom issue tiles of whole report days and/or a category (the map's time filter, with or
without a status) come from issue_tile_days (migration 0039) and equal what counting the
matching issues on the fly gives, cell by cell, through inserts, status, category, report time
and point changes (swaps among them), and deletes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from geoservice.catalogue.catalogue import issues_collection
from geoservice.catalogue.items import ItemsQuery
from geoservice.catalogue.tiles import (
    DAY_LEVELS,
    DAY_MAX_ZOOM,
    _snapped_issue_tile,
    dated,
    day_level,
    render_tile,
)
from geoservice.vocab import OPEN_STATUSES
from tests.api_support import auth
from tests.test_api_tiles import tile_count
from tests.test_tile_count_updates import CELLS as FACET_CELLS
from tests.test_tile_holders import features, occupied_tiles

KEY = "level, cx, cy, day, status, category"
STATUSES = ("reported", "accepted", "dispatched", "in_progress", "fixed", "closed", "rejected")
CATEGORIES = ("环境卫生", "市容秩序", "道路交通")
# Issues spread over ~1.5° (several cells of every day level, several tiles at z ≥ 5).
LON0, LAT0, SPAN = 119.6, 33.1, 1.5
SHANGHAI = timezone(timedelta(hours=8))


def days(first: str | None, last: str | None) -> tuple[datetime | None, datetime | None]:
    """The interval of whole Shanghai report days `first`–`last` (inclusive; None: open)."""
    start = datetime.fromisoformat(first).replace(tzinfo=SHANGHAI) if first else None
    end = (
        datetime.fromisoformat(last).replace(tzinfo=SHANGHAI)
        + timedelta(days=1)
        - timedelta(microseconds=1)
        if last
        else None
    )
    return start, end


def assert_table_exact(session, phase: str) -> None:
    stored = session.execute(
        text(
            f"SELECT {KEY}, sum(n), sum(sx), sum(sy) FROM issue_tile_days"
            f" GROUP BY {KEY} HAVING sum(n) <> 0"
        )
    ).all()
    expected = session.execute(
        text(
            f"SELECT {KEY}, count(*), sum(ST_X(geom)), sum(ST_Y(geom))"
            f" FROM ({FACET_CELLS.replace('lv AS level,', 'lv AS level, geom,')}) c"
            f" GROUP BY {KEY}"
        ),
        {"levels": list(DAY_LEVELS)},
    ).all()
    assert {r[:7] for r in stored} == {r[:7] for r in expected}, phase
    sums = {r[:6]: r[7:] for r in expected}
    for r in stored:  # the centroid sums
        assert r[7:] == pytest.approx(sums[r[:6]], abs=1e-7), (phase, r)


def assert_tiles_equal(session, query: ItemsQuery) -> None:
    """At zooms where the day level is the on-the-fly path's (z + 3) the tiles are the same
    cells with the same counts (centroids within a unit of the 4096 grid); at the others, the
    same totals."""
    collection = issues_collection()
    assert dated(collection, query)
    for z in range(3, DAY_MAX_ZOOM + 1):
        for x, y in sorted(occupied_tiles(session, z)):
            ours = features(render_tile(session, collection, z, x, y, query, cap=1000))
            theirs = features(_snapped_issue_tile(session, collection, z, x, y, query))
            if day_level(z) == z + 3:
                assert [f[:2] for f in ours] == [f[:2] for f in theirs], (query, z, x, y)
                for a, b in zip(ours, theirs, strict=True):
                    assert all(abs(p - q) <= 1 for p, q in zip(a[2], b[2], strict=True))
            for i in (0, 1):  # issues and open ones
                assert sum(f[i] for f in ours) == sum(f[i] for f in theirs), (query, z, x, y)


QUERIES = [
    ItemsQuery(interval=days("2015-06-05", "2015-06-14")),
    ItemsQuery(interval=days("2015-06-05", "2015-06-14"), filters={"status": list(OPEN_STATUSES)}),
    ItemsQuery(interval=days("2015-06-10", None), filters={"category": ["市容秩序"]}),
    ItemsQuery(interval=days(None, "2015-06-08"), filters={"status": ["closed"]}),
    ItemsQuery(filters={"category": ["环境卫生", "道路交通"]}),
    ItemsQuery(filters={"category": ["环境卫生"], "status": list(OPEN_STATUSES)}),
]


def check(session, phase: str) -> None:
    assert_table_exact(session, phase)
    for query in QUERIES:
        assert_tiles_equal(session, query)


def test_day_tiles_equal_the_on_the_fly_counts_through_writes(db_session):
    db_session.execute(
        text(
            """
INSERT INTO issues (geom, category, source, status, reported_at)
SELECT ST_SetSRID(ST_MakePoint(:lon0 + ((k * 37) % 100) / 100.0 * :span,
                               :lat0 + ((k * 61) % 97) / 97.0 * :span), 4326),
       (CAST(:categories AS text[]))[1 + k % 3], '自查', (CAST(:statuses AS text[]))[1 + k % 7],
       TIMESTAMPTZ '2015-06-01 09:00+08' + k * interval '1 hour'
FROM generate_series(1, 600) k"""
        ),
        {
            "lon0": LON0,
            "lat0": LAT0,
            "span": SPAN,
            "statuses": list(STATUSES),
            "categories": list(CATEGORIES),
        },
    )
    check(db_session, "inserted")

    # Reports one by one (few keys: folded into the rows already there).
    for k in range(5):
        db_session.execute(
            text(
                "INSERT INTO issues (geom, category, source, status, reported_at)"
                " VALUES (ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), '环境卫生', '自查',"
                " 'reported', TIMESTAMPTZ '2015-06-12 23:30+08')"
            ),
            {"lon": LON0 + 0.1 * k, "lat": LAT0 + 0.13 * k},
        )
    check(db_session, "reported one by one")

    # Two issues of one cell, day and category swap statuses in a statement of many keys
    # (more than migration 0028's FOLD_MOST: its deltas are inserted unfolded): the key's
    # delta counts no issue but moves its centroid, and is kept (migration 0036's fold).
    db_session.execute(
        text(
            "INSERT INTO issues (geom, category, source, status, reported_at) VALUES"
            " (ST_SetSRID(ST_MakePoint(120.011, 33.511), 4326), '市容秩序', '自查', 'reported',"
            "  TIMESTAMPTZ '2015-06-11 10:00+08'),"
            " (ST_SetSRID(ST_MakePoint(120.012, 33.512), 4326), '市容秩序', '自查', 'closed',"
            "  TIMESTAMPTZ '2015-06-11 11:00+08')"
        )
    )
    pair = "ST_X(geom) IN (120.011, 120.012)"
    updated = db_session.execute(
        text(
            f"UPDATE issues SET status = CASE WHEN NOT {pair} THEN status"
            " WHEN status = 'reported' THEN 'closed' ELSE 'reported' END,"
            f" reported_at = reported_at + CASE WHEN {pair} THEN interval '0'"
            " ELSE interval '1 day' END"
            f" WHERE {pair} OR id % 3 = 0"
        )
    )
    assert updated.rowcount > 150
    check(db_session, "swapped")

    # Status changes (closing, reopening), reclassification, a report time moved across
    # days, a move; then deletes.
    db_session.execute(
        text(
            """
UPDATE issues SET
  status = CASE WHEN id % 5 = 1 THEN 'closed' WHEN id % 5 = 2 AND status = 'closed'
                THEN 'reported' ELSE status END,
  category = CASE WHEN id % 7 = 4 THEN '道路交通' ELSE category END,
  reported_at = CASE WHEN id % 8 = 5 THEN reported_at + interval '3 days' ELSE reported_at END,
  geom = CASE WHEN id % 11 = 3 THEN ST_SetSRID(ST_MakePoint(120.0, 33.3), 4326) ELSE geom END"""
        )
    )
    check(db_session, "status, category, day changed and moved")
    db_session.execute(text("DELETE FROM issues WHERE id % 6 = 2"))
    check(db_session, "deleted")


def test_the_map_filters_are_answered_from_the_day_table(client, db_session):
    """The map's query parameters (datetime of whole days, category, status=open) reach the
    table: the tiles of z ≤ 11 follow it (its rows removed, they are empty), those above and
    a datetime not on whole days do not."""
    viewer = auth(db_session, "viewer")
    for k in range(20):
        db_session.execute(
            text(
                "INSERT INTO issues (geom, category, source, status, reported_at)"
                " VALUES (ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :category, '自查',"
                " :status, TIMESTAMPTZ '2015-06-01 12:00+08' + :k * interval '1 day')"
            ),
            {
                "lon": 120.1 + 0.001 * k,
                "lat": 33.7 + 0.001 * k,
                "category": "环境卫生" if k % 2 == 0 else "市容秩序",
                "status": "closed" if k % 4 == 0 else "reported",
                "k": k,
            },
        )
    cases = {
        "?datetime=2015-06-01/2015-06-10": 10,
        "?datetime=2015-06-01/2015-06-10&status=open": 7,
        "?datetime=2015-06-11/..&category=环境卫生": 5,
        "?category=市容秩序": 10,
    }
    for query, want in cases.items():
        for z in (4, 7, 11, 12):
            assert tile_count(client, viewer, z, 120.11, 33.71, query) == want, (query, z)
    db_session.execute(text("DELETE FROM issue_tile_days"))
    # Every area's issue tiles are new (the TRUNCATE marker of issue_cell_changes).
    db_session.execute(text("INSERT INTO issue_cell_changes (cx, cy) VALUES (-1, -1)"))
    assert tile_count(client, viewer, 7, 120.11, 33.71, "?category=市容秩序") == 0
    assert tile_count(client, viewer, 11, 120.11, 33.71, "?datetime=2015-06-01/2015-06-10") == 0
    assert tile_count(client, viewer, 12, 120.11, 33.71, "?category=市容秩序") == 10
    # Not whole days: counted on the fly.
    partial = "?datetime=2015-06-01T00:00:00Z/2015-06-10T00:00:00Z"
    assert tile_count(client, viewer, 7, 120.11, 33.71, partial) == 9
