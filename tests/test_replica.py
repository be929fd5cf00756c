"""Read-only requests go to a streaming replica (DATABASE_REPLICA_URL), on real clusters: a
primary and a hot standby of its own (tests/replica_cluster.py), never the shared one.

Reads by an account go to the replica, except for a while after that account wrote (it reads
its own writes on the primary); writes always go to the primary; a replica down or lagging
is skipped."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, jsonify
from sqlalchemy import create_engine, text

from geoservice import create_app, migrate
from geoservice.accounts.auth import create_user, issue_token
from geoservice.db import database, get_session
from tests.replica_cluster import ClusterPair, free_port, pg_bindir


@pytest.fixture(scope="module")
def pair() -> Iterator[ClusterPair]:
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL with PostGIS installed to start a primary and a standby")
    root = Path(tempfile.mkdtemp(prefix="gs-replica-"))
    cluster = ClusterPair(root=root, bindir=bindir, port=free_port())
    try:
        cluster.start()
        engine = create_engine(cluster.url())
        migrate.upgrade(engine)
        engine.dispose()
        cluster.start_standby()
    except (OSError, RuntimeError) as exc:
        cluster.remove()
        pytest.skip(f"cannot start a primary and a hot standby here: {exc}")
    yield cluster
    cluster.remove()


@pytest.fixture(scope="module")
def app(pair: ClusterPair) -> Flask:
    app = create_app(
        {
            "DATABASE_URL": pair.url(),
            "DATABASE_REPLICA_URL": pair.url(standby=True),
            "TESTING": True,
            "SECRET_KEY": "test-key",
            "REPLICA_READ_AFTER_WRITE_SECONDS": 60,
            "REPLICA_MAX_LAG_SECONDS": 0.5,
            "REPLICA_CHECK_SECONDS": 0,
        }
    )

    # What a request's session reads from, and a write (any view that changes rows).
    @app.get("/test-replica/where")
    def where():
        session = get_session()
        row = session.execute(
            text("SELECT pg_is_in_recovery(), (SELECT display_name FROM users WHERE id = 1)")
        ).one()
        return jsonify(replica=row[0], first_user=row[1])

    @app.post("/test-replica/rename")
    def rename():
        session = get_session()
        session.execute(text("UPDATE users SET display_name = :n WHERE id = 1"), {"n": "改名"})
        session.commit()
        return jsonify(ok=True)

    return app


@pytest.fixture(scope="module")
def tokens(app: Flask, pair: ClusterPair) -> dict[str, str]:
    with app.app_context():
        session = database(app).session()
        writer = create_user(session, "writer", "admin")
        reader = create_user(session, "reader", "admin")
        session.flush()
        out = {"writer": issue_token(session, writer), "reader": issue_token(session, reader)}
        session.commit()
        session.close()
    pair.wait_replayed()
    return out


def get(client, token: str) -> dict:
    response = client.get("/test-replica/where", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_reads_go_to_the_replica(app, tokens):
    client = app.test_client()
    assert get(client, tokens["reader"])["replica"] is True
    head = client.head(
        "/test-replica/where", headers={"Authorization": f"Bearer {tokens['reader']}"}
    )
    assert head.status_code == 200


def test_the_writer_reads_its_own_write_and_others_read_the_replica(app, pair, tokens):
    client = app.test_client()
    # Replay stopped: whatever the primary now writes is not on the replica yet.
    with create_engine(pair.url(standby=True)).connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
    try:
        response = client.post(
            "/test-replica/rename", headers={"Authorization": f"Bearer {tokens['writer']}"}
        )
        assert response.status_code == 200
        # The writer reads the primary, and sees its write …
        seen = get(client, tokens["writer"])
        assert seen == {"replica": False, "first_user": "改名"}
        # … another account still reads the replica (within the lag limit, just after).
        database(app).replica.max_lag_s = 60
        other = get(client, tokens["reader"])
        assert other["replica"] is True and other["first_user"] != "改名"
    finally:
        database(app).replica.max_lag_s = 0.5
        with create_engine(pair.url(standby=True)).connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
    pair.wait_replayed()
    assert get(client, tokens["reader"]) == {"replica": True, "first_user": "改名"}


def test_a_lagging_replica_is_skipped(app, pair, tokens):
    client = app.test_client()
    with create_engine(pair.url(standby=True)).connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
    try:
        with create_engine(pair.url()).begin() as conn:
            conn.execute(text("UPDATE users SET display_name = 'lag' WHERE id = 2"))
        time.sleep(1.0)  # more than REPLICA_MAX_LAG_SECONDS behind now
        assert get(client, tokens["reader"])["replica"] is False
    finally:
        with create_engine(pair.url(standby=True)).connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
    pair.wait_replayed()
    assert get(client, tokens["reader"])["replica"] is True


def test_a_read_request_that_writes_moves_to_the_primary(app, tokens):
    with app.test_request_context(headers={"Authorization": f"Bearer {tokens['reader']}"}):
        session = get_session()
        assert session.execute(text("SELECT pg_is_in_recovery()")).scalar() is True
        session.execute(text("SELECT nextval('issues_id_seq')"))
        assert session.execute(text("SELECT pg_is_in_recovery()")).scalar() is False


def test_writes_and_reads_fall_back_to_the_primary_when_the_replica_is_down(app, pair, tokens):
    pair.stop("standby")
    client = app.test_client()
    assert get(client, tokens["reader"])["replica"] is False


def test_statements_that_need_the_primary_are_recognised():
    from sqlalchemy import column, select, table, update

    from geoservice.db import writes

    issues = table("issues", column("id"))
    assert writes(update(issues).values(id=1))
    assert writes(select(issues).with_for_update())
    assert not writes(select(issues))
    for sql in (
        "UPDATE issues i SET status = 'closed'",
        "WITH gone AS (DELETE FROM photos RETURNING id) SELECT count(*) FROM gone",
        "INSERT INTO rate_counters VALUES (1) ON CONFLICT (key) DO UPDATE SET count = 2",
        "SELECT id FROM issues WHERE id = 1 FOR NO KEY UPDATE",
        "SELECT nextval('issues_id_seq')",
        "SELECT pg_advisory_xact_lock(7)",
    ):
        assert writes(text(sql)), sql
    for sql in ("SELECT count(*) FROM issues", "SELECT pg_is_in_recovery()"):
        assert not writes(text(sql)), sql
