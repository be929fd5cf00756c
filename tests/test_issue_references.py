"""The attribution references of issues (grid, primary place, leader, unit) are checked per
statement by a trigger (migration 0048), with the guarantees of the foreign keys they replace:
a missing parent is refused (SQLSTATE 23503, the constraint's name, the key), in an INSERT or
an UPDATE, whichever row of the statement holds it; a parent still referenced cannot be
deleted; the catalogue still names issues as holders of a place."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from geoservice.catalogue.editing import holders
from tests.factories import add_feature, add_issue, add_leader, rect

CST = timezone(timedelta(hours=8))
MISSING = 987654321


@pytest.fixture()
def parents(db_session):
    grid = add_feature(db_session, "grid", "G1", rect(0, 0, 100, 100), grid_type="综合网格")
    leader = add_leader(db_session, "张三")
    return grid.id, leader.id, leader.unit_id


def insert(session, grid_id, place_id, leader_id, unit_id) -> int:
    return session.execute(
        text(
            "INSERT INTO issues (geom, category, source, reported_at, grid_id, primary_place_id,"
            " leader_id, unit_id) VALUES (ST_SetSRID(ST_MakePoint(120.26, 33.78), 4326),"
            " '环境卫生', '暗访督查', :at, :g, :p, :l, :u) RETURNING id"
        ),
        {
            "at": datetime(2015, 5, 2, tzinfo=CST),
            "g": grid_id,
            "p": place_id,
            "l": leader_id,
            "u": unit_id,
        },
    ).scalar_one()


COLUMNS = {
    "grid_id": ("fk_issues_grid_id_places", "places"),
    "primary_place_id": ("fk_issues_primary_place_id_places", "places"),
    "leader_id": ("fk_issues_leader_id_leaders", "leaders"),
    "unit_id": ("fk_issues_unit_id_units", "units"),
}


def refused_because(refused, column: str) -> None:
    constraint, target = COLUMNS[column]
    orig = refused.value.orig
    assert orig.pgcode == "23503"
    assert orig.diag.constraint_name == constraint
    assert f'Key ({column})=({MISSING}) is not present in table "{target}"' in str(orig)


@pytest.mark.parametrize("column", list(COLUMNS))
def test_an_insert_with_a_missing_parent_is_refused(db_session, parents, column):
    grid_id, leader_id, unit_id = parents
    values = {
        "grid_id": grid_id,
        "primary_place_id": grid_id,
        "leader_id": leader_id,
        "unit_id": unit_id,
    }
    insert(db_session, *values.values())  # all present: accepted
    values[column] = MISSING
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        insert(db_session, *values.values())
    refused_because(refused, column)


@pytest.mark.parametrize("column", list(COLUMNS))
def test_an_update_to_a_missing_parent_is_refused_in_any_row(db_session, parents, column):
    grid_id, leader_id, unit_id = parents
    first = insert(db_session, grid_id, grid_id, leader_id, unit_id)
    second = insert(db_session, None, None, None, None)
    # Many rows, one of them wrong: the statement is refused.
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        db_session.execute(
            text(
                f"UPDATE issues SET {column} = CASE WHEN id = :bad THEN {MISSING}"
                f" ELSE {column} END WHERE id IN (:a, :bad)"
            ),
            {"a": first, "bad": second},
        )
    refused_because(refused, column)
    # An update that leaves the references alone checks nothing about them; one that sets
    # existing parents is accepted.
    db_session.execute(
        text("UPDATE issues SET severity = 2 WHERE id IN (:a, :b)"), {"a": first, "b": second}
    )
    db_session.execute(
        text(
            "UPDATE issues SET grid_id = :g, primary_place_id = :g, leader_id = :l,"
            " unit_id = :u WHERE id = :b"
        ),
        {"g": grid_id, "l": leader_id, "u": unit_id, "b": second},
    )


def test_a_referenced_parent_cannot_be_deleted(db_session, parents):
    grid_id, leader_id, unit_id = parents
    issue = insert(db_session, grid_id, grid_id, leader_id, unit_id)
    for table, key in (("places", grid_id), ("leaders", leader_id), ("units", unit_id)):
        with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
            db_session.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": key})
        assert refused.value.orig.pgcode == "23503"
    assert [h.kind for h in holders(db_session, grid_id)] == ["open_issues"]
    # Released, they can go.
    db_session.execute(
        text(
            "UPDATE issues SET grid_id = NULL, primary_place_id = NULL, leader_id = NULL,"
            " unit_id = NULL WHERE id = :id"
        ),
        {"id": issue},
    )
    assert holders(db_session, grid_id) == []
    db_session.execute(text("DELETE FROM leaders WHERE id = :id"), {"id": leader_id})
    db_session.execute(text("DELETE FROM units WHERE id = :id"), {"id": unit_id})
    db_session.execute(text("DELETE FROM places WHERE id = :id"), {"id": grid_id})


def test_the_orm_path_still_writes_attribution(db_session, parents):
    grid_id, leader_id, unit_id = parents
    issue = add_issue(db_session, 50, 50, datetime(2015, 5, 2, tzinfo=CST))
    issue.grid_id, issue.leader_id, issue.unit_id = grid_id, leader_id, unit_id
    db_session.flush()
    issue.leader_id = MISSING
    with pytest.raises(IntegrityError) as refused, db_session.begin_nested():
        db_session.flush()
    refused_because(refused, "leader_id")
