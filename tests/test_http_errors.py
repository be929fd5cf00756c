"""HTTP-level refusals of the API in the service's words (docs/api.md: errors are
{"error": "中文说明", …}): unknown addresses, methods a URL does not serve (with an `Allow`
naming only what it does), a missing sign-in (401 with its Bearer challenge, also for a write
without a session, where a CSRF complaint would mislead)."""

from __future__ import annotations

import re

import pytest

from tests.api_support import auth

ENGLISH = re.compile(r"[A-Za-z]{4,} [A-Za-z]{3,}")  # a phrase of English words


def assert_chinese(body: dict) -> None:
    text = f"{body.get('error', '')} {body.get('detail') or ''}"
    assert body["error"] and not ENGLISH.search(text), body


@pytest.mark.parametrize(
    "path", ["/api/nonexistent", "/api/collections/", "/api/conformance/", "/api/queryables"]
)
def test_unknown_api_addresses_are_explained_in_chinese(client, db_session, path):
    response = client.get(path, headers=auth(db_session, "viewer"))
    assert response.status_code == 404
    assert_chinese(response.get_json())


def test_a_method_the_url_does_not_serve_names_only_those_it_does(client, db_session):
    viewer = auth(db_session, "viewer")
    for path in ("/api/collections/issues/items/1", "/api/collections"):
        refused = client.post(path, headers=viewer, json={})
        assert refused.status_code == 405, path
        assert_chinese(refused.get_json())
        allowed = set(refused.headers["Allow"].split(", "))
        options = client.options(path, headers=viewer).headers["Allow"]
        assert allowed == set(options.split(", ")), (path, allowed, options)
        assert "POST" not in allowed and "GET" in allowed


def test_no_sign_in_is_a_401_with_a_bearer_challenge(client):
    for response in (
        client.get("/api/collections"),
        client.get("/api/collections", headers={"Authorization": "Bearer gs_not-a-token"}),
        client.post("/api/collections/roads/items", json={}),  # a write: not a CSRF complaint
    ):
        assert response.status_code == 401, response.get_json()
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_chinese(response.get_json())


def test_a_signed_in_form_without_its_csrf_token_is_refused_in_chinese(app, client, db_session):
    from geoservice.accounts.accounts import create_user
    from tests.world import PASSWORD

    create_user(db_session, "csrf_planner", "planner", PASSWORD, check_strength=False)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed_in = client.post(
        "/login", data={"username": "csrf_planner", "password": PASSWORD, "csrf_token": token}
    )
    assert signed_in.status_code in (302, 303)
    refused = client.post("/api/collections/roads/items", json={})
    assert refused.status_code == 400
    assert_chinese(refused.get_json())
