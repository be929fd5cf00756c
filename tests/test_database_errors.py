"""Database trouble a client can cause or meet, answered as 503 with a Chinese message:
- a web request's SQL is bounded (STATEMENT_TIMEOUT_MS): a statement stuck behind a lock or
  running away is cancelled and the worker and its pooled connection are free again (the CLI,
  imports and exports are not limited);
- a write that loses a deadlock or a serialization conflict is rolled back whole and the client
  is told to retry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from psycopg2.errors import QueryCanceled
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from geoservice import create_app
from geoservice.accounts.auth import public
from geoservice.db import database, get_session, statement_budget, unlimited_statements


@pytest.fixture
def bounded_app(engine: Engine, database_url: str) -> Iterator[Flask]:
    """An app on its own connections (not the test's transaction), with a 300 ms limit."""
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            "SECRET_KEY": "test-key",
            "STATEMENT_TIMEOUT_MS": 300,
        }
    )
    yield app
    database(app).engine.dispose()


def test_a_statement_stuck_behind_a_lock_answers_503_and_the_worker_recovers(
    bounded_app: Flask, engine: Engine
):
    client = bounded_app.test_client()
    bogus = {"Authorization": "Bearer gs_not-a-real-token"}
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE"))
        response = client.get("/api/collections", headers=bogus)
        assert response.status_code == 503
        assert "查询超时" in response.get_json()["error"]
        assert "缩小查询范围" in response.get_json()["detail"]
        assert response.headers["Retry-After"] == "30"
        blocker.rollback()
    # The same app, the same pool: the next request runs normally (the token is unknown).
    again = client.get("/api/collections", headers=bogus)
    assert again.status_code == 401
    assert "令牌" in again.get_json()["error"]


def test_a_browser_gets_the_timeout_as_a_chinese_page(bounded_app: Flask, engine: Engine):
    client = bounded_app.test_client()
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE"))
        response = client.get(
            "/map", headers={"Authorization": "Bearer gs_x", "Accept": "text/html"}
        )
        blocker.rollback()
    assert response.status_code == 503
    assert "查询超时" in response.get_data(as_text=True)


# A GET whose view runs in a transaction (the catalogue's is @autocommit_read: no SET LOCAL).
TRANSACTIONAL_GET = "/api/attribution"


def test_the_limit_holds_for_requests_only_and_is_not_left_on_pooled_connections(
    bounded_app: Flask,
):
    with bounded_app.test_request_context(TRANSACTIONAL_GET):
        session = get_session()
        assert session.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        session.commit()  # a new transaction of the same request is limited too
        assert session.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        unlimited_statements(session)  # imports lift it for their transaction
        assert session.execute(text("SHOW statement_timeout")).scalar() == "0"
        session.rollback()
    with bounded_app.app_context():  # the CLI: no request, no limit
        session = get_session()
        assert session.execute(text("SHOW statement_timeout")).scalar() == "0"
    with database(bounded_app).engine.connect() as pooled:
        assert pooled.execute(text("SHOW statement_timeout")).scalar() == "0"


def test_a_long_statement_within_the_limit_is_not_cancelled(bounded_app: Flask):
    with bounded_app.test_request_context(TRANSACTIONAL_GET):
        session = get_session()
        assert session.execute(text("SELECT 1 FROM pg_sleep(0.1)")).scalar() == 1
        session.rollback()


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])  # deadlock, serialization failure
def test_a_write_conflict_is_503_retry_and_nothing_is_kept(
    engine: Engine, database_url: str, sqlstate: str
):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "k"})

    @app.get("/api/conflict-probe")
    @public  # a probe for this test only; no account needed
    def conflict_probe():
        session = get_session()
        session.execute(text("CREATE TEMP TABLE probe_kept (x int)"))
        session.execute(
            text(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{sqlstate}'; END $$")
        )
        session.commit()
        return {}

    try:
        response = app.test_client().get("/api/conflict-probe")
        assert response.status_code == 503
        assert response.get_json()["error"] == "数据正被他人同时修改，本次操作未保存"
        assert response.headers["Retry-After"] == "1"
        with database(app).engine.connect() as conn:  # the same pool: the write was undone
            assert conn.execute(text("SELECT to_regclass('pg_temp.probe_kept')")).scalar() is None
    finally:
        database(app).engine.dispose()


def test_a_statement_budget_cancels_its_block_only_and_restores_the_limit(bounded_app: Flask):
    with bounded_app.test_request_context("/"):
        session = get_session()
        with pytest.raises(OperationalError) as cancelled, statement_budget(session, 50):
            session.execute(text("SELECT pg_sleep(0.2)"))
        assert isinstance(cancelled.value.orig, QueryCanceled)
        # The transaction goes on, under the request's own limit.
        assert session.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        with statement_budget(session, 1000):
            assert session.execute(text("SHOW statement_timeout")).scalar() == "1s"
        assert session.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        session.rollback()


def test_a_value_the_database_refuses_is_a_400_worded_for_a_read_or_a_write(
    engine: Engine, database_url: str
):
    """SQLSTATE class 22 (a value out of a column's range) that no check caught: 400 with
    PostgreSQL's words as detail; a write says nothing was saved, a read does not."""
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "k"})

    @app.route("/api/value-probe", methods=["GET", "POST"])
    @public  # a probe for this test only; no account needed
    def value_probe():
        get_session().execute(text("SELECT CAST('99999999999999999999' AS bigint)"))
        return {}

    value_probe.token_only = True  # no CSRF token for the probe's POST (as Open311's views)
    try:
        client = app.test_client()
        read = client.get("/api/value-probe")
        assert read.status_code == 400 and "out of range" in read.get_json()["detail"]
        assert "未保存" not in read.get_json()["error"]
        write = client.post("/api/value-probe")
        assert write.status_code == 400 and "未保存" in write.get_json()["error"]
    finally:
        database(app).engine.dispose()
