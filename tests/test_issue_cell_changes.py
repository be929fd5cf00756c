"""Writes to issues counted by area (issue_cell_changes, migration 0043): every statement that
writes issues notes the ~1 km cells its rows were in and are in, so the generation of an area
(httpcache.IssueArea) changes with every write inside it and with no write elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from geoservice import httpcache
from tests.factories import add_issue, metres

WHEN = datetime(2015, 6, 1, 2, 0, tzinfo=UTC)


def area_around(x: float, y: float, half: float = 300) -> httpcache.IssueArea:
    (west, south), (east, north) = metres(x - half, y - half), metres(x + half, y + half)
    return httpcache.IssueArea((west, south, east, north))


def generations(session, *areas):
    return httpcache.generation(session, ["places", *areas])[1]


def test_an_area_changes_with_the_writes_inside_it_only(db_session):
    here, there = area_around(0, 0), area_around(20_000, 0)  # 20 km apart
    before = generations(db_session, here, there)

    issue = add_issue(db_session, 0, 0, WHEN)  # a report here
    after_report = generations(db_session, here, there)
    assert after_report[0] != before[0] and after_report[1] == before[1]

    db_session.execute(
        text("UPDATE issues SET description = '已清理' WHERE id = :id"), {"id": issue.id}
    )
    after_update = generations(db_session, here, there)
    assert after_update[0] != after_report[0] and after_update[1] == before[1]

    # Moved there: both areas change (it left one, entered the other).
    lon, lat = metres(20_000, 0)
    db_session.execute(
        text("UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :id"),
        {"x": lon, "y": lat, "id": issue.id},
    )
    after_move = generations(db_session, here, there)
    assert after_move[0] != after_update[0] and after_move[1] != after_update[1]

    db_session.execute(text("DELETE FROM issues WHERE id = :id"), {"id": issue.id})
    after_delete = generations(db_session, here, there)
    assert after_delete[0] == after_move[0] and after_delete[1] != after_move[1]


def test_a_bulk_statement_notes_each_cell_once_and_truncate_changes_every_area(db_session):
    first = db_session.scalar(text("SELECT COALESCE(max(id), 0) FROM issue_cell_changes"))
    for n in range(5):
        add_issue(db_session, 10 * n, 0, WHEN)  # one cell (about 1 km)
    add_issue(db_session, 5_000, 0, WHEN)  # another
    db_session.execute(
        text("UPDATE issues SET description = 'x' WHERE reported_at = :t"), {"t": WHEN}
    )
    cells = db_session.execute(
        text("SELECT cx, cy FROM issue_cell_changes WHERE id > :first ORDER BY id"),
        {"first": first},
    ).all()
    assert len(cells) == 6 + 2  # six inserts, then the UPDATE: its two cells once each
    assert len(set(cells)) == 2
    far = area_around(-30_000, 0)  # no issue, no write there
    before = generations(db_session, far)
    db_session.execute(text("TRUNCATE issues CASCADE"))
    assert generations(db_session, far) != before


def test_a_cell_of_a_bbox_edge_counts(db_session):
    """An issue on the very edge of a bbox is in the area of that bbox (the area takes the
    cells the bbox touches and one more all round)."""
    issue = add_issue(db_session, 0, 0, WHEN)
    lon, lat = db_session.execute(
        text("SELECT ST_X(geom), ST_Y(geom) FROM issues WHERE id = :id"), {"id": issue.id}
    ).one()
    edge = httpcache.IssueArea((lon, lat, lon + 0.01, lat + 0.01))
    before = generations(db_session, edge)
    db_session.execute(text("UPDATE issues SET severity = 2 WHERE id = :id"), {"id": issue.id})
    assert generations(db_session, edge) != before


def test_writes_are_logged_with_the_earliest_time_they_touched(db_session):
    """issue_cell_changes.first_reported and event_changes (migration 0046): the earliest
    reported_at / at among the rows a statement wrote, old and new, so that an answer about the
    time before a moment (httpcache.written_before) changes with writes dated before it only."""
    end = datetime(2015, 7, 1, tzinfo=UTC)
    later = datetime(2015, 8, 1, tzinfo=UTC)

    def closed():
        return httpcache.generation(db_session, httpcache.written_before(end))

    before = closed()
    issue = add_issue(db_session, 0, 0, later)  # reported after the end
    db_session.execute(
        text("INSERT INTO issue_events (issue_id, at, to_status) VALUES (:i, :t, 'reported')"),
        {"i": issue.id, "t": later},
    )
    assert closed() == before
    assert (
        db_session.scalar(
            text("SELECT first_reported FROM issue_cell_changes ORDER BY id DESC LIMIT 1")
        )
        == later
    )
    # An event dated before the end (a correction), even of a later issue: changed.
    db_session.execute(
        text("INSERT INTO issue_events (issue_id, at, to_status) VALUES (:i, :t, 'accepted')"),
        {"i": issue.id, "t": WHEN},
    )
    after_event = closed()
    assert after_event != before
    # An issue reported before the end, and a later one moved back before it: changed.
    add_issue(db_session, 0, 0, WHEN)
    after_report = closed()
    assert after_report != after_event
    db_session.execute(
        text("UPDATE issues SET reported_at = :t WHERE id = :i"), {"i": issue.id, "t": WHEN}
    )
    assert closed() != after_report
    # Another end is another generation, even with no write between.
    assert httpcache.generation(db_session, httpcache.written_before(later)) != closed()


KEPT = 2000  # rows of each change log kept (migration 0054)


def test_each_change_log_keeps_its_last_two_thousand_rows(db_session):
    """The logs the validators count (issue_cell_changes, issue_fact_changes, event_changes)
    are pruned in batches, each time their ids pass a thousand: to the last KEPT rows (a
    validator counts at most ~3,000), by every statement that writes them — an update or a
    delete of issues, an event (an insert: tests/test_issue_rows_inserted.py)."""
    issue = add_issue(db_session, 0, 0, WHEN)

    def update_issue():
        sql = text(
            "UPDATE issues SET deadline = COALESCE(deadline, :t) + interval '1 hour' WHERE id = :i"
        )  # a column the rankings read: logged in issue_fact_changes too
        return lambda: db_session.execute(sql, {"i": issue.id, "t": WHEN})

    def delete_issue():
        doomed = add_issue(db_session, 50, 0, WHEN)
        sql = text("DELETE FROM issues WHERE id = :i")
        return lambda: db_session.execute(sql, {"i": doomed.id})

    def insert_event():
        sql = text("INSERT INTO issue_events (issue_id, at, to_status) VALUES (:i, :t, 'accepted')")
        return lambda: db_session.execute(sql, {"i": issue.id, "t": WHEN})

    writes = {
        "issue_cell_changes": [update_issue, delete_issue],
        "issue_fact_changes": [update_issue, delete_issue],
        "event_changes": [insert_event],
    }

    def count(table, where="true", **params):
        return db_session.scalar(text(f"SELECT count(*) FROM {table} WHERE {where}"), params)

    def written(table, write, next_id=None):
        """The id of the row `write` logs, which the sequence gives as `next_id`."""
        act = write()  # its own set-up first (a delete needs an issue)
        if next_id is not None:
            db_session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n - 1)"),
                {"n": next_id},
            )
        act()
        return db_session.scalar(text(f"SELECT max(id) FROM {table}"))

    for table, kinds in writes.items():
        for write in kinds:
            marker = written(table, write)
            # A row at the first id of a thousand, within KEPT of the marker: the marker stays.
            near = (marker // 1000 + 2) * 1000
            assert near - marker <= KEPT
            assert written(table, write, near) == near
            assert count(table, "id = :i", i=marker) == 1, (table, write.__name__)
            # One at the next thousand past KEPT: the marker and everything older pruned.
            far = (marker + KEPT) // 1000 * 1000 + 1000
            assert written(table, write, far) == far
            assert count(table, "id <= :i", i=marker) == 0, (table, write.__name__)
            assert count(table, "id < :i", i=far - KEPT) == 0
            assert count(table) <= KEPT + 1000
