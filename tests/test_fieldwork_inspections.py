"""暗访 (issue 16): a reproducible seeded sample; the plan is secret (404) for every account
but its makers and the 创文办 until done, and always for a leader of a sampled place; results
raise issues (source 暗访督查) only when the plan is completed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from geoservice.fieldwork import inspections
from geoservice.fieldwork.models import InspectionPlan
from geoservice.models import Issue
from tests.factories import add_feature, add_leader, assign, rect
from tests.issues.helpers import account, add_area, b64, image_bytes
from tests.test_fieldwork_patrols import T0


@pytest.fixture
def uploads(app, tmp_path, monkeypatch):
    path = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(path))
    return path


@pytest.fixture
def city(app, db_session, uploads):
    s = db_session
    add_area(s, "320999", rect(-2000, -2000, 9000, 3000))
    add_area(s, "320999001", rect(-2000, -2000, 4000, 3000), level="street")
    add_area(s, "320999002", rect(4000, -2000, 9000, 3000), level="street")
    markets = [
        add_feature(s, "market", f"M{i}", rect(i * 500, 0, i * 500 + 50, 50), name=f"市场{i}")
        for i in range(16)
    ]
    owner = add_leader(s, "市场包保", unit="县市场监管局")
    head = add_leader(s, "局长", unit="县市场监管局")  # the unit's head (单位负责人)
    head.is_unit_head = True
    bystander = add_leader(s, "别处领导", unit="县教育局")
    for m in markets:
        assign(s, owner, m, T0, role="点长")
    grid = add_feature(s, "grid", "320999001001001", rect(0, 1000, 400, 1400))
    assign(s, bystander, grid, T0, role="网格员")
    accounts = {
        "inspector": account(s, "inspector"),
        "other_inspector": account(s, "inspector"),
        "planner": account(s, "planner"),
        "owner": account(s, "leader", leader=owner),
        "bystander": account(s, "leader", leader=bystander),
        "viewer": account(s, "viewer"),
        "admin": account(s, "admin"),
        "planner_owner": account(s, "planner", leader=owner),
        "planner_head": account(s, "planner", leader=head),
    }
    return {"session": s, "markets": markets, "accounts": accounts}


def plan(client, city, **extra):
    body = {"layer": "market", "date": "2015-11-10", "count": 4, "seed": 42, **extra}
    response = client.post(
        "/api/fieldwork/inspections", json=body, headers=city["accounts"]["inspector"][1]
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_the_sample_is_reproducible_and_follows_street_and_count(client, city):
    first = plan(client, city)
    again = plan(client, city)
    ids = [p["place"]["id"] for p in first["places"]]
    assert len(ids) == 4 and ids == [p["place"]["id"] for p in again["places"]]
    other = plan(client, city, seed=7)
    assert [p["place"]["id"] for p in other["places"]] != ids
    east = plan(client, city, street="320999002", count=50)
    assert {p["place"]["code"] for p in east["places"]} == {f"M{i}" for i in range(8, 16)}
    assert inspections.draw([5, 3, 9], 5, 1) == [3, 5, 9]


SECRET_BEFORE_DONE = {
    "inspector": 200,  # made it
    "planner": 200,
    "admin": 200,
    "other_inspector": 404,
    "owner": 404,  # answers for the sampled places
    "planner_owner": 404,  # a planner, but also their leader
    "planner_head": 404,  # a planner, and head of the unit whose leader answers for them
    "bystander": 404,
    "viewer": 404,
}


def test_the_plan_is_secret_until_done_for_every_role(client, city):
    made = plan(client, city)
    url = f"/api/fieldwork/inspections/{made['id']}"
    for who, status in SECRET_BEFORE_DONE.items():
        headers = city["accounts"][who][1]
        assert client.get(url, headers=headers).status_code == status, who
        listed = client.get("/api/fieldwork/inspections", headers=headers)
        ids = [p["id"] for p in listed.get_json().get("inspections", [])]
        assert (made["id"] in ids) == (status == 200), who
    # Nor may the owner record or complete it.
    owner = city["accounts"]["owner"][1]
    assert client.post(f"{url}/complete", headers=owner).status_code in (403, 404)


def test_results_raise_issues_when_done_and_then_the_leader_sees_it(client, city):
    made = plan(client, city, count=2)
    url = f"/api/fieldwork/inspections/{made['id']}"
    headers = city["accounts"]["inspector"][1]
    first, second = (p["place"] for p in made["places"])
    fail = client.post(
        f"{url}/results",
        json={"place_id": first["id"], "outcome": "不合格", "category": "环境卫生",
              "note": "摊位外溢", "lon": first["lon"], "lat": first["lat"],
              "photos": [b64(image_bytes(taken="2015:11:10 10:00:00"))]},
        headers=headers,
    )  # fmt: skip
    assert fail.status_code == 200, fail.get_json()
    no_photo = client.post(
        f"{url}/results",
        json={"place_id": second["id"], "outcome": "fail", "category": "环境卫生"},
        headers=headers,
    )
    assert no_photo.status_code == 422 and no_photo.get_json()["field"] == "photos"
    early = client.post(f"{url}/complete", headers=headers)
    assert early.status_code == 409  # a place has no result yet
    count = lambda: city["session"].scalar(select(func.count()).select_from(Issue))  # noqa: E731
    assert count() == 0  # nothing reaches anyone before the plan is done
    ok = client.post(
        f"{url}/results", json={"place_id": second["id"], "outcome": "pass"}, headers=headers
    )
    assert ok.status_code == 200
    done = client.post(f"{url}/complete", headers=headers)
    assert done.status_code == 200, done.get_json()
    (issue_id,) = done.get_json()["issue_ids"]
    issue = city["session"].get(Issue, issue_id)
    assert issue.source == "暗访督查" and issue.primary_place_id == first["id"]
    assert city["session"].get(InspectionPlan, made["id"]).status == "done"
    owner = city["accounts"]["owner"][1]
    seen = client.get(url, headers=owner)
    assert seen.status_code == 200 and seen.get_json()["places"][0]["issue_id"] == issue_id
    again = client.post(f"{url}/results", json={"place_id": second["id"], "outcome": "fail"},
                        headers=headers)  # fmt: skip
    assert again.status_code == 409


def test_bad_plans_are_422(client, city):
    headers = city["accounts"]["inspector"][1]
    for body, field in (
        ({"layer": "nowhere", "date": "2015-11-10", "count": 1}, "layer"),
        ({"layer": "market", "date": "11/10", "count": 1}, "date"),
        ({"layer": "market", "date": "2015-11-10", "count": 0}, "count"),
        ({"layer": "market", "date": "2015-11-10", "count": 1, "street": "x"}, "street"),
        ({"layer": "market", "date": "2015-11-10", "count": 1, "site_kind": "k"}, "site_kind"),
    ):
        response = client.post("/api/fieldwork/inspections", json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.get_json()["field"] == field
        if field == "street":  # the message names what was typed
            assert "「x」" in response.get_json()["error"]
    leader = client.post(
        "/api/fieldwork/inspections",
        json={"layer": "market", "date": "2015-11-10", "count": 1},
        headers=city["accounts"]["owner"][1],
    )
    assert leader.status_code == 403


def test_a_street_bound_supervisor_samples_only_its_street(client, city):
    s = city["session"]
    east = account(s, "inspector", area_code="320999002")
    response = client.post(
        "/api/fieldwork/inspections",
        json={"layer": "market", "date": "2015-11-10", "count": 50, "seed": 1},
        headers=east[1],
    )
    assert response.status_code == 201, response.get_json()
    codes = {p["place"]["code"] for p in response.get_json()["places"]}
    assert codes == {f"M{i}" for i in range(8, 16)}
    # A street-bound planner neither sees nor runs another's plan before it is done.
    west_planner = account(s, "planner", area_code="320999001")
    plan_id = response.get_json()["id"]
    seen = client.get(f"/api/fieldwork/inspections/{plan_id}", headers=west_planner[1])
    assert seen.status_code == 404


def test_ids_beyond_any_row_are_404(client, city):
    headers = city["accounts"]["admin"][1]
    for path in ("/api/fieldwork/inspections/99999999999999999999",
                 "/api/fieldwork/visits/99999999999999999999999",
                 "/api/fieldwork/photos/99999999999999999999999/display",
                 "/api/fieldwork/issue-photos/99999999999999999999999/display"):  # fmt: skip
        assert client.get(path, headers=headers).status_code == 404, path


def test_a_suspicious_photo_of_a_plan_stays_secret_until_done(client, city):
    """The 存疑 lists (API and page) do not tell the inspected 点长 or its unit head, even with
    a county-wide planner account, that their place was sampled: a plan's flagged photo is
    listed for them only once the plan is done."""
    made = plan(client, city, count=2)
    url = f"/api/fieldwork/inspections/{made['id']}"
    inspector = city["accounts"]["inspector"][1]
    photo = b64(image_bytes(taken="2015:11:10 10:00:00"))
    for place in (p["place"] for p in made["places"]):  # the same photo twice: flagged
        recorded = client.post(
            f"{url}/results",
            json={"place_id": place["id"], "outcome": "不合格", "category": "环境卫生",
                  "lon": place["lon"], "lat": place["lat"], "photos": [photo]},
            headers=inspector,
        )  # fmt: skip
        assert recorded.status_code == 200, recorded.get_json()

    def plan_photos(who: str) -> list:
        listed = client.get("/api/fieldwork/evidence/suspicious", headers=city["accounts"][who][1])
        assert listed.status_code == 200, listed.get_json()
        return [p for p in listed.get_json()["photos"] if p.get("plan_id") == made["id"]]

    assert plan_photos("planner")  # the 创文办 sees the flag
    for who in ("planner_owner", "planner_head"):
        assert plan_photos(who) == [], who
        page = client.get("/field/evidence", headers=city["accounts"][who][1])
        assert f"暗访 {made['id']}" not in page.get_data(as_text=True), who
    assert client.post(f"{url}/complete", headers=inspector).status_code == 200
    assert plan_photos("planner_owner")


def test_planning_and_completing_are_audited_without_the_sample(client, city):
    from geoservice.accounts.audit import query

    made = plan(client, city, count=2)
    entries = city["session"].scalars(query(entity="inspection_plan")).all()
    assert [(e.action, e.entity_id) for e in entries] == [
        ("inspection_plan.create", str(made["id"]))
    ]
    sampled = {str(p["place"]["id"]) for p in made["places"]} | {
        p["place"]["code"] for p in made["places"]
    }
    assert entries[0].after["places"] == 2
    assert not sampled & set(map(str, entries[0].after.values()))


def test_a_done_plans_photos_are_shown_only_within_the_callers_area(client, city):
    """As its results: the bystander leader (who answers for no sampled market) and an
    account bound to the other street get the unknown photo's 404."""
    from geoservice.fieldwork.models import FieldPhoto

    made = plan(client, city, count=2, street="320999001")
    url = f"/api/fieldwork/inspections/{made['id']}"
    headers = city["accounts"]["inspector"][1]
    first, second = (p["place"] for p in made["places"])
    for place, fields in ((first, {"outcome": "不合格", "category": "环境卫生"}),
                          (second, {"outcome": "pass"})):  # fmt: skip
        photos = [b64(image_bytes(taken="2015:11:10 10:00:00"))] if place is first else []
        recorded = client.post(
            f"{url}/results", json={"place_id": place["id"], **fields, "photos": photos},
            headers=headers,
        )  # fmt: skip
        assert recorded.status_code == 200, recorded.get_json()
    assert client.post(f"{url}/complete", headers=headers).status_code == 200
    photo = city["session"].scalar(select(FieldPhoto).where(FieldPhoto.plan_id == made["id"]))
    path = f"/api/fieldwork/photos/{photo.id}/original"
    assert client.get(path, headers=city["accounts"]["owner"][1]).status_code == 200
    _, east = account(city["session"], "viewer", area_code="320999002")
    for who in (city["accounts"]["bystander"][1], east):
        assert client.get(path, headers=who).status_code == 404


