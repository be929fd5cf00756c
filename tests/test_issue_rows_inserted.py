"""One INSERT into issues fires one statement trigger (migration 0053, issue_rows_inserted)
that reads the new rows once and does the work of the nine triggers it replaced: the tile
counts, facets, days and holders stay exact (and a one-row insert folds into the rows of its
cells), the cell log gets each level-15 cell once with its first issue and report time, the
fact log the earliest report time, and a missing attribution parent or relapse/duplicate
original refuses the statement with the constraint the old triggers named. The same inserts
through the replaced triggers write the same rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.api_support import insert_leader
from tests.test_issue_rows_updated import assert_caches_exact

MIGRATION = next(Path(__file__).parent.parent.glob("migrations/versions/*_0053_*.py"))

# 0040's level-15 cell of an issue (its own expression, not the level-19 one shifted).
CELL15 = (
    "least(greatest(floor((ST_X(geom) + 180.0) / 360.0 * 32768), 0), 32767)::int,"
    " least(greatest(floor((1.0 - ln(tan(radians(least(greatest(ST_Y(geom), -85.0511),"
    " 85.0511))) + 1.0 / cos(radians(least(greatest(ST_Y(geom), -85.0511), 85.0511))))"
    " / pi()) / 2.0 * 32768), 0), 32767)::int"
)

# 300 issues over ~1.5° (several cells of every level, some sharing a level-15 cell), two
# days of reports, with and without deadline, unit, leader and attribution.
MANY = """
INSERT INTO issues (geom, category, source, status, reported_at, deadline, unit_id,
                    leader_id, grid_id, primary_place_id)
SELECT ST_SetSRID(ST_MakePoint(119.6 + (((k % 120) * 37) % 100) / 100.0 * 1.5 + (k % 3) * 1e-5,
                               33.1 + (((k % 120) * 61) % 97) / 97.0 * 1.5), 4326),
       CASE WHEN k % 3 = 0 THEN '环境卫生' ELSE '市容秩序' END,
       CASE WHEN k % 2 = 0 THEN '自查' ELSE '12345热线' END,
       CASE WHEN k % 4 = 0 THEN 'closed' ELSE 'reported' END,
       TIMESTAMPTZ '2015-06-01 22:00+08' + (k % 7) * interval '1 hour' + k * interval '1 s',
       CASE WHEN k % 5 <> 0 THEN TIMESTAMPTZ '2015-06-20 09:00+08' + k * interval '1 hour' END,
       CASE WHEN k % 3 <> 0 THEN :u END, CASE WHEN k % 3 = 1 THEN :l END,
       CASE WHEN k % 2 = 0 THEN :p END, CASE WHEN k % 2 = 0 THEN :p END
FROM generate_series(1, :n) k
RETURNING id"""

ONE = """
INSERT INTO issues (geom, category, source, status, reported_at, deadline, unit_id,
                    leader_id, grid_id, primary_place_id, relapse_of_id, duplicate_of_id)
VALUES (ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), '环境卫生', '12345热线', 'reported',
        :at, :deadline, :u, :l, :p, :p, :relapse, :duplicate)
