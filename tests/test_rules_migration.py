"""The history migration backfills who held each issue, with which deadline, from the
events recorded before it (交办/改派 data, reattribution before/after)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from geoservice import migrate
from tests.scratch import create_scratch_database, drop_scratch_database

BEFORE = "0968ec0e6343"


@pytest.fixture
def scratch(engine) -> Iterator:
    name, url = create_scratch_database(engine, "db")
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE EXTENSION postgis"))
    db = create_engine(url)
    yield db
    db.dispose()
    drop_scratch_database(engine, name)


def test_backfill_of_holders_and_deadlines(scratch):
    migrate.upgrade(scratch, BEFORE)
    with scratch.begin() as conn:
        u1 = conn.scalar(text("INSERT INTO units (name) VALUES ('一局') RETURNING id"))
        u2 = conn.scalar(text("INSERT INTO units (name) VALUES ('二局') RETURNING id"))
        a, b = (
            conn.scalar(
                text(
                    "INSERT INTO leaders (name, title, unit_id, level) VALUES (:n, '局长', :u,"
                    " '县级') RETURNING id"
                ),
                {"n": n, "u": u},
            )
            for n, u in (("甲", u1), ("乙", u2))
        )
        issue = conn.scalar(
            text(
                "INSERT INTO issues (geom, category, source, status, reported_at, leader_id,"
                " unit_id, deadline) VALUES (ST_SetSRID(ST_MakePoint(120, 33), 4326), '环境卫生',"
                " '暗访督查', 'dispatched', '2015-11-16 01:00+00', :b, :u2,"
                " '2015-11-17 02:00+00') RETURNING id"
            ),
            {"b": b, "u2": u2},
        )
        events = [
            ("2015-11-16 01:00+00", None, "reported", {"action": "report"}),
            ("2015-11-16 02:00+00", "accepted", "dispatched",
             {"action": "dispatch", "leader_id": a, "deadline": "2015-11-17T02:00:00+00:00"}),
            ("2015-11-18 07:00+00", "dispatched", "dispatched",
             {"action": "redispatch", "leader_id": b, "previous_leader_id": a,
              "deadline": "2015-11-19T07:00:00+00:00"}),
            ("2015-11-20 07:00+00", "dispatched", "dispatched",
             {"action": "reattribute", "before": {"leader_id": b, "unit_id": u2},
              "after": {"leader_id": a, "unit_id": u1}}),
        ]  # fmt: skip
        for at, before, after, data in events:
            conn.execute(
                text(
                    "INSERT INTO issue_events (issue_id, at, from_status, to_status, data)"
                    " VALUES (:i, :at, :f, :t, CAST(:d AS jsonb))"
                ),
                {"i": issue, "at": at, "f": before, "t": after, "d": json.dumps(data)},
            )
    migrate.upgrade(scratch)
    with scratch.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT holder_change, prev_leader_id, leader_id, prev_unit_id, unit_id,"
                " to_char(prev_deadline AT TIME ZONE 'UTC', 'DD HH24') AS pd,"
                " to_char(deadline AT TIME ZONE 'UTC', 'DD HH24') AS d"
                " FROM issue_events WHERE issue_id = :i ORDER BY at"
            ),
            {"i": issue},
        ).all()
        since = conn.scalar(
            text("SELECT to_char(holder_since AT TIME ZONE 'UTC', 'DD HH24') FROM issues")
        )
    assert [tuple(r) for r in rows] == [
        (False, None, None, None, None, None, None),
        (True, a, a, u1, u1, None, "17 02"),
        (True, a, b, u1, u2, "17 02", "19 07"),
        (True, b, a, u2, u1, "19 07", "19 07"),
    ]
    assert since == "20 07"
