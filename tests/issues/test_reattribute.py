"""Re-attribution after layers or assignments change: one event per changed issue."""

from datetime import UTC, datetime

from sqlalchemy import select

from geoservice.issues.issues import reattribute
from geoservice.models import Assignment, Issue, IssueEvent
from tests.factories import LAYERS, add_feature, assign, rect
from tests.issues.test_transitions import move, new_issue, ok

SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def events_of(db_session, issue_id, action):
    return db_session.scalars(
        select(IssueEvent).where(
            IssueEvent.issue_id == issue_id, IssueEvent.data["action"].astext == action
        )
    ).all()


def test_a_new_leader_for_a_place_reaches_its_unassigned_issues(client, layout, db_session):
    in_market = new_issue(client, layout, 265, 35)  # the market nobody answers for
    in_compound = new_issue(client, layout, 100, 100)
    market = layout.places["market"]
    assign(db_session, layout.leaders["other"], market, SINCE, role="点长")
    report = reattribute(db_session, LAYERS, SINCE)
    assert (report.checked, report.changed) == (2, 1)
    issue = db_session.get(Issue, in_market)
    db_session.refresh(issue)
    assert issue.leader_id == layout.leaders["other"].id
    (event,) = events_of(db_session, in_market, "reattribute")
    assert event.data["before"]["leader_id"] is None
    assert event.data["after"]["leader_id"] == layout.leaders["other"].id
    assert event.from_status == event.to_status == "reported"
    assert events_of(db_session, in_compound, "reattribute") == []


def test_a_new_feature_takes_over_the_points_it_covers(client, layout, db_session):
    issue_id = new_issue(client, layout, 600, 300)  # in grid G2 only
    new_compound = add_feature(
        db_session, "compound", "C2", rect(550, 250, 650, 350), compound_type="新建小区"
    )
    report = reattribute(db_session, LAYERS, SINCE)
    assert report.changed == 1
    issue = db_session.get(Issue, issue_id)
    db_session.refresh(issue)
    assert issue.primary_place_id == new_compound.id
    assert issue.grid_id == layout.places["g2"].id
    assert issue.leader_id is None  # nobody answers for the new compound yet
    assert "待派遣" in events_of(db_session, issue_id, "reattribute")[0].note


def test_manual_dispatch_and_older_issues_are_left_alone(client, layout, db_session):
    manual = new_issue(client, layout, 1000, 1000)
    ok(
        client.post(
            f"/api/issues/{manual}/dispatch",
            json={"leader_id": layout.leaders["road"].id},
            headers=layout.headers("planner"),
        )
    )
    old = new_issue(client, layout, 265, 35, "planner", reported_at="2025-12-01T10:00:00+08:00")
    assign(db_session, layout.leaders["other"], layout.places["market"], SINCE, role="点长")
    report = reattribute(db_session, LAYERS, SINCE)
    assert report.skipped_manual == 1 and report.changed == 0
    assert db_session.get(Issue, manual).leader_id == layout.leaders["road"].id
    assert db_session.get(Issue, old).leader_id is None


def test_open_only_skips_closed_issues(client, layout, db_session):
    issue_id = new_issue(client, layout, 265, 35)
    ok(move(client, layout, issue_id, "planner", "rejected", note="不属于范围"))
    assign(db_session, layout.leaders["other"], layout.places["market"], SINCE, role="点长")
    assert reattribute(db_session, LAYERS, SINCE, open_only=True).checked == 0
    assert reattribute(db_session, LAYERS, SINCE).changed == 1


def test_the_cli_reports_what_changed(app, client, layout, db_session):
    issue_id = new_issue(client, layout, 265, 35)
    assign(db_session, layout.leaders["other"], layout.places["market"], SINCE, role="点长")
    db_session.flush()
    result = app.test_cli_runner().invoke(args=["reattribute", "--since", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "检查 1 件，归属变化 1 件" in result.output
    assert len(events_of(db_session, issue_id, "reattribute")) == 1
    bad = app.test_cli_runner().invoke(args=["reattribute", "--since", "last week"])
    assert bad.exit_code != 0
    assert db_session.scalar(select(Assignment.id).limit(1)) is not None
