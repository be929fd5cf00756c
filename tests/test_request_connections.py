"""What a request's connection costs and holds (issue 19, geoservice/db.py): views marked
@autocommit_read read without a transaction (no BEGIN/ROLLBACK round trips) and cannot write;
every other request keeps its transaction; request connections run without JIT.

The app here uses connections of its own (not the suite's shared transaction), as a server
does; nothing is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine

from geoservice import create_app
from geoservice.db import autocommit_connection, database, get_session


@pytest.fixture
def own_app(engine: Engine, database_url: str) -> Iterator[Flask]:
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "k"})
    yield app
    database(app).engine.dispose()


NOW_TWICE = "SELECT now()"


def _two_nows(session) -> tuple:
    first = session.execute(text(NOW_TWICE)).scalar()
    session.execute(text("SELECT pg_sleep(0.02)"))
    return first, session.execute(text(NOW_TWICE)).scalar()


def test_an_autocommit_read_runs_each_statement_on_its_own(own_app: Flask):
    # The catalogue, the items pages and one issue are marked @autocommit_read.
    for path in ("/api/collections", "/api/collections/issues/items", "/api/issues/1"):
        with own_app.test_request_context(path):
            session = get_session()
            assert session.info.get("autocommit") is True
            first, second = _two_nows(session)
            assert second > first  # each statement its own transaction: now() moves
            session.close()


def test_other_requests_keep_their_transaction(own_app: Flask):
    for method, path in (("GET", "/api/attribution"), ("POST", "/api/collections/issues/items")):
        with own_app.test_request_context(path, method=method):
            session = get_session()
            assert not session.info.get("autocommit")
            first, second = _two_nows(session)
            assert second == first  # one transaction: now() is its start
            session.rollback()


def test_an_autocommit_read_cannot_write(own_app: Flask):
    with own_app.test_request_context("/api/collections"):
        session = get_session()
        with pytest.raises(RuntimeError, match="autocommit_read"):
            session.execute(text("DELETE FROM rate_counters WHERE key = 'never'"))
        session.close()


def test_a_local_setting_in_the_same_query_string_holds_for_that_statement_only(
    own_app: Flask,
):
    """What the items page relies on: `SELECT set_config(…, true); SELECT …` in one string is
    one implicit transaction, so the setting applies to the page and to nothing after it."""
    with own_app.test_request_context("/api/collections/issues/items"):
        session = get_session()
        default = session.execute(text("SHOW TimeZone")).scalar()
        assert default != "Pacific/Chatham"
        together = session.execute(
            text(
                "SELECT set_config('TimeZone', 'Pacific/Chatham', true);"
                " SELECT current_setting('TimeZone')"
            )
        ).scalar()
        assert together == "Pacific/Chatham"
        assert session.execute(text("SHOW TimeZone")).scalar() == default
        session.close()


def test_request_connections_run_without_jit_and_the_cli_keeps_the_servers_setting(
    own_app: Flask, engine: Engine
):
    with engine.connect() as plain:
        server = plain.execute(text("SHOW jit")).scalar()
    with own_app.test_request_context("/api/attribution"):
        session = get_session()
        assert session.execute(text("SHOW jit")).scalar() == "off"
        session.rollback()
    database(own_app).engine.dispose()  # connections are set when opened
    with own_app.app_context():
        session = get_session()
        assert session.execute(text("SHOW jit")).scalar() == server
        session.rollback()


def test_only_a_tuned_pool_lends_autocommit_connections(own_app: Flask, engine: Engine):
    """A connection switched to autocommit goes back to transactions when it returns to a
    pool set up by tune_pool; any other pool would lend it on in autocommit."""
    with engine.connect() as plain, pytest.raises(RuntimeError, match="tune_pool"):
        autocommit_connection(plain)
    tuned = database(own_app).engine
    with autocommit_connection(tuned.connect()) as conn:
        first = conn.execute(text("SELECT now()")).scalar()
        conn.execute(text("SELECT pg_sleep(0.02)"))
        assert conn.execute(text("SELECT now()")).scalar() > first
    with tuned.connect() as conn:  # the same pooled connection, back in transactions
        assert conn.connection.dbapi_connection.autocommit is False


def test_jit_off_sends_nothing_on_a_request_connection_and_a_set_on_another(
    own_app: Flask, engine: Engine
):
    from sqlalchemy import event

    from geoservice.db import jit_off

    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        sent.append(statement)

    tuned = database(own_app).engine
    event.listen(tuned, "before_cursor_execute", record)
    try:
        with own_app.test_request_context("/api/collections/issues/tiles/14/1/1.pbf"):
            session = get_session()
            session.connection()
            sent.clear()
            jit_off(session)
            assert sent == []
            assert session.execute(text("SHOW jit")).scalar() == "off"
            session.rollback()
        tuned.dispose()
        with own_app.app_context():  # a connection opened outside a request: the server's
            session = get_session()
            session.execute(text("SET LOCAL jit = on"))
            sent.clear()
            jit_off(session)
            assert sent == ["SET LOCAL jit = off"]
            assert session.execute(text("SHOW jit")).scalar() == "off"
            session.rollback()
    finally:
        event.remove(tuned, "before_cursor_execute", record)
