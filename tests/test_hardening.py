"""CSRF, security headers and the CSP nonce, request size, write rate limits, error bodies."""

from __future__ import annotations

import re

import folium
from sqlalchemy import func, select

from geoservice.accounts.security import nonce_scripts
from geoservice.models import User
from tests.world import bearer, csrf_token_of, sign_in

NEW_USER = {"username": "csrf_probe", "role": "viewer", "area": "320999001"}


def _count_users(world, name: str) -> int:
    return world["session"].scalar(select(func.count()).where(User.username == name))


def test_cookie_authenticated_api_writes_need_the_csrf_header(world, world_client):
    sign_in(world_client, "admin")
    refused = world_client.post("/api/users", json=NEW_USER)
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]
    wrong = world_client.post("/api/users", json=NEW_USER, headers={"X-CSRFToken": "forged"})
    assert wrong.status_code == 400
    assert _count_users(world, "csrf_probe") == 0
    token = csrf_token_of(world_client, "/")
    created = world_client.post("/api/users", json=NEW_USER, headers={"X-CSRFToken": token})
    assert created.status_code == 201 and created.get_json()["area"] == "320999001"


def test_bearer_token_writes_need_no_csrf_token_and_ignore_the_cookie(world, world_client):
    response = world_client.post(
        "/api/users", json=NEW_USER, headers=bearer(world["tokens"]["admin"])
    )
    assert response.status_code == 201
    # A signed-in admin's cookie does not lend its rights to a viewer's token.
    sign_in(world_client, "admin")
    response = world_client.post(
        "/api/users",
        json={**NEW_USER, "username": "other"},
        headers=bearer(world["tokens"]["viewer"]),
    )
    assert response.status_code == 403


def test_every_form_needs_the_csrf_token(world, world_client):
    sign_in(world_client, "admin")
    form = {
        "username": "form_user",
        "role": "viewer",
        "area_code": "320999001",
        "password": "Form-pass-12",
    }
    assert world_client.post("/admin/users", data=form).status_code == 400
    assert _count_users(world, "form_user") == 0
    viewer_id = world["users"]["viewer"]
    for path in (
        f"/admin/users/{viewer_id}/deactivate",
        f"/admin/users/{viewer_id}/reset-password",
        f"/admin/users/{viewer_id}/tokens",
        f"/admin/users/{viewer_id}/tokens/revoke",
    ):
        assert world_client.post(path).status_code == 400, path
    assert world["session"].get(User, viewer_id).active
    token = csrf_token_of(world_client, "/admin/users")
    response = world_client.post("/admin/users", data={**form, "csrf_token": token})
    assert response.status_code == 200 and "账号已创建" in response.get_data(as_text=True)
    assert _count_users(world, "form_user") == 1


def test_an_account_is_bound_to_a_leader_and_an_area_picked_from_the_lists(world, world_client):
    """The account form offers one searchable list of leaders and one of areas (a city has
    thousands of each); a picked entry binds the account, a name typed but not picked is
    refused with the reason and creates nothing."""
    sign_in(world_client, "admin")
    page = world_client.get("/admin/users").get_data(as_text=True)
    leader_id = world["leaders"]["L1"]
    leader, area = f"张明 西城街道党工委书记 #{leader_id}", "西城街道 #320999001"
    assert f'<option value="{leader}">' in page and f'<option value="{area}">' in page
    assert '<select name="leader_id"' not in page and '<select name="area_code"' not in page
    form = {"username": "picked_leader", "role": "leader", "password": "Form-pass-12",
            "csrf_token": csrf_token_of(world_client, "/admin/users")}  # fmt: skip
    refused = world_client.post("/admin/users", data={**form, "leader_id": "张明"})
    assert refused.status_code == 422
    assert "“张明”不是列表中的领导" in refused.get_data(as_text=True)
    assert _count_users(world, "picked_leader") == 0
    made = world_client.post("/admin/users", data={**form, "leader_id": leader, "area_code": area})
    assert made.status_code == 200 and "账号已创建" in made.get_data(as_text=True)
    user = world["session"].scalars(select(User).where(User.username == "picked_leader")).one()
    assert user.leader_id == leader_id and user.area.code == "320999001"


