"""Relapse (反弹) on report, duplicate suggestions and merging."""

from datetime import UTC, datetime, timedelta

import pytest

from geoservice.models import Issue
from tests.issues.helpers import at, b64, counts, image_bytes
from tests.issues.test_transitions import AFTER, move, new_issue, ok


def close(client, layout, issue_id):
    for who, to, extra in (
        ("planner", "accepted", {}),
        ("planner", "dispatched", {}),
        ("leader_new", "in_progress", {}),
        ("leader_new", "fixed", {"note": "已整改", "photos": AFTER}),
        ("planner", "closed", {}),
    ):
        ok(move(client, layout, issue_id, who, to, **extra))


def view(client, layout, issue_id, who="planner"):
    return client.get(f"/api/issues/{issue_id}", headers=layout.headers(who)).get_json()[
        "properties"
    ]


def report(client, layout, x, y, **fields):
    issue_id = new_issue(client, layout, x, y, **fields)
    return view(client, layout, issue_id)


def test_a_closed_issue_reappearing_nearby_is_a_relapse(client, layout):
    original = new_issue(client, layout, 100, 100)
    close(client, layout, original)
    relapse = report(client, layout, 110, 100)
    assert relapse["relapse_of_id"] == original
    event = relapse["timeline"][-1]
    assert event["action"] == "relapse" and event["data"]["relapse_of"] == original
    assert event["data"]["distance_m"] == pytest.approx(10, abs=1)
    assert "反弹" in event["note"]
    assert view(client, layout, original)["timeline"][-1]["data"] == {
        "action": "relapsed",
        "relapse": relapse["id"],
    }


def test_not_a_relapse_when_category_distance_or_window_differ(client, layout, db_session):
    original = new_issue(client, layout, 100, 100)
    close(client, layout, original)
    assert report(client, layout, 110, 100, category="车辆违停")["relapse_of_id"] is None
    assert report(client, layout, 100, 170)["relapse_of_id"] is None  # 70 m away
    db_session.get(Issue, original).closed_at -= timedelta(days=31)
    db_session.flush()
    assert report(client, layout, 100, 100)["relapse_of_id"] is None


def test_an_open_issue_is_not_a_relapse_but_a_duplicate_candidate(client, layout):
    first = new_issue(client, layout, 100, 100)
    second = report(client, layout, 120, 100)
    assert second["relapse_of_id"] is None
    candidates = second["duplicate_candidates"]
    assert [c["id"] for c in candidates] == [first]
    assert candidates[0]["distance_m"] == pytest.approx(20, abs=1)


def test_duplicate_candidates_need_same_category_radius_and_window(client, layout, db_session):
    first = new_issue(client, layout, 100, 100)
    db_session.get(Issue, first).reported_at -= timedelta(days=10)
    db_session.flush()
    near_in_time = new_issue(client, layout, 130, 100)
    other_category = new_issue(client, layout, 100, 100, category="乱贴乱画")
    far = new_issue(client, layout, 100, 150)  # 40 m from `this`
    too_far = new_issue(client, layout, 100, 175)  # 65 m from `this`
    this = report(client, layout, 100, 110)
    found = [c["id"] for c in this["duplicate_candidates"]]
    assert near_in_time in found and far in found and too_far not in found
    assert first not in found  # reported 10 days earlier: outside the 7-day window
    assert other_category not in found
    far_view = client.get(f"/api/issues/{far}/duplicates", headers=layout.headers("planner"))
    assert [c["id"] for c in far_view.get_json()["candidates"]] == [too_far, this["id"]]


def merge(client, layout, issue_id, into, who="planner", note="同一处垃圾"):
    return client.post(
        f"/api/issues/{issue_id}/merge",
        json={"into": into, "note": note},
        headers=layout.headers(who),
    )


