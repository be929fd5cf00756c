"""The closed loop through the API: every transition, every illegal one (409 listing the allowed
moves), roles (403), required notes and photos, dispatch, deadlines and overdue."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from geoservice.issues.workflow import TRANSITIONS, transitions_from
from geoservice.models import Issue, IssueEvent
from geoservice.vocab import ISSUE_STATUSES
from tests.issues.helpers import at, b64, counts, image_bytes


def new_issue(client, layout, x=100, y=100, who="inspector", **fields) -> int:
    body = {
        **at(x, y),
        "category": "环境卫生",
        "source": "暗访督查",
        "photos": [b64(image_bytes())],
        **fields,
    }
    response = client.post("/api/collections/issues/items", json=body, headers=layout.headers(who))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def move(client, layout, issue_id, who, to, **fields):
    return client.post(
        f"/api/issues/{issue_id}/transitions",
        json={"to": to, **fields},
        headers=layout.headers(who),
    )


def ok(response) -> dict:
    assert response.status_code == 200, response.get_json()
    return response.get_json()["properties"]


AFTER = [b64(image_bytes(color=(30, 200, 30)))]


def test_the_whole_loop_with_one_rework(client, layout, db_session):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    before = datetime.now(UTC)
    p = ok(move(client, layout, issue_id, "planner", "dispatched"))
    assert p["leader_id"] == layout.leaders["new"].id
    deadline = datetime.fromisoformat(p["deadline"])
    assert before + timedelta(hours=24) <= deadline <= datetime.now(UTC) + timedelta(hours=24)
    assert p["overdue"] is False
    ok(move(client, layout, issue_id, "leader_new", "in_progress"))
    p = ok(move(client, layout, issue_id, "leader_new", "fixed", note="已清理", photos=AFTER))
    assert [ph["kind"] for ph in p["photos"]] == ["before", "after"]
    p = ok(move(client, layout, issue_id, "planner", "in_progress", note="仍有垃圾残留"))
    assert p["rework_count"] == 1 and p["status"] == "in_progress"
    ok(move(client, layout, issue_id, "leader_new", "fixed", note="再次清理", photos=AFTER))
    p = ok(move(client, layout, issue_id, "planner", "closed"))
    assert p["status"] == "closed" and p["closed_at"]
    assert p["allowed_transitions"] == []
    steps = [(e["from"], e["to"], e["action"]) for e in p["timeline"]]
    assert steps == [
        (None, "reported", "report"),
        ("reported", "accepted", "accept"),
        ("accepted", "dispatched", "dispatch"),
        ("dispatched", "in_progress", "start"),
        ("in_progress", "fixed", "fix"),
        ("fixed", "in_progress", "rework"),
        ("in_progress", "fixed", "fix"),
        ("fixed", "closed", "verify"),
    ]
    actors = [e["actor"]["id"] for e in p["timeline"]]
    assert actors[1] == layout.user("planner").id
    assert actors[3] == layout.user("leader_new").id
    assert p["timeline"][5]["note"] == "仍有垃圾残留"
    assert p["timeline"][4]["photo_ids"] and p["timeline"][6]["photo_ids"]


def test_rejecting_needs_a_reason(client, layout, db_session):
    issue_id = new_issue(client, layout)
    before = counts(db_session)
    response = move(client, layout, issue_id, "planner", "rejected")
    assert response.status_code == 422 and response.get_json()["field"] == "note"
    assert counts(db_session) == before
    p = ok(move(client, layout, issue_id, "planner", "rejected", note="不属于创文范围"))
    assert p["status"] == "rejected" and p["timeline"][-1]["note"] == "不属于创文范围"


def put_in(db_session, issue_id: int, status: str) -> None:
    db_session.get(Issue, issue_id).status = status
    db_session.flush()


@pytest.mark.parametrize("status", list(ISSUE_STATUSES))
def test_every_illegal_move_is_409_with_the_allowed_ones(client, layout, db_session, status):
    issue_id = new_issue(client, layout)
    put_in(db_session, issue_id, status)
    allowed = {t.to_status for t in transitions_from(status)}
    for target in ISSUE_STATUSES:
        if target in allowed:
            continue
        before = counts(db_session)
        response = move(client, layout, issue_id, "admin", target, note="x", photos=AFTER)
        body = response.get_json()
        assert response.status_code == 409, (status, target, body)
        assert body["detail"]["status"] == status
        assert {a["to"] for a in body["detail"]["allowed"]} == allowed
        assert counts(db_session) == before
        assert db_session.get(Issue, issue_id).status == status


def test_each_listed_move_is_legal_from_its_state(client, layout, db_session):
    for t in TRANSITIONS:
        issue_id = new_issue(client, layout)
        put_in(db_session, issue_id, t.from_status)
        # 改派 names another leader (to the one already holding the issue it is refused).
        other = {"leader_id": layout.leaders["other"].id} if t.action == "redispatch" else {}
        p = ok(
            move(client, layout, issue_id, "admin", t.to_status, note="说明", photos=AFTER, **other)
        )
        assert p["status"] == t.to_status
        assert p["timeline"][-1]["action"] == t.action


def test_a_stale_move_is_409(client, layout):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted", **{"from": "reported"}))
    response = move(
        client, layout, issue_id, "planner", "rejected", note="x", **{"from": "reported"}
    )
    assert response.status_code == 409
    assert [a["to"] for a in response.get_json()["detail"]["allowed"]] == ["dispatched"]


def test_an_unknown_target_state_is_422(client, layout):
    issue_id = new_issue(client, layout)
    response = move(client, layout, issue_id, "planner", "done")
    assert response.status_code == 422 and response.get_json()["field"] == "to"
    assert move(client, layout, issue_id, "planner", "").status_code == 422


@pytest.mark.parametrize(
    ("status", "to", "who"),
    [
        ("reported", "accepted", "leader_new"),  # the responsible side does not triage
        ("reported", "accepted", "inspector"),
        ("reported", "accepted", "viewer"),
        ("reported", "accepted", "integration"),
        ("dispatched", "in_progress", "planner"),  # planners do not rectify for a leader
        ("fixed", "closed", "leader_new"),  # nobody verifies their own fix
        ("fixed", "in_progress", "leader_new"),
    ],
)
def test_the_wrong_role_is_403_and_nothing_changes(client, layout, db_session, status, to, who):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "admin", "accepted"))
    ok(move(client, layout, issue_id, "admin", "dispatched"))
    put_in(db_session, issue_id, status)
    before = counts(db_session)
    response = move(client, layout, issue_id, who, to, note="x", photos=AFTER)
    assert response.status_code == 403, response.get_json()
    assert not response.get_json()["error"].isascii()
    assert counts(db_session) == before
    assert db_session.get(Issue, issue_id).status == status


@pytest.mark.parametrize(
    ("status", "to", "who"),
    [
        ("dispatched", "in_progress", "leader_other"),  # another unit's leader
        ("in_progress", "fixed", "leader_road"),  # a leader, but of another place
    ],
)
def test_another_leader_cannot_even_see_the_issue(client, layout, db_session, status, to, who):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "admin", "accepted"))
    ok(move(client, layout, issue_id, "admin", "dispatched"))
    put_in(db_session, issue_id, status)
    before = counts(db_session)
    response = move(client, layout, issue_id, who, to, note="x", photos=AFTER)
    assert response.status_code == 404  # out of scope looks exactly like unknown
    assert client.get(f"/api/issues/{issue_id}", headers=layout.headers(who)).status_code == 404
    assert counts(db_session) == before


def test_a_leader_of_the_same_unit_may_act_for_the_responsible_leader(client, layout):
    issue_id = new_issue(client, layout)  # answered for by 李明 (县住建局)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    ok(move(client, layout, issue_id, "planner", "dispatched"))
    p = ok(move(client, layout, issue_id, "leader_old", "in_progress"))  # 王建国, 县住建局
    assert p["timeline"][-1]["actor"]["id"] == layout.user("leader_old").id


def test_the_caller_sees_only_the_moves_they_may_make(client, layout):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    ok(move(client, layout, issue_id, "planner", "dispatched"))
    url = f"/api/issues/{issue_id}"
    mine = client.get(url, headers=layout.headers("leader_new")).get_json()["properties"]
    viewer = client.get(url, headers=layout.headers("viewer")).get_json()["properties"]
    planner = client.get(url, headers=layout.headers("planner")).get_json()["properties"]
    assert [t["action"] for t in mine["allowed_transitions"]] == ["start"]
    assert viewer["allowed_transitions"] == []
    assert [t["action"] for t in planner["allowed_transitions"]] == ["redispatch"]


def test_fixing_needs_an_after_photo_and_a_note(client, layout, db_session, uploads):
    issue_id = new_issue(client, layout)
    for who, to in (
        ("planner", "accepted"),
        ("planner", "dispatched"),
        ("leader_new", "in_progress"),
    ):
        ok(move(client, layout, issue_id, who, to))
    before = counts(db_session)
    no_photo = move(client, layout, issue_id, "leader_new", "fixed", note="已整改")
    assert no_photo.status_code == 422 and no_photo.get_json()["field"] == "photos"
    no_note = move(client, layout, issue_id, "leader_new", "fixed", photos=AFTER)
    assert no_note.status_code == 422 and no_note.get_json()["field"] == "note"
    fake = move(client, layout, issue_id, "leader_new", "fixed", note="x", photos=[b64(b"GIF89a")])
    assert fake.status_code == 415
    assert counts(db_session) == before
    assert db_session.get(Issue, issue_id).status == "in_progress"


def test_an_unassigned_issue_is_dispatched_by_hand_and_leaves_the_queue(client, layout, db_session):
    issue_id = new_issue(client, layout, 1000, 1000)
    headers = layout.headers("planner")
    ok(move(client, layout, issue_id, "planner", "accepted"))
    response = move(client, layout, issue_id, "planner", "dispatched")
    assert response.status_code == 422 and response.get_json()["field"] == "leader_id"
    response = client.post(
        f"/api/issues/{issue_id}/dispatch", json={"leader_id": 987654}, headers=headers
    )  # an unknown leader: 404, as one outside the caller's area (they cannot be told apart)
    assert response.status_code == 404 and response.get_json()["field"] == "leader_id"
    assert db_session.get(Issue, issue_id).status == "accepted"
    road = layout.leaders["road"]
    p = ok(
        client.post(
            f"/api/issues/{issue_id}/dispatch",
            json={"leader_id": road.id, "note": "就近交办"},
            headers=headers,
        )
    )
    assert p["status"] == "dispatched" and p["leader_id"] == road.id
    assert p["unit_id"] == road.unit_id
    assert p["attribution"]["manual"]["leader_id"] == road.id
    assert "人工交办" in p["attribution"]["rule"]
    queue = client.get("/api/issues/unassigned", headers=headers).get_json()
    assert queue["numberMatched"] == 0
    # 陈道路 can now act on it.
    ok(move(client, layout, issue_id, "leader_road", "in_progress"))


def test_dispatching_a_reported_issue_from_the_queue_accepts_it_first(client, layout):
    issue_id = new_issue(client, layout, 265, 35)  # market nobody answers for
    p = ok(
        client.post(
            f"/api/issues/{issue_id}/dispatch",
            json={"leader_id": layout.leaders["other"].id},
            headers=layout.headers("planner"),
        )
    )
    assert [e["to"] for e in p["timeline"]] == ["reported", "accepted", "dispatched"]


def test_redispatch_moves_the_issue_to_another_leader_with_a_reason(client, layout, db_session):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    ok(move(client, layout, issue_id, "planner", "dispatched"))
    other = layout.leaders["other"]
    response = move(client, layout, issue_id, "planner", "dispatched", leader_id=other.id)
    assert response.status_code == 422 and response.get_json()["field"] == "note"
    p = ok(
        move(client, layout, issue_id, "planner", "dispatched", leader_id=other.id, note="非本单位")
    )
    assert p["leader_id"] == other.id
    assert p["timeline"][-1]["data"]["previous_leader_id"] == layout.leaders["new"].id
    assert move(client, layout, issue_id, "leader_new", "in_progress").status_code == 403
    ok(move(client, layout, issue_id, "leader_other", "in_progress"))


def test_redispatch_to_the_leader_already_holding_the_issue_is_refused(client, layout, db_session):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    ok(move(client, layout, issue_id, "planner", "dispatched"))
    before = counts(db_session)
    holder = layout.leaders["new"]
    for fields in ({"leader_id": holder.id}, {}):  # named, or left to the attributed one
        response = move(client, layout, issue_id, "planner", "dispatched", note="换人", **fields)
        body = response.get_json()
        assert response.status_code == 409 and body["field"] == "leader_id", body
        assert holder.name in body["error"]
    assert counts(db_session) == before


def test_the_queue_dispatch_refuses_an_issue_already_dispatched(client, layout, db_session):
    """交办 is from the queue: a second 交办 (another planner a moment later) is not a silent
    改派 — 409 naming the issue's state, nothing written."""
    issue_id = new_issue(client, layout, 265, 35)  # market nobody answers for
    headers = layout.headers("planner")
    first = layout.leaders["other"]
    ok(
        client.post(
            f"/api/issues/{issue_id}/dispatch", json={"leader_id": first.id}, headers=headers
        )
    )
    before = counts(db_session)
    response = client.post(
        f"/api/issues/{issue_id}/dispatch",
        json={"leader_id": layout.leaders["road"].id, "note": "交办"},
        headers=headers,
    )
    body = response.get_json()
    assert response.status_code == 409, body
    assert body["detail"]["status"] == "dispatched" and "改派" in body["error"]
    assert counts(db_session) == before
    assert db_session.get(Issue, issue_id).leader_id == first.id


