"""One UPDATE statement of many issues, each changing a different column (what migration
0051's single UPDATE trigger pairs once for every consumer): the tile counts, facets, days and
holders stay exact, `issue_fact_changes` gets the earliest report time of the issues whose
fact columns changed only, and the attribution references are checked for the changed keys.
The same through a one-issue UPDATE (the folded path of each tile table)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.api_support import insert_leader
from tests.test_tile_count_updates import counts
from tests.test_tile_days import assert_table_exact as assert_days_exact
from tests.test_tile_holders import assert_table_exact as assert_holders_exact

TZ = ZoneInfo("Asia/Shanghai")

COUNT_LEVELS = [5, 7, 9, 11, 13, 15, 17, 19]
FACET_LEVELS = [6, 8, 10, 12, 14, 16, 18]
FACET_KEY = "level, cx, cy, day, status, category, source, deadline_day"


def assert_caches_exact(session, phase: str) -> None:
    stored, expected = counts(session, "issue_tile_counts", "level, cx, cy, status", COUNT_LEVELS)
    assert stored == expected, phase
    stored, expected = counts(session, "issue_tile_facets", FACET_KEY, FACET_LEVELS)
    assert stored == expected, phase
    assert_days_exact(session, phase)
    assert_holders_exact(session, phase)


def fact_changes(session) -> list:
    return list(session.scalars(text("SELECT first_reported FROM issue_fact_changes ORDER BY id")))


@pytest.fixture
def world(db_session):
    leaders = [insert_leader(db_session, f"领导{k}", f"单位{k}") for k in range(3)]
    units = list(
        db_session.scalars(
            text("SELECT unit_id FROM leaders WHERE id = ANY(:ids) ORDER BY id"), {"ids": leaders}
        )
    )
    places = list(
        db_session.scalars(
            text(
                "INSERT INTO places (layer, code, name)"
                " SELECT 'grid', 'G' || k, '网格' || k FROM generate_series(1, 3) k RETURNING id"
            )
        )
    )
    # 450 issues over ~1.5° (several cells of every level), reported 2015-06-01 onwards, hour
    # by hour: issue k = 1 is the earliest.
    db_session.execute(
        text(
            """
INSERT INTO issues (geom, category, source, status, reported_at, deadline, unit_id,
                    leader_id, grid_id, primary_place_id)
SELECT ST_SetSRID(ST_MakePoint(119.6 + ((k * 37) % 100) / 100.0 * 1.5,
                               33.1 + ((k * 61) % 97) / 97.0 * 1.5), 4326),
       CASE WHEN k % 3 = 0 THEN '环境卫生' ELSE '市容秩序' END,
       CASE WHEN k % 2 = 0 THEN '自查' ELSE '12345热线' END,
       CASE WHEN k % 4 = 0 THEN 'closed' ELSE 'reported' END,
       TIMESTAMPTZ '2015-06-01 09:00+08' + k * interval '1 hour',
       CASE WHEN k % 5 <> 0 THEN TIMESTAMPTZ '2015-06-20 09:00+08' + k * interval '1 hour' END,
       CASE WHEN k % 3 <> 0 THEN :u0 END, CASE WHEN k % 3 = 1 THEN :l0 END,
       :p0, :p0
