"""Hierarchy-scoped visibility (geoservice.accounts.scope) on the two-street world of conftest."""

import pytest
from sqlalchemy import select, text

from geoservice.accounts import scope
from geoservice.models import AdminArea, Issue, Leader, User
from geoservice.registry import layers

# Who sees which issues (see build_world in conftest for the map).
ISSUES_SEEN = {
    "admin": {"I1", "I2", "I3", "I4"},
    "viewer_all": {"I1", "I2", "I3", "I4"},
    "planner": {"I1"},  # S1 covers I1 only
    "viewer": {"I1"},
    "integration": {"I1"},
    "leader": {"I1", "I4"},  # S1 + I4 on R12, which L1 answers for although it lies in S2
    "leader_only": {"I1", "I4"},  # no area: I4 (attributed to L1) and I1 (in grid G1 of L1)
    "leader2": {"I2", "I3", "I4"},  # S2
    "inspector": {"I3"},  # own reports only, wherever they are
}
PLACES_SEEN = {
    "admin": {"G1", "G2", "R1", "R12"},
    "planner": {"G1", "R1", "R12"},  # R12 crosses into S1; G2 only touches S1's boundary
    "leader": {"G1", "R1", "R12"},
    "leader_only": {"G1", "R12"},  # L1's own places only
    "leader2": {"G2", "R12"},
    "inspector": {"G1", "R1", "R12"},
    "viewer_all": {"G1", "G2", "R1", "R12"},
}


def _account(world, name) -> User:
    return world["session"].get(User, world["users"][name])


def _names(mapping, ids):
    by_id = {v: k for k, v in mapping.items()}
    return {by_id[i] for i in ids}


@pytest.mark.parametrize(("name", "expected"), sorted(ISSUES_SEEN.items()))
def test_issue_filter(world, name, expected):
    account = _account(world, name)
    ids = world["session"].scalars(select(Issue.id).where(scope.issue_filter(account))).all()
    assert _names(world["issues"], ids) == expected


@pytest.mark.parametrize(("name", "expected"), sorted(ISSUES_SEEN.items()))
def test_issue_sql_for_text_queries_agrees_with_the_core_filter(world, name, expected):
    where, params = scope.issue_sql(_account(world, name), alias="i")
    assert all(key.startswith("scope_") for key in params)
    ids = world["session"].scalars(text(f"SELECT i.id FROM issues i WHERE {where}"), params).all()
    assert _names(world["issues"], ids) == expected


@pytest.mark.parametrize(("name", "expected"), sorted(PLACES_SEEN.items()))
def test_place_filter_over_every_layer(app, world, name, expected):
    account = _account(world, name)
    seen = set()
    for spec in layers(app):
        table = spec.model.__table__
        seen |= set(
            world["session"].scalars(select(table.c.id).where(scope.layer_filter(account, spec)))
        )
        where, params = scope.place_sql(account, geom="l.geom", place_id="l.id")
        assert set(
            world["session"].scalars(text(f"SELECT l.id FROM {spec.table} l WHERE {where}"), params)
        ) == set(
            world["session"].scalars(
                select(table.c.id).where(scope.place_filter(account, table.c.geom, table.c.id))
            )
        )
    assert _names(world["places"], seen) == expected


def test_leaders_seen_are_self_and_those_answering_for_places_in_scope(app, world):
    session = world["session"]

    def seen(name):
        ids = session.scalars(
            select(Leader.id).where(
                scope.leader_filter(_account(world, name), layers(app), Leader.id)
            )
        ).all()
        return _names(world["leaders"], ids)

    assert seen("leader") == {"L1", "L3"}  # L3 is the community leader under L1 (in S1)
    assert seen("leader2") == {"L1", "L2"}  # L1 answers for R12, which enters S2
    assert seen("viewer") == {"L1", "L3"}
    assert seen("admin") == {"L1", "L2", "L3"}


def test_areas_seen_are_the_bound_area_and_below(world):
    session = world["session"]
    ids = session.scalars(
        select(AdminArea.id).where(scope.area_filter(_account(world, "viewer"), AdminArea.id))
    ).all()
    assert _names(world["areas"], ids) == {"S1", "C1"}
    assert scope.visible_area(session, _account(world, "viewer"), "320999002001") is None
    assert scope.visible_area(session, _account(world, "viewer_all"), "320999002001") is not None


