"""Every route, called by an admin with wrong ids, broken query strings and broken bodies,
answers with a 4xx (or a normal page), never a 500: nothing a client sends may crash the
service. Routes that end the caller's own session or tokens are left out (they would turn the
rest of the walk into 401s)."""

from __future__ import annotations

import re

import pytest

from tests.world import bearer

IDS = {
    "collection_id": ["grids", "issues", "no_such_layer"],
    "feature_id": ["abc", "999999999", "-1"],
    "z": ["99", "a"],
    "x": ["a"],
    "y": ["a"],
}
DEFAULT_IDS = ["x", "999999999"]
QUERIES = [
    "?limit=abc&offset=-5",
    "?bbox=a,b,c",
    "?datetime=garbage&from=2026-W99&of=nope",
    "?page=99999999999999999999&offset=99999999999999999999&limit=99999999999999999999",
]
BODIES = [
    ("application/json", "not json"),
    ("application/json", '{"type":"Feature","geometry":{"type":"Point","coordinates":["a",1]}}'),
    ("application/json", "[null]"),
    ("multipart/form-data", "garbage"),
]
SKIPPED = ("token", "deactivate", "revoke", "password", "logout", "login", "/vendor/", "/static/")


def _paths(rule) -> list[str]:
    paths = [rule.rule]
    for name in rule.arguments:
        values = IDS.get(name, DEFAULT_IDS)
        pattern = re.compile(r"<(?:[^:<>]+:)?" + re.escape(name) + ">")
        paths = [pattern.sub(value, path) for path in paths for value in values]
    return paths


def test_no_route_answers_garbage_with_a_server_error(app, world, world_client):
    admin = bearer(world["tokens"]["admin"])
    crashed = []
    called = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or any(word in rule.rule for word in SKIPPED):
            continue
        for path in _paths(rule):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method == "GET":
                    attempts = [(path + query, None, None) for query in QUERIES]
                else:
                    attempts = [(path, kind, body) for kind, body in BODIES]
                for url, kind, body in attempts:
                    headers = admin | ({"If-Match": '"stale"'} if method != "POST" else {})
                    response = world_client.open(
                        url, method=method, headers=headers, data=body, content_type=kind
                    )
                    called += 1
                    if response.status_code >= 500:
                        crashed.append((method, url, kind, response.status_code))
    assert called > 300  # the walk reached the routes
    assert crashed == []


@pytest.mark.parametrize("path", ["/api/collections/grids/items/abc", "/api/issues/abc"])
def test_a_malformed_id_is_a_client_error_in_json(world, world_client, path):
    response = world_client.get(path, headers=bearer(world["tokens"]["admin"]))
    assert 400 <= response.status_code < 500
    assert response.get_json()["error"]