def test_overdue_is_computed_and_listed(client, layout, db_session):
    late = new_issue(client, layout)
    on_time = new_issue(client, layout, 120, 120)
    for issue_id in (late, on_time):
        ok(move(client, layout, issue_id, "planner", "accepted"))
        ok(move(client, layout, issue_id, "planner", "dispatched"))
    db_session.get(Issue, late).deadline = datetime.now(UTC) - timedelta(hours=5)
    db_session.flush()
    p = client.get(f"/api/issues/{late}", headers=layout.headers("planner")).get_json()
    assert p["properties"]["overdue"] is True
    assert p["properties"]["overdue_hours"] == pytest.approx(5, abs=0.1)
    listed = client.get("/api/issues/overdue", headers=layout.headers("planner")).get_json()
    assert [i["id"] for i in listed["issues"]] == [late]
    mine = client.get("/api/issues/overdue", headers=layout.headers("leader_new")).get_json()
    assert [i["id"] for i in mine["issues"]] == [late]
    theirs = client.get("/api/issues/overdue", headers=layout.headers("leader_other")).get_json()
    assert theirs["issues"] == []
    # Starting late records it on the event. 超期未办结: a late fix stays overdue until it is
    # verified and closed (as on the map, on 我的包保 and in the rankings' 期末超期).
    p = ok(move(client, layout, late, "leader_new", "in_progress"))
    assert p["timeline"][-1]["data"]["overdue"] is True
    p = ok(move(client, layout, late, "leader_new", "fixed", note="已整改", photos=AFTER))
    assert p["overdue"] is True
    listed = client.get("/api/issues/overdue", headers=layout.headers("planner")).get_json()
    assert [i["id"] for i in listed["issues"]] == [late]
    filtered = client.get(
        "/api/collections/issues/items?overdue=true", headers=layout.headers("planner")
    ).get_json()
    assert [f["id"] for f in filtered["features"]] == [late]
    p = ok(move(client, layout, late, "planner", "closed"))
    assert p["overdue"] is False and p["timeline"][-1]["data"]["overdue"] is True  # closed late
    listed = client.get("/api/issues/overdue", headers=layout.headers("planner")).get_json()
    assert listed["issues"] == []


