"""Throw-away databases next to the test database, for tests that need their own (a live
server, migrations from empty, a second process)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine, make_url


def create_scratch_database(engine: Engine, prefix: str) -> tuple[str, URL]:
    """Creates an empty database `scratch_<prefix>_<random>` in the test database's cluster;
    returns its name and URL. Skips the test without the CREATEDB right (an external test
    database)."""
    name = f"scratch_{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with _admin(engine).connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.skip(f"cannot create a scratch database: {exc}")
    return name, make_url(engine.url).set(database=name)


def drop_scratch_database(engine: Engine, name: str) -> None:
    with _admin(engine).connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _admin(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")