def test_a_leader_guessing_another_streets_issue_id_gets_nothing(app, world):
    session = world["session"]
    leader = _account(world, "leader")
    assert scope.visible_issue(session, leader, world["issues"]["I2"]) is None
    assert scope.visible_issue(session, leader, world["issues"]["I3"]) is None
    assert scope.visible_issue(session, leader, world["issues"]["I1"]).id == world["issues"]["I1"]
    # Unknown and out-of-scope ids look the same.
    assert scope.visible_issue(session, leader, 10**12) is None
    place = scope.visible_place(session, leader, layers(app), world["places"]["G2"])
    assert place is None
    assert scope.visible_place(session, leader, layers(app), world["places"]["R12"]) is not None


def test_a_leader_account_bound_to_nothing_sees_nothing(world):
    session = world["session"]
    nobody = User(username="x", role="leader", active=True)
    assert session.scalars(select(Issue.id).where(scope.issue_filter(nobody))).all() == []
    assert scope.for_account(nobody).nothing


def test_a_deactivated_or_missing_account_sees_nothing(world):
    account = _account(world, "admin")
    account.active = False
    assert scope.for_account(account).nothing
    assert scope.for_account(None).nothing
    account.active = True


def test_a_leader_sees_the_issues_of_its_unit_it_may_act_on(world):
    """Any leader of the issue's unit may act on it (workflow.is_responsible), and the unit's
    contact and head are sent its messages: they see it too."""
    s = world["session"]
    unit = s.execute(text("INSERT INTO units (name) VALUES ('东城街道办') RETURNING id")).scalar()
    for leader in ("L1", "L2"):
        s.execute(
            text("UPDATE leaders SET unit_id = :u WHERE id = :id"),
            {"u": unit, "id": world["leaders"][leader]},
        )
    s.execute(
        text("UPDATE issues SET unit_id = :u WHERE id = :id"),
        {"u": unit, "id": world["issues"]["I2"]},
    )
    s.flush()
    account = _account(world, "leader_only")  # L1, no area: I2 is L2's, in S2
    ids = s.scalars(select(Issue.id).where(scope.issue_filter(account))).all()
    assert _names(world["issues"], ids) == {"I1", "I2", "I4"}
    where, params = scope.issue_sql(account, alias="i")
    rows = s.scalars(text(f"SELECT i.id FROM issues i WHERE {where}"), params).all()
    assert _names(world["issues"], rows) == {"I1", "I2", "I4"}


def test_a_units_supervisor_sees_its_issues_and_its_contact_is_one_of_its_leaders(world):
    """The 联点/分管领导 gets the unit's escalations: their account opens those issues. The
    unit contact gets its 交办: one of the unit's own leaders (who see them)."""
    import pytest

    from geoservice.notifications import manage
    from geoservice.service_errors import InvalidInput

    s = world["session"]
    unit = s.execute(text("INSERT INTO units (name) VALUES ('东城街道办') RETURNING id")).scalar()
    s.execute(text("UPDATE leaders SET unit_id = :u WHERE id = :id"),
              {"u": unit, "id": world["leaders"]["L2"]})  # fmt: skip
    s.execute(text("UPDATE issues SET unit_id = :u WHERE id = :id"),
              {"u": unit, "id": world["issues"]["I2"]})  # fmt: skip
    s.flush()
    account = _account(world, "leader_only")  # L1, no area: I2 is L2's, in S2

    def ids() -> set:
        found = s.scalars(select(Issue.id).where(scope.issue_filter(account))).all()
        return _names(world["issues"], found)

    assert "I2" not in ids()
    manage.set_unit_contacts(s, unit, None, world["leaders"]["L1"])  # L1 supervises the unit
    s.flush()
    assert "I2" in ids()
    with pytest.raises(InvalidInput):  # L1 is no leader of the unit
        manage.set_unit_contacts(s, unit, world["leaders"]["L1"], None)
