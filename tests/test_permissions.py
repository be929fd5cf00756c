"""The permission table and token scopes (geoservice.accounts.permissions)."""

import pytest

from geoservice.accounts.permissions import (
    ACTIONS,
    ANY_COLLECTION,
    ROLE_ACTIONS,
    ScopeSyntaxError,
    actions_for,
    allowed,
    parse_scope,
)
from geoservice.vocab import USER_ROLES


def test_every_role_has_a_row_and_every_granted_action_exists():
    assert set(ROLE_ACTIONS) == set(USER_ROLES)
    for actions in ROLE_ACTIONS.values():
        assert actions <= set(ACTIONS)
    assert ROLE_ACTIONS["admin"] == frozenset(ACTIONS)


@pytest.mark.parametrize(
    ("role", "action", "expected"),
    [
        ("planner", "layers.write", True),
        ("planner", "users.admin", False),
        ("leader", "issues.fix", True),
        ("leader", "issues.dispatch", False),
        ("inspector", "issues.report", True),
        ("inspector", "rankings.read", False),
        ("viewer", "issues.report", False),
        ("viewer", "layers.read", True),
        ("admin", "audit.read", True),
        ("planner", "audit.read", False),
    ],
)
def test_role_table(role, action, expected):
    assert allowed(role, action) is expected


def test_an_unknown_action_is_a_programming_error_not_a_silent_no():
    with pytest.raises(KeyError):
        allowed("admin", "layers.delete_everything")


def test_token_scopes_narrow_but_never_widen_a_role():
    scopes = ["layers.read:grids", "issues.report", "users.admin"]
    assert allowed("viewer", "layers.read", "grids", scopes, via_token=True)
    assert not allowed("viewer", "layers.read", "roads", scopes, via_token=True)
    assert not allowed("viewer", "issues.read", None, scopes, via_token=True)
    # users.admin is in the scopes but not in the viewer's role.
    assert not allowed("viewer", "users.admin", None, scopes, via_token=True)
    assert allowed("planner", "issues.report", None, scopes, via_token=True)


def test_integration_tokens_do_only_what_their_scopes_list():
    assert not allowed("integration", "layers.read", "grids", None, via_token=True)
    assert allowed("integration", "layers.read", "grids", ["layers.read"], via_token=True)
    assert allowed("integration", "layers.read", "roads", ["*"], via_token=True)
    # Unscoped tokens of other roles carry the whole role.
    assert allowed("viewer", "layers.read", "roads", None, via_token=True)
    assert actions_for("integration", None, via_token=True) == []
    assert actions_for("integration", ["issues.report"], via_token=True) == ["issues.report"]


@pytest.mark.parametrize("bad", ["layers.delete", "layers.read:", "nonsense", ":grids"])
def test_malformed_scopes_are_refused(bad):
    with pytest.raises(ScopeSyntaxError):
        parse_scope(bad)


def test_a_check_naming_no_collection_needs_an_unscoped_grant():
    """Issue 13 §3: `layers.write:roads` passed every check that named no collection."""
    roads = ["layers.write:roads"]
    assert allowed("admin", "layers.write", "roads", roads, via_token=True)
    assert not allowed("admin", "layers.write", "grids", roads, via_token=True)
    assert not allowed("admin", "layers.write", None, roads, via_token=True)
    assert allowed("admin", "layers.write", ANY_COLLECTION, roads, via_token=True)
    assert allowed("admin", "layers.write", None, ["layers.write"], via_token=True)
    assert not allowed("admin", "areas.write", None, roads, via_token=True)
    assert not allowed("admin", "areas.write", None, ["areas.write:roads"], via_token=True)
    assert allowed("admin", "areas.write", None, ["areas.write"], via_token=True)


def test_only_admins_and_planners_may_redraw_admin_areas():
    holders = {role for role, actions in ROLE_ACTIONS.items() if "areas.write" in actions}
    assert holders == {"admin", "planner"}
