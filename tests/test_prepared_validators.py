"""The validators every cached answer reads first (httpcache.generation, the tile generations)
run as statements prepared once per connection (geoservice.prepared, family "validator"):
their values must still follow every write, their number stays bounded apart from the pages',
and a connection whose statements were lost recovers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from geoservice import httpcache, prepared
from geoservice.catalogue.tiles import ISSUE_EXTENT_SQL
from tests.factories import add_issue, metres

RECORD = prepared.record_key(httpcache.VALIDATORS)
WHEN = datetime(2015, 6, 1, 2, 0, tzinfo=UTC)


def backend_statements(session, body: str) -> int:
    """How many statements the backend holds prepared as `body`."""
    return session.execute(
        text(
            "SELECT count(*) FROM pg_prepared_statements"
            " WHERE name LIKE 'geoservice_validator_%' AND strpos(statement, :body) > 0"
        ),
        {"body": body},
    ).scalar()


def record(session) -> dict:
    return session.connection().connection.info[RECORD]


def test_a_validator_is_prepared_once_and_follows_writes(db_session):
    near = httpcache.IssueArea((*metres(-300, -300), *metres(300, 300)))
    subjects = ["places", httpcache.Derived(ISSUE_EXTENT_SQL), near]
    first = httpcache.generation(db_session, subjects)
    assert httpcache.generation(db_session, subjects) == first
    (body,) = [sql for sql in record(db_session)["names"] if ISSUE_EXTENT_SQL in sql]
    assert backend_statements(db_session, body) == 1  # prepared once, executed twice

    add_issue(db_session, 0, 0, WHEN)  # in the area
    in_area = httpcache.generation(db_session, subjects)
    assert in_area[1][1] != first[1][1]
    add_issue(db_session, 900_000, 0, WHEN)  # 900 km east: outside any extent so far
    grown = httpcache.generation(db_session, subjects)
    assert grown[1][0] != in_area[1][0] and grown[1][1] == in_area[1][1]
    assert backend_statements(db_session, body) == 1


def test_validators_keep_their_own_bound(db_session, monkeypatch):
    """Past VALIDATORS_PER_CONNECTION the least recently used validator is deallocated; the
    pages' statements (another family, another bound) are left alone."""
    monkeypatch.setattr(httpcache, "VALIDATORS_PER_CONNECTION", 2)
    pages = set(
        db_session.execute(
            text("SELECT name FROM pg_prepared_statements WHERE name LIKE 'geoservice_page_%'")
        ).scalars()
    )
    shapes = [
        httpcache.Derived(f"(SELECT ARRAY[{k}, count(*)]::bigint[] FROM places)") for k in range(4)
    ]
    for shape in shapes:
        httpcache.generation(db_session, ["places", shape])
    kept = record(db_session)["names"]
    assert len(kept) == 2
    assert [shape.sql in sql for sql in kept for shape in shapes[2:]].count(True) == 2
    on_backend = set(
        db_session.execute(
            text("SELECT name FROM pg_prepared_statements WHERE name LIKE :prefix"),
            {"prefix": f"geoservice_validator_{record(db_session)['tag']}_%"},
        ).scalars()
    )
    assert on_backend == set(kept.values())
    assert pages <= set(
        db_session.execute(text("SELECT name FROM pg_prepared_statements")).scalars()
    )


def test_lost_validators_are_prepared_again(app, engine):
    """DEALLOCATE ALL (a pooler's DISCARD): in autocommit the read is asked again at once;
    in a transaction it fails (the transaction is aborted) and the next one recovers."""
    subjects = ["places", httpcache.Derived(ISSUE_EXTENT_SQL)]
    with app.app_context(), engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        session = Session(bind=connection)
        first = httpcache.generation(session, subjects)
        connection.exec_driver_sql("DEALLOCATE ALL")
        assert httpcache.generation(session, subjects) == first
        session.close()
        connection.invalidate()  # other families' statements went too
    with app.app_context(), engine.connect() as connection:
        session = Session(bind=connection)
        first = httpcache.generation(session, subjects)
        connection.exec_driver_sql("DEALLOCATE ALL")
        with pytest.raises(DBAPIError):
            httpcache.generation(session, subjects)
        session.rollback()
        assert httpcache.generation(session, subjects) == first
        session.close()
        connection.invalidate()
