"""Sign-in, sessions, sign-out, password change, throttling, deactivation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

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


def test_account_locks_after_repeated_failures_even_for_the_right_password(world, world_client):
    for _ in range(5):
        assert sign_in(world_client, "planner", "Wrong-pass-1").status_code == 401
    locked = sign_in(world_client, "planner")
    assert locked.status_code == 429
    assert "锁定" in locked.get_data(as_text=True)
    assert int(locked.headers["Retry-After"]) > 0
    user = _user(world, "planner")
    assert user.locked_until is not None
    assert (
        world["session"].scalar(
            select(func.count()).where(
                AuditEntry.action == "user.lock", AuditEntry.entity_id == str(user.id)
            )
        )
        == 1
    )
    # The lock expires by itself.
    user.locked_until = world["session"].scalar(select(func.now())) - timedelta(seconds=1)
    world["session"].commit()
    assert sign_in(world_client, "planner").status_code == 302
    assert _user(world, "planner").failed_logins == 0


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
