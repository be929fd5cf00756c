"""Tests run against a real PostGIS database (TEST_DATABASE_URL, set by scripts/test).

The schema is built once per session by the migrations. Each test runs inside a transaction
that is rolled back at the end (SQLAlchemy's `join_transaction_mode="create_savepoint"`), so
tests never see each other's data.

Tests never depend on the calendar date: fixture dates derive from "now", and the suite can be
run with the clock moved (TEST_CLOCK_SHIFT=+400d or -30d, see tests/clock.py): Python's clock
and the test database's `now()` move together, while PostgreSQL's own timers stay honest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from geoservice import create_app, migrate
from geoservice.config import normalise_database_url
from geoservice.db import database
from tests import clock


def pytest_configure(config: pytest.Config) -> None:
    clock.start_shift_from_environment()


def pytest_report_header(config: pytest.Config) -> str:
    return clock.describe()


def _test_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.exit("TEST_DATABASE_URL is not set: run the suite with ./scripts/test", returncode=2)
    return normalise_database_url(url)


@pytest.fixture(scope="session")
def database_url() -> str:
    return _test_url()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        clock.shift_database(conn)
    engine.dispose()  # new connections pick up the database's clock settings
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            "SECRET_KEY": "test-key",
            # Not <project>/uploads: what a local run of the service or a bench stored there
            # (the demo's photos among it) would answer the tests' photo requests.
            "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
            "MAP_SCREEN_CACHE_SECONDS": 0,  # tests change the data under the same database
            "HOME_CACHE_SECONDS": 0,
        }
    )


@contextmanager
def bound_to(app: Flask, connection: Connection) -> Iterator[Session]:
    """Binds the app's sessions to `connection`; everything is undone on exit."""
    db = database(app)
    savepoint = connection.begin_nested()
    db.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    session = db.session()
    try:
        yield session
    finally:
        session.close()
        db.sessionmaker.configure(bind=db.engine, join_transaction_mode="conditional_savepoint")
        if savepoint.is_active:
            savepoint.rollback()


@pytest.fixture
def db_session(app: Flask, engine: Engine) -> Iterator[Session]:
    """A session on an empty database, rolled back after the test."""
    with engine.connect() as connection:
        outer = connection.begin()
        with bound_to(app, connection) as session:
            yield session
        outer.rollback()


@pytest.fixture
def client(app: Flask, db_session: Session):
    return app.test_client()


@pytest.fixture(scope="module")
def demo_connection(app: Flask, engine: Engine) -> Iterator[SimpleNamespace]:
    """A connection holding a small demo county, loaded once per module, rolled back after.

    Yields `.connection`, `.counts` (what was loaded) and `.county` (the generated county,
    with its planted survey defects: one grid withheld, one widened)."""
    from geoservice.demo import generate_county
    from geoservice.demo.seed import load_demo
    from geoservice.registry import layers

    county = generate_county(seed=7, scale=0.3, today=clock.local_today())
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection)
        with app.app_context():
            counts = load_demo(session, layers(app), county)
        session.flush()
        session.close()
        yield SimpleNamespace(connection=connection, counts=counts, county=county)
        outer.rollback()


@pytest.fixture
def demo_session(app: Flask, demo_connection) -> Iterator[Session]:
    with bound_to(app, demo_connection.connection) as session:
        yield session


# --- accounts and a two-street world for access tests (tests/world.py) ---------------------


@pytest.fixture(scope="module")
def world_connection(app: Flask, engine: Engine) -> Iterator[tuple[Connection, dict]]:
    """A connection holding the two-street world, built once per module, rolled back after."""
    from geoservice.registry import layers
    from tests.world import build_world

    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection)
        with app.app_context():
            world = build_world(session, layers(app))
        session.flush()
        session.close()
        yield connection, world
        outer.rollback()


@pytest.fixture
def world(app: Flask, world_connection) -> Iterator[dict]:
    """The two-street world (see build_world); `world["session"]` is this test's session."""
    connection, data = world_connection
    with bound_to(app, connection) as session:
        yield {**data, "session": session}


@pytest.fixture
def world_client(app: Flask, world):
    return app.test_client()
