"""Engine, one session per request, the declarative Base and small PostGIS helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from geoservice.config import normalise_database_url

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    """The app's engine and session factory (one per app, in app.extensions)."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.engine: Engine = create_engine(
            normalise_database_url(url), pool_pre_ping=True, **engine_options
        )
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessionmaker()


def init_app(app: Flask) -> None:
    url = app.config.get("DATABASE_URL")
    if not url:
        raise RuntimeError(
            "DATABASE_URL is not set (the run command sets it for the local cluster)"
        )
    app.extensions["geoservice.db"] = Database(url)
    app.teardown_appcontext(_close_session)


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["geoservice.db"]


def get_session() -> Session:
    """The request's session; uncommitted work is rolled back when the request ends."""
    if "db_session" not in g:
        g.db_session = database().session()
        if has_request_context():
            # Read by services that record where a write came from (geoservice.accounts.audit).
            g.db_session.info["client_ip"] = request.remote_addr
            timeout_ms = int(current_app.config.get("STATEMENT_TIMEOUT_MS") or 0)
            if timeout_ms > 0:
                limit_statements(g.db_session, timeout_ms)
    return g.db_session


def limit_statements(session: Session, timeout_ms: int) -> None:
    """Every transaction of `session` cancels a statement that runs longer than `timeout_ms`
    (`SET LOCAL`, so the pooled connection forgets it when the transaction ends)."""

    def _set_timeout(_session: Session, _transaction: Any, connection: Connection) -> None:
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_ms)}")

    event.listen(session, "after_begin", _set_timeout)


@contextmanager
def statement_budget(session: Session, timeout_ms: int) -> Iterator[None]:
    """Runs the block in a savepoint whose statements are cancelled after `timeout_ms` (raising
    OperationalError/QueryCanceled, with the savepoint rolled back and the transaction usable);
    the request's own limit applies again afterwards."""
    previous = session.execute(text("SHOW statement_timeout")).scalar_one()
    with session.begin_nested():
        session.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        yield
        session.execute(
            text("SELECT set_config('statement_timeout', :previous, true)"),
            {"previous": previous},
        )


def statement_timeout(session: Session, timeout_ms: int) -> None:
    """Sets the statement timeout for the rest of the current transaction (0: none)."""
    session.execute(text(f"SET LOCAL statement_timeout = {max(0, int(timeout_ms))}"))


def unlimited_statements(session: Session) -> None:
    """Lifts the request's statement timeout for the rest of the current transaction (long
    imports)."""
    session.execute(text("SET LOCAL statement_timeout = 0"))


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def postgis_versions(session: Session) -> dict[str, str]:
    row = session.execute(
        text("SELECT version(), postgis_lib_version(), postgis_full_version()")
    ).one()
    return {"postgresql": row[0], "postgis": row[1], "postgis_full": row[2]}
