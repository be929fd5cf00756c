"""Every GET endpoint under /api refuses a query parameter it does not know (400 naming it and
listing the allowed ones): a typo such as `?leader=` for `?leader_id=` must not silently
return everything. The JSON lists page alike (limit/offset, numberMatched/numberReturned)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from geoservice.edge.access import catalogue
from geoservice.ranking import ranking
from geoservice.vocab import OPEN_STATUSES
from tests.api_support import auth

UNKNOWN = "zz_unknown"

# Routes that accept parameters they do not list in advance. None today: the OGC items, tiles,
# exports and map endpoints take only the property filters each collection declares (listed
# in the OpenAPI document), and refuse any other name like every other endpoint. A route added
# here needs a reason.
FREE_PARAMETERS: dict[str, str] = {}

# The parameters a route needs to answer 200 at all (so the test tells the unknown parameter's
# 400 from a missing one's).
NEEDS = {
    "/api/attribution": "lon={lon}&lat={lat}",
    "/api/map/heat": "bbox={bbox}&z=12",
    "/api/rankings": "of=leader",
    "/api/rankings/issues": "of=leader&key={leader_id}&indicator={indicator}",
    "/api/rankings/trend": "of=leader",
    "/api/responsible": "place_id={place_id}",
}

# Routes whose plain request cannot answer 2xx with the demo county (no photo files in it).
NO_PLAIN_ANSWER = {
    "/api/photos/<int:photo_id>": 404,
    "/api/intake/batches/<int:batch_id>": 404,
    # Field work (issue 16): the demo has no visits, 暗访 plans or photo files, and the admin
    # answers for no place (no tasks).
    "/api/fieldwork/visits/<int:visit_id>": 404,
    "/api/fieldwork/inspections/<int:plan_id>": 404,
    "/api/fieldwork/photos/<int:photo_id>/<variant>": 404,
    "/api/fieldwork/issue-photos/<int:photo_id>/display": 404,
    "/api/fieldwork/tasks/mine": 404,
}
# Served only for the collections that declare labels (the others answer 404).
LABELS = "/api/map/labels/<collection_id>/tiles/<int:z>/<int:x>/<int:y>.pbf"


def _scalar(session, sql: str):
    return session.execute(text(sql)).scalar()


@pytest.fixture
def values(demo_session):
    s = demo_session
    lon, lat = s.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
            " FROM admin_areas ORDER BY code LIMIT 1"
        )
    ).one()
    return {
        "issue_id": _scalar(s, "SELECT min(id) FROM issues"),
        "leader_id": _scalar(s, "SELECT min(leader_id) FROM assignments"),
        "unit_id": _scalar(s, "SELECT min(id) FROM units"),
        "assignment_id": _scalar(s, "SELECT min(id) FROM assignments"),
        "photo_id": 1,
        "batch_id": 1,  # no feedback list in the demo county
        "publication_id": _publication(s),
        "visit_id": 1,
        "plan_id": 1,
        "variant": "display",
        "code": _scalar(s, "SELECT min(code) FROM admin_areas"),
        "level": _scalar(s, "SELECT min(level) FROM admin_areas"),
        "place_id": _scalar(s, "SELECT min(place_id) FROM assignments"),
        "lon": lon,
        "lat": lat,
        "bbox": f"{lon - 0.05},{lat - 0.05},{lon + 0.05},{lat + 0.05}",
        "indicator": ranking.DRILLABLE[0],
        "z": 0,
        "x": 0,
        "y": 0,
        # 点位 and 测评 (geoservice/assessment/demo.py)
        "kind_id": _scalar(s, "SELECT min(id) FROM site_kinds"),
        "version_id": _scalar(s, "SELECT min(id) FROM standard_versions"),
        "round_id": _scalar(s, "SELECT min(round_id) FROM round_sites"),
        "site_id": _scalar(
            s,
            "SELECT min(site_id) FROM round_sites WHERE round_id = (SELECT min(round_id)"
            " FROM round_sites)",
        ),
    }


def _publication(session) -> int:
    """A stored 通报 (empty figures) for the publication routes."""
    from geoservice.models import Publication

    pub = Publication(
        period_kind="week",
        period_label="2015-W47",
        period_from=datetime(2015, 11, 15, 16, tzinfo=UTC),
        period_to=datetime(2015, 11, 22, 16, tzinfo=UTC),
        title="测试通报",
        published_at=datetime(2015, 11, 23, tzinfo=UTC),
        settings={"weights": dict(ranking.DEFAULT_WEIGHTS), "threshold": 85, "bottom_n": 3},
        inputs={"period": {"title": "2015年第47周"}, "rankings": [], "events": {}},
        inputs_sha256="0" * 64,
        figures={"totals": {}, "rankings": {}, "overdue_ids": []},
        figures_sha256="0" * 64,
        filename="t.xlsx",
        workbook=b"PK",
        workbook_sha256="0" * 64,
    )
    session.add(pub)
    session.flush()
    return pub.id


def _fill(rule: str, filled: dict) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(filled[m.group(1)]), rule)


def _urls(app, values, features: dict[str, str]):
    """(rule, path, query, collection id) for every GET route under /api, path values filled
    in; the generic collection routes once per collection."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api") or "GET" not in rule.methods:
            continue
        query = NEEDS.get(rule.rule, "").format(**values)
        if "collection_id" not in rule.arguments:
            yield rule.rule, _fill(rule.rule, values), query, None
            continue
        for cid, feature_id in features.items():
            filled = {**values, "collection_id": cid, "feature_id": feature_id}
            yield rule.rule, _fill(rule.rule, filled), query, cid


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _documented_query(doc: dict, rule: str, collection_id: str | None) -> set[str]:
    """The query parameters the OpenAPI document lists for GET on this route."""
    path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.removeprefix("/api")) or "/"
    if collection_id is not None:
        path = path.replace("{collection_id}", collection_id)
    ops = next(v for k, v in doc["paths"].items() if _shape(k) == _shape(path))
    names = set()
    for param in ops["get"].get("parameters", []):
        if "$ref" in param:
            param = doc["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        if param["in"] == "query":
            names.add(param["name"])
    return names


def test_every_get_route_refuses_an_unknown_parameter(app, client, demo_session, values):
    """…and the parameters it names as allowed are exactly those the OpenAPI document lists."""
    admin = auth(demo_session, "admin")
    doc = client.get("/api/openapi", headers=admin).get_json()
    features = {}
    for cid in catalogue(app).ids:
        items = client.get(f"/api/collections/{cid}/items?limit=1", headers=admin).get_json()
        features[cid] = items["features"][0]["id"]
    checked, failures, labelled = 0, [], 0
    for rule, path, query, cid in _urls(app, values, features):
        if rule in FREE_PARAMETERS:
            continue
        plain = client.get(f"{path}?{query}", headers=admin)
        if rule == LABELS:
            if plain.status_code == 404 and plain.get_json()["field"] == "collectionId":
                continue
            labelled += 1
        expected_plain = NO_PLAIN_ANSWER.get(rule)
        if expected_plain is not None:
            assert plain.status_code == expected_plain, (path, plain.status_code)
        else:
            if plain.status_code >= 400:
                failures.append(f"{path}?{query} (plain): {plain.status_code} {plain.get_json()}")
        sep = "&" if query else ""
        response = client.get(f"{path}?{query}{sep}{UNKNOWN}=1", headers=admin)
        body = response.get_json(silent=True) or {}
        if response.status_code != 400 or body.get("field") != UNKNOWN:
            failures.append(f"{path}: {response.status_code} {body}")
            continue
        assert UNKNOWN in body["error"] and "可用的参数" in body["error"], body
        allowed = set(body["detail"]["allowed"])
        documented = _documented_query(doc, rule, cid)
        if allowed != documented:
            failures.append(f"{path}: allows {sorted(allowed)}, documents {sorted(documented)}")
        checked += 1
    assert not failures, "accepted an unknown parameter:\n" + "\n".join(failures)
    assert checked >= 45 and labelled >= 1


def test_the_exceptions_are_real_routes(app):
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert set(FREE_PARAMETERS) <= rules
    assert set(NEEDS) <= rules and set(NO_PLAIN_ANSWER) <= rules and LABELS in rules


def test_a_misspelt_filter_no_longer_returns_everything(client, demo_session, values):
    """The integrator's typo of the brief: `leader=` instead of `leader_id=`."""
    headers = auth(demo_session, "admin")
    typo = client.get(f"/api/assignments?leader={values['leader_id']}", headers=headers)
    assert typo.status_code == 400
    body = typo.get_json()
    assert body["field"] == "leader" and "leader_id" in body["detail"]["allowed"]
    right = client.get(f"/api/assignments?leader_id={values['leader_id']}", headers=headers)
    assert right.status_code == 200
    assert {a["leader_id"] for a in right.get_json()["assignments"]} == {values["leader_id"]}


def test_a_repeated_parameter_is_refused(client, demo_session):
    headers = auth(demo_session, "admin")
    response = client.get("/api/leaders?q=a&q=b", headers=headers)
    assert response.status_code == 400 and response.get_json()["field"] == "q"


# --- paging of the JSON lists -----------------------------------------------------------------

PAGED = ("/api/issues/unassigned", "/api/issues/overdue", "/api/audit", "/api/assignments")


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize(
    ("raw", "bad"),
    [("0", "limit"), ("-1", "limit"), ("abc", "limit"), ("99999999999999999999", "limit")],
)
def test_list_limits_are_checked_alike(client, demo_session, path, raw, bad):
    headers = auth(demo_session, "admin")
    response = client.get(f"{path}?limit={raw}", headers=headers)
    assert response.status_code == 400, (path, raw, response.status_code)
    assert response.get_json()["field"] == bad


@pytest.mark.parametrize("path", PAGED)
@pytest.mark.parametrize("raw", ["-1", "x", "1000000000000"])
def test_list_offsets_are_checked_alike(client, demo_session, path, raw):
    response = client.get(f"{path}?offset={raw}", headers=auth(demo_session, "admin"))
    assert response.status_code == 400 and response.get_json()["field"] == "offset"


def test_queue_maximum_is_stated(client, demo_session):
    headers = auth(demo_session, "admin")
    refused = client.get("/api/issues/overdue?limit=1001", headers=headers)
    assert refused.status_code == 400
    assert refused.get_json()["detail"] == {"maximum": 1000}
    assert client.get("/api/issues/overdue?limit=1000", headers=headers).status_code == 200


def _overdue_count(session) -> int:
    """Open issues past their deadline at this instant of the app's clock (the queue's own
    `now`; the database's now() is the start of the session's transaction, which a deadline
    may pass before a request)."""
    return session.execute(
        text("SELECT count(*) FROM issues WHERE deadline < :at AND status = ANY(:open)"),
        {"open": list(OPEN_STATUSES), "at": datetime.now(UTC)},
    ).scalar()


def test_overdue_queue_counts_every_match_and_pages(client, demo_session):
    headers = auth(demo_session, "admin")
    # The demo's deadlines are spread around today: one may pass while the pages are asked.
    # Asked again until the count is the same before and after them.
    for _attempt in range(3):
        truth = _overdue_count(demo_session)
        first = client.get("/api/issues/overdue?limit=2", headers=headers).get_json()
        second = client.get("/api/issues/overdue?limit=2&offset=2", headers=headers).get_json()
        last = client.get(f"/api/issues/overdue?offset={truth - 1}", headers=headers).get_json()
        if _overdue_count(demo_session) == truth:
            break
    assert truth > 2, "the demo county should have overdue issues"
    assert first["numberMatched"] == truth
    assert first["numberReturned"] == len(first["issues"]) == 2
    assert second["numberMatched"] == truth
    assert not {i["id"] for i in first["issues"]} & {i["id"] for i in second["issues"]}
    assert last["numberReturned"] == 1


def test_unassigned_queue_counts_every_match(client, demo_session):
    from geoservice.issues import issues as service

    headers = auth(demo_session, "admin")
    body = client.get("/api/issues/unassigned?limit=1", headers=headers).get_json()
    every = demo_session.scalars(service.unassigned_query(limit=100_000)).all()
    assert body["numberMatched"] == len(every)
    assert body["numberReturned"] == min(1, len(every))


def test_assignments_page_with_the_true_count(client, demo_session):
    headers = auth(demo_session, "admin")
    truth = _scalar(demo_session, "SELECT count(*) FROM assignments WHERE valid_to IS NULL")
    page = client.get("/api/assignments?limit=3&offset=1", headers=headers).get_json()
    assert page["numberMatched"] == truth > 4
    assert page["numberReturned"] == len(page["assignments"]) == 3
    whole = client.get(f"/api/assignments?limit={truth}", headers=headers).get_json()
    ids = [a["id"] for a in whole["assignments"]]
    assert [a["id"] for a in page["assignments"]] == ids[1:4]


def test_overdue_count_follows_the_clock(client, demo_session):
    """numberMatched is the overdue issues now: one more when a deadline passes."""
    headers = auth(demo_session, "admin")
    # A demo deadline may also pass between the two requests: asked again until none did.
    for _attempt in range(3):
        truth = _overdue_count(demo_session)
        before = client.get("/api/issues/overdue?limit=1", headers=headers).get_json()
        issue_id = demo_session.execute(
            text("SELECT min(id) FROM issues WHERE status = 'dispatched' AND deadline > :later"),
            {"later": datetime.now(UTC) + timedelta(hours=1)},
        ).scalar()
        assert issue_id is not None, "the demo county should have issues still within deadline"
        demo_session.execute(
            text("UPDATE issues SET deadline = :d WHERE id = :i"),
            {"d": datetime.now(UTC) - timedelta(hours=1), "i": issue_id},
        )
        demo_session.flush()
        after = client.get("/api/issues/overdue?limit=1", headers=headers).get_json()
        if _overdue_count(demo_session) == truth + 1:
            break
    assert before["numberMatched"] == truth
    assert after["numberMatched"] == truth + 1
