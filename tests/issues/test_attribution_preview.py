"""`GET /api/attribution`: who answers for a spot before an issue exists. It must say exactly
what a report at that spot then stores, refuse what a report refuses, and write nothing."""

import json

import pytest

from geoservice.coords import wgs84_to_gcj02
from geoservice.models import Issue
from tests.issues.helpers import at, counts
from tests.issues.test_report import report

URL = "/api/attribution"


def preview(client, layout, x, y, who="inspector", **params):
    return client.get(URL, query_string={**at(x, y), **params}, headers=layout.headers(who))


@pytest.mark.parametrize(
    ("x", "y", "when"),
    [
        (100, 170, "2015-11-10T09:00:00+08:00"),  # compound + main road + grid, new leader
        (100, 100, "2015-10-20T09:00:00+08:00"),  # the same compound, the previous leader
        (305, 190, "2015-11-10T09:00:00+08:00"),  # two roads: the nearer wins
        (400, 300, "2015-11-10T09:00:00+08:00"),  # on the edge of two grids
        (265, 35, "2015-11-10T09:00:00+08:00"),  # a market nobody answers for
        (1000, 1000, "2015-11-10T09:00:00+08:00"),  # claimed by nothing
    ],
)
def test_the_preview_equals_the_attribution_stored_by_a_report_there(
    client, layout, db_session, x, y, when
):
    shown = preview(client, layout, x, y, who="planner", at=when)
    assert shown.status_code == 200, shown.get_json()
    before = shown.get_json()
    created = report(client, layout, x, y, who="planner", reported_at=when)
    assert created.status_code == 201, created.get_json()
    p = created.get_json()["properties"]
    assert before["attribution"] == p["attribution"]
    for column in ("primary_place_id", "grid_id", "leader_id", "unit_id"):
        assert before[column] == p[column], column
    issue = db_session.get(Issue, p["id"])
    assert (before["leader_id"], before["primary_place_id"]) == (
        issue.leader_id,
        issue.primary_place_id,
    )
    assert before["at_local"] == p["reported_at_local"]


def test_the_preview_names_places_leader_unit_and_reason(client, layout):
    body = preview(client, layout, 100, 170, at="2015-11-10T09:00:00+08:00").get_json()
    a = body["attribution"]
    assert [(c["layer"], c["name"]) for c in a["places"]] == [
        ("compound", "阳光小区"),
        ("road", "人民路"),
        ("grid", "320999001001001"),
    ]
    assert a["places"][1]["distance_m"] == pytest.approx(30, abs=1)
    assert "40 米认领范围" in a["places"][1]["rule_text"]
    assert a["primary_place"]["code"] == "C1"
    assert a["leader"]["name"] == "李明" and a["unit"]["name"] == "县住建局"
    assert a["unassigned"] is False
    assert "阳光小区" in a["rule"] and "李明" in a["rule"]
    assert body["point"]["coordinates"] == pytest.approx(list(at(100, 170).values()))


def test_without_at_the_preview_answers_for_now(client, layout):
    a = preview(client, layout, 100, 100).get_json()["attribution"]
    assert a["leader"]["name"] == "李明"  # the assignment valid today, not 王建国's


def test_an_unclaimed_spot_goes_to_the_queue(client, layout):
    a = preview(client, layout, 1000, 1000).get_json()["attribution"]
    assert a["places"] == [] and a["unassigned"] and a["reason"] == "no_place"
    assert "待派遣队列" in a["rule"]


def test_gcj02_input_is_converted_like_a_report(client, layout):
    lon, lat = at(100, 100).values()
    glon, glat = wgs84_to_gcj02(lon, lat)
    body = client.get(
        URL,
        query_string={"lon": glon, "lat": glat, "coord_sys": "gcj02"},
        headers=layout.headers("inspector"),
    ).get_json()
    assert body["attribution"]["primary_place"]["name"] == "阳光小区"
    assert body["point"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)
    assert body["input"] == {"coord_sys": "gcj02", "lon": glon, "lat": glat}


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"lon": None}, 400, "lon"),
        ({"lat": None}, 400, "lat"),
        ({"lon": "东经120度"}, 400, "lon"),
        ({"lat": "nan"}, 400, "lat"),
        ({"lon": 200.0}, 400, "lon"),
        ({"lon": 100.0, "lat": -95.0}, 400, "lat"),
        ({"coord_sys": "bd09"}, 400, "coord_sys"),
        ({"at": "yesterday"}, 400, "at"),
        ({"at": "2015-11-20T09:00:00"}, 400, "at"),  # no time zone
        ({"at": "2099-01-01T00:00:00+08:00"}, 400, "at"),
        ({"radius": 5}, 400, "radius"),  # unknown parameter
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(client, layout, params, status, field):
    query = {**at(100, 100), **params}
    query = {k: v for k, v in query.items() if v is not None}
    response = client.get(URL, query_string=query, headers=layout.headers("inspector"))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["field"] == field
    assert response.get_json()["error"]


@pytest.mark.parametrize(
    "point",
    [
        {"lon": 33.78, "lat": 120.26},  # swapped
        {"lon": 121.5, "lat": 31.2},  # Shanghai: outside the service area
    ],
)
def test_a_spot_a_report_refuses_gets_the_reports_422_and_message(
    client, layout, db_session, point
):
    before = counts(db_session)
    shown = client.get(URL, query_string=point, headers=layout.headers("inspector"))
    refused = report(client, layout, 0, 0, **point)
    assert shown.status_code == refused.status_code == 422
    assert shown.get_json()["error"] == refused.get_json()["error"]
    assert shown.get_json()["field"] == refused.get_json()["field"] == "geometry"
    assert counts(db_session) == before


def test_the_preview_writes_nothing(client, layout, db_session):
    before = counts(db_session)
    assert preview(client, layout, 100, 170).status_code == 200
    assert counts(db_session) == before


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("inspector", 200),  # reports issues, reads no assignments
        ("viewer", 200),  # reads assignments, reports nothing
        ("integration", 200),  # token scoped to issues.report
        ("integration_read_only", 403),  # token scoped to issues.read only
    ],
)
def test_whoever_may_report_or_read_assignments_may_ask(client, layout, who, status):
    assert preview(client, layout, 100, 170, who=who).status_code == status


def test_anonymous_callers_are_refused(client, layout):
    assert client.get(URL, query_string=at(100, 170)).status_code == 401


def test_phone_numbers_only_for_accounts_that_may_read_assignments(client, layout):
    """An inspector learns who answers for a spot, not the roster's phone numbers (asking
    point by point would otherwise hand out the whole roster)."""
    when = "2015-11-10T09:00:00+08:00"
    planner = preview(client, layout, 100, 170, who="planner", at=when).get_json()
    inspector = preview(client, layout, 100, 170, who="inspector", at=when).get_json()
    a = planner["attribution"]
    leaders = [a["leader"], a["primary_place"]["leader"]] + [
        c["leader"] for c in a["places"] if c.get("leader")
    ]
    assert all(leader.get("phone") for leader in leaders)
    assert "phone" not in json.dumps(inspector)
    for leader in leaders:
        leader.pop("phone")
    assert inspector == planner
