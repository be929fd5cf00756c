"""Two transitions on one issue at the same time: exactly one wins, the other gets 409.

These tests need real commits on separate connections, so they create their own committed rows
and delete them afterwards (the rolled-back fixtures cannot show a lock being waited for).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.accounts.auth import create_user, issue_token
from geoservice.db import database
from geoservice.issues.workflow import IssueSettings, lock_issue, transition
from geoservice.models import Issue, IssueEvent, User
from geoservice.service_errors import Conflict


@pytest.fixture
def committed(app, engine) -> Iterator[dict]:
    """A planner with a token and a factory of committed `reported` issues; all removed after."""
    created: dict = {"issues": []}
    with Session(engine) as session:
        planner = create_user(session, f"planner-{uuid.uuid4().hex[:8]}", "planner")
        created["token"] = issue_token(session, planner)
        session.commit()
        created["planner_id"] = planner.id

    def new_issue() -> int:
        with Session(engine) as session:
            issue_id = session.scalar(
                text(
                    "INSERT INTO issues (geom, category, source, status) VALUES"
                    " (ST_SetSRID(ST_MakePoint(120.26, 33.78), 4326), '环境卫生', '自查',"
                    " 'reported') RETURNING id"
                )
            )
            session.commit()
        created["issues"].append(issue_id)
        return issue_id

    created["new_issue"] = new_issue
    try:
        yield created
    finally:
        with engine.begin() as conn:
            ids = created["issues"] or [0]
            conn.execute(text("DELETE FROM issue_events WHERE issue_id = ANY(:ids)"), {"ids": ids})
            conn.execute(text("DELETE FROM issues WHERE id = ANY(:ids)"), {"ids": ids})
            conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": created["planner_id"]})


def waiting_for_a_lock(engine, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                return True
            conn.rollback()  # pg_stat_activity is a snapshot taken once per transaction
            time.sleep(0.02)
    return False


def test_the_second_transition_waits_for_the_first_then_sees_its_result(app, engine, committed):
    settings = IssueSettings.from_config(app.config)
    issue_id = committed["new_issue"]()
    outcome: dict = {}

    with Session(engine) as first:
        planner = first.get(User, committed["planner_id"])
        transition(first, settings, issue_id, "accepted", planner)  # holds the row lock

        def second_move() -> None:
            with Session(engine) as second:
                try:
                    actor = second.get(User, committed["planner_id"])
                    transition(second, settings, issue_id, "rejected", actor, note="重复")
                    second.commit()
                    outcome["result"] = "committed"
                except Conflict as exc:
                    second.rollback()
                    outcome["result"] = exc
                except Exception as exc:  # reported by the assertions below
                    outcome["result"] = exc
                    raise

        thread = threading.Thread(target=second_move)
        thread.start()
        if not waiting_for_a_lock(engine):
            with engine.connect() as conn:
                activity = conn.execute(
                    text(
                        "SELECT pid, state, wait_event_type, wait_event, left(query, 60)"
                        " FROM pg_stat_activity WHERE datname = current_database()"
                    )
                ).all()
            raise AssertionError(f"the second did not wait: {outcome} {activity}")
        first.commit()
        thread.join(10)
    assert not thread.is_alive()
    conflict = outcome["result"]
    assert isinstance(conflict, Conflict)
    assert conflict.detail["status"] == "accepted"
    assert [a["to"] for a in conflict.detail["allowed"]] == ["dispatched"]
    with Session(engine) as check:
        assert check.get(Issue, issue_id).status == "accepted"
        events = check.query(IssueEvent).filter_by(issue_id=issue_id).all()
        assert [(e.from_status, e.to_status) for e in events] == [("reported", "accepted")]


def test_racing_requests_exactly_one_wins(app, engine, committed):
    headers = {"Authorization": f"Bearer {committed['token']}"}
    assert database(app).sessionmaker.kw["bind"] is database(app).engine
    for _round in range(5):
        issue_id = committed["new_issue"]()
        barrier = threading.Barrier(2)
        statuses: dict[str, int] = {}

        def post(to: str, issue_id: int = issue_id, barrier=barrier, statuses=statuses) -> None:
            client = app.test_client()
            barrier.wait()
            response = client.post(
                f"/api/issues/{issue_id}/transitions",
                json={"to": to, "note": "并发测试"},
                headers=headers,
            )
            statuses[to] = response.status_code

        threads = [threading.Thread(target=post, args=(to,)) for to in ("accepted", "rejected")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(statuses.values()) == [200, 409], statuses
        winner = next(to for to, code in statuses.items() if code == 200)
        with Session(engine) as check:
            assert check.get(Issue, issue_id).status == winner
            events = check.query(IssueEvent).filter_by(issue_id=issue_id).all()
            assert [e.to_status for e in events] == [winner]


def test_a_move_that_waited_for_the_lock_is_dated_after_it_was_released(app, engine, committed):
    """Events are dated once the row is locked: the timeline's order is the order of the moves
    (a move dated when its request arrived could precede the one it waited for)."""
    settings = IssueSettings.from_config(app.config)
    issue_id = committed["new_issue"]()
    outcome: dict = {}

    def waiting_move() -> None:
        with Session(engine) as second:
            actor = second.get(User, committed["planner_id"])
            outcome["event_id"] = transition(second, settings, issue_id, "accepted", actor).id
            second.commit()

    with Session(engine) as first:
        lock_issue(first, issue_id)
        thread = threading.Thread(target=waiting_move)
        thread.start()
        assert waiting_for_a_lock(engine)
        released = datetime.now(UTC)
        first.commit()
    thread.join(10)
    assert not thread.is_alive()
    with Session(engine) as check:
        assert check.get(IssueEvent, outcome["event_id"]).at >= released
