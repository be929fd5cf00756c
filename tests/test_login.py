"""Sign-in, sessions, sign-out, password change, throttling, deactivation."""

from __future__ import annotations

import re

from sqlalchemy import func, select, text

from geoservice.models import AuditEntry, User
from tests.world import PASSWORD, bearer, csrf_token_of, sign_in


def _user(world, name) -> User:
    return world["session"].get(User, world["users"][name])


def test_pages_need_sign_in_and_api_needs_an_account(world_client):
    response = world_client.get("/admin/users?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/users?x%3D1"
    response = world_client.get("/api/collections")
    assert response.status_code == 401 and response.get_json()["error"]
    # Public: the sign-in page, health and vendored assets.
    assert world_client.get("/login").status_code == 200
    assert world_client.get("/healthz").status_code == 200
    assert world_client.get("/vendor/leaflet/dist/leaflet.js").status_code == 200


def test_login_page_is_chinese_and_sign_in_sets_a_hardened_cookie(world, world_client):
    page = world_client.get("/login").get_data(as_text=True)
    assert "登录" in page and 'name="csrf_token"' in page
    response = sign_in(world_client, "viewer", follow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "geoservice_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert world_client.get("/").status_code == 200
    assert _user(world, "viewer").last_login_at is not None


def test_sign_in_follows_only_local_next_paths(world_client):
    token = csrf_token_of(world_client)
    for target, expected in (
        ("/admin/audit", "/admin/audit"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
    ):
        response = world_client.post(
            "/login",
            data={"username": "viewer", "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert response.headers["Location"] == expected
        world_client.post("/logout", data={"csrf_token": csrf_token_of(world_client, "/")})
        token = csrf_token_of(world_client)


def test_wrong_password_and_unknown_user_get_the_same_answer(world_client):
    wrong = sign_in(world_client, "viewer", "Wrong-pass-1")
    unknown = sign_in(world_client, "nobody-here", "Wrong-pass-1")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.get_data(as_text=True)
    assert "用户名或密码错误" in unknown.get_data(as_text=True)


def test_logout_ends_the_session_and_needs_csrf(world_client):
    sign_in(world_client, "viewer")
    assert world_client.post("/logout").status_code == 400  # no CSRF token
    assert world_client.get("/").status_code == 200
    world_client.post("/logout", data={"csrf_token": csrf_token_of(world_client, "/")})
    assert world_client.get("/").status_code == 302


def test_repeated_failures_lock_the_username_from_that_address_only(world, world_client):
    """Five wrong passwords for `planner` from one address refuse even the right password
    from there (429, Retry-After, audited), but not the owner signing in from another
    address: a stranger cannot lock the admin out. An unknown username gets the very same
    answers, so the lock tells no existing username apart."""
    here, there = {"REMOTE_ADDR": "10.1.1.1"}, {"REMOTE_ADDR": "10.2.2.2"}
    answers = {}
    for name in ("planner", "no-such-user"):
        for _ in range(5):
            refused = sign_in(world_client, name, "Wrong-pass-1", environ_base=here)
            assert refused.status_code == 401
        locked = sign_in(world_client, name, PASSWORD, environ_base=here)
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        answers[name] = _message(locked.get_data(as_text=True))
    assert answers["planner"] == answers["no-such-user"] and "再试" in answers["planner"]
    user = _user(world, "planner")
    assert user.locked_until is None  # the account itself is not locked
    assert (
        world["session"].scalar(
            select(func.count()).where(
                AuditEntry.action == "user.lock", AuditEntry.entity_id == str(user.id)
            )
        )
        == 1
    )
    assert sign_in(world_client, "planner", environ_base=there).status_code == 302
    # The lock expires by itself.
    world["session"].execute(
        text("UPDATE rate_counters SET window_start = window_start - interval '1 day'")
    )
    world["session"].commit()
    assert sign_in(world_client, "planner", environ_base=here).status_code == 302


def _message(html: str) -> str:
    match = re.search(r'class="error"[^>]*>([^<]*)<', html) or re.search(r"请[^<]*再试", html)
    assert match, html
    return match.group(match.lastindex or 0)


def test_an_ip_address_is_throttled_across_usernames(app, world, world_client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_IP_MAX_FAILURES", 3)
    env = {"REMOTE_ADDR": "10.9.8.7"}
    for name in ("guess1", "guess2", "guess3"):
        assert sign_in(world_client, name, "x", environ_base=env).status_code == 401
    refused = sign_in(world_client, "viewer", environ_base=env)
    assert refused.status_code == 429 and "稍后再试" in refused.get_data(as_text=True)
    # Another address is not affected.
    assert (
        sign_in(world_client, "viewer", environ_base={"REMOTE_ADDR": "10.9.8.8"}).status_code == 302
    )


def test_integration_accounts_cannot_sign_in(world_client):
    assert sign_in(world_client, "integration", PASSWORD).status_code == 401


def test_password_change_ends_other_sessions(app, world, world_client):
    other = app.test_client()
    sign_in(other, "viewer")
    sign_in(world_client, "viewer")
    token = csrf_token_of(world_client, "/account/password")
    form = {
        "current_password": PASSWORD,
        "new_password": "New-pass-22",
        "confirm_password": "New-pass-22",
    }
    assert world_client.post("/account/password", data=form).status_code == 400  # no CSRF
    response = world_client.post("/account/password", data={**form, "csrf_token": token})
    assert response.status_code == 200 and "密码已修改" in response.get_data(as_text=True)
    assert world_client.get("/").status_code == 200  # this session goes on
    assert other.get("/").status_code == 302  # the other one ended
    world_client.post("/logout", data={"csrf_token": csrf_token_of(world_client, "/")})
    assert sign_in(world_client, "viewer", PASSWORD).status_code == 401
    assert sign_in(world_client, "viewer", "New-pass-22").status_code == 302


def test_password_change_checks_current_password_and_strength(world_client):
    sign_in(world_client, "viewer")
    token = csrf_token_of(world_client, "/account/password")
    for current, new, message in (
        ("Wrong-pass-1", "New-pass-22", "当前密码不正确"),
        (PASSWORD, "short", "至少 8 位"),
        (PASSWORD, "alllowercaseletters", "两类字符"),
    ):
        response = world_client.post(
            "/account/password",
            data={
                "current_password": current,
                "new_password": new,
                "confirm_password": new,
                "csrf_token": token,
            },
        )
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)


def test_an_admin_reset_password_must_be_changed_at_next_sign_in(world, world_client):
    from geoservice.accounts.accounts import set_password

    set_password(world["session"], _user(world, "viewer"), "Reset-pass-9", must_change=True)
    world["session"].commit()
    response = sign_in(world_client, "viewer", "Reset-pass-9")
    assert response.headers["Location"] == "/account/password"
    assert world_client.get("/").headers["Location"] == "/account/password"
    assert world_client.get("/api/me").status_code == 403
    # Tokens are not held up by a pending password change.
    assert world_client.get("/api/me", headers=bearer(world["tokens"]["viewer"])).status_code == 200


def test_deactivation_ends_sessions_and_tokens_at_once(world, world_client):
    from geoservice.accounts.accounts import set_active

    sign_in(world_client, "viewer")
    assert world_client.get("/").status_code == 200
    set_active(world["session"], _user(world, "viewer"), False)
    world["session"].commit()
    assert world_client.get("/").status_code == 302
    response = world_client.get("/api/me", headers=bearer(world["tokens"]["viewer"]))
    assert response.status_code == 401
    assert sign_in(world_client, "viewer").status_code == 401
    set_active(world["session"], _user(world, "viewer"), True)
    world["session"].commit()
    assert world_client.get("/").status_code == 302  # the old session stays ended


def test_guessing_the_current_password_on_the_password_page_locks_the_account(world_client):
    sign_in(world_client, "viewer")
    token = csrf_token_of(world_client, "/account/password")
    form = {
        "current_password": "Guess-pass-1",
        "new_password": "New-pass-22",
        "confirm_password": "New-pass-22",
        "csrf_token": token,
    }
    statuses = [world_client.post("/account/password", data=form).status_code for _ in range(5)]
    assert statuses == [422, 422, 422, 422, 302]
    assert world_client.get("/").status_code == 302  # signed out
    assert sign_in(world_client, "viewer").status_code == 429


def test_logout_revokes_a_copied_session_cookie(app, world, world_client):
    """The cookie of a signed-out session, copied before (a shared PC, a stolen cookie), no
    longer signs anybody in: logout ends the account's sessions on the server side."""
    sign_in(world_client, "viewer")
    cookie = world_client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    copy = app.test_client()
    copy.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie.value)
    assert copy.get("/").status_code == 200
    world_client.post("/logout", data={"csrf_token": csrf_token_of(world_client, "/")})
    assert copy.get("/").status_code == 302
    assert copy.get("/api/me").status_code == 401
    assert sign_in(world_client, "viewer").status_code == 302  # signing in again works
    assert world_client.get("/").status_code == 200


def test_unlock_clears_the_sign_in_locks_of_the_username(app, world, world_client):
    here = {"REMOTE_ADDR": "10.3.3.3"}
    for _ in range(5):
        sign_in(world_client, "viewer", "Wrong-pass-1", environ_base=here)
    assert sign_in(world_client, "viewer", environ_base=here).status_code == 429
    from geoservice.accounts.accounts import unlock

    unlock(world["session"], _user(world, "viewer"))
    world["session"].commit()
    assert sign_in(world_client, "viewer", environ_base=here).status_code == 302
