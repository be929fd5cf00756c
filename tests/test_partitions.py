"""Issues and their events are partitioned by month (migration 0026, geoservice.partitions):
rows land in their month, nothing is refused, references behave as foreign keys did, and old
months leave the tables whole."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from geoservice import httpcache, partitions
from geoservice.models import Issue
from tests.factories import add_issue, metres

CST = timezone(timedelta(hours=8))


def where(session, table: str, row_id: int) -> str:
    return session.execute(
        text(f"SELECT tableoid::regclass::text FROM {table} WHERE id = :id"), {"id": row_id}
    ).scalar_one()


def add_event(session, issue_id: int, at: datetime, to_status: str = "accepted") -> int:
    return session.execute(
        text(
            "INSERT INTO issue_events (issue_id, at, to_status) VALUES (:i, :at, :s) RETURNING id"
        ),
        {"i": issue_id, "at": at, "s": to_status},
    ).scalar_one()


def add_photo(session, issue_id: int, event_id: int | None = None) -> int:
    return session.execute(
        text(
            "INSERT INTO photos (issue_id, event_id, kind, sha256, content_type, size_bytes)"
            " VALUES (:i, :e, 'before', repeat('a', 64), 'image/jpeg', 1) RETURNING id"
        ),
        {"i": issue_id, "e": event_id},
    ).scalar_one()


def test_both_tables_are_partitioned_by_month_with_a_default(db_session):
    kinds = dict(
        db_session.execute(
            text(
                "SELECT c.relname, p.partstrat FROM pg_partitioned_table p"
                " JOIN pg_class c ON c.oid = p.partrelid"
            )
        ).all()
    )
    assert kinds == {"issues": "r", "issue_events": "r"}
    names = {p.name for p in partitions.partitions(db_session)}
    assert {"issues_default", "issue_events_default"} <= names


def test_a_month_without_partition_lands_in_the_default_and_moves_when_created(db_session):
    issue = add_issue(db_session, 0, 0, datetime(2015, 3, 31, 23, 30, tzinfo=CST))
    event = add_event(db_session, issue.id, datetime(2015, 4, 1, 0, 10, tzinfo=CST))
    assert where(db_session, "issues", issue.id) == "issues_default"

    made = partitions.ensure(
        db_session, today=date(2015, 4, 15), months_ahead=1, since=date(2015, 3, 1)
    )
    assert {"issues_p2015_03", "issues_p2015_05", "issue_events_p2015_04"} <= set(made)
    # Months start at local midnight: 23:30 on 31 March (UTC+8) is March, 00:10 is April.
    assert where(db_session, "issues", issue.id) == "issues_p2015_03"
    assert where(db_session, "issue_events", event) == "issue_events_p2015_04"
    # Idempotent; the ORM still finds an issue by its id alone.
    assert (
        partitions.ensure(
            db_session, today=date(2015, 4, 15), months_ahead=1, since=date(2015, 3, 1)
        )
        == made
    )
    db_session.expunge_all()
    assert db_session.get(Issue, issue.id).reported_at == datetime(2015, 3, 31, 15, 30, tzinfo=UTC)


def test_references_to_issues_and_events_are_checked_like_foreign_keys(db_session):
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        add_event(db_session, 987654321, datetime(2015, 5, 1, tzinfo=CST))
    assert refused.value.orig.pgcode == "23503"
    assert "987654321" in str(refused.value.orig)
    with pytest.raises(IntegrityError), db_session.begin_nested():
        add_photo(db_session, 987654321)
    issue = add_issue(db_session, 0, 0, datetime(2015, 5, 2, tzinfo=CST))
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(
            text("UPDATE issues SET relapse_of_id = 987654321 WHERE id = :id"), {"id": issue.id}
        )


def test_deleting_an_issue_applies_each_references_on_delete(db_session):
    issue = add_issue(db_session, 0, 0, datetime(2015, 5, 2, tzinfo=CST))
    event = add_event(db_session, issue.id, datetime(2015, 5, 3, tzinfo=CST))
    photo = add_photo(db_session, issue.id, event)
    other = add_issue(db_session, 0, 0, datetime(2015, 6, 2, tzinfo=CST))
    other_event = add_event(db_session, other.id, datetime(2015, 6, 3, tzinfo=CST))
    kept_photo = add_photo(db_session, other.id, other_event)

    # An event deleted on its own: the photo taken with it stays, unlinked (SET NULL).
    db_session.execute(text("DELETE FROM issue_events WHERE id = :id"), {"id": other_event})
    assert db_session.execute(
        text("SELECT event_id FROM photos WHERE id = :id"), {"id": kept_photo}
    ).one() == (None,)

    # A relapse holds its original (RESTRICT) …
    db_session.execute(
        text("UPDATE issues SET relapse_of_id = :o WHERE id = :id"), {"o": issue.id, "id": other.id}
    )
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        db_session.execute(text("DELETE FROM issues WHERE id = :id"), {"id": issue.id})
    assert refused.value.orig.pgcode == "23503"
    # … and once released, the issue's events and photos go with it (CASCADE).
    db_session.execute(
        text("UPDATE issues SET relapse_of_id = NULL WHERE id = :id"), {"id": other.id}
    )
    db_session.execute(text("DELETE FROM issues WHERE id = :id"), {"id": issue.id})
    left = db_session.execute(
        text(
            "SELECT (SELECT count(*) FROM issue_events WHERE id = :e),"
            "       (SELECT count(*) FROM photos WHERE id = :p),"
            "       (SELECT count(*) FROM photos WHERE id = :k)"
        ),
        {"e": event, "p": photo, "k": kept_photo},
    ).one()
    assert tuple(left) == (0, 0, 1)


def test_moving_an_issue_to_another_month_keeps_its_events(db_session):
    partitions.ensure(db_session, today=date(2015, 8, 1), months_ahead=0, since=date(2015, 7, 1))
    issue = add_issue(db_session, 0, 0, datetime(2015, 7, 20, tzinfo=CST))
    event = add_event(db_session, issue.id, datetime(2015, 8, 2, tzinfo=CST))
    db_session.execute(
        text("UPDATE issues SET reported_at = :at WHERE id = :id"),
        {"at": datetime(2015, 8, 1, 9, tzinfo=CST), "id": issue.id},
    )
    assert where(db_session, "issues", issue.id) == "issues_p2015_08"
    assert (
        db_session.execute(
            text("SELECT issue_id FROM issue_events WHERE id = :id"), {"id": event}
        ).scalar_one()
        == issue.id
    )


def test_retiring_old_months_detaches_them_and_applies_the_references(db_session):
    partitions.ensure(db_session, today=date(2015, 10, 1), months_ahead=0, since=date(2015, 8, 1))
    old = add_issue(db_session, 0, 0, datetime(2015, 8, 10, tzinfo=CST))
    old_events = [
        add_event(db_session, old.id, datetime(2015, 8, 11, tzinfo=CST)),
        add_event(db_session, old.id, datetime(2015, 9, 11, tzinfo=CST)),  # after the cut
    ]
    old_photo = add_photo(db_session, old.id)
    kept = add_issue(db_session, 0, 0, datetime(2015, 9, 10, tzinfo=CST))
    kept_event = add_event(db_session, kept.id, datetime(2015, 9, 12, tzinfo=CST))

    def kept_under():  # an area's writes; the issues and events written before a moment
        later = datetime(2016, 1, 1, tzinfo=CST)
        (west, south), (east, north) = metres(-300, -300), metres(300, 300)
        area = httpcache.IssueArea((west, south, east, north))
        _, (in_area, _tables, issues, events) = httpcache.generation(
            db_session, [area, *httpcache.written_before(later)]
        )
        return in_area, issues, events

    before = kept_under()
    retired = partitions.retire(db_session, date(2015, 9, 1))
    assert {"issues_p2015_08", "issue_events_p2015_08"} <= set(retired)
    # The rows left through the triggers: no answer kept from before outlives them, and the
    # tile counts no longer count them.
    assert all(a != b for a, b in zip(kept_under(), before, strict=True))
    counted = db_session.execute(
        text("SELECT COALESCE(sum(n), 0) FROM issue_tile_counts WHERE level = 5")
    ).scalar_one()
    assert counted == db_session.execute(text("SELECT count(*) FROM issues")).scalar_one()
    assert "issues_p2015_09" not in retired
    names = {p.name for p in partitions.partitions(db_session)}
    assert "issues_p2015_08" not in names and "issues_p2015_09" in names
    # The detached month keeps its rows as a plain table (to archive, then drop).
    assert db_session.execute(text("SELECT count(*) FROM issues_p2015_08")).scalar_one() == 1
    live = db_session.execute(
        text(
            "SELECT (SELECT count(*) FROM issues WHERE id = :old),"
            "       (SELECT count(*) FROM issue_events WHERE id = ANY(:old_events)),"
            "       (SELECT count(*) FROM photos WHERE id = :photo),"
            "       (SELECT count(*) FROM issue_events WHERE id = :kept_event)"
        ),
        {"old": old.id, "old_events": old_events, "photo": old_photo, "kept_event": kept_event},
    ).one()
    assert tuple(live) == (0, 0, 0, 1)


def test_retiring_refuses_a_month_still_held_by_a_restrict_reference(db_session):
    partitions.ensure(db_session, today=date(2015, 11, 1), months_ahead=0, since=date(2015, 10, 1))
    old = add_issue(db_session, 0, 0, datetime(2015, 10, 10, tzinfo=CST))
    newer = add_issue(db_session, 0, 0, datetime(2015, 11, 10, tzinfo=CST))
    db_session.execute(
        text("UPDATE issues SET relapse_of_id = :o WHERE id = :id"), {"o": old.id, "id": newer.id}
    )
    with pytest.raises(ValueError, match="relapse_of_id"):
        partitions.retire(db_session, date(2015, 11, 1))
    # Both leaving together: the link does not hold them back.
    assert "issues_p2015_11" in partitions.retire(db_session, date(2015, 12, 1))


def test_the_partitions_commands(app):
    runner = app.test_cli_runner()
    ensured = runner.invoke(args=["partitions", "ensure", "--ahead", "1"])
    assert ensured.exit_code == 0, ensured.output
    assert "分区已就绪" in ensured.output
    listed = runner.invoke(args=["partitions", "list"])
    assert "issues_default\tDEFAULT" in listed.output
    bad = runner.invoke(args=["partitions", "retire", "--before", "2015-13"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
