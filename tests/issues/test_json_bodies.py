"""JSON bodies as integrations send them, broken: what is not JSON, or not the type a field
takes, is refused with a 4xx naming it — never a 500, never read as "no changes", never stored
as Python's spelling of it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from geoservice.models import Assignment, Issue, IssueEvent, Leader
from tests.issues.test_transitions import new_issue


def post_raw(client, headers, path, body: str, content_type="application/json"):
    return client.post(path, data=body, headers={**headers, "Content-Type": content_type})


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"at": "2027-06-01"', "application/json", 400),  # the closing brace lost
        ('"2027-06-01"', "application/json", 400),
        ("[]", "application/json", 400),
        ('{"at": "2027-06-01"}', "text/plain", 400),  # the 包保 family's (docs/api.md)
    ],
)
def test_a_broken_body_never_ends_a_leaders_duties_now(
    client, layout, db_session, body, content_type, status
):
    planner = layout.headers("planner")
    leader = layout.leaders["road"]
    held = select(Assignment).where(
        Assignment.leader_id == leader.id, Assignment.valid_to.is_(None)
    )
    assignment = db_session.scalars(held).first()

    ending = post_raw(client, planner, f"/api/assignments/{assignment.id}/end", body, content_type)
    stopping = post_raw(client, planner, f"/api/leaders/{leader.id}/deactivate", body, content_type)

    assert (ending.status_code, stopping.status_code) == (status, status)
    assert "JSON" in ending.get_json()["error"]
    db_session.expire_all()
    assert db_session.get(Leader, leader.id).active is True
    assert len(db_session.scalars(held).all()) == 2
    # No body at all still means "now", as documented.
    assert post_raw(client, planner, f"/api/assignments/{assignment.id}/end", "").status_code == 200


def test_json_nested_past_the_parser_is_a_400_not_a_500(client, layout):
    deep = "[" * 5000 + "]" * 5000
    for path in ("/api/units", "/api/collections/issues/items", "/api/assessment/rounds"):
        refused = post_raw(client, layout.headers("admin"), path, deep)
        assert refused.status_code == 400, path
        assert refused.get_json()["detail"] == "JSON 嵌套层级过深"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_json_has_no_word_for_are_refused_as_json(client, layout, db_session, number):
    issue_id = new_issue(client, layout)
    planner = layout.headers("planner")
    dispatch = post_raw(
        client, planner, f"/api/issues/{issue_id}/dispatch", f'{{"leader_id": {number}}}'
    )
    note = post_raw(
        client,
        planner,
        f"/api/issues/{issue_id}/transitions",
        f'{{"to": "rejected", "note": {number}}}',
    )
    report = post_raw(
        client,
        layout.headers("inspector"),
        "/api/collections/issues/items",
        json.dumps({"lon": 0, "lat": 0, "category": "环境卫生", "source": "暗访督查"})[:-1]
        + f', "severity": {number}}}',
    )
    for refused in (dispatch, note, report):
        assert refused.status_code == 400 and refused.get_json()["error"].startswith("请求体")
    assert db_session.get(Issue, issue_id).status == "reported"


def test_a_fraction_is_no_leader_id_and_no_severity(client, layout, db_session):
    issue_id = new_issue(client, layout)
    grid_leader = layout.leaders["grid"].id
    planner = layout.headers("planner")
    dispatch = client.post(
        f"/api/issues/{issue_id}/dispatch", json={"leader_id": grid_leader + 0.9}, headers=planner
    )
    assert dispatch.status_code == 422 and dispatch.get_json()["field"] == "leader_id"
    assert db_session.get(Issue, issue_id).status == "reported"
    whole = client.post(
        f"/api/issues/{issue_id}/dispatch", json={"leader_id": float(grid_leader)}, headers=planner
    )
    assert whole.status_code == 200  # 7.0 is the number 7
    refused = client.post(
        "/api/collections/issues/items",
        json={"lon": 0, "lat": 0, "category": "环境卫生", "source": "暗访督查", "severity": 2.9},
        headers=planner,
    )
    assert refused.status_code == 422 and refused.get_json()["field"] == "severity"


def test_text_fields_refuse_objects_lists_and_numbers(client, layout, db_session):
    issue_id = new_issue(client, layout)
    planner = layout.headers("planner")
    note = client.post(
        f"/api/issues/{issue_id}/transitions",
        json={"to": "rejected", "note": {"a": 1}},
        headers=planner,
    )
    assert note.status_code == 422 and note.get_json()["field"] == "note"
    assert '{"a": 1}' in note.get_json()["error"]  # as it was sent, not Python's {'a': 1}
    description = client.post(
        "/api/collections/issues/items",
        json={"lon": 0, "lat": 0, "category": "环境卫生", "source": "暗访督查", "description": 0},
        headers=planner,
    )
    assert description.status_code == 422 and description.get_json()["field"] == "description"
    reported_at = client.post(
        "/api/collections/issues/items",
        json={"lon": 0, "lat": 0, "category": "环境卫生", "source": "暗访督查", "reported_at": 0},
        headers=planner,
    )
    assert reported_at.status_code == 422  # not "now"
    events = select(IssueEvent).where(IssueEvent.issue_id == issue_id)
    assert [e.to_status for e in db_session.scalars(events)] == ["reported"]


def test_a_report_time_outside_the_service_years_is_refused(client, layout):
    body = {"lon": 0, "lat": 0, "category": "环境卫生", "source": "暗访督查"}
    for when in ("1899-12-31T16:00:00Z", "1969-12-31T00:00:00+08:00"):
        refused = client.post(
            "/api/collections/issues/items",
            json={**body, "reported_at": when},
            headers=layout.headers("planner"),
        )
        assert refused.status_code == 422 and refused.get_json()["field"] == "reported_at"
