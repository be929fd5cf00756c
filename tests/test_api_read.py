"""OGC API – Features, read side: landing, conformance, collections, items, one item."""

from __future__ import annotations

import json
import re
from itertools import pairwise

import pytest
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import text

from geoservice.edge.access import catalogue
from geoservice.registry import layers
from tests.api_support import assign, auth, insert_issue, insert_leader, insert_place

LINE = "MULTILINESTRING((120.10 33.70, 120.20 33.71))"


def road_spec(app):
    """The layer of line features whatever it is called (tests never name a layer)."""
    return next(s for s in layers(app) if "LineString" in s.geometry_types)


def polygon_spec(app):
    return next(
        s
        for s in layers(app)
        if set(s.geometry_types) == {"Polygon", "MultiPolygon"} and not s.code_pattern
    )


def attrs_for(spec, **overrides):
    """Values for the required attributes of a layer (first choice of each)."""
    values = {a.name: (a.choices[0] if a.choices else "x") for a in spec.attributes if a.required}
    values.update(overrides)
    return values


@pytest.fixture
def viewer(db_session):
    return auth(db_session, "viewer")


def get_json(client, url, headers, status=200):
    response = client.get(url, headers=headers)
    assert response.status_code == status, response.get_data()[:500]
    return response.get_json(force=True)


