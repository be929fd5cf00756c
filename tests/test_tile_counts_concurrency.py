"""Concurrent reports into the same cells do not wait on each other for the tile counts
(migration 0028), and the counts stay exact whichever transactions commit or roll back.

Needs real commits on two connections: a scratch database of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from geoservice import migrate
from tests.scratch import create_scratch_database, drop_scratch_database

INSERT = text(
    "INSERT INTO issues (geom, category, source, status, reported_at) VALUES"
    " (ST_SetSRID(ST_MakePoint(120.2, 33.7), 4326), '环境卫生', '12345热线', 'reported',"
    " '2015-06-01 09:00+08')"
)


@pytest.fixture(scope="module")
def scratch(engine) -> Iterator[Engine]:
    name, url = create_scratch_database(engine, "hotrows")
    scratch = create_engine(url)
    try:
        with scratch.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        migrate.upgrade(scratch)
        yield scratch
    finally:
        scratch.dispose()
        drop_scratch_database(engine, name)


def totals(engine: Engine) -> set[int]:
    """The issue count and the sum of every level of the counts and facets (all equal when
    exact), plus the count of the one issue cell at the finest levels."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT count(*) FROM issues UNION ALL"
                    " SELECT sum(n) FROM issue_tile_counts GROUP BY level UNION ALL"
                    " SELECT sum(n) FROM issue_tile_facets GROUP BY level UNION ALL"
                    " SELECT sum(n) FROM issue_tile_counts WHERE level = 19 GROUP BY cx, cy"
                    " UNION ALL SELECT sum(n) FROM issue_tile_facets WHERE level = 18"
                    " GROUP BY cx, cy, day, category, source"
                )
            ).scalars()
        )


def test_reports_into_the_same_cell_do_not_wait_and_counts_stay_exact(scratch):
    with scratch.connect() as first, scratch.connect() as second:
        second.execute(text("SET lock_timeout = '3s'"))
        # Both open at once: the second insert must not wait for the first transaction.
        first.execute(INSERT)
        second.execute(INSERT)
        first.commit()
        second.commit()
        assert totals(scratch) == {2}

        # Again over the committed rows (the second folds them while the first is open).
        first.execute(INSERT)
        second.execute(INSERT)
        second.commit()
        first.rollback()
        assert totals(scratch) == {3}

        first.execute(INSERT)
        second.execute(INSERT)
        first.commit()
        second.rollback()
        assert totals(scratch) == {4}

        # A delete and an update of the same cell while another report is open.
        first.execute(INSERT)
        second.execute(text("DELETE FROM issues WHERE id = (SELECT min(id) FROM issues)"))
        second.execute(text("UPDATE issues SET status = 'accepted'"))
        second.commit()
        first.commit()
        assert totals(scratch) == {4}
        with scratch.connect() as conn:
            assert conn.execute(
                text(
                    "SELECT status, sum(n) FROM issue_tile_counts WHERE level = 5"
                    " GROUP BY status HAVING sum(n) <> 0 ORDER BY status"
                )
            ).all() == [("accepted", 3), ("reported", 1)]


def test_a_repeatable_read_report_is_counted_without_folding(scratch):
    with scratch.connect() as first, scratch.connect() as second:
        before = totals(scratch)
        (n,) = before
        first.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        first.execute(text("SELECT count(*) FROM issues"))  # its snapshot is taken
        second.execute(INSERT)  # folds the committed rows of the cell
        second.commit()
        first.execute(INSERT)  # must not fail on the rows folded since its snapshot
        # (Its commit would fail anyway on the data-generation bump of migration 0027, which
        # a REPEATABLE READ writer of issues cannot pass after a concurrent commit.)
        first.rollback()
        assert totals(scratch) == {n + 1}
