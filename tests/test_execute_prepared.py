"""db.execute_prepared: a statement prepared once per connection answers what the same
statement executed directly answers, for each set of parameter types."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from geoservice.db import execute_prepared

SQL = """SELECT :n + 1 AS n, :x * 2 AS x, upper(:s) AS s,
       CAST(:at AS timestamptz) + interval '1 day' AS at, cardinality(:tags) AS tags,
       CAST(:n AS text) || '::' || :s AS joined"""


def ours(db_session) -> set[str]:
    return set(
        db_session.execute(
            text("SELECT name FROM pg_prepared_statements WHERE name LIKE 'geoservice\\_%'")
        ).scalars()
    )


def test_prepared_answers_as_executed_and_is_prepared_once(db_session):
    at = datetime(2015, 3, 1, 8, 30, tzinfo=UTC)
    before = ours(db_session)
    for n in (1, 41):
        params = {"n": n, "x": 1.25, "s": "网格", "at": at, "tags": ["a", "b", "c"]}
        prepared = execute_prepared(db_session, SQL, params).one()
        direct = db_session.execute(text(SQL), params).one()
        assert prepared == direct
        assert prepared._mapping["joined"] == f"{n}::网格"  # a cast is not a parameter
    added = ours(db_session) - before
    assert len(added) == 1  # the second call executed the statement prepared by the first


def test_other_parameter_types_are_another_statement(db_session):
    before = ours(db_session)
    assert execute_prepared(db_session, "SELECT :v * 2 AS v", {"v": 3}).scalar_one() == 6
    assert execute_prepared(db_session, "SELECT :v * 2 AS v", {"v": 1.5}).scalar_one() == 3.0
    assert len(ours(db_session) - before) == 2


def test_a_value_of_no_known_type_is_executed_directly(db_session):
    before = ours(db_session)
    row = execute_prepared(db_session, "SELECT :v IS NULL AS empty", {"v": None}).one()
    assert row.empty is True
    assert ours(db_session) == before


def test_explicit_types_win_over_the_values(db_session):
    value = execute_prepared(
        db_session, "SELECT pg_typeof(:v)::text AS t", {"v": 1}, {"v": "numeric"}
    ).scalar_one()
    assert value == "numeric"


def test_a_connection_that_lost_its_statements_prepares_them_again(app, engine):
    """After a DEALLOCATE ALL (or DISCARD ALL) by another user of the connection, the call
    that finds its statement gone fails with the database's error and the next one prepares
    it again, instead of every later call on that connection failing."""
    from sqlalchemy.orm import Session

    sql = "SELECT :v * 3 AS v"
    with engine.connect() as connection:
        session = Session(bind=connection)
        assert execute_prepared(session, sql, {"v": 2}).scalar_one() == 6
        session.commit()
        for name in ours(session):
            session.execute(text(f"DEALLOCATE {name}"))
        with pytest.raises(DBAPIError, match="does not exist"):
            execute_prepared(session, sql, {"v": 2})
        session.rollback()
        assert execute_prepared(session, sql, {"v": 4}).scalar_one() == 12
        session.rollback()
        session.close()
        connection.invalidate()  # a connection of the pool without its other statements


def test_a_statement_whose_result_type_changed_is_prepared_again(app, engine):
    """DDL changing a column the statement returns makes PostgreSQL refuse the cached plan
    ("cached plan must not change result type"): that call fails, the next one deallocates
    and prepares the statement again instead of failing on every later call."""
    from sqlalchemy.orm import Session

    with engine.connect() as connection:
        session = Session(bind=connection)
        session.execute(text("CREATE TEMP TABLE measured (v int)"))
        session.execute(text("INSERT INTO measured VALUES (7)"))
        sql = "SELECT v FROM measured WHERE :k > 0"
        assert execute_prepared(session, sql, {"k": 1}).scalar_one() == 7
        session.execute(text("ALTER TABLE measured ALTER COLUMN v TYPE text"))
        session.commit()
        with pytest.raises(DBAPIError, match="must not change result type"):
            execute_prepared(session, sql, {"k": 1})
        session.rollback()
        assert execute_prepared(session, sql, {"k": 1}).scalar_one() == "7"
        assert execute_prepared(session, sql, {"k": 2}).scalar_one() == "7"
        session.rollback()
        session.close()
        connection.invalidate()


def test_a_tuple_is_executed_as_a_row_not_prepared_as_an_array(db_session):
    before = ours(db_session)
    row = execute_prepared(db_session, "SELECT 2 IN :ids AS found", {"ids": (1, 2, 3)}).one()
    assert row.found is True
    assert ours(db_session) == before


def test_a_generic_statement_is_planned_once_and_leaves_the_settings_as_they_were(db_session):
    settings = (
        "SELECT current_setting('plan_cache_mode'),"
        " current_setting('max_parallel_workers_per_gather')"
    )
    db_session.execute(text("SET LOCAL max_parallel_workers_per_gather = 3"))
    before = db_session.execute(text(settings)).one()
    sql = "SELECT count(*) AS n FROM generate_series(1, :n) g WHERE g % :m = 0"
    answers = [
        execute_prepared(db_session, sql, {"n": n, "m": m}, generic=True).scalar_one()
        for n, m in ((10, 2), (30, 3), (7, 7), (100, 10), (12, 5), (9, 1))
    ]
    assert answers == [5, 10, 1, 10, 2, 9]
    (name,) = ours(db_session) & set(
        db_session.execute(
            text("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%% g %% $2 = 0%%'")
        ).scalars()
    )
    plans = db_session.execute(
        text("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = :n"),
        {"n": name},
    ).one()
    assert plans == (6, 0)  # never planned for its values (PostgreSQL's own choice: 5 custom)
    # The transaction's own settings are back (a later statement plans as it would have).
    assert db_session.execute(text(settings)).one() == ("auto", "3")
    assert before == ("auto", "3")
