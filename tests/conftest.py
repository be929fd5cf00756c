"""Tests run against a real PostGIS database (TEST_DATABASE_URL, set by scripts/test).

The schema is built once per session by the migrations. Each test runs inside a transaction
that is rolled back at the end (SQLAlchemy's `join_transaction_mode="create_savepoint"`), so
tests never see each other's data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from geoservice import create_app, migrate
from geoservice.config import normalise_database_url
from geoservice.db import database


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
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(engine: Engine, database_url: str) -> Flask:
    return create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "test-key"})


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
        db.sessionmaker.configure(bind=db.engine, join_transaction_mode="conservative_savepoint")
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
def demo_connection(app: Flask, engine: Engine) -> Iterator[tuple[Connection, dict]]:
    """A connection holding a small demo county, loaded once per module, rolled back after."""
    from datetime import date

    from geoservice.demo import generate_county
    from geoservice.registry import layers
    from geoservice.seed import load_demo

    county = generate_county(seed=7, scale=0.3, today=date(2026, 11, 20))
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection)
        with app.app_context():
            counts = load_demo(session, layers(app), county)
        session.flush()
        session.close()
        yield connection, counts
        outer.rollback()


@pytest.fixture
def demo_session(app: Flask, demo_connection) -> Iterator[Session]:
    connection, _counts = demo_connection
    with bound_to(app, connection) as session:
        yield session


# --- accounts and a two-street world for access tests --------------------------------------

PASSWORD = "Secret-pass-1"


def box(x0: float, y0: float, x1: float, y1: float):
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon
    from shapely.geometry import box as shapely_box

    return from_shape(MultiPolygon([shapely_box(x0, y0, x1, y1)]), srid=4326)


def build_world(session: Session, registry) -> dict:
    """A county of two streets, S1 (west) and S2 (east), each one community with one grid.

    - road R1 lies in S1; road R12 crosses from S1 into S2;
    - leaders: L1 (S1 street secretary: grid G1 and the crossing road R12), L3 (a community
      leader under L1: road R1), L2 (S2: grid G2);
    - issues: I1 in S1 on R1 (leader L3), I2 and I3 in S2 (leader L2, I3 reported by the
      inspector), I4 in S2 on R12 (leader L1);
    - accounts (password PASSWORD) bound to S1 unless said otherwise: admin (unbound),
      planner, leader (L1), inspector, viewer, integration (token only, scoped), plus
      viewer_all (unbound), leader_only (L1, no area) and leader2 (L2, S2).

    Returns ids and clear API tokens by name: world["issues"]["I1"], world["tokens"]["viewer"] …
    """
    from datetime import UTC, datetime, timedelta

    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiLineString, Point

    from geoservice.accounts import create_user, issue_token
    from geoservice.models import AdminArea, Assignment, Issue, Leader

    def area(level, code, name, geom, parent=None):
        row = AdminArea(level=level, code=code, name=name, geom=geom, parent_id=parent)
        session.add(row)
        session.flush()
        return row.id

    county = area("county", "320999", "演示县", box(120.0, 33.0, 120.2, 33.1))
    s1 = area("street", "320999001", "东城街道", box(120.0, 33.0, 120.1, 33.1), county)
    s2 = area("street", "320999002", "西城街道", box(120.1, 33.0, 120.2, 33.1), county)
    c1 = area("community", "320999001001", "东一社区", box(120.0, 33.0, 120.1, 33.1), s1)
    c2 = area("community", "320999002001", "西一社区", box(120.1, 33.0, 120.2, 33.1), s2)

    grid, road = registry.get("grid").model, registry.get("road").model
    places = {
        "G1": grid(
            code="320999001001001",
            name="东一网格",
            geom=box(120.0, 33.0, 120.1, 33.1),
            community_id=c1,
        ),
        "G2": grid(
            code="320999002001001",
            name="西一网格",
            geom=box(120.1, 33.0, 120.2, 33.1),
            community_id=c2,
        ),
        "R1": road(
            code="R1",
            name="人民路",
            grade="主干道",
            geom=from_shape(MultiLineString([[(120.02, 33.05), (120.08, 33.05)]]), srid=4326),
        ),
        "R12": road(
            code="R12",
            name="建设路",
            grade="次干道",
            geom=from_shape(MultiLineString([[(120.05, 33.02), (120.15, 33.02)]]), srid=4326),
        ),
    }
    session.add_all(places.values())
    session.flush()
    leaders = {
        key: Leader(name=name, title=title, level=level)
        for key, name, title, level in (
            ("L1", "张明", "东城街道党工委书记", "镇街"),
            ("L2", "李强", "西城街道党工委书记", "镇街"),
            ("L3", "王芳", "东一社区主任", "村社区"),
        )
    }
    session.add_all(leaders.values())
    session.flush()
    since = datetime(2026, 1, 1, tzinfo=UTC)
    for leader, place in (("L1", "G1"), ("L1", "R12"), ("L3", "R1"), ("L2", "G2")):
        session.add(
            Assignment(
                leader_id=leaders[leader].id,
                place_id=places[place].id,
                role="包保责任人",
                valid_from=since,
            )
        )
    session.flush()

    names = (
        "admin",
        "planner",
        "leader",
        "inspector",
        "viewer",
        "integration",
        "viewer_all",
        "leader_only",
        "leader2",
    )
    binding = {
        "admin": ("admin", None, None),
        "planner": ("planner", "320999001", None),
        "leader": ("leader", "320999001", "L1"),
        "inspector": ("inspector", "320999001", None),
        "viewer": ("viewer", "320999001", None),
        "integration": ("integration", "320999001", None),
        "viewer_all": ("viewer", None, None),
        "leader_only": ("leader", None, "L1"),
        "leader2": ("leader", "320999002", "L2"),
    }
    users, tokens = {}, {}
    for name in names:
        role, area_code, leader = binding[name]
        user = create_user(
            session,
            name,
            role,
            None if role == "integration" else PASSWORD,
            area_code,
            leaders[leader].id if leader else None,
            check_strength=False,
        )
        users[name] = user.id
        scopes = ["layers.read", "issues.read", "issues.report"] if role == "integration" else None
        tokens[name] = issue_token(session, user, label="test", scopes=scopes)

    reported = datetime(2026, 11, 1, tzinfo=UTC)
    issue_rows = {
        "I1": (120.05, 33.05, "R1", "G1", "L3", None),
        "I2": (120.15, 33.05, "G2", "G2", "L2", None),
        "I3": (120.15, 33.06, "G2", "G2", "L2", "inspector"),
        "I4": (120.12, 33.02, "R12", "G2", "L1", None),
    }
    issues = {}
    for key, (x, y, place, grid_key, leader, reporter) in issue_rows.items():
        row = Issue(
            geom=from_shape(Point(x, y), srid=4326),
            category="环境卫生",
            source="自查",
            description=f"测试问题 {key}",
            status="dispatched",
            reported_at=reported,
            deadline=reported + timedelta(days=1),
            primary_place_id=places[place].id,
            grid_id=places[grid_key].id,
            leader_id=leaders[leader].id,
            reported_by_id=users[reporter] if reporter else None,
        )
        session.add(row)
        session.flush()
        issues[key] = row.id
    return {
        "areas": {"county": county, "S1": s1, "S2": s2, "C1": c1, "C2": c2},
        "places": {k: p.id for k, p in places.items()},
        "leaders": {k: v.id for k, v in leaders.items()},
        "issues": issues,
        "users": users,
        "tokens": tokens,
    }


@pytest.fixture(scope="module")
def world_connection(app: Flask, engine: Engine) -> Iterator[tuple[Connection, dict]]:
    """A connection holding the two-street world, built once per module, rolled back after."""
    from geoservice.registry import layers

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


def csrf_token_of(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    import re

    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD, **kwargs):
    """Posts the sign-in form (with its CSRF token); returns the response."""
    token = csrf_token_of(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        **kwargs,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
