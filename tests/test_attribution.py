"""Attribution of issue points to places and leaders, on a constructed layout.

Layout (metres from the origin): a grid 0..400 × 0..400; a compound 50..150 × 50..150 inside
it; a 主干道 along y = 200 (claims within 40 m); a 背街小巷 along x = 300 (15 m); a market
250..280 × 20..50.
"""

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from geoservice.issues.attribution import attribute_issues
from tests.factories import LAYERS, add_feature, add_issue, add_leader, assign, line, rect

T0 = datetime(2026, 10, 1, tzinfo=UTC)
T1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 15, tzinfo=UTC)


@pytest.fixture
def layout(db_session):
    s = db_session
    places = {
        "grid": add_feature(s, "grid", "320999001001001", rect(0, 0, 400, 400)),
        "compound": add_feature(
            s, "compound", "C1", rect(50, 50, 150, 150), compound_type="老旧小区"
        ),
        "main_road": add_feature(s, "road", "R1", line((-100, 200), (500, 200)), grade="主干道"),
        "lane": add_feature(s, "road", "R2", line((300, -100), (300, 500)), grade="背街小巷"),
        "market": add_feature(s, "market", "M1", rect(250, 20, 280, 50)),
    }
    return places


def attribute(session, issue):
    attribute_issues(session, LAYERS, issue.id, issue.id)
    session.expire(issue)
    return issue


def claimed_layers(issue):
    return [(p["layer"], p["distance_m"]) for p in issue.attribution["places"]]


def test_inside_a_compound_the_compound_wins_over_the_grid(db_session, layout):
    issue = attribute(db_session, add_issue(db_session, 100, 100, NOW))
    assert issue.primary_place_id == layout["compound"].id
    assert issue.grid_id == layout["grid"].id
    assert [layer for layer, _ in claimed_layers(issue)] == ["compound", "grid"]


def test_near_a_main_road_the_road_claims_within_its_grade_tolerance(db_session, layout):
    issue = attribute(db_session, add_issue(db_session, 20, 230, NOW))  # 30 m from 主干道
    assert issue.primary_place_id == layout["main_road"].id
    (road,) = [p for p in issue.attribution["places"] if p["layer"] == "road"]
    assert road["distance_m"] == pytest.approx(30, abs=1)
    assert road["rule"].startswith("within 40")


def test_a_lane_claims_only_15_metres(db_session, layout):
    near = attribute(db_session, add_issue(db_session, 310, 350, NOW))  # 10 m from the lane
    far = attribute(db_session, add_issue(db_session, 325, 350, NOW))  # 25 m
    assert near.primary_place_id == layout["lane"].id
    assert far.primary_place_id == layout["grid"].id


def test_within_tolerance_of_two_roads_the_nearer_road_is_primary(db_session, layout):
    issue = attribute(db_session, add_issue(db_session, 305, 190, NOW))  # 5 m lane, 10 m road
    assert issue.primary_place_id == layout["lane"].id
    roads = [p for p in issue.attribution["places"] if p["layer"] == "road"]
    assert len(roads) == 2


def test_a_point_on_the_grid_boundary_belongs_to_the_grid(db_session, layout):
    issue = attribute(db_session, add_issue(db_session, 400, 100, NOW))
    assert issue.grid_id == layout["grid"].id


def test_outside_everything_goes_to_the_unassigned_queue(db_session, layout):
    issue = attribute(db_session, add_issue(db_session, 2000, 2000, NOW))
    assert issue.primary_place_id is None
    assert issue.leader_id is None
    assert issue.attribution == {"places": [], "unassigned": True}


def test_the_leader_at_report_time_is_kept_after_reassignment(db_session, layout):
    old = add_leader(db_session, "王建国")
    new = add_leader(db_session, "李明")
    assign(db_session, old, layout["compound"], T0, T1)
    assign(db_session, new, layout["compound"], T1)
    before = attribute(
        db_session, add_issue(db_session, 100, 100, datetime(2026, 10, 20, tzinfo=UTC))
    )
    after = attribute(db_session, add_issue(db_session, 100, 100, NOW))
    assert before.leader_id == old.id
    assert after.leader_id == new.id
    assert before.unit_id == old.unit_id
    assert before.attribution["unassigned"] is False


def test_a_place_without_a_leader_leaves_the_issue_unassigned(db_session, layout):
    leader = add_leader(db_session, "张伟")
    assign(db_session, leader, layout["grid"], T0)
    issue = attribute(db_session, add_issue(db_session, 100, 100, NOW))  # compound has nobody
    assert issue.primary_place_id == layout["compound"].id
    assert issue.leader_id is None
    assert issue.attribution["unassigned"] is True
    grid_claim = next(p for p in issue.attribution["places"] if p["layer"] == "grid")
    assert grid_claim["leader_id"] == leader.id


def test_road_claims_use_the_geography_index(db_session, layout):
    db_session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        db_session.scalars(
            text(
                "EXPLAIN SELECT id FROM roads l WHERE ST_DWithin(l.geom::geography,"
                " ST_SetSRID(ST_MakePoint(120.26, 33.78), 4326)::geography, 40)"
            )
        )
    )
    assert "ix_roads_geog" in plan