def test_merging_keeps_the_duplicate_and_points_it_to_the_master(client, layout, db_session):
    master = new_issue(client, layout, 100, 100)
    duplicate = new_issue(client, layout, 110, 100)
    p = ok(merge(client, layout, duplicate, master))
    assert p["duplicate_of_id"] == master and p["status"] == "rejected"
    assert p["timeline"][-1]["data"] == {"action": "merge", "into": master}
    assert "同一处垃圾" in p["timeline"][-1]["note"]
    assert len(p["photos"]) == 1  # its own photos stay with it
    m = view(client, layout, master)
    assert m["duplicates"] == [duplicate]
    assert m["timeline"][-1]["data"] == {"action": "merged", "duplicate": duplicate}
    assert m["status"] == "reported"
    assert duplicate not in [c["id"] for c in m["duplicate_candidates"]]


def test_merges_that_make_no_sense_are_refused(client, layout, db_session):
    master = new_issue(client, layout, 100, 100)
    duplicate = new_issue(client, layout, 110, 100)
    closed = new_issue(client, layout, 120, 100)
    close(client, layout, closed)
    dispatched = new_issue(client, layout, 130, 100)
    ok(move(client, layout, dispatched, "planner", "accepted"))
    ok(move(client, layout, dispatched, "planner", "dispatched"))
    before = counts(db_session)
    assert merge(client, layout, duplicate, duplicate).status_code == 422
    assert merge(client, layout, duplicate, closed).status_code == 409
    assert merge(client, layout, dispatched, master).status_code == 409
    assert merge(client, layout, duplicate, 999999).status_code == 404
    assert merge(client, layout, duplicate, master, who="leader_new").status_code == 403
    assert merge(client, layout, duplicate, master, who="inspector").status_code == 403
    response = client.post(
        f"/api/issues/{duplicate}/merge", json={"note": "x"}, headers=layout.headers("planner")
    )
    assert response.status_code == 422 and response.get_json()["field"] == "into"
    assert counts(db_session) == before
    ok(merge(client, layout, duplicate, master))
    assert merge(client, layout, duplicate, master).status_code == 409  # already merged
    third = new_issue(client, layout, 100, 105)
    response = merge(client, layout, third, duplicate)  # into a duplicate: name the master
    assert response.status_code == 409 and f"#{master}" in response.get_json()["error"]
    # A master that has duplicates is not merged away: they would point at a closed issue.
    chained = merge(client, layout, master, third)
    assert chained.status_code == 409 and chained.get_json()["detail"]["duplicates"] == [duplicate]
    assert view(client, layout, master)["status"] == "reported"


def test_the_reports_own_answer_has_the_relapse_and_candidates_its_page_shows(client, layout):
    """The 201 answer takes the relapse check and the duplicate candidates from one statement
    (create_issue(with_candidates=True)); they are the ones the issue's page then shows to
    the same account."""
    original = new_issue(client, layout, 100, 100)
    close(client, layout, original)
    open_one = new_issue(client, layout, 130, 100)
    body = {
        **at(110, 100),
        "category": "环境卫生",
        "source": "暗访督查",
        "photos": [b64(image_bytes())],
    }
    response = client.post(
        "/api/collections/issues/items", json=body, headers=layout.headers("inspector")
    )
    assert response.status_code == 201, response.get_json()
    answered = response.get_json()["properties"]
    shown = view(client, layout, answered["id"], who="inspector")
    assert answered["relapse_of_id"] == original == shown["relapse_of_id"]
    assert [c["id"] for c in answered["duplicate_candidates"]] == [open_one]
    assert answered["duplicate_candidates"] == shown["duplicate_candidates"]
    # Its timeline too: the report event, then the relapse event written with it (in that
    # order), the distance on the ellipsoid as the page shows it; and its photo.
    assert [e["action"] for e in answered["timeline"]] == ["report", "relapse"]
    assert answered["timeline"] == shown["timeline"]
    assert answered["photos"] == shown["photos"] and len(answered["photos"]) == 1
    assert answered["timeline"][1]["data"]["distance_m"] == pytest.approx(10, abs=1)


