"""Server-side prepared statements kept on a pooled connection, for one-row reads whose planning
costs more than their execution (issue 19): a page of issues (every monthly partition and its
indexes considered: ~2–3 ms of ~10), the validators every cached answer reads first (the issues'
extent: 1.7 ms planned, 0.24 ms prepared).

    row = prepared.fetch_row(session, VALIDATORS, 32, "SELECT … %(x)s …", {"x": 1})

A family of statements shares one bound per connection: past it, the least recently used is
deallocated (a page's generic plan holds ~0.9 MB of the backend's memory, a validator's far
less). The statements are named `geoservice_{family}_{tag}_{n}` and tracked in the pool
record's `info` with the backend's pid (a new backend starts with none); PREPARE, EXECUTE and
any DEALLOCATE go in one round trip. PostgreSQL plans a prepared statement again after a change
to a table it reads (DDL, a partition attached, ANALYZE); parameter types are inferred by
PostgreSQL from the statement, as for a plain query.

After a failed round trip the record may be wrong (some of its statements run, others not; a
DISCARD by another user of the connection; a result type changed by DDL): the next call first
compares it with the backend's own list and deallocates what it does not track. A lost
statement is asked again at once when no transaction is open (autocommit), else the error is
raised (the transaction is aborted anyway).
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

RECORD = "geoservice.prepared.{family}"  # key of a family's record in the pool record's `info`
RESYNC_SQL = "SELECT name FROM pg_prepared_statements WHERE starts_with(name, %(prefix)s)"


def record_key(family: str) -> str:
    return RECORD.format(family=family)


def fetch_row(
    session: Session,
    family: str,
    bound: int,
    sql: str,
    values: dict[str, Any],
    *,
    head: str = "",
    tail: str = "",
    text_as_bytes: bool = False,
) -> tuple | None:
    """The first row of `sql` (the driver's `%(name)s` style), run as a statement of `family`
    prepared once on the session's connection (as the session would route it: a replica for
    reads). `head`: statements sent before it in the same round trip (transaction-local
    settings; their values in `values` too); `tail`: a statement sent after it, only inside a
    transaction (to put such a setting back). `text_as_bytes`: text columns as UTF-8 bytes.
    Errors are SQLAlchemy's DBAPIError, as for any statement."""
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    info = connection.connection.info
    body, names = _prepared_form(sql)
    key = record_key(family)
    for attempt in (1, 2):
        known = info.get(key)
        pid = dbapi.get_backend_pid()  # type: ignore[union-attr]
        if known is None or known["pid"] != pid:
            # The tag keeps two records sharing a backend (a pooler in session mode handing a
            # server connection on) from taking each other's names.
            tag = secrets.token_hex(3)
            known = info[key] = {"pid": pid, "names": {}, "next": 0, "tag": tag}
        prefix = f"geoservice_{family}_{known['tag']}_"
        parts = [head] if head else []
        if known.get("resync"):
            try:
                parts += [f"DEALLOCATE {n}" for n in _resynced(dbapi, known, prefix)]
            except psycopg2.Error as exc:
                raise DBAPIError.instance(RESYNC_SQL, {}, exc, psycopg2.Error) from exc
        name = known["names"].pop(body, None)
        if name is None:
            name = f"{prefix}{known['next']}"
            known["next"] += 1  # a name is never reused
            while known["names"] and len(known["names"]) >= bound:
                oldest = next(iter(known["names"]))
                parts.append(f"DEALLOCATE {known['names'].pop(oldest)}")
            parts.append(f"PREPARE {name} AS {body}")
        args = ", ".join(f"%({n})s" for n in names)
        parts.append(f"EXECUTE {name}({args})" if names else f"EXECUTE {name}")
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        text_sent = ";".join(parts)
        try:
            if text_as_bytes:
                psycopg2.extensions.register_type(psycopg2.extensions.BYTES, cursor)
            cursor.execute(text_sent, values)
            row = cursor.fetchone()
            if tail and not dbapi.autocommit:  # type: ignore[union-attr]
                cursor.execute(tail)
        except psycopg2.Error as exc:
            known["resync"] = True
            lost = isinstance(exc, psycopg2.errors.InvalidSqlStatementName)
            if lost and attempt == 1 and dbapi.autocommit:  # type: ignore[union-attr]
                continue
            raise DBAPIError.instance(text_sent, values, exc, psycopg2.Error) from exc
        finally:
            cursor.close()
        known["names"][body] = name  # the most recently used last
        return row
    raise AssertionError("unreachable")


def _resynced(dbapi: Any, known: dict[str, Any], prefix: str) -> list[str]:
    """Brings a connection's record of a family's statements in line with the backend's own
    list: forgets what the backend lost; returns the backend's statements of this record that
    it does not track (to deallocate)."""
    cursor = dbapi.cursor()
    try:
        cursor.execute(RESYNC_SQL, {"prefix": prefix})
        on_server = {row[0] for row in cursor.fetchall()}
    finally:
        cursor.close()
    known["names"] = {sql: n for sql, n in known["names"].items() if n in on_server}
    known["resync"] = False
    return sorted(on_server - set(known["names"].values()))


@lru_cache(maxsize=512)
def _prepared_form(sql: str) -> tuple[str, tuple[str, ...]]:
    """A statement in the driver's style (`%(name)s` placeholders) as PREPARE's text (`$1`,
    `$2`…) and the names of its parameters in that order."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\((\w+)\)s", number, sql), tuple(names)