RETURNING id"""


@pytest.fixture
def world(db_session):
    leader = insert_leader(db_session, "领导甲", "单位甲")
    unit = db_session.scalar(text("SELECT unit_id FROM leaders WHERE id = :id"), {"id": leader})
    place = db_session.scalar(
        text("INSERT INTO places (layer, code, name) VALUES ('grid', 'G1', '网格1') RETURNING id")
    )
    return {"l": leader, "u": unit, "p": place}


def one(session, world, lon=120.2, lat=33.7, at="2015-06-02 10:00+08", **columns):
    params = {
        "lon": lon,
        "lat": lat,
        "at": at,
        "deadline": "2015-06-09 10:00+08",
        "u": world["u"],
        "l": world["l"],
        "p": world["p"],
        "relapse": None,
        "duplicate": None,
    }
    params.update(columns)
    return session.scalar(text(ONE), params)


def many(session, world, n=300) -> list[int]:
    return list(session.scalars(text(MANY), {**world, "n": n}))


def last_id(session, table: str) -> int:
    return session.scalar(text(f"SELECT COALESCE(max(id), 0) FROM {table}"))


def cells_logged(session, after: int) -> list:
    return session.execute(
        text(
            "SELECT cx, cy, first_issue, first_reported FROM issue_cell_changes"
            " WHERE id > :after ORDER BY cx, cy"
        ),
        {"after": after},
    ).all()


def cells_expected(session, ids: list[int]) -> list:
    return session.execute(
        text(
            f"SELECT {CELL15}, min(id), min(reported_at) FROM issues WHERE id = ANY(:ids)"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {"ids": ids},
    ).all()


def facts_logged(session, after: int) -> list:
    return list(
        session.scalars(
            text("SELECT first_reported FROM issue_fact_changes WHERE id > :after ORDER BY id"),
            {"after": after},
        )
    )


def earliest(session, ids: list[int]):
    return session.scalar(
        text("SELECT min(reported_at) FROM issues WHERE id = ANY(:ids)"), {"ids": ids}
    )


def test_the_insert_triggers_are_one(db_session):
    triggers = db_session.execute(
        text(
            "SELECT tgname, tgfoid::regproc::text FROM pg_trigger"
            " WHERE tgrelid = 'issues'::regclass AND NOT tgisinternal"
            " AND tgtype & 4 <> 0 ORDER BY 1"  # TRIGGER_TYPE_INSERT
        )
    ).all()
    assert triggers == [
        ("data_touch", "data_touch"),
        ("issues_rows_inserted", "issue_rows_inserted"),
    ]


def test_a_multi_row_insert_keeps_every_cache_and_log_exact(db_session, world):
    cells_before = last_id(db_session, "issue_cell_changes")
    facts_before = last_id(db_session, "issue_fact_changes")
    ids = many(db_session, world)
    assert_caches_exact(db_session, "300 rows in one statement")
    logged = cells_logged(db_session, cells_before)
    assert logged == cells_expected(db_session, ids)
    assert len(logged) < len(ids)  # some level-15 cells hold several of them: noted once
    assert facts_logged(db_session, facts_before) == [earliest(db_session, ids)]

    # A second statement over the same cells: the caches add up (no fold above 200 keys).
    cells_before = last_id(db_session, "issue_cell_changes")
    facts_before = last_id(db_session, "issue_fact_changes")
    again = many(db_session, world, n=150)
    assert_caches_exact(db_session, "150 more")
    assert cells_logged(db_session, cells_before) == cells_expected(db_session, again)
    assert facts_logged(db_session, facts_before) == [earliest(db_session, again)]


def test_one_row_inserts_fold_into_the_rows_of_their_cells(db_session, world):
    many(db_session, world, n=60)
    for k, (lon, lat, at) in enumerate(
        (
            (120.2, 33.7, "2015-06-02 10:00+08"),
            (120.2, 33.7, "2015-06-02 11:00+08"),  # the same cells, the same day
            (120.2000001, 33.7, "2015-06-03 00:30+08"),  # the next day (Shanghai)
            (119.61, 33.11, "2015-06-01 23:59+08"),
            (-179.99, -89.0, "2015-06-02 10:00+08"),  # clamped to the edge cells
        )
    ):
        cells_before = last_id(db_session, "issue_cell_changes")
        facts_before = last_id(db_session, "issue_fact_changes")
        issue = one(db_session, world, lon=lon, lat=lat, at=at, u=None if k == 3 else world["u"])
        assert_caches_exact(db_session, f"one row {k}")
        assert cells_logged(db_session, cells_before) == cells_expected(db_session, [issue])
        assert facts_logged(db_session, facts_before) == [earliest(db_session, [issue])]
    # Each one-row insert folded: one row per key in every tile table.
    for table, key in (
        ("issue_tile_counts", "level, cx, cy, status"),
        ("issue_tile_days", "level, cx, cy, day, status, category"),
        ("issue_tile_facets", "level, cx, cy, day, status, category, source, deadline_day"),
        ("issue_tile_holders", "level, cx, cy, status, unit_id, leader_id"),
    ):
        duplicated = db_session.scalar(
            text(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {key} HAVING count(*) > 1) d"
            )
        )
        assert duplicated == 0, table


def test_an_empty_insert_writes_nothing(db_session, world):
    sizes = "SELECT ARRAY[(SELECT count(*) FROM issue_tile_counts), (SELECT count(*) FROM issue_tile_facets), (SELECT count(*) FROM issue_tile_days), (SELECT count(*) FROM issue_tile_holders), (SELECT count(*) FROM issue_fact_changes), (SELECT count(*) FROM issue_cell_changes)]"  # noqa: E501
    before = db_session.scalar(text(sizes))
    assert many(db_session, world, n=0) == []
    assert db_session.scalar(text(sizes)) == before


@pytest.mark.parametrize("table", ["issue_cell_changes", "issue_fact_changes"])
@pytest.mark.parametrize("behind", [2_001, 1_000])
def test_the_logs_keep_their_last_two_thousand_rows(db_session, world, table, behind):
    """Pruned when an insert's log row takes an id ending in 000: the rows more than 2,000
    ids behind it go (migration 0054; other writes: tests/test_issue_cell_changes.py)."""
    row = db_session.scalar(
        text(
            f"INSERT INTO {table} ({'cx, cy, ' if table == 'issue_cell_changes' else ''}"
            f"first_reported) VALUES ({'1, 1, ' if table == 'issue_cell_changes' else ''}"
            " TIMESTAMPTZ '2015-01-01 00:00+08') RETURNING id"
        )
    )
    crossing = -(-(row + behind) // 1000) * 1000  # the next multiple of 1,000
    db_session.execute(
        text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v)"),
        {"t": table, "v": crossing - 1},
    )
    one(db_session, world)
    assert last_id(db_session, table) == crossing
    kept = db_session.scalar(text(f"SELECT count(*) FROM {table} WHERE id = :id"), {"id": row})
    assert kept == (0 if crossing - row > 2_000 else 1)


MISSING = 987_654_321


@pytest.mark.parametrize(
    "column, constraint",
    [
        ("g", "fk_issues_grid_id_places"),
        ("l", "fk_issues_leader_id_leaders"),
        ("u", "fk_issues_unit_id_units"),
        ("relapse", "fk_issues_relapse_of_id_issues"),
        ("duplicate", "fk_issues_duplicate_of_id_issues"),
    ],
)
def test_a_missing_parent_refuses_the_insert(db_session, world, column, constraint):
    good = one(db_session, world)
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        if column == "g":  # grid and primary place share the parameter: the grid named first
            one(db_session, world, p=MISSING)
        else:
            one(db_session, world, **{column: MISSING})
    orig = refused.value.orig
    assert orig.pgcode == "23503"
    assert orig.diag.constraint_name == constraint
    assert f"=({MISSING}) is not present" in str(orig)
    # The same rows with an existing parent are written (relapse and duplicate: `good`).
    one(db_session, world, relapse=good, duplicate=good)


def test_a_statement_with_several_bad_keys_names_the_first_check(db_session, world):
    """The order the replaced triggers fired in (by name): the references (grid, place,
    leader, unit) before the duplicate, before the relapse."""
    cases = [
        ({"l": MISSING, "relapse": MISSING}, "fk_issues_leader_id_leaders"),
        ({"u": MISSING, "duplicate": MISSING}, "fk_issues_unit_id_units"),
        ({"duplicate": MISSING, "relapse": MISSING}, "fk_issues_duplicate_of_id_issues"),
        ({"p": MISSING, "l": MISSING}, "fk_issues_grid_id_places"),
    ]
    for columns, constraint in cases:
        with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
            one(db_session, world, **columns)
        assert refused.value.orig.diag.constraint_name == constraint, columns


def test_a_multi_row_insert_with_one_bad_row_is_refused(db_session, world):
    good = one(db_session, world)
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        db_session.execute(
            text(
                "INSERT INTO issues (geom, category, source, reported_at, relapse_of_id)"
                " SELECT ST_SetSRID(ST_MakePoint(120.2, 33.7), 4326), '环境卫生', '自查',"
                " TIMESTAMPTZ '2015-06-02 10:00+08', CASE WHEN k = 7 THEN :bad ELSE :good END"
                " FROM generate_series(1, 10) k"
            ),
            {"bad": MISSING, "good": good},
        )
    assert refused.value.orig.diag.constraint_name == "fk_issues_relapse_of_id_issues"
    assert f"Key (relapse_of_id)=({MISSING})" in str(refused.value.orig)


def _replaced_triggers(session, enable: bool) -> None:
    """The nine triggers of 0052 instead of the merged one (enable) or back (not enable)."""
    spec = importlib.util.spec_from_file_location("m0053", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for trigger, function in module.REPLACED:
        if enable:
            session.execute(
                text(
                    f"CREATE TRIGGER {trigger} AFTER INSERT ON issues"
                    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
                    f" EXECUTE FUNCTION {function}"
                )
            )
        else:
            session.execute(text(f"DROP TRIGGER {trigger} ON issues"))
    session.execute(
        text(f"ALTER TABLE issues {'DISABLE' if enable else 'ENABLE'} TRIGGER issues_rows_inserted")
    )


TILES = {
    "issue_tile_counts": "level, cx, cy, status",
    "issue_tile_days": "level, cx, cy, day, status, category",
    "issue_tile_facets": "level, cx, cy, day, status, category, source, deadline_day",
    "issue_tile_holders": "level, cx, cy, status, unit_id, leader_id",
}


def _written(session, first_issue: int, cells_after: int, facts_after: int) -> dict:
    out = {
        table: session.execute(
            text(
                f"SELECT {key}, sum(n), round(sum(sx)::numeric, 7), round(sum(sy)::numeric, 7),"
                f" count(*) FROM {table} GROUP BY {key} ORDER BY {key}"
            )
        ).all()
        for table, key in TILES.items()
    }
    out["cells"] = session.execute(
        text(
            "SELECT cx, cy, first_issue - :first, first_reported FROM issue_cell_changes"
            " WHERE id > :after ORDER BY 1, 2, 3, 4"  # (a statement's cells in any order)
        ),
        {"first": first_issue, "after": cells_after},
    ).all()
    out["facts"] = facts_logged(session, facts_after)
    return out


def _workload(session, world) -> int:
    """Inserts of one and many rows; returns the first issue id."""
    first = one(session, world)
    many(session, world, n=250)
    one(session, world, lon=120.2, lat=33.7, at="2015-06-02 12:00+08")
    one(session, world, lon=119.9, lat=33.3, at="2015-06-05 12:00+08", u=None, l=None)
    many(session, world, n=40)
    one(session, world, relapse=first)
    return first


def test_the_replaced_triggers_write_the_same_rows(db_session, world):
    cells = last_id(db_session, "issue_cell_changes")
    facts = last_id(db_session, "issue_fact_changes")
    with db_session.begin_nested() as merged:
        first = _workload(db_session, world)
        new = _written(db_session, first, cells, facts)
        merged.rollback()
    _replaced_triggers(db_session, enable=True)
    first = _workload(db_session, world)
    old = _written(db_session, first, cells, facts)
    _replaced_triggers(db_session, enable=False)
    assert new.keys() == old.keys()
    for part in new:
        assert new[part] == old[part], part
    assert len(new["cells"]) > 6 and len(new["facts"]) == 6
