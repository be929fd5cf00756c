"""The OpenAPI document describes the whole /api: it validates, every route and method of the
app is in it, the permissions it states are the views' own, and the HTML page lists it."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate as validate_openapi

from geoservice.edge.access import catalogue
from tests.api_support import auth
from tests.openapi_contract import document

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def doc(client, db_session):
    return document(client, auth(db_session, "viewer"))


def _template(rule: str) -> str:
    """/api/issues/<int:issue_id> → /issues/{issue_id} (the document's servers end in /api)."""
    path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.removeprefix("/api"))
    return path or "/"


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_document_validates_as_openapi_3(doc):
    validate_openapi(doc)
    assert doc["openapi"].startswith("3.0")


def test_every_api_route_and_method_is_documented(app, doc):
    documented = {(_shape(p), m.upper()) for p, ops in doc["paths"].items() for m in ops}
    ids = catalogue(app).ids
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = _template(rule.rule)
        for method in sorted(rule.methods & METHODS):
            if "{collection_id}" in path:
                # Generic collection routes are documented per collection (the registry's).
                expanded = {_shape(path.replace("{collection_id}", cid)) for cid in ids}
                if not any((p, method) in documented for p in expanded):
                    missing.append(f"{method} {rule.rule}")
            elif (_shape(path), method) not in documented:
                missing.append(f"{method} {rule.rule}")
    assert not missing, "undocumented endpoints: " + ", ".join(missing)


def test_every_collection_has_its_read_paths(app, doc):
    for cid in catalogue(app).ids:
        for suffix in ("", "/items", "/items/{featureId}", "/tiles", "/export"):
            assert "get" in doc["paths"][f"/collections/{cid}{suffix}"], (cid, suffix)


def test_documented_paths_exist_in_the_app(app, doc):
    """No stale entries: each documented path and method is served by some route."""
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api"):
            path = _template(rule.rule)
            for method in rule.methods & METHODS:
                for cid in catalogue(app).ids if "{collection_id}" in path else [None]:
                    concrete = path.replace("{collection_id}", cid) if cid else path
                    served.add((_shape(concrete), method))
    for path, ops in doc["paths"].items():
        for method in ops:
            if method.upper() in METHODS:
                assert (_shape(path), method.upper()) in served, f"{method} {path}"