FROM generate_series(1, 450) k"""
        ),
        {"u0": units[0], "l0": leaders[0], "p0": places[0]},
    )
    first = db_session.scalar(text("SELECT min(id) FROM issues"))
    return {"leaders": leaders, "units": units, "places": places, "first": first}


# Each issue changes one thing, by (id - first) % 10: the earliest issue (0) only its status,
# the next one (1) its report time, 40 days later; 2 its unit alone, 7 its leader alone.
MIXED = """
UPDATE issues SET
  status = CASE WHEN (id - :first) % 10 = 0
                THEN CASE status WHEN 'closed' THEN 'reported' ELSE 'closed' END
                ELSE status END,
  leader_id = CASE WHEN (id - :first) % 10 = 7 THEN :l2 ELSE leader_id END,
  unit_id = CASE WHEN (id - :first) % 10 = 2 THEN NULL ELSE unit_id END,
  geom = CASE WHEN (id - :first) % 10 = 3 THEN ST_SetSRID(ST_MakePoint(120.0, 33.3), 4326)
              ELSE geom END,
  category = CASE WHEN (id - :first) % 10 = 4 THEN '道路交通' ELSE category END,
  source = CASE WHEN (id - :first) % 10 = 5 THEN '暗访督查' ELSE source END,
  deadline = CASE WHEN (id - :first) % 10 = 6 THEN deadline + interval '3 days' ELSE deadline END,
  reported_at = CASE WHEN (id - :first) % 10 = 1 THEN reported_at + interval '40 days'
                     ELSE reported_at END,
  grid_id = CASE WHEN (id - :first) % 10 = 8 THEN :p1 ELSE grid_id END,
  primary_place_id = CASE WHEN (id - :first) % 10 = 8 THEN :p2 ELSE primary_place_id END,
  attribution = '{"places": []}'"""


def test_one_statement_changing_different_columns_keeps_every_cache(db_session, world):
    assert_caches_exact(db_session, "inserted")
    facts_before = fact_changes(db_session)
    params = {
        "first": world["first"],
        "l2": world["leaders"][2],
        "p1": world["places"][1],
        "p2": world["places"][2],
    }
    # The earliest issue whose fact columns change is issue 1, by its old report time (its
    # new one is 40 days later; issue 0, earlier, changes only its status: not a fact).
    earliest = db_session.scalar(
        text("SELECT reported_at FROM issues WHERE id = :id"), {"id": world["first"] + 1}
    )
    db_session.execute(text(MIXED), params)
    assert_caches_exact(db_session, "one mixed statement")
    assert fact_changes(db_session)[len(facts_before) :] == [earliest]

    # Only statuses (not a fact): the caches follow, the fact log does not.
    facts_before = fact_changes(db_session)
    db_session.execute(
        text(
            "UPDATE issues SET status = 'dispatched'"
            " WHERE status = 'reported' AND (id - :first) % 3 = 0"
        ),
        {"first": world["first"]},
    )
    assert_caches_exact(db_session, "statuses")
    assert fact_changes(db_session) == facts_before

    # Nothing a cache or the fact log reads: no row written to any of them.
    sizes = "SELECT ARRAY[(SELECT count(*) FROM issue_tile_counts), (SELECT count(*) FROM issue_tile_facets), (SELECT count(*) FROM issue_tile_days), (SELECT count(*) FROM issue_tile_holders), (SELECT count(*) FROM issue_fact_changes)]"  # noqa: E501
    before = db_session.scalar(text(sizes))
    db_session.execute(text("UPDATE issues SET attribution = '{\"places\": [1]}', severity = 2"))
    assert db_session.scalar(text(sizes)) == before


def test_one_issue_updated_at_a_time_folds_into_the_rows(db_session, world):
    first = world["first"]
    for k, assignment in enumerate(
        (
            "status = 'closed'",
            "leader_id = :l2",
            "unit_id = :u2",
            "geom = ST_SetSRID(ST_MakePoint(120.7, 33.9), 4326)",
            "category = '道路交通', source = '暗访督查'",
            "reported_at = reported_at + interval '2 days', deadline = NULL",
        )
    ):
        db_session.execute(
            text(f"UPDATE issues SET {assignment} WHERE id = :id"),
            {"id": first + 20 + k, "l2": world["leaders"][2], "u2": world["units"][2]},
        )
        assert_caches_exact(db_session, assignment)


def test_a_changed_key_to_a_missing_parent_is_refused_and_an_unchanged_one_is_not_checked(
    db_session, world
):
    first = world["first"]
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        db_session.execute(
            text(
                "UPDATE issues SET leader_id = CASE WHEN id = :bad THEN 987654321"
                " ELSE leader_id END, status = 'accepted' WHERE id BETWEEN :lo AND :hi"
            ),
            {"bad": first + 30, "lo": first, "hi": first + 100},
        )
    assert refused.value.orig.diag.constraint_name == "fk_issues_leader_id_leaders"
    # A key the statement does not change is not looked up: an issue holding a missing leader
    # (written behind the check's back) can still change its status, not its leader.
    db_session.execute(text("ALTER TABLE issues DISABLE TRIGGER issues_rows_inserted"))
    dangling = db_session.scalar(
        text(
            "INSERT INTO issues (geom, category, source, status, reported_at, leader_id)"
            " VALUES (ST_SetSRID(ST_MakePoint(120.1, 33.2), 4326), '环境卫生', '自查',"
            " 'reported', TIMESTAMPTZ '2015-06-03 09:00+08', 987654321) RETURNING id"
        )
    )
    db_session.execute(text("ALTER TABLE issues ENABLE TRIGGER issues_rows_inserted"))
    db_session.execute(
        text("UPDATE issues SET status = 'accepted' WHERE id IN (:id, :other)"),
        {"id": dangling, "other": first},
    )
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        db_session.execute(
            text("UPDATE issues SET leader_id = 987654322 WHERE id = :id"), {"id": dangling}
        )
    assert refused.value.orig.diag.constraint_name == "fk_issues_leader_id_leaders"


def test_a_handover_is_logged_as_a_fact_change_dated_when_it_happened(db_session, world):
    """A 交办/改派/延期 (holder columns changed, holder_since moved forward) can only move the
    rankings of periods ending after it (they read the holder at a period's end from its
    event), so the fact log dates it by the new holder_since; any other fact change in the same
    statement, or a holder changed without moving holder_since forward, by the report time."""
    first = world["first"]
    reported = dict(
        db_session.execute(
            text("SELECT id - :first, reported_at FROM issues WHERE id - :first IN (40, 41, 42)"),
            {"first": first},
        ).all()
    )
    aug = [datetime(2015, 8, day, 10, tzinfo=TZ) for day in range(1, 11)]

    def logged(sql: str, **params) -> list:
        before = len(fact_changes(db_session))
        db_session.execute(text(sql), {"first": first, "l2": world["leaders"][2], **params})
        return fact_changes(db_session)[before:]

    # Two dispatches in one statement (neither handed over before: holder_since NULL), on
    # 1 and 2 August: the earlier one.
    assert logged(
        "UPDATE issues SET leader_id = :l2, deadline = :since + interval '2 days',"
        " holder_since = :since + (id - :first - 40) * interval '1 day'"
        " WHERE id - :first IN (40, 41)",
        since=aug[0],
    ) == [aug[0]]
    # 延期 on 4 August: the deadline alone.
    assert logged(
        "UPDATE issues SET deadline = deadline + interval '1 day', holder_since = :since"
        " WHERE id - :first = 40",
        since=aug[3],
    ) == [aug[3]]
    # A handover (10 August) and a category change in one statement: the category's report
    # time.
    assert logged(
        "UPDATE issues SET"
        " leader_id = CASE WHEN id - :first = 41 THEN NULL ELSE leader_id END,"
        " holder_since = CASE WHEN id - :first = 41 THEN :since ELSE holder_since END,"
        " category = CASE WHEN id - :first = 42 THEN '道路交通' ELSE category END"
        " WHERE id - :first IN (41, 42)",
        since=aug[9],
    ) == [reported[42]]
    # The leader changed by hand, holder_since left as it was: the report time.
    assert logged("UPDATE issues SET leader_id = NULL WHERE id - :first = 40") == [reported[40]]
    # holder_since moved back (the service never does): the report time.
    assert logged(
        "UPDATE issues SET leader_id = :l2, holder_since = :since WHERE id - :first = 40",
        since=aug[1],
    ) == [reported[40]]
    assert_caches_exact(db_session, "handovers")