def test_a_photo_check_never_names_an_open_plan_to_those_it_inspects(app, client, city):
    """The 点长 reports with the very photo the 暗访 took of their market: the check flags the
    reuse, but says 暗访照片, not `plan:<id>:<place>` (the plan is secret until done)."""
    from geoalchemy2.shape import to_shape

    from geoservice.fieldwork import evidence
    from geoservice.fieldwork.settings import FieldSettings
    from geoservice.issues.workflow import IssueSettings
    from geoservice.registry import layers

    made = plan(client, city, count=1)
    place = made["places"][0]["place"]
    shot = image_bytes(taken="2015:11:10 10:00:00", color=(10, 120, 200))
    recorded = client.post(
        f"/api/fieldwork/inspections/{made['id']}/results",
        json={"place_id": place["id"], "outcome": "不合格", "category": "环境卫生",
              "photos": [b64(shot)]},
        headers=city["accounts"]["inspector"][1],
    )  # fmt: skip
    assert recorded.status_code == 200, recorded.get_json()
    market = next(m for m in city["markets"] if m.id == place["id"])
    point = to_shape(market.geom).centroid
    reported = client.post(
        "/api/collections/issues/items",
        json={"lon": point.x, "lat": point.y, "category": "环境卫生", "source": "自查",
              "photos": [b64(shot)]},
        headers=city["accounts"]["planner_owner"][1],
    )  # fmt: skip
    assert reported.status_code == 201, reported.get_json()
    session = city["session"]
    evidence.scan_pending(
        session, layers(app), FieldSettings.from_config(app.config),
        IssueSettings.from_config(app.config).store,
    )  # fmt: skip
    seen = client.get(
        f"/api/fieldwork/evidence/issues/{reported.get_json()['id']}",
        headers=city["accounts"]["planner_head"][1],
    )
    assert seen.status_code == 200
    text_ = seen.get_data(as_text=True)
    assert "暗访照片" in text_ and "plan:" not in text_
