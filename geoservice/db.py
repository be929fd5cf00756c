"""Engine, one session per request, the declarative Base and small PostGIS helpers.

With DATABASE_REPLICA_URL set (a streaming hot standby), GET and HEAD requests read from the
replica (docs/scaling.md):
- unless the caller's account wrote within REPLICA_READ_AFTER_WRITE_SECONDS (read your own
  writes): every commit of a writing request records the account in `recent_writes` on the
  primary (an unlogged table), and a GET by that account reads the primary meanwhile;
- unless the replica is down or replays more than REPLICA_MAX_LAG_SECONDS behind (checked at
  most every REPLICA_CHECK_SECONDS per process): then the primary serves everything;
- a statement of such a request that writes (an ORM flush, INSERT/UPDATE/DELETE, SELECT … FOR
  UPDATE, nextval…) goes to the primary, and so does the rest of the request.
Writes always go to the primary. Without DATABASE_REPLICA_URL nothing of this runs.

Pooled connections cost a request no extra round trip (issue 19: each one is a statement the
database parses and a wait): the request's statement timeout (STATEMENT_TIMEOUT_MS) is the
connection's own setting, given at connect (libpq `options`), and a connection is pinged only
when it sat unused in the pool for PING_IDLE_SECONDS (see `tune_pool`). Connections opened for
requests also turn JIT compilation off (`DATABASE_JIT`). Views marked `@autocommit_read` read
without a transaction: no `BEGIN` and `ROLLBACK` round trips (`get_session`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from flask import Flask, current_app, g, has_request_context, request, session
from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Select

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


log = logging.getLogger(__name__)

# Statements that must run on the primary (text SQL is matched by its words).
_WRITE_SQL = re.compile(
    r"\b(INSERT\s+INTO|UPDATE\s+(ONLY\s+)?\S+(\s+(AS\s+)?\w+)?\s+SET|DELETE\s+FROM|MERGE\s+INTO"
    r"|TRUNCATE|COPY\s+\S+\s+FROM"
    r"|CREATE\s|ALTER\s|DROP\s|LOCK\s+TABLE|REFRESH\s+MATERIALIZED"
    r"|FOR\s+(NO\s+KEY\s+)?UPDATE|FOR\s+(KEY\s+)?SHARE|nextval\s*\(|setval\s*\("
    r"|pg_advisory|pg_notify|NOTIFY\s)",
    re.IGNORECASE,
)


def writes(clause: Any) -> bool:
    """Does this statement need the primary?"""
    if isinstance(clause, UpdateBase):
        return True
    if isinstance(clause, Select):
        return clause._for_update_arg is not None
    if isinstance(clause, TextClause):
        return _WRITE_SQL.search(clause.text) is not None
    return False


class RoutingSession(Session):
    """A session that reads from `info["replica"]` (an Engine) until it first writes; from
    then on, and always without a replica, it uses its own bind (the primary). A session of
    an `@autocommit_read` view (`info["autocommit"]`) refuses to write at all."""

    def get_bind(self, mapper: Any = None, *, clause: Any = None, **kw: Any) -> Any:
        writing = self._flushing or writes(clause)
        if writing:
            if self.info.get("autocommit"):
                raise RuntimeError(
                    "a view marked @autocommit_read wrote: each statement would commit on its own"
                )
            self.info["wrote"] = True
        if self.info.get("replica") is not None and not self.info.get("pinned"):
            if not writing:
                return self.info["replica"]
            self.info["pinned"] = True
        return super().get_bind(mapper, clause=clause, **kw)


# A pooled connection unused for this long is pinged before it is handed out (a restarted or
# failed-over server, a firewall that dropped idle connections); busier ones are not: a
# connection lost in between fails its one request (503) and the pool is renewed.
PING_IDLE_SECONDS = 10.0
# Connections are replaced after this long (server-side memory, settings changed on the server).
RECYCLE_SECONDS = 1800


# Engines whose pool puts a lent autocommit connection back to transactions (tune_pool).
_TUNED: weakref.WeakSet[Engine] = weakref.WeakSet()


def wanted_jit() -> bool | None:
    """JIT for the connection being opened: None (the server's setting) outside a request,
    else DATABASE_JIT (default off). A request's statements are short; when the planner's
    estimate over the monthly partitions passes jit_above_cost, compiling costs tens of
    milliseconds that the statement never wins back (docs/performance.md)."""
    if has_request_context():
        return bool(current_app.config.get("DATABASE_JIT", False))
    return None


def jit_off(session: Session) -> None:
    """JIT off for the rest of the session's transaction: nothing to send when its connection
    was opened with it off (DATABASE_JIT, the default inside requests), else a `SET LOCAL`."""
    if session.connection().connection.info.get("jit") is not False:
        session.execute(text("SET LOCAL jit = off"))


def wanted_statement_timeout() -> int:
    """The statement timeout (ms, 0: none) of the work at hand: STATEMENT_TIMEOUT_MS inside a
    web or API request, none outside one (the CLI, workers, migrations)."""
    if has_request_context():
        return max(0, int(current_app.config.get("STATEMENT_TIMEOUT_MS") or 0))
    return 0


def is_tuned(engine: Engine) -> bool:
    """Whether `engine` was set up by `tune_pool` (its connections may be lent in autocommit:
    `autocommit_connection`, httpcache.SharedAnswers)."""
    return engine in _TUNED


def tune_pool(engine: Engine) -> Engine:
    """Makes the statement timeout a setting of each connection and pings only idle ones.

    - At connect, the timeout wanted at that moment (wanted_statement_timeout) is passed as a
      libpq option, so a web process's connections carry the request limit with no statement
      per request. A connection handed to work that wants another value (a CLI command in the
      same process as requests: the tests) is switched at checkout by one `SET` outside any
      transaction, and remembers it. `SET LOCAL` within a transaction (imports, exports,
      statement_budget) still overrides it for that transaction only.
    - A connection idle in the pool for more than PING_IDLE_SECONDS is pinged at checkout (the
      same round trip as the `SET` when one is due); a dead one is replaced (DisconnectionError
      makes the pool retry with a new connection).
    """

    _TUNED.add(engine)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        timeout = wanted_statement_timeout()
        options = f"{cparams.get('options') or ''} -c statement_timeout={timeout}"
        jit = wanted_jit()
        if jit is not None:
            options += f" -c jit={'on' if jit else 'off'}"
        cparams["options"] = options.strip()
        record.info["statement_timeout"] = timeout
        record.info["jit"] = jit

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()
        lent = dbapi_connection is not None and not dbapi_connection.closed
        if lent and dbapi_connection.autocommit:  # lent out by autocommit_connection
            dbapi_connection.autocommit = False

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        timeout = wanted_statement_timeout()
        idle_since = record.info.pop("idle_since", None)
        stale = idle_since is not None and time.monotonic() - idle_since > PING_IDLE_SECONDS
        switch = record.info.get("statement_timeout") != timeout
        if not (stale or switch):
            return
        try:
            dbapi_connection.autocommit = True  # no transaction left open by the ping or SET
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"SET statement_timeout = {timeout}" if switch else "SELECT 1")
            finally:
                cursor.close()
                dbapi_connection.autocommit = False
        except Exception as exc:  # closed by the server, network gone: a new connection
            record.info.pop("statement_timeout", None)
            raise DisconnectionError(f"pooled connection unusable: {exc}") from exc
        record.info["statement_timeout"] = timeout

    return engine


class Replica:
    """The replica engine and its health, checked at most every `check_s` seconds."""

    def __init__(self, url: str, max_lag_s: float, check_s: float) -> None:
        self.engine: Engine = tune_pool(
            create_engine(
                normalise_database_url(url),
                pool_recycle=RECYCLE_SECONDS,
                connect_args={"connect_timeout": 2},
            )
        )
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self._checked_at = float("-inf")
        self._ok = False
        self._lock = threading.Lock()

    def lag(self) -> float:
        """Seconds of replay behind the primary: 0 when all it received is replayed, else the
        age of the last transaction it replayed. A gap that closes within 50 ms counts as 0:
        an idle primary's non-transaction WAL (checkpoints, snapshots) would otherwise look
        like the whole idle time."""
        with self.engine.connect() as conn:
            received, replayed, age = conn.execute(
                text(
                    "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),"
                    " extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())"
                    " WHERE pg_is_in_recovery()"
                )
            ).one()
            if received is None or received == replayed:
                return 0.0
            time.sleep(0.05)
            caught_up = conn.execute(
                text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": received}
            ).scalar()
            return 0.0 if caught_up else float(age or 0.0)

    def usable(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at < self.check_s:
            return self._ok
        with self._lock:
            if now - self._checked_at < self.check_s:
                return self._ok
            try:
                lag = self.lag()
                ok = lag <= self.max_lag_s
                if not ok:
                    log.warning("replica %.1f s behind: reading from the primary", lag)
            except Exception as exc:  # down, refusing connections, timing out
                log.warning("replica unusable, reading from the primary: %s", exc)
                ok = False
            self._ok, self._checked_at = ok, time.monotonic()
            return ok

    def forget(self) -> None:
        """Check again on the next request (after a failure seen elsewhere, in tests)."""
        self._checked_at = float("-inf")


class Database:
    """The app's engine and session factory (one per app, in app.extensions), and the
    replica when one is configured."""

    def __init__(
        self,
        url: str,
        replica_url: str | None = None,
        read_after_write_s: float = 5.0,
        replica_max_lag_s: float = 5.0,
        replica_check_s: float = 1.0,
        **engine_options: Any,
    ) -> None:
        self.engine: Engine = tune_pool(
            create_engine(
                normalise_database_url(url), pool_recycle=RECYCLE_SECONDS, **engine_options
            )
        )
        self.sessionmaker = sessionmaker(
            bind=self.engine, class_=RoutingSession, expire_on_commit=False
        )
        self.replica = (
            Replica(replica_url, replica_max_lag_s, replica_check_s) if replica_url else None
        )
        self.read_after_write_s = read_after_write_s
        if self.replica is not None:
            event.listen(self.sessionmaker, "before_commit", _remember_writer)

    def session(self) -> Session:
        return self.sessionmaker()

    def wrote_recently(self, account: str) -> bool:
        with self.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM recent_writes WHERE account = :a"
                        " AND at > now() - make_interval(secs => :s))"
                    ),
                    {"a": account, "s": self.read_after_write_s},
                ).scalar()
            )


# PostgreSQL keeps time zone offsets within ±15:59, Python's reach ±23:59: an aware time with a
# larger offset (any client may send "…+17:25") goes to the database as the same instant in UTC.
_PG_MAX_OFFSET = timedelta(hours=15, minutes=59)
_adapt_timestamp = psycopg2.extensions.adapters[(datetime, psycopg2.extensions.ISQLQuote)]


def _adapt_datetime(value: datetime) -> Any:
    offset = value.utcoffset()
    if offset is not None and abs(offset) > _PG_MAX_OFFSET:
        # Year 1 or 9999 cannot move: left as is, the database refuses it (a 400).
        with contextlib.suppress(OverflowError):
            value = value.astimezone(UTC)
    return _adapt_timestamp(value)


psycopg2.extensions.register_adapter(datetime, _adapt_datetime)


def init_app(app: Flask) -> None:
    url = app.config.get("DATABASE_URL")
    if not url:
        raise RuntimeError(
            "DATABASE_URL is not set (the run command sets it for the local cluster)"
        )
    app.extensions["geoservice.db"] = Database(
        url,
        replica_url=app.config.get("DATABASE_REPLICA_URL"),
        read_after_write_s=float(app.config.get("REPLICA_READ_AFTER_WRITE_SECONDS", 5)),
        replica_max_lag_s=float(app.config.get("REPLICA_MAX_LAG_SECONDS", 5)),
        replica_check_s=float(app.config.get("REPLICA_CHECK_SECONDS", 1)),
        **pool_options(app.config.get("DATABASE_POOL_SIZE")),
    )
    app.teardown_appcontext(_close_session)


def pool_options(size: int | None) -> dict[str, Any]:
    """Engine options for DATABASE_POOL_SIZE (None: SQLAlchemy's 5)."""
    return {} if size is None else {"pool_size": max(1, int(size))}


READ_METHODS = ("GET", "HEAD")


def request_account() -> str | None:
    """Who is calling, known without the database: a hash of the Bearer token or the
    signed-in user's id (None: anonymous)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return "t:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()[:32]
    user_id = str(session.get("_user_id") or "").partition(":")[0]
    return f"u:{user_id}" if user_id else None


def _reads_from_replica(db: Database) -> bool:
    if db.replica is None or request.method not in READ_METHODS:
        return False
    account = request_account()
    if account is not None and db.wrote_recently(account):
        return False
    return db.replica.usable()


def _remember_writer(sess: Session) -> None:
    """Before a commit that may hold writes: this account reads the primary for a while."""
    if not has_request_context():
        return
    if request.method in READ_METHODS and not sess.info.get("wrote"):
        return
    account = request_account()
    if account is None:
        return
    sess.execute(
        text(
            "INSERT INTO recent_writes (account, at) VALUES (:a, now())"
            " ON CONFLICT (account) DO UPDATE SET at = EXCLUDED.at"
        ),
        {"a": account},
    )


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["geoservice.db"]


def driver_row(
    session: Session, sql: str, params: dict[str, Any], text_as_bytes: bool = False
) -> tuple | None:
    """The first row of `sql` (the driver's `%(name)s` style) on the session's connection, as
    the session would route it (a replica for reads), on a cursor of its own: without
    SQLAlchemy's execution context and result objects (~0.2 ms of Python for a one-row read,
    which every validated request sends first: issue 19). `text_as_bytes`: text columns as
    UTF-8 bytes, undecoded (page bodies). Errors are SQLAlchemy's DBAPIError, as for any
    statement (a statement timeout → 503 …); nothing is flushed first (callers with pending
    writes flush themselves)."""
    connection = session.connection()
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if text_as_bytes:
            psycopg2.extensions.register_type(psycopg2.extensions.BYTES, cursor)
        cursor.execute(sql, params)
        return cursor.fetchone()
    except psycopg2.Error as exc:
        raise DBAPIError.instance(sql, params, exc, psycopg2.Error) from exc
    finally:
        cursor.close()


# Named parameters of text SQL (`:name`; not the `::type` of a cast).
_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _parameter_type(value: Any) -> str | None:
    """PostgreSQL's type for a parameter of this Python value (None: not known)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "float8"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "timestamptz" if value.tzinfo is not None else "timestamp"
    if isinstance(value, list) and value:  # a tuple is sent as a row (for IN), not an array
        inner = {_parameter_type(v) for v in value}
        if len(inner) == 1 and None not in inner and "[]" not in next(iter(inner)):
            return f"{inner.pop()}[]"
    return None


@lru_cache(maxsize=256)
def _positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with $1, $2… for its `:name`s (in order of appearance), and those names."""
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED_PARAMETER.sub(positional, sql), tuple(names)


@lru_cache(maxsize=256)
def _prepare_text(body: str, signature: str) -> tuple[str, str]:
    """The statement's name (the same text with other parameter types is another statement)
    and its PREPARE."""
    name = "geoservice_" + hashlib.sha1(f"{signature}|{body}".encode()).hexdigest()[:20]
    return name, f"PREPARE {name} ({signature}) AS {body}"


# `generic=True`: the statement's plan is PostgreSQL's generic plan, made without parallel
# workers: set in the round trip of its EXECUTE, and inside a transaction put back after it to
# the values they had (kept meanwhile in settings of our own).
_GENERIC_SETTINGS = {
    "plan_cache_mode": "force_generic_plan",
    "max_parallel_workers_per_gather": "0",
}
GENERIC_HEAD = (
    "SELECT "
    + ", ".join(
        f"set_config('geoservice.saved_{name}', current_setting('{name}'), true),"
        f" set_config('{name}', '{value}', true)"
        for name, value in _GENERIC_SETTINGS.items()
    )
    + "; "
)
GENERIC_TAIL = "SELECT " + ", ".join(
    f"set_config('{name}', current_setting('geoservice.saved_{name}'), true)"
    for name in _GENERIC_SETTINGS
)


def execute_prepared(
    session: Session,
    sql: str,
    params: dict[str, Any],
    types: dict[str, str] | None = None,
    *,
    generic: bool = False,
) -> Any:
    """`session.execute(text(sql), params)` as a server-side prepared statement, prepared once
    per database connection (tracked in its pool record's `info`): for statements whose
    planning costs several times their execution (every monthly partition of `issues` and
    its indexes considered) — PostgreSQL plans the first executions for their values, then
    keeps a generic plan when it is no worse. Parameter types come from `types`, else from the
    values (int → bigint, float → float8, str → text, aware datetime → timestamptz, lists of
    those → arrays), so a context wanting another type needs a cast in `sql` or `types`
    (`make_interval(days => :n)`: {"n": "int"}); with a value of no known type (None, an
    empty list, a tuple) the statement is simply executed. For reads: the connection is the
    one the session would route a read to. The result is SQLAlchemy's, as for
    `session.execute`.

    `generic`: plan it once, for any values (no planning per execution at all), for a
    statement whose best plan does not depend on them; without parallel workers, which a plan
    blind to the values may otherwise choose for a few rows (a ~20 ms start)."""
    body, names = _positional(sql)
    kinds = []
    for n in names:
        kind = (types or {}).get(n) or _parameter_type(params[n])
        if kind is None:
            return session.execute(text(sql), params)
        kinds.append(kind)
    name, prepare = _prepare_text(body, ", ".join(kinds))
    connection = session.connection()
    prepared = connection.connection.info.setdefault(PREPARED_STATEMENTS, set())
    changed = connection.connection.info.setdefault(CHANGED_STATEMENTS, set())
    for attempt in (1, 2):
        if name not in prepared:
            known = session.execute(
                text("SELECT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = :name)"),
                {"name": name},
            ).scalar_one()
            if known and name in changed:
                session.execute(text(f"DEALLOCATE {name}"))
                known = False
            if not known:
                session.execute(text(prepare))
            changed.discard(name)
            prepared.add(name)
        try:
            result = session.execute(
                _execute_clause(name, names, generic), {n: params[n] for n in names}
            )
            if generic and not connection.connection.dbapi_connection.autocommit:
                rows = result.freeze()
                session.execute(text(GENERIC_TAIL))
                return rows()
            return result
        except DBAPIError as exc:
            if isinstance(exc.orig, psycopg2.errors.InvalidSqlStatementName):
                # The backend lost its prepared statements (DISCARD ALL, DEALLOCATE ALL by
                # another user of the connection).
                prepared.clear()
            elif isinstance(exc.orig, psycopg2.errors.FeatureNotSupported):
                # "cached plan must not change result type": DDL changed a column it reads.
                prepared.discard(name)
                changed.add(name)
            else:
                raise
            # Prepared again on the next call, or now when no transaction was aborted.
            if attempt == 2 or not connection.connection.dbapi_connection.autocommit:
                raise
    raise AssertionError("unreachable")


# The names of the statements prepared on a pooled connection (its record's `info`).
PREPARED_STATEMENTS = "geoservice_prepared"
# Those whose result type a DDL changed: deallocated and prepared again on their next use.
CHANGED_STATEMENTS = "geoservice_prepared_changed"


@lru_cache(maxsize=256)
def _execute_clause(name: str, names: tuple[str, ...], generic: bool = False) -> TextClause:
    execute = (
        f"EXECUTE {name} ({', '.join(f':{n}' for n in names)})" if names else f"EXECUTE {name}"
    )
    return text(GENERIC_HEAD + execute if generic else execute)


def autocommit_connection(connection: Any) -> Any:
    """Switches a pooled SQLAlchemy Connection (just checked out, nothing run yet) to
    autocommit for as long as it is out of the pool; returns it. Done on psycopg2's own
    attribute, which is client-side only: SQLAlchemy's `isolation_level="AUTOCOMMIT"` goes
    through psycopg2's set_isolation_level, which sends `SET default_transaction_isolation`
    on the way out and again on the way back (two hidden round trips). Likewise, a connection
    whose isolation level was ever set explicitly (SQLAlchemy does so when it resets one) is
    sent `SET default_transaction_isolation TO DEFAULT` when its autocommit ends: the level is
    put back to the default first (client-side; READ COMMITTED, the server's default)."""
    if connection.engine not in _TUNED:  # its pool would lend it on in autocommit
        raise RuntimeError("autocommit_connection needs an engine set up by tune_pool")
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection.isolation_level is not None:
        dbapi_connection.isolation_level = None
    dbapi_connection.autocommit = True
    return connection


def autocommit_read(view: Any) -> Any:
    """Marks a GET view that only reads, one statement at a time, as needing no transaction:
    its session sends no `BEGIN` and no `ROLLBACK` (two round trips of a four-trip items
    page). Under READ COMMITTED each statement of a transaction takes its own snapshot anyway,
    so the answers are the same; what such a view may not do is write (the session raises),
    use `SET LOCAL` as a statement of its own or savepoints. A transaction-local setting given
    in the same query string as the statement it is for (`SELECT set_config(…, true); SELECT
    …`, as the items page does) still holds: the string runs as one implicit transaction."""
    view.autocommit_read = True
    return view


def _autocommit_view() -> bool:
    if request.method not in READ_METHODS or request.endpoint is None:
        return False
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "autocommit_read", False))


def get_session() -> Session:
    """The request's session; uncommitted work is rolled back when the request ends."""
    if "db_session" not in g:
        db = database()
        g.db_session = db.session()
        if has_request_context():
            replica = _reads_from_replica(db)
            if not replica and _autocommit_view() and db.sessionmaker.kw.get("bind") is db.engine:
                # Only on the app's own engine: tests that bind the sessions to a connection
                # of theirs (inside their outer transaction) keep it. (Reads from a replica
                # keep their transaction: not worth a second path.)
                autocommit_connection(g.db_session.connection())
                g.db_session.info["autocommit"] = True
            if replica:
                g.db_session.info["replica"] = db.replica.engine
                # A read request's incidental changes (a token's last_used_at) are flushed at
                # commit, if ever, not before its next query (which would leave the replica).
                g.db_session.autoflush = False
            # Read by services that record where a write came from (geoservice.accounts.audit).
            g.db_session.info["client_ip"] = request.remote_addr
            # Its statements are limited to STATEMENT_TIMEOUT_MS by the connection's own
            # setting (tune_pool: the connection is checked out within the request).
    return g.db_session


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
