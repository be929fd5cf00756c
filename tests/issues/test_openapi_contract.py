"""Real answers of representative endpoints match the response schemas the OpenAPI document
states (tests/openapi_contract.py: undocumented fields and undocumented statuses fail)."""

from __future__ import annotations

import pytest

from tests.issues.helpers import at, b64, image_bytes
from tests.openapi_contract import check, document


@pytest.fixture
def doc(client, layout):
    return document(client, layout.headers("viewer"))


def _report(client, layout, x, y, who="inspector"):
    body = {**at(x, y), "category": "环境卫生", "source": "暗访督查", "description": "垃圾堆积"}
    return client.post(
        "/api/collections/issues/items",
        json={**body, "photos": [b64(image_bytes())]},
        headers=layout.headers(who),
    )


def test_issue_report_detail_and_transitions(client, layout, doc):
    created = _report(client, layout, 100, 100)
    assert created.status_code == 201
    issue = check(doc, "post", "/collections/issues/items", created)
    assert issue["properties"]["attribution"]["places"]  # a claimed spot, leader named
    issue_id = issue["id"]
    check(
        doc,
        "get",
        "/issues/{issue_id}",
        client.get(f"/api/issues/{issue_id}", headers=layout.headers("planner")),
    )

    url = f"/api/issues/{issue_id}/transitions"
    planner = layout.headers("planner")
    accepted = client.post(url, json={"to": "accepted", "from": "reported"}, headers=planner)
    assert accepted.status_code == 200
    assert check(doc, "post", "/issues/{issue_id}/transitions", accepted)["event_id"]
    leader_id = layout.leaders["new"].id
    dispatched = client.post(
        url, json={"to": "dispatched", "leader_id": leader_id}, headers=planner
    )
    body = check(doc, "post", "/issues/{issue_id}/transitions", dispatched)
    assert body["properties"]["status"] == "dispatched"
    assert body["properties"]["deadline"]

    # A move that is not allowed now: the documented 409 with the shared error body.
    refused = client.post(url, json={"to": "closed"}, headers=planner)
    assert refused.status_code == 409
    assert check(doc, "post", "/issues/{issue_id}/transitions", refused)["detail"]["allowed"]


def test_issue_queues_and_duplicates(client, layout, doc):
    unassigned = _report(client, layout, 600, 900).get_json()["id"]  # in no grid
    _report(client, layout, 601, 901)
    planner = layout.headers("planner")
    queue = check(
        doc, "get", "/issues/unassigned", client.get("/api/issues/unassigned", headers=planner)
    )
    assert unassigned in {i["id"] for i in queue["issues"]}
    check(doc, "get", "/issues/overdue", client.get("/api/issues/overdue", headers=planner))
    dups = client.get(f"/api/issues/{unassigned}/duplicates", headers=planner)
    assert check(doc, "get", "/issues/{issue_id}/duplicates", dups)["candidates"]


def test_attribution_preview(client, layout, doc):
    who = layout.headers("integration")
    lon, lat = at(100, 100).values()
    claimed = client.get(f"/api/attribution?lon={lon}&lat={lat}", headers=who)
    body = check(doc, "get", "/attribution", claimed)
    assert body["attribution"]["leader"]["name"]
    nobody = client.get(f"/api/attribution?lon={lon}&lat={at(600, 900)['lat']}", headers=who)
    assert check(doc, "get", "/attribution", nobody)["attribution"]["unassigned"] is True
    outside = client.get("/api/attribution?lon=100&lat=20", headers=who)
    assert outside.status_code == 422
    assert check(doc, "get", "/attribution", outside)["field"] == "geometry"
    missing = client.get("/api/attribution?lon=abc&lat=1", headers=who)
    assert check(doc, "get", "/attribution", missing)["field"] == "lon"


def test_leaders_and_assignments(client, layout, doc):
    planner = layout.headers("planner")
    leaders = check(doc, "get", "/leaders", client.get("/api/leaders", headers=planner))
    assert leaders["numberReturned"] >= 6
    leader_id = layout.leaders["other"].id
    check(
        doc, "get", "/leaders/{leader_id}", client.get(f"/api/leaders/{leader_id}", headers=planner)
    )
    place_id = layout.places["market"].id
    created = client.post(
        "/api/assignments",
        json={"leader_id": leader_id, "place_id": place_id, "role": "包保责任人"},
        headers=planner,
    )
    assert created.status_code == 201
    body = check(doc, "post", "/assignments", created)
    assert body["place"]["id"] == place_id and body["closed"] == []
    again = client.post(
        "/api/assignments",
        json={"leader_id": leader_id, "place_id": place_id, "role": "包保责任人"},
        headers=planner,
    )
    assert again.status_code == 409
    check(doc, "post", "/assignments", again)
    listed = client.get(f"/api/assignments?place_id={place_id}", headers=planner)
    assert check(doc, "get", "/assignments", listed)["assignments"]
    who = client.get(f"/api/responsible?place_id={place_id}", headers=planner)
    assert check(doc, "get", "/responsible", who)["primary"]["leader_id"] == leader_id
    bad = client.post("/api/leaders", json={"name": "Bob", "level": "县级"}, headers=planner)
    assert bad.status_code == 400
    check(doc, "post", "/leaders", bad)


def test_rankings_areas_and_accounts(client, layout, doc):
    _report(client, layout, 100, 100)
    planner = layout.headers("planner")
    for of in ("leader", "unit", "all"):
        answer = client.get(f"/api/rankings?of={of}&period=month", headers=planner)
        assert check(doc, "get", "/rankings", answer)["of"] == of
    unknown = client.get("/api/rankings?of=nobody", headers=planner)
    assert check(doc, "get", "/rankings", unknown)["field"] == "of"
    areas = check(doc, "get", "/areas", client.get("/api/areas", headers=planner))
    assert areas["areas"][0]["level"] == "county"
    shapes = client.get("/api/areas?geometry=true", headers=planner)
    assert check(doc, "get", "/areas", shapes)["features"]
    code = areas["areas"][0]["code"]
    check(doc, "get", "/areas/{code}", client.get(f"/api/areas/{code}", headers=planner))
    check(doc, "get", "/me", client.get("/api/me", headers=planner))
    check(doc, "get", "/users", client.get("/api/users", headers=layout.headers("admin")))
    check(doc, "get", "/audit", client.get("/api/audit", headers=layout.headers("admin")))
    check(doc, "get", "/map/summary", client.get("/api/map/summary", headers=planner))