def test_the_account_list_is_searched_and_paged(world, world_client, monkeypatch):
    """A city has tens of thousands of accounts (a 网格员 per grid): the list is searched by
    username or name and role, shown a page at a time with how many there are, each account's
    area and leader read with the page (not one statement each)."""
    from sqlalchemy import event

    from geoservice.web import admin

    sign_in(world_client, "admin")
    session = world["session"]
    everyone = session.scalar(select(func.count()).select_from(User))
    monkeypatch.setattr(admin, "USERS_PAGE_ROWS", 2)
    names = []
    for page in range(1, -(-everyone // 2) + 1):
        html = world_client.get(f"/admin/users?page={page}").get_data(as_text=True)
        assert f"共 {everyone} 个账号" in html
        names += re.findall(r'/admin/users/\d+">([^<]+)</a>', html)
    assert len(names) == everyone == len(set(names))  # every account on exactly one page

    leaders = world_client.get("/admin/users?role=leader").get_data(as_text=True)
    shown = re.findall(r'/admin/users/\d+">([^<]+)</a>', leaders)
    expected = session.scalars(select(User.username).where(User.role == "leader")).all()
    assert shown == sorted(expected)[:2] and shown
    found = world_client.get("/admin/users?q=viewer").get_data(as_text=True)
    assert "viewer" in re.findall(r'/admin/users/\d+">([^<]+)</a>', found)
    assert "符合条件的" in found

    seen: list[str] = []
    keep = lambda *args: seen.append(args[2])  # noqa: E731
    connection = session.connection()
    monkeypatch.setattr(admin, "USERS_PAGE_ROWS", 200)
    event.listen(connection, "before_cursor_execute", keep)
    try:
        world_client.get("/admin/users")
    finally:
        event.remove(connection, "before_cursor_execute", keep)
    per_account = [s for s in seen if "WHERE admin_areas.id = " in s or "WHERE leaders.id = " in s]
    assert per_account == []


def test_login_form_needs_the_csrf_token(world_client):
    response = world_client.post("/login", data={"username": "viewer", "password": "x"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_admin_pages_create_deactivate_and_reset(world, world_client):
    sign_in(world_client, "admin")
    viewer_id = world["users"]["viewer"]
    token = csrf_token_of(world_client, f"/admin/users/{viewer_id}")
    response = world_client.post(f"/admin/users/{viewer_id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 302
    assert not world["session"].get(User, viewer_id).active
    world_client.post(f"/admin/users/{viewer_id}/activate", data={"csrf_token": token})
    page = world_client.post(f"/admin/users/{viewer_id}/reset-password", data={"csrf_token": token})
    password = re.search(r'class="secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    other = world_client.application.test_client()
    assert sign_in(other, "viewer", password).headers["Location"] == "/account/password"
    page = world_client.post(
        f"/admin/users/{viewer_id}/tokens",
        data={"csrf_token": token, "scopes": "layers.read:grids", "expires_days": "30"},
    )
    issued = re.search(r'class="secret">(gs_[^<]+)<', page.get_data(as_text=True)).group(1)
    me = world_client.get("/api/me", headers=bearer(issued)).get_json()
    assert me["token"]["scopes"] == ["layers.read:grids"]
    # An admin cannot lock themselves out by deactivating their own account.
    admin_id = world["users"]["admin"]
    response = world_client.post(f"/admin/users/{admin_id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 409


def test_security_headers_on_pages_and_api(world, world_client):
    sign_in(world_client, "viewer")
    nonces = set()
    for path in ("/", "/api/me", "/login"):
        headers = world_client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert (
            "script-src 'self' 'nonce-" in csp
            and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        )
        assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
        nonces.add(re.search(r"'nonce-([^']+)'", csp).group(1))
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "SAMEORIGIN"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert headers["Cache-Control"] == "no-store"
    assert len(nonces) == 3  # a fresh nonce per request
    vendor = world_client.get("/vendor/leaflet/dist/leaflet.js")
    assert vendor.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in vendor.headers.get("Cache-Control", "")


def test_nonce_scripts_covers_every_script_of_a_folium_page(app):
    html = folium.Map(location=[33.05, 120.1], zoom_start=13, tiles=None).get_root().render()
    scripts = re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE)
    assert len(scripts) > 3
    with app.test_request_context():
        out = nonce_scripts(html, nonce="abc123")
    tags = re.findall(r"<script\b[^>]*>", out, flags=re.IGNORECASE)
    assert len(tags) == len(scripts) and all('nonce="abc123"' in t for t in tags)


def test_nonce_scripts_does_not_bless_script_text_inside_a_script():
    html = '<div></div><script>var s = "<script>alert(1)";</script><p>x</p>'
    out = nonce_scripts(html, nonce="n1")
    assert out.count('nonce="n1"') == 1
    assert '"<script>alert(1)"' in out
    already = '<script nonce="other">1</script>'
    assert nonce_scripts(already, nonce="n1") == already


def test_oversized_bodies_get_a_413_json_answer(app, world, world_client, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = world_client.post(
        "/api/users",
        data=b"{" + b" " * 2048 + b"}",
        content_type="application/json",
        headers=bearer(world["tokens"]["admin"]),
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "上传内容过大"


def test_writes_are_rate_limited_per_account(app, world, world_client, monkeypatch):
    monkeypatch.setitem(app.config, "RATE_LIMIT_WRITES_PER_MINUTE", 2)
    headers = bearer(world["tokens"]["viewer"])
    statuses = [
        world_client.post("/api/users", json={}, headers=headers).status_code for _ in range(3)
    ]
    assert statuses == [403, 403, 429]
    limited = world_client.post("/api/users", json={}, headers=headers)
    assert limited.get_json()["error"] and int(limited.headers["Retry-After"]) >= 1
    # Another account has its own budget.
    assert (
        world_client.post(
            "/api/users", json={}, headers=bearer(world["tokens"]["admin"])
        ).status_code
        == 400
    )


def test_bad_json_is_a_chinese_4xx_not_a_500(world, world_client):
    headers = bearer(world["tokens"]["admin"])
    for body in ([1, 2], {"username": 5, "role": "viewer"}, {"username": "a b", "role": "viewer"}):
        response = world_client.post("/api/users", json=body, headers=headers)
        assert 400 <= response.status_code < 500
        assert response.get_json()["error"]
    response = world_client.post(
        "/api/users", json={"username": "ok1", "role": "boss"}, headers=headers
    )
    assert response.status_code == 422 and "未知角色" in response.get_json()["error"]


def test_html_errors_are_chinese_pages(world, world_client):
    sign_in(world_client, "viewer")
    response = world_client.get("/no-such-page")
    assert response.status_code == 404 and "未找到" in response.get_data(as_text=True)
    response = world_client.get("/admin/users")
    assert response.status_code == 403 and "无权" in response.get_data(as_text=True)


def test_a_browser_with_a_bad_token_gets_the_chinese_401_page(world_client, caplog):
    response = world_client.get(
        "/map", headers={"Authorization": "Bearer gs_revoked", "Accept": "text/html"}
    )
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "API 令牌无效、已过期或已被吊销" in page and "</html>" in page  # the full page
    assert "error page failed" not in caplog.text