def test_every_state_change_is_an_event(client, layout, db_session):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    events = db_session.scalars(
        select(IssueEvent).where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.id)
    ).all()
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "reported"),
        ("reported", "accepted"),
    ]
    assert events[1].actor_id == layout.user("planner").id


def test_permission_and_state_are_checked_before_any_photo_is_decoded(
    client, layout, db_session, monkeypatch
):
    """Issue 13 §6: a caller who may not make the move had up to 9 large photos decoded first."""
    import geoservice.api.issues as api_issues

    issue_id = new_issue(client, layout)
    decoded = []
    real = api_issues.prepare_all
    monkeypatch.setattr(
        api_issues,
        "prepare_all",
        lambda uploads, *a, **k: decoded.append(1) or real(uploads, *a, **k),
    )
    junk = [b64(b"GIF89a" + b"\0" * 1000)] * 9  # would be a 415 if it were decoded
    # The inspector may not accept (403), nobody may fix a reported issue (409), an unknown
    # status is a 422, and a stale `from` is a 409: all before the photos.
    refused = move(client, layout, issue_id, "inspector", "accepted", photos=junk)
    assert refused.status_code == 403, refused.get_json()
    illegal = move(client, layout, issue_id, "planner", "fixed", note="x", photos=junk)
    assert illegal.status_code == 409, illegal.get_json()
    unknown = move(client, layout, issue_id, "planner", "nowhere", photos=junk)
    assert unknown.status_code == 422 and unknown.get_json()["field"] == "to"
    stale = move(client, layout, issue_id, "planner", "accepted", photos=junk, **{"from": "fixed"})
    assert stale.status_code == 409, stale.get_json()
    assert decoded == []
    # A move the caller may make still decodes (and here refuses) the photos.
    allowed = move(client, layout, issue_id, "planner", "accepted", photos=junk)
    assert allowed.status_code == 415 and decoded == [1]


def test_a_refused_move_on_a_running_issue_never_calls_it_finished(client, layout):
    issue_id = new_issue(client, layout)
    ok(move(client, layout, issue_id, "planner", "accepted"))
    ok(move(client, layout, issue_id, "planner", "dispatched"))
    ok(move(client, layout, issue_id, "leader_new", "in_progress"))
    refused = move(client, layout, issue_id, "planner", "dispatched", leader_id=1, note="改派")
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert "已办结" not in error and "暂无可执行的操作" in error
