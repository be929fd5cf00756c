"""The tile counts and facets stay exact through one UPDATE of many issues that moves some,
changes the status, category, source, report time or deadline of others and only the
attribution of the rest (what a bulk re-attribution writes): the UPDATE triggers pair each
issue's old and new row (migrations 0033, 0032) and write deltas for the changed ones only."""

from __future__ import annotations

import pytest
from sqlalchemy import text

CELLS = """
SELECT lv AS level,
  (least(greatest(floor((ST_X(geom) + 180.0) / 360.0 * 524288), 0), 524287)::int
     >> (19 - lv)) AS cx,
  (least(greatest(floor((1.0 - ln(tan(radians(lat)) + 1.0 / cos(radians(lat))) / pi())
     / 2.0 * 524288), 0), 524287)::int >> (19 - lv)) AS cy,
  status, category, source, (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
  COALESCE((deadline AT TIME ZONE 'Asia/Shanghai')::date, 'infinity'::date) AS deadline_day
FROM (SELECT *, least(greatest(ST_Y(geom), -85.0511), 85.0511) AS lat FROM issues) i
CROSS JOIN unnest(CAST(:levels AS int[])) AS lv
"""


def counts(session, table: str, key: str, levels: list[int]) -> tuple[dict, dict]:
    stored = session.execute(
        text(f"SELECT {key}, sum(n) FROM {table} GROUP BY {key} HAVING sum(n) <> 0")
    ).all()
    expected = session.execute(
        text(f"SELECT {key}, count(*) FROM ({CELLS}) c GROUP BY {key}"), {"levels": levels}
    ).all()
    return {r[:-1]: r[-1] for r in stored}, {r[:-1]: r[-1] for r in expected}


def test_one_update_of_many_issues_keeps_tile_counts_and_facets_exact(db_session):
    db_session.execute(
        text(
            """
INSERT INTO issues (geom, category, source, status, reported_at, deadline)
SELECT ST_SetSRID(ST_MakePoint(120.2 + (k % 17) * 0.004, 33.7 + (k % 13) * 0.003), 4326),
       CASE WHEN k % 3 = 0 THEN '环境卫生' ELSE '占道经营' END,
       CASE WHEN k % 2 = 0 THEN '自查' ELSE '12345热线' END,
       'reported', TIMESTAMPTZ '2015-11-18 09:00+08' + k * interval '7 minutes',
       CASE WHEN k % 4 <> 0
            THEN TIMESTAMPTZ '2015-11-20 09:00+08' + k * interval '7 minutes' END
FROM generate_series(1, 400) k"""
        )
    )
    before = {
        t: db_session.scalar(text(f"SELECT count(*) FROM {t}"))
        for t in ("issue_tile_counts", "issue_tile_facets")
    }
    # Attribution only (leader, unit, attribution): nothing the tiles count changes.
    db_session.execute(text("UPDATE issues SET attribution = '{\"places\": []}', unit_id = NULL"))
    after = {
        t: db_session.scalar(text(f"SELECT count(*) FROM {t}"))
        for t in ("issue_tile_counts", "issue_tile_facets")
    }
    assert after == before
    # One statement: moved, status, category, source, report time, and untouched rows.
    db_session.execute(
        text(
            """
UPDATE issues SET
  geom = CASE WHEN id % 5 = 0 THEN ST_SetSRID(ST_MakePoint(121.5, 31.2), 4326) ELSE geom END,
  status = CASE WHEN id % 5 = 1 THEN 'closed' ELSE status END,
  category = CASE WHEN id % 5 = 2 THEN '公益广告' ELSE category END,
  source = CASE WHEN id % 5 = 3 THEN '暗访督查' ELSE source END,
  reported_at = CASE WHEN id % 7 = 4 THEN reported_at - interval '40 days' ELSE reported_at END,
  deadline = CASE WHEN id % 11 = 6 THEN deadline + interval '3 days' ELSE deadline END,
  attribution = '{"places": [], "unassigned": true}'"""
        )
    )
    stored, expected = counts(
        db_session, "issue_tile_counts", "level, cx, cy, status", [5, 7, 9, 11, 13, 15, 17, 19]
    )
    assert stored == expected
    stored, expected = counts(
        db_session,
        "issue_tile_facets",
        "level, cx, cy, day, status, category, source, deadline_day",
        [6, 8, 10, 12, 14, 16, 18],
    )
    assert stored == expected
    assert sum(v for k, v in stored.items() if k[0] == 6) == 400


def test_a_swap_in_one_statement_keeps_the_centroids(db_session):
    """Two issues of one cell swapping statuses in one statement (with enough others that it
    is not folded): the key's count is unchanged but its coordinate sums move (migration
    0037); the sums stay those of the issues in it."""
    db_session.execute(
        text(
            """
INSERT INTO issues (geom, category, source, status, reported_at)
SELECT ST_SetSRID(ST_MakePoint(120.1 + k * 0.00001, 33.7 + k * 0.00001), 4326), '环境卫生',
       '自查', CASE k WHEN 1 THEN 'reported' ELSE 'closed' END,
       TIMESTAMPTZ '2015-11-18 09:00+08'
FROM generate_series(1, 2) k
UNION ALL
SELECT ST_SetSRID(ST_MakePoint(119 + k * 0.01, 33 + k * 0.007), 4326), '环境卫生', '自查',
       'reported', TIMESTAMPTZ '2015-11-18 09:00+08'
FROM generate_series(1, 300) k"""
        )
    )
    db_session.execute(
        text(
            "UPDATE issues SET status = CASE status WHEN 'closed' THEN 'reported' ELSE 'closed' END"
        )
    )
    for table, key, levels in (
        ("issue_tile_counts", "level, cx, cy, status", [5, 7, 9, 11, 13, 15, 17, 19]),
        (
            "issue_tile_facets",
            "level, cx, cy, day, status, category, source, deadline_day",
            [6, 8, 10, 12, 14, 16, 18],
        ),
    ):
        stored = db_session.execute(
            text(f"SELECT {key}, sum(n), sum(sx) FROM {table} GROUP BY {key} HAVING sum(n) <> 0")
        ).all()
        expected = db_session.execute(
            text(
                f"SELECT {key}, count(*), sum(lon)"
                f" FROM ({CELLS.replace('lv AS level,', 'lv AS level, ST_X(geom) AS lon,')}) c"
                f" GROUP BY {key}"
            ),
            {"levels": levels},
        ).all()
        sums = {r[:-2]: (r[-2], r[-1]) for r in expected}
        assert {r[:-2] for r in stored} == set(sums)
        for row in stored:
            assert row[-2] == sums[row[:-2]][0]
            assert row[-1] == pytest.approx(sums[row[:-2]][1], abs=1e-7), (table, row)