def test_every_api_endpoint_needs_an_account(client):
    for url in ("/api", "/api/collections", "/api/collections/issues/items", "/api/openapi"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.is_json and response.get_json()["error"]


def test_landing_page_links_and_conformance(client, viewer):
    body = get_json(client, "/api", viewer)
    rels = {link["rel"]: link for link in body["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert all(link.get("type") and link.get("href") for link in body["links"])
    assert rels["service-desc"]["href"].endswith("/api/openapi")
    conformance = get_json(client, "/api/conformance", viewer)["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance


def test_openapi_document_validates_and_declares_each_collections_filters(app, client, viewer):
    response = client.get("/api/openapi", headers=viewer)
    assert response.status_code == 200
    doc = json.loads(response.get_data())
    validate_openapi(doc)
    for spec in layers(app):
        params = doc["paths"][f"/collections/{spec.collection}/items"]["get"]["parameters"]
        names = {p.get("name") for p in params}
        assert {"leader_id", "q", "code"} <= names
        assert {a.name for a in spec.attributes} <= names
        if catalogue(app).get(spec.collection).writable:  # sites: /api/assessment/sites
            assert "post" in doc["paths"][f"/collections/{spec.collection}/items"]
    issue_params = doc["paths"]["/collections/issues/items"]["get"]["parameters"]
    names = {p.get("name") for p in issue_params}
    assert {"status", "category", "leader_id", "overdue"} <= names
    assert {"$ref": "#/components/parameters/datetime"} in issue_params
    # Issues are not written as features: POST there is the issue report (its own schema).
    assert doc["paths"]["/collections/issues/items"]["post"]["operationId"] == "report_issue"
    assert set(doc["paths"]["/collections/issues/items/{featureId}"]) == {"get"}


def test_collections_come_from_the_registry_plus_issues(app, client, viewer):
    body = get_json(client, "/api/collections", viewer)
    ids = [c["id"] for c in body["collections"]]
    assert ids == [s.collection for s in layers(app)] + ["issues"]
    for c in body["collections"]:
        assert c["itemType"] == "feature"
        assert all(link.get("rel") and link.get("type") for link in c["links"])
        assert any(link["rel"] == "items" for link in c["links"])
    one = get_json(client, "/api/collections/issues", viewer)
    assert one["id"] == "issues"
    error = get_json(client, "/api/collections/nothing", viewer, 404)
    assert "nothing" in error["error"] and error["field"] == "collectionId"


def test_links_follow_the_host_and_scheme_of_each_request(client, viewer):
    """Links are remembered per app (edge.params.url, api.features.collection_links): keyed by
    the request's scheme, host and script root, so each caller gets links to where it called."""

    def hrefs(url, **environ):
        response = client.get(url, headers=viewer, environ_overrides=environ)
        assert response.status_code == 200, response.get_data()[:300]
        body = response.get_json(force=True)
        links = body["links"] + [lk for c in body.get("collections", []) for lk in c["links"]]
        return [lk["href"] for lk in links]

    for _ in range(2):  # the second round is served from what the first remembered
        plain = hrefs("/api/collections")
        other = hrefs("/api/collections", HTTP_HOST="gis.example.cn:8443")
        secure = hrefs("/api/collections", **{"wsgi.url_scheme": "https"})
        mounted = hrefs("/api/collections", SCRIPT_NAME="/county")
        assert all(h.startswith("http://localhost/api/") for h in plain)
        assert all(h.startswith("http://gis.example.cn:8443/api/") for h in other)
        assert all(h.startswith("https://localhost/api/") for h in secure)
        assert all(h.startswith("http://localhost/county/api/") for h in mounted)
        assert [h.split("/api/", 1)[1] for h in other] == [h.split("/api/", 1)[1] for h in plain]
    # Query values of different types that compare equal are not confused.
    page = hrefs("/api/collections/issues/items?limit=1&offset=1")
    assert any("offset=1" in h for h in page)


def test_items_pages_with_exact_counts_and_next_prev_links(app, client, db_session, viewer):
    spec = road_spec(app)
    for i in range(5):
        insert_place(db_session, spec, f"R{i}", f"测试路{i}", LINE, **attrs_for(spec))
    url = f"/api/collections/{spec.collection}/items?limit=2"
    page1 = get_json(client, url, viewer)
    assert page1["type"] == "FeatureCollection"
    assert (page1["numberMatched"], page1["numberReturned"]) == (5, 2)
    links = {link["rel"]: link for link in page1["links"]}
    assert "prev" not in links
    assert all(link.get("type") for link in page1["links"])
    page2 = get_json(client, links["next"]["href"], viewer)
    assert page2["numberReturned"] == 2
    assert {f["id"] for f in page1["features"]}.isdisjoint(f["id"] for f in page2["features"])
    last = get_json(client, f"/api/collections/{spec.collection}/items?limit=2&offset=4", viewer)
    rels = {link["rel"] for link in last["links"]}
    assert "next" not in rels and "prev" in rels
    assert (last["numberMatched"], last["numberReturned"]) == (5, 1)
    beyond = get_json(client, f"/api/collections/{spec.collection}/items?offset=50", viewer)
    assert (beyond["numberMatched"], beyond["numberReturned"]) == (5, 0)


def test_limit_is_clamped_to_the_maximum(app, client, db_session, viewer, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_FEATURES_PER_REQUEST", 3)
    spec = road_spec(app)
    for i in range(4):
        insert_place(db_session, spec, f"R{i}", f"路{i}", LINE, **attrs_for(spec))
    body = get_json(client, f"/api/collections/{spec.collection}/items?limit=99999", viewer)
    assert body["numberReturned"] == 3 and body["numberMatched"] == 4
    for bad in ("0", "-1", "abc"):
        error = get_json(client, f"/api/collections/issues/items?limit={bad}", viewer, 400)
        assert error["field"] == "limit"


def test_unknown_or_repeated_parameters_are_refused_by_name(app, client, viewer):
    error = get_json(client, "/api/collections/issues/items?colour=red", viewer, 400)
    assert "colour" in error["error"] and error["field"] == "colour"
    spec = road_spec(app)
    error = get_json(
        client, f"/api/collections/{spec.collection}/items?category=环境卫生", viewer, 400
    )
    assert error["field"] == "category"  # an issue filter is not a road's
    error = get_json(client, "/api/collections/issues/items?limit=1&limit=2", viewer, 400)
    assert error["field"] == "limit"


def test_bbox_filter_and_bad_bboxes(app, client, db_session, viewer):
    inside = insert_issue(db_session, 120.15, 33.70)
    insert_issue(db_session, 121.15, 33.70)
    edge = insert_issue(db_session, 120.2, 33.75)
    insert_issue(db_session, 120.2000001, 33.75)  # inside the float4 index box, outside bbox
    body = get_json(client, "/api/collections/issues/items?bbox=120.1,33.6,120.2,33.8", viewer)
    assert [f["id"] for f in body["features"]] == [inside, edge]
    assert body["numberMatched"] == 2
    full = get_json(
        client, "/api/collections/issues/items?bbox=120.1,33.6,120.2,33.8&limit=1", viewer
    )
    assert full["numberMatched"] == 2
    for bad in ("1,2,3", "a,b,c,d", "120,95,121,96", "121,33,120,34", "120,34,121,33"):
        error = get_json(client, f"/api/collections/issues/items?bbox={bad}", viewer, 400)
        assert error["field"] == "bbox"
    crs = "http://www.opengis.net/def/crs/EPSG/0/3857"
    error = get_json(
        client, f"/api/collections/issues/items?bbox=1,2,3,4&bbox-crs={crs}", viewer, 400
    )
    assert error["field"] == "bbox-crs"


def test_a_point_or_line_bbox_finds_the_features_it_touches(app, client, db_session, viewer):
    """GDAL's spatial filter on a spot sends a box of no size: the grid there is found."""
    spec = polygon_spec(app)
    square = (
        "MULTIPOLYGON(((120.10 33.70, 120.20 33.70, 120.20 33.80, 120.10 33.80, 120.10 33.70)))"
    )
    insert_place(db_session, spec, "P1", "测试面", square, **attrs_for(spec))
    road = road_spec(app)
    insert_place(db_session, road, "R1", "测试路", LINE, **attrs_for(road))
    items = f"/api/collections/{spec.collection}/items?bbox="
    for box in (
        "120.15,33.75,120.15,33.75",
        "120.15,33.71,120.15,33.79",
        "120.0,33.75,120.3,33.75",
    ):
        assert get_json(client, items + box, viewer)["numberMatched"] == 1, box
    assert get_json(client, items + "120.25,33.75,120.25,33.75", viewer)["numberMatched"] == 0
    crossing = f"/api/collections/{road.collection}/items?bbox=120.15,33.6,120.15,33.8"
    assert get_json(client, crossing, viewer)["numberMatched"] == 1


def test_the_storage_crs_may_be_asked_for_as_gdal_does(app, client, db_session, viewer):
    spec = road_spec(app)
    row = insert_place(db_session, spec, "R1", "测试路", LINE, **attrs_for(spec))
    crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    advertised = get_json(client, f"/api/collections/{spec.collection}", viewer)
    assert advertised["storageCrs"] == crs84
    page = client.get(f"/api/collections/{spec.collection}/items?crs={crs84}", headers=viewer)
    assert page.status_code == 200 and page.headers["Content-Crs"] == f"<{crs84}>"
    assert page.get_json()["numberMatched"] == 1
    one = client.get(f"/api/collections/{spec.collection}/items/{row}?crs={crs84}", headers=viewer)
    assert one.status_code == 200 and one.headers["Content-Crs"] == f"<{crs84}>"
    mercator = "http://www.opengis.net/def/crs/EPSG/0/3857"
    refused = get_json(
        client, f"/api/collections/{spec.collection}/items?crs={mercator}", viewer, 400
    )
    assert refused["field"] == "crs"


def test_datetime_filters_issues_by_report_time(client, db_session, viewer):
    early = insert_issue(db_session, 120.15, 33.7, reported_at="2026-10-01T09:00:00+08:00")
    late = insert_issue(db_session, 120.15, 33.7, reported_at="2026-11-15T09:00:00+08:00")

    def ids(dt):
        body = get_json(client, f"/api/collections/issues/items?datetime={dt}", viewer)
        return {f["id"] for f in body["features"]}

    assert ids("2026-11-01T00:00:00%2B08:00/..") == {late}
    assert ids("../2026-10-31") == {early}
    assert ids("2026-10-01") == {early}
    assert ids("2026-09-01/2026-12-01") == {early, late}
    error = get_json(client, "/api/collections/issues/items?datetime=yesterday", viewer, 400)
    assert error["field"] == "datetime"


def test_property_filters_of_layers(app, client, db_session, viewer):
    spec = road_spec(app)
    graded = next(a for a in spec.attributes if a.choices)
    first, second = graded.choices[0], graded.choices[1]
    a = insert_place(
        db_session, spec, "A1", "文昌路", LINE, **attrs_for(spec, **{graded.name: first})
    )
    b = insert_place(
        db_session, spec, "B1", "人民路", LINE, **attrs_for(spec, **{graded.name: second})
    )
    leader = insert_leader(db_session, "王五", "住建局")
    assign(db_session, leader, b, "道路长")
    base = f"/api/collections/{spec.collection}/items"

    def ids(query):
        return {f["id"] for f in get_json(client, f"{base}?{query}", viewer)["features"]}

    assert ids(f"{graded.name}={first}") == {a}
    assert ids(f"{graded.name}={first},{second}") == {a, b}
    assert ids("q=文昌") == {a}
    assert ids("code=B1") == {b}
    assert ids(f"leader_id={leader}") == {b}
    error = get_json(client, f"{base}?{graded.name}=不存在", viewer, 400)
    assert error["field"] == graded.name


def test_area_code_filter_on_layers_that_reference_admin_areas(app, client, db_session, viewer):
    spec = next(
        (
            s
            for s in layers(app)
            if s.name != "site"  # sites need a kind: tests/assessment/test_kinds_api.py
            and any(
                c.name.endswith("_id")
                and any(fk.target_fullname == "admin_areas.id" for fk in c.foreign_keys)
                for c in s.model.__table__.c
            )
        ),
        None,
    )
    if spec is None:
        pytest.skip("no layer references admin areas")
    column = next(
        c.name
        for c in spec.model.__table__.c
        if any(fk.target_fullname == "admin_areas.id" for fk in c.foreign_keys)
    )
    prefix = column[: -len("_id")]
    area = db_session.execute(
        text(
            "INSERT INTO admin_areas (level, code, name, geom) VALUES ('community', '320999001001',"
            " '幸福社区', ST_Multi(ST_MakeEnvelope(120, 33, 121, 34, 4326))) RETURNING id"
        )
    ).scalar()
    code = "320999001001001"
    poly = "MULTIPOLYGON(((120.1 33.7, 120.2 33.7, 120.2 33.8, 120.1 33.7)))"
    fid = insert_place(
        db_session, spec, code, "一号网格", poly, **{column: area}, **attrs_for(spec)
    )
    insert_place(db_session, spec, "320999001001002", "二号网格", poly, **attrs_for(spec))
    body = get_json(
        client, f"/api/collections/{spec.collection}/items?{prefix}_code=320999001001", viewer
    )
    assert [f["id"] for f in body["features"]] == [fid]
    assert body["features"][0]["properties"][f"{prefix}_name"] == "幸福社区"


def test_an_issues_export_has_the_same_properties_as_its_page(client, db_session, viewer):
    """Pages look names up row by row, exports join the name tables (catalogue.export_joins):
    the same properties either way."""
    leader = insert_leader(db_session, "钱七", "城管局", "科长")
    ids = {
        insert_issue(db_session, 120.15, 33.7, status="dispatched", leader_id=leader),
        insert_issue(db_session, 120.16, 33.71, status="reported"),
    }
    page = get_json(client, "/api/collections/issues/items?limit=10", viewer)
    exported = client.get("/api/collections/issues/export?f=geojson", headers=viewer)
    assert exported.status_code == 200
    on_page = {f["id"]: f["properties"] for f in page["features"] if f["id"] in ids}
    in_export = {
        f["id"]: f["properties"] for f in json.loads(exported.data)["features"] if f["id"] in ids
    }
    assert set(on_page) == ids and in_export == on_page
    assert {p["leader_name"] for p in in_export.values()} == {"钱七", None}


def test_issue_filters_and_properties(client, db_session, viewer):
    leader = insert_leader(db_session, "赵六", "城管局", "副局长")
    overdue = insert_issue(
        db_session,
        120.15,
        33.7,
        status="dispatched",
        leader_id=leader,
        deadline="2020-01-01T00:00:00+08:00",
        category="占道经营",
    )
    closed = insert_issue(db_session, 120.15, 33.7, status="closed")
    base = "/api/collections/issues/items"

    def ids(query):
        return {f["id"] for f in get_json(client, f"{base}?{query}", viewer)["features"]}

    assert ids("status=open") == {overdue}
    assert ids("status=closed") == {closed}
    assert ids("overdue=true") == {overdue}
    assert ids(f"leader_id={leader}") == {overdue}
    assert ids("category=占道经营") == {overdue}
    feature = get_json(client, f"{base}/{overdue}", viewer)
    props = feature["properties"]
    assert props["overdue"] is True and props["leader_name"] == "赵六"
    assert props["unit_name"] is None  # the issue records no unit
    assert props["status_label"] == "已交办"
    assert get_json(client, f"{base}?status=bogus", viewer, 400)["field"] == "status"


def test_unfiltered_issue_count_is_exact_through_inserts_updates_and_deletes(
    client, db_session, viewer
):
    ids = [insert_issue(db_session, 120 + i / 100, 33.7) for i in range(7)]
    db_session.execute(
        text("UPDATE issues SET status = 'closed' WHERE id = ANY(:ids)"), {"ids": ids[:3]}
    )
    db_session.execute(text("DELETE FROM issues WHERE id = :id"), {"id": ids[-1]})
    db_session.execute(
        text("UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(100, 20), 4326) WHERE id = :id"),
        {"id": ids[0]},
    )
    total = db_session.execute(text("SELECT count(*) FROM issues")).scalar()
    closed = db_session.execute(
        text("SELECT count(*) FROM issues WHERE status = 'closed'")
    ).scalar()
    body = get_json(client, "/api/collections/issues/items?limit=1", viewer)
    assert body["numberMatched"] == total == 6
    body = get_json(client, "/api/collections/issues/items?limit=1&status=closed", viewer)
    assert body["numberMatched"] == closed == 3
    body = get_json(client, "/api/collections/issues/items?limit=1&status=open", viewer)
    assert body["numberMatched"] == 3


def test_output_is_rfc7946(app, client, db_session, viewer):
    spec = polygon_spec(app)
    clockwise = (
        "MULTIPOLYGON(((120.123456789 33.1, 120.123456789 33.2, 120.2 33.2, 120.2 33.1,"
        " 120.123456789 33.1)))"
    )
    fid = insert_place(db_session, spec, "P1", "顺时针小区", clockwise, **attrs_for(spec))
    response = client.get(f"/api/collections/{spec.collection}/items/{fid}", headers=viewer)
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    raw = response.get_data(as_text=True)
    feature = json.loads(raw)
    assert feature["id"] == fid and "crs" not in feature
    ring = feature["geometry"]["coordinates"][0][0]
    area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise(ring))
    assert area2 > 0  # counter-clockwise exterior ring
    decimals = [len(m) for m in re.findall(r"\.(\d+)", json.dumps(feature["geometry"]))]
    assert max(decimals) <= 7
    assert [120.1234568, 33.1] in ring
    collection = get_json(client, f"/api/collections/{spec.collection}/items", viewer)
    assert "crs" not in collection


def test_feature_id_etag_and_leaders_of_a_feature(app, client, db_session, viewer):
    spec = road_spec(app)
    fid = insert_place(db_session, spec, "R9", "解放路", LINE, **attrs_for(spec))
    current = insert_leader(db_session, "张三", "城管局", "局长")
    former = insert_leader(db_session, "李四", "交通局", "局长")
    assign(db_session, current, fid, "道路长")
    assign(db_session, former, fid, "道路长", primary=False, ended=True)
    url = f"/api/collections/{spec.collection}/items/{fid}"
    response = client.get(url, headers=viewer)
    feature = response.get_json(force=True)
    assert feature["id"] == fid
    assert response.headers["ETag"].startswith('"')
    leaders = feature["properties"]["leaders"]
    assert [(x["name"], x["unit"], x["role"], x["is_primary"]) for x in leaders] == [
        ("张三", "城管局", "道路长", True)
    ]
    again = client.get(url, headers={**viewer, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    # A new leader changes what the feature says, so its validator: no stale 304.
    newcomer = insert_leader(db_session, "王五", "住建局", "局长")
    assign(db_session, newcomer, fid, "道路长", primary=False)
    changed = client.get(url, headers={**viewer, "If-None-Match": response.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != response.headers["ETag"]
    assert "王五" in [x["name"] for x in changed.get_json(force=True)["properties"]["leaders"]]
    listed = get_json(client, f"/api/collections/{spec.collection}/items", viewer)
    assert listed["features"][0]["id"] == fid
    assert get_json(client, f"/api/collections/{spec.collection}/items/999999", viewer, 404)
    assert get_json(client, f"/api/collections/{spec.collection}/items/abc", viewer, 404)


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        ("application/geo+json", "json"),
        ("application/json", "json"),
        ("*/*", "json"),
        (None, "json"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "html"),
    ],
)
def test_accept_negotiation(client, db_session, viewer, accept, kind):
    insert_issue(db_session, 120.15, 33.7)
    headers = dict(viewer)
    if accept:
        headers["Accept"] = accept
    response = client.get("/api/collections/issues/items", headers=headers)
    assert response.status_code == 200
    if kind == "json":
        assert response.mimetype == "application/geo+json"
        assert json.loads(response.get_data())["type"] == "FeatureCollection"
    else:
        assert response.mimetype == "text/html"
        assert "问题" in response.get_data(as_text=True)


def test_html_pages_and_unsupported_formats(app, client, db_session, viewer):
    spec = road_spec(app)
    insert_place(db_session, spec, "R1", "文昌路", LINE, **attrs_for(spec))
    page = client.get(f"/api/collections/{spec.collection}/items?f=html", headers=viewer)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "文昌路" in html and spec.title in html
    for url in (
        "/api?f=html",
        "/api/collections?f=html",
        f"/api/collections/{spec.collection}?f=html",
    ):
        assert client.get(url, headers=viewer).status_code == 200
    assert client.get("/api/collections?f=xml", headers=viewer).status_code == 400
    response = client.get("/api/collections", headers={**viewer, "Accept": "application/xml"})
    assert response.status_code == 406


@pytest.mark.parametrize(
    ("path", "accept", "served"),
    [
        # The landing page advertises this exact type for the OpenAPI document.
        ("/api/openapi", "application/vnd.oai.openapi+json;version=3.0", "application/vnd.oai"),
        ("/api/openapi", "text/html;q=0.9, application/vnd.oai.openapi+json;version=3.0",
         "application/vnd.oai"),
        ("/api/collections", "application/json; charset=utf-8", "application/json"),
        ("/api/collections/grids/items?limit=1", "application/geo+json; charset=utf-8",
         "application/geo+json"),
        ("/api/collections", "text/html; charset=utf-8", "text/html"),
    ],
)  # fmt: skip
def test_accept_values_with_media_type_parameters_are_served(client, viewer, path, accept, served):
    response = client.get(path, headers={**viewer, "Accept": accept})
    assert response.status_code == 200, response.get_json()
    assert response.headers["Content-Type"].startswith(served)


def test_bbox_counts_of_issues_are_exact_through_the_tile_counts(app, client, db_session, viewer):
    import random

    from geoservice.catalogue.items import ItemsQuery, items_statement
    from geoservice.edge.access import catalogue

    rng = random.Random(3)
    bbox = (120.20, 33.70, 120.26, 33.75)
    points = [(rng.uniform(120.19, 120.27), rng.uniform(33.69, 33.76)) for _ in range(400)]
    points += [(120.20, 33.72), (120.26, 33.75), (120.2000001, 33.72), (120.23, 33.7500001)]
    statuses = ["reported", "closed", "dispatched"]
    for n, (lon, lat) in enumerate(points):
        insert_issue(db_session, lon, lat, status=statuses[n % 3])
    # Whole coarser blocks are summed at their own level (15: 16 finest cells a side, 17: 4)
    # inside the larger boxes; each box has another alignment to the cells.
    for box in (bbox, (120.19, 33.69, 120.27, 33.76), (120.2013, 33.7021, 120.2411, 33.7377)):
        with app.app_context():
            statement, _ = items_statement(catalogue().get("issues"), ItemsQuery(limit=1, bbox=box))
        assert "issue_tile_counts" in statement  # the cheap exact path is taken
        if box[2] - box[0] > 0.07:
            assert "level = 15" in statement and "level = 17" in statement
        for query in ("", "&status=open", "&status=closed"):
            body = get_json(
                client,
                f"/api/collections/issues/items?limit=1&bbox={','.join(map(str, box))}{query}",
                viewer,
            )
            wanted = {
                "": statuses,
                "&status=open": ["reported", "dispatched"],
                "&status=closed": ["closed"],
            }[query]
            expected = db_session.execute(
                text(
                    "SELECT count(*) FROM issues"
                    " WHERE ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))"
                    " AND status = ANY(:s)"
                ),
                {"a": box[0], "b": box[1], "c": box[2], "d": box[3], "s": wanted},
            ).scalar()
            assert body["numberMatched"] == expected > 10


def test_the_count_cells_of_a_ring_are_the_rectangle_without_its_hole(db_session):
    """A level's ring (its blocks minus what coarser blocks summed) is read as four bands: they
    select every cell of the rectangle outside the hole (a hole touching an edge leaves that
    band empty) and nothing of the hole."""
    import random

    from geoservice.catalogue.catalogue import Sql
    from geoservice.catalogue.items import _cells_sql

    db_session.execute(
        text(
            "CREATE TEMP TABLE ring_cells ON COMMIT DROP AS SELECT 17 AS level, cx, cy"
            " FROM generate_series(0, 11) cx, generate_series(0, 9) cy"
        )
    )
    rng = random.Random(11)
    for _ in range(40):
        x0, y0 = rng.randint(0, 4), rng.randint(0, 4)
        x1, y1 = rng.randint(x0 + 2, 11), rng.randint(y0 + 2, 9)
        hx0, hy0 = rng.randint(x0, x1), rng.randint(y0, y1)
        hx1, hy1 = rng.randint(hx0, x1), rng.randint(hy0, y1)
        sql = Sql()
        condition = _cells_sql(sql, 17, (x0, x1, y0, y1), (hx0, hx1, hy0, hy1))
        selected = db_session.execute(
            text(f"SELECT cx, cy FROM ring_cells WHERE {condition}"), sql.params
        ).all()
        wanted = {
            (x, y)
            for x in range(x0, x1 + 1)
            for y in range(y0, y1 + 1)
            if not (hx0 <= x <= hx1 and hy0 <= y <= hy1)
        }
        assert sorted(tuple(row) for row in selected) == sorted(wanted)


def test_a_count_too_costly_is_omitted_and_paging_still_works(
    app, client, db_session, viewer, monkeypatch
):
    """Past the count limit of rows to count one by one (LAYER_COUNT_LIMIT for a layer),
    numberMatched is left out (OGC allows it); numberReturned and the next/prev links still
    page through everything."""
    from geoservice.catalogue import items

    monkeypatch.setattr(items, "LAYER_COUNT_LIMIT", 3)
    spec = road_spec(app)
    for i in range(5):
        insert_place(db_session, spec, f"R{i}", f"测试路{i}", LINE, **attrs_for(spec))
    base = f"/api/collections/{spec.collection}/items?limit=2"
    first = get_json(client, base, viewer)
    assert "numberMatched" not in first and first["numberReturned"] == 2
    seen = [f["id"] for f in first["features"]]
    page = first
    while "next" in {link["rel"] for link in page["links"]}:
        page = get_json(
            client, next(lk["href"] for lk in page["links"] if lk["rel"] == "next"), viewer
        )
        seen += [f["id"] for f in page["features"]]
    assert len(seen) == len(set(seen)) == 5
    assert page["numberMatched"] == 5  # the last page is not full: counted for free
    html = client.get(f"{base}&f=html", headers=viewer)
    assert html.status_code == 200 and "未计总数" in html.get_data(as_text=True)
    monkeypatch.setattr(items, "LAYER_COUNT_LIMIT", 5)  # within the limit: exact again
    assert get_json(client, base, viewer)["numberMatched"] == 5


def test_an_issue_page_counted_one_by_one_is_exact_up_to_the_limit_then_omitted(
    client, db_session, viewer, monkeypatch
):
    """A date range makes the issues' numberMatched a count of the rows themselves (not the
    tile counts): exact while there are at most COUNT_LIMIT of them (on every page, the
    first, a middle one, the last and one past the end), omitted above it, and paging still
    walks every issue once."""
    from datetime import UTC, datetime

    from geoservice.catalogue import items
    from tests.factories import add_issue

    for day in range(1, 8):
        add_issue(db_session, 40.0 * day, 0, datetime(2015, 3, day, 9, tzinfo=UTC))
    add_issue(db_session, 0, 40, datetime(2015, 4, 2, 9, tzinfo=UTC))  # outside the range
    db_session.commit()
    base = "/api/collections/issues/items?datetime=2015-03-01T00:00:00Z/2015-03-31T00:00:00Z"

    def page(limit: int, offset: int) -> dict:
        return get_json(client, f"{base}&limit={limit}&offset={offset}", viewer)

    for limit, offset in ((2, 0), (2, 2), (3, 6), (5, 10)):
        assert page(limit, offset)["numberMatched"] == 7
    monkeypatch.setattr(items, "COUNT_LIMIT", 6)
    first = page(2, 0)
    assert "numberMatched" not in first and first["numberReturned"] == 2
    seen = [f["id"] for f in first["features"]]
    current = first
    while "next" in {link["rel"] for link in current["links"]}:
        href = next(lk["href"] for lk in current["links"] if lk["rel"] == "next")
        current = get_json(client, href, viewer)
        seen += [f["id"] for f in current["features"]]
    assert len(seen) == len(set(seen)) == 7 and seen == sorted(seen)
    assert current["numberMatched"] == 7  # the last page is not full: counted for free
    monkeypatch.setattr(items, "COUNT_LIMIT", 7)
    assert page(2, 0)["numberMatched"] == 7


def test_the_issues_extent_covers_every_issue_within_a_finest_cell(client, db_session, viewer):
    """The catalogue's issue extent comes from the occupied finest tile cells (~80 m here): it
    covers every issue, is at most a cell wider, and follows reports and deletes."""
    from datetime import UTC, datetime

    from tests.factories import add_issue, metres

    def bbox() -> list[float] | None:
        body = get_json(client, "/api/collections/issues", viewer)
        return body.get("extent", {}).get("spatial", {}).get("bbox", [None])[0]

    when = datetime(2015, 3, 2, 9, tzinfo=UTC)
    points = [(-3000, -1000), (2500, 4000), (100, 100)]
    issues = [add_issue(db_session, x, y, when) for x, y in points]
    lons = [metres(x, y)[0] for x, y in points]
    lats = [metres(x, y)[1] for x, y in points]
    cell = 360 / 2**19  # degrees of longitude per finest cell (latitude cells are smaller)
    west, south, east, north = bbox()
    assert west <= min(lons) and east >= max(lons) and south <= min(lats) and north >= max(lats)
    assert min(lons) - west < cell and east - max(lons) < cell
    assert min(lats) - south < cell and north - max(lats) < cell
    # The westernmost issue deleted: the extent shrinks to the others.
    db_session.delete(issues[0])
    db_session.flush()
    west, south, east, north = bbox()
    assert min(lons[1:]) - cell < west <= min(lons[1:])
    assert min(lats[1:]) - cell < south <= min(lats[1:])


def test_datetime_is_accepted_by_every_collection(app, client, db_session, viewer):
    """OGC API – Features (/req/core/fc-time-definition): every items endpoint takes
    `datetime`; a collection without a time matches every feature whatever the interval, and
    a malformed value is still a 400 naming it."""
    spec = road_spec(app)
    for i in range(3):
        insert_place(db_session, spec, f"R{i}", f"时间路{i}", LINE, **attrs_for(spec))
    base = f"/api/collections/{spec.collection}/items"
    every = client.get(base, headers=viewer).get_json()["numberMatched"]
    for value in ("2026-11-01", "2020-01-01T00:00:00Z/..", "../2020-01-01"):
        body = client.get(f"{base}?datetime={value}", headers=viewer).get_json()
        assert body["numberMatched"] == every == 3, value
    bad = client.get(f"{base}?datetime=yesterday", headers=viewer)
    assert bad.status_code == 400 and bad.get_json()["field"] == "datetime"
    doc = client.get("/api/openapi", headers=viewer).get_json()
    names = [
        p.get("$ref", "").rsplit("/", 1)[-1] or p.get("name")
        for p in doc["paths"][f"/collections/{spec.collection}/items"]["get"]["parameters"]
    ]
    assert "datetime" in names


def test_datetime_takes_lower_case_letters_and_explains_an_unencoded_plus(client, viewer):
    base = "/api/collections/issues/items?limit=1"
    upper = client.get(f"{base}&datetime=2026-11-01T00:00:00Z/..", headers=viewer)
    lower = client.get(f"{base}&datetime=2026-11-01t00:00:00z/..", headers=viewer)
    assert lower.status_code == upper.status_code == 200  # RFC 3339 §5.6
    assert lower.get_json()["numberMatched"] == upper.get_json()["numberMatched"]
    plus = client.get(f"{base}&datetime=2026-11-01T00:00:00+08:00", headers=viewer)
    body = plus.get_json()
    assert plus.status_code == 400 and body["field"] == "datetime" and "%2B" in body["error"]
    encoded = client.get(f"{base}&datetime=2026-11-01T00:00:00%2B08:00", headers=viewer)
    assert encoded.status_code == 200


def test_the_issues_time_extent_starts_at_the_first_report_even_before_1970(
    client, db_session, viewer
):
    insert_issue(db_session, 120.15, 33.7, reported_at="1969-12-31T08:00:00+08:00")
    insert_issue(db_session, 120.15, 33.7, reported_at="2026-11-15T09:00:00+08:00")
    issues = get_json(client, "/api/collections/issues", viewer)
    start, end = issues["extent"]["temporal"]["interval"][0]
    assert start.startswith("1969-12-31T00:00:00") and end is None