@pytest.mark.parametrize(("relapse_m", "duplicate_m"), [(80.0, 30.0), (30.0, 80.0)])
def test_one_lookup_for_both_checks_keeps_each_radius(
    app, client, layout, db_session, relapse_m, duplicate_m
):
    """The report's statement looks the near issues up once, within the larger radius, then
    keeps each check's own: it answers what the two separate checks answer."""
    from dataclasses import replace

    from geoservice.issues.issues import (
        _relapse_and_candidates,
        duplicate_candidates,
        find_relapse_origin,
    )
    from geoservice.issues.workflow import IssueSettings

    original = new_issue(client, layout, 100, 100)  # 60 m from the new one
    close(client, layout, original)
    opens = [new_issue(client, layout, 160 + d, 100) for d in (20, 45, 70)]
    this = db_session.get(Issue, new_issue(client, layout, 160, 100))
    settings = replace(
        IssueSettings.from_config(app.config),
        relapse_radius_m=relapse_m,
        duplicate_radius_m=duplicate_m,
    )
    relapse, candidates = _relapse_and_candidates(db_session, settings, this, None)
    relapse = relapse.original_id if relapse is not None else None
    assert relapse == find_relapse_origin(db_session, settings, this)
    assert candidates == duplicate_candidates(db_session, settings, this.id)
    assert relapse == (original if relapse_m > 60 else None)
    assert [c["id"] for c in candidates] == [
        i for i, d in zip(opens, (20, 45, 70), strict=True) if d < duplicate_m
    ]


def test_an_intake_without_candidates_links_a_relapse_as_the_api_does(
    app, client, layout, db_session
):
    """12345, Open311, citizens and patrols report through create_issue without duplicate
    candidates: the relapse check alone, the link written with the new row and the two events
    (on the relapse, then on its original) as for an API report."""
    from geoservice.issues.issues import Report, create_issue
    from geoservice.ranking import vocabularies
    from tests.factories import LAYERS

    original = new_issue(client, layout, 100, 100)
    close(client, layout, original)
    settings = vocabularies.issue_settings(db_session, app.config, datetime.now(UTC))
    point = at(112, 100)
    report = Report(category="环境卫生", source="12345热线", **point)
    issue = create_issue(db_session, LAYERS, settings, report, None)
    db_session.commit()
    assert issue.relapse_of_id == original
    shown = view(client, layout, issue.id)
    assert [e["action"] for e in shown["timeline"]] == ["report", "relapse"]
    assert shown["timeline"][1]["data"]["distance_m"] == pytest.approx(12, abs=1)
    assert f"（{shown['timeline'][1]['data']['distance_m']} 米）" in shown["timeline"][1]["note"]
    assert view(client, layout, original)["timeline"][-1]["data"] == {
        "action": "relapsed",
        "relapse": issue.id,
    }


def test_the_nearby_check_is_prepared_once_per_connection(client, layout, db_session):
    """The relapse and duplicate check is parsed once per connection: the first report
    prepares it (db.execute_prepared), the next ones execute it."""
    from sqlalchemy import text

    def prepared() -> int:
        return db_session.execute(
            text(
                "SELECT count(*) FROM pg_prepared_statements"
                " WHERE statement LIKE '%relapse_near%' AND statement LIKE 'PREPARE%'"
            )
        ).scalar_one()

    first = new_issue(client, layout, 100, 100)
    after_first = prepared()
    assert after_first >= 1
    second = report(client, layout, 120, 100)
    new_issue(client, layout, 140, 100)
    assert prepared() == after_first
    assert [c["id"] for c in second["duplicate_candidates"]] == [first]


def test_a_leaders_duplicate_candidates_are_only_near_ones_and_never_the_issue_itself(
    client, layout
):
    """A leader's scope is a disjunction (their own issues, their places', their grids'):
    the candidates are still only the open issues within the radius, and not the issue."""
    this = new_issue(client, layout, 600, 200)  # on 人民路, 陈道路's road
    near = new_issue(client, layout, 620, 200)
    far = new_issue(client, layout, 880, 200)  # on the same road, 280 m away
    headers = layout.headers("leader_road")
    assert client.get(f"/api/issues/{far}", headers=headers).status_code == 200
    found = client.get(f"/api/issues/{this}/duplicates", headers=headers).get_json()
    assert [c["id"] for c in found["candidates"]] == [near]
    page = client.get(f"/api/issues/{this}", headers=headers).get_json()["properties"]
    assert [c["id"] for c in page["duplicate_candidates"]] == [near]
