"""Each worker process keeps one database connection per request thread (plus the token
stamp's): with fewer, every request past the pool opens a new PostgreSQL backend and closes it
after, whose cold catalogue caches make its first statements plan for tens of milliseconds."""

from __future__ import annotations

import threading

from sqlalchemy import text

from geoservice import create_app
from geoservice.config import config_from_env
from geoservice.db import database


def test_the_pool_follows_the_threads_unless_set():
    assert config_from_env({"THREADS": "8"})["DATABASE_POOL_SIZE"] == 9
    assert config_from_env({"THREADS": "2"})["DATABASE_POOL_SIZE"] == 5
    assert config_from_env({"THREADS": "8", "DATABASE_POOL_SIZE": "4"})["DATABASE_POOL_SIZE"] == 4
    assert "DATABASE_POOL_SIZE" not in config_from_env({})


def test_eight_threads_reuse_eight_backends(database_url):
    """Eight threads asking twice each, with the pool THREADS + 1 sets: the second round runs
    on the backends of the first (the same server pids), none is opened for one request."""
    app = create_app(
        {"DATABASE_URL": database_url, "SECRET_KEY": "k", **config_from_env({"THREADS": "8"})}
    )
    engine = database(app).engine
    assert engine.pool.size() == 9
    barrier = threading.Barrier(8)
    pids: list[list[int]] = [[], []]

    def ask(round_: int) -> None:
        with engine.connect() as conn:
            pids[round_].append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            barrier.wait(timeout=30)  # all eight connections out at once

    try:
        for round_ in (0, 1):
            threads = [threading.Thread(target=ask, args=(round_,)) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert len(set(pids[0])) == 8 and set(pids[1]) == set(pids[0])
    finally:
        engine.dispose()