def _operations(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_permissions_stated_are_the_views_own(app, doc):
    """Views declaring their permission (permission_required / county_required) match the
    document's x-permission."""
    checked = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        action = getattr(view, "permission", None)
        if not rule.rule.startswith("/api") or action is None:
            continue
        path = _template(rule.rule)
        for method in rule.methods & METHODS:
            stated = doc["paths"][path][method.lower()].get("x-permission")
            assert stated == action, f"{method} {rule.rule}: {stated} != {action}"
            checked += 1
    assert checked >= 20


def test_every_operation_has_errors_security_and_chinese_text(doc):
    ids = set()
    for path, method, op in _operations(doc):
        assert op["operationId"] not in ids, op["operationId"]
        ids.add(op["operationId"])
        assert re.search(r"[\u4e00-\u9fff]", op["summary"]), (path, method)
        for status in ("401", "403", "503"):
            assert op["responses"][status] == {"$ref": f"#/components/responses/E{status}"}
        if method != "get":
            assert op["responses"]["429"] and op["responses"]["413"]
            assert {"session": [], "csrf": []} in op["security"], (path, method)
        assert any(s.startswith("2") for s in op["responses"]), (path, method)
    error = doc["components"]["responses"]["E422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/error"}
    assert set(doc["components"]["schemas"]["error"]["properties"]) == {"error", "detail", "field"}


def test_vocabularies_come_from_the_configuration(app, doc):
    report = doc["components"]["schemas"]["issueReport"]["properties"]
    assert report["category"]["enum"] == list(app.config["ISSUE_CATEGORIES"])
    assert report["source"]["enum"] == list(app.config["ISSUE_SOURCES"])
    created = doc["components"]["schemas"]["assignmentCreate"]["properties"]
    assert created["role"]["enum"] == list(app.config["ASSIGNMENT_ROLES"])


def test_the_html_page_lists_every_section_by_tag(client, db_session, doc):
    response = client.get("/api/openapi?f=html", headers=auth(db_session, "viewer", "html"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for tag in doc["tags"]:
        assert f'id="tag-{tag["name"]}"' in html, tag["name"]
    assert "/api/issues/{issue_id}/transitions" in html
    assert "/api/attribution" in html


def test_the_contract_check_refuses_undocumented_fields_and_statuses(app, client, db_session, doc):
    """The checker of tests/openapi_contract.py can fail: an extra field, a missing one, or a
    status the operation does not list."""
    from tests.openapi_contract import check

    me = client.get("/api/me", headers=auth(db_session, "planner")).get_json()
    check(doc, "get", "/me", app.response_class(json.dumps(me), mimetype="application/json"))
    for body, status in (({**me, "secret": 1}, 200), ({**me, "id": "x"}, 200), (me, 418)):
        fake = app.response_class(json.dumps(body), status=status, mimetype="application/json")
        with pytest.raises(AssertionError):
            check(doc, "get", "/me", fake)


def test_every_read_states_the_400_of_an_unknown_parameter(doc):
    for path, method, op in _operations(doc):
        if method == "get":
            assert op["responses"]["400"] == {"$ref": "#/components/responses/E400"}, path
    assert "未列出的或重复出现的参数一律 400" in doc["info"]["description"]


def test_paged_lists_document_their_limits_and_counts(doc):
    """The JSON lists that page state limit (with its maximum), offset and both counts."""
    maxima = {
        "/issues/unassigned": 1000,
        "/issues/overdue": 1000,
        "/audit": 1000,
        "/assignments": 10_000,
    }
    for path, maximum in maxima.items():
        op = doc["paths"][path]["get"]
        params = {p["name"]: p["schema"] for p in op["parameters"]}
        assert params["limit"]["minimum"] == 1 and params["limit"]["maximum"] == maximum, path
        assert params["offset"]["minimum"] == 0, path
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert {"numberMatched", "numberReturned"} <= set(schema["required"]), path


# Input-error statuses per family (docs/api.md): each write lists its family's codes, and no
# operation lists a code its family never answers.
FAMILY_STATUSES = {
    ("post", "/collections/issues/items"): ({400, 415, 422}, set()),
    ("post", "/issues/{issue_id}/transitions"): ({400, 415, 422, 409}, set()),
    ("post", "/issues/{issue_id}/dispatch"): ({400, 415, 422}, set()),
    ("post", "/issues/{issue_id}/merge"): ({400, 415, 422}, set()),
    ("post", "/units"): ({400, 409}, {415, 422}),
    ("patch", "/leaders/{leader_id}"): ({400}, {415, 422}),
    ("post", "/assignments"): ({400, 409}, {415, 422}),
    ("post", "/roster/import"): ({400, 413, 422}, {415}),
    ("post", "/users"): ({400, 422}, {415}),
    ("post", "/areas/import"): ({400, 415, 422}, set()),
}


def test_each_family_states_its_input_error_codes(doc):
    for (method, path), (listed, absent) in FAMILY_STATUSES.items():
        codes = {int(s) for s in doc["paths"][path][method]["responses"]}
        assert listed <= codes, (method, path, listed - codes)
        assert not absent & codes, (method, path, absent & codes)


def test_a_body_that_is_not_json_gets_its_familys_documented_code(client, db_session, doc):
    """The same mistake (a text body) answers 415 for issues, 400 for 包保 and accounts, as
    documented per operation."""
    from tests.api_support import insert_issue
    from tests.openapi_contract import check

    admin = auth(db_session, "admin")
    issue_id = insert_issue(db_session, 120.0, 30.0)
    db_session.flush()
    cases = (
        ("/issues/{issue_id}/dispatch", f"/api/issues/{issue_id}/dispatch", 415),
        ("/units", "/api/units", 400),
        ("/users", "/api/users", 400),
    )
    for documented, url, status in cases:
        response = client.post(url, data="name=x", content_type="text/plain", headers=admin)
        assert response.status_code == status, (url, response.status_code)
        check(doc, "post", documented, response)


def test_a_feature_patch_body_is_documented_as_the_write_reads_it(app, doc):
    """PATCH /collections/{id}/items/{featureId} takes a partial Feature: what update_item
    accepts validates against the documented body, what it refuses with 400 does not."""
    from openapi_schema_validator import OAS30Validator

    collections = catalogue(app)
    writable = [cid for cid in collections.ids if collections.get(cid).writable]
    assert writable
    for cid in writable:
        content = doc["paths"][f"/collections/{cid}/items/{{featureId}}"]["patch"]["requestBody"][
            "content"
        ]
        assert set(content) == {
            "application/merge-patch+json",
            "application/geo+json",
            "application/json",
        }
        schema = {**content["application/json"]["schema"], "components": doc["components"]}
        validator = OAS30Validator(schema)
        accepted = (
            {},
            {"properties": {"name": "新名字"}},
            {"type": "Feature", "properties": None, "geometry": None},
        )
        refused = (
            112379968,  # not an object (seed 47 of the contract test)
            ["Feature"],
            {"type": "FeatureCollection"},
            {"properties": "name"},
            {"properties": {"name": "x"}, "crs": {"type": "name"}},
            {"properties": {"no_such_field": 1}},
        )
        # An optional attribute given as null is cleared (catalogue.validation), required
        # ones (code, name, …) are refused.
        input_props = doc["components"]["schemas"][f"{cid}FeatureInput"]["properties"]
        required = input_props["properties"]["required"]
        optional = [
            name
            for name, prop in input_props["properties"]["properties"].items()
            if name not in required and prop and not prop.get("readOnly")
        ]
        accepted += tuple({"properties": {name: None}} for name in optional)
        refused += tuple({"properties": {name: None}} for name in required)
        for body in accepted:
            assert validator.is_valid(body), (cid, body)
        for body in refused:
            assert not validator.is_valid(body), (cid, body)


def test_not_blank_patterns_count_white_space_as_the_server_strips_it(doc):
    """A text parameter documented "not only spaces" refuses what Python's str.strip removes
    (U+001C–U+001F, U+0085 besides ECMA's \\s): `address=%1D` (contract seed 73) was valid by
    the document and a 400 from the server."""
    patterns = set()
    for item in doc["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                pattern = parameter.get("schema", {}).get("pattern", "")
                if "\\s" in pattern:
                    patterns.add(pattern)
    assert patterns
    for pattern in patterns:
        compiled = re.compile(pattern)
        assert "\\s" not in pattern.replace("\\s\\u001c-\\u001f\\u0085", ""), pattern
        if "[^\\s" in pattern:  # text that is not blank
            assert compiled.search("a"), pattern
            for blank in ("\u001d", "\u0085", " \u001c\t"):
                assert not compiled.search(blank), (pattern, blank)
