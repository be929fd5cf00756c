"""API tokens: hashed, scoped, expiring, revocable; the `flask users` commands."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from geoservice.accounts.accounts import issue_token, revoke_tokens
from geoservice.models import ApiToken, AuditEntry, User
from tests.world import bearer, sign_in


def _user(world, name) -> User:
    return world["session"].get(User, world["users"][name])


def test_tokens_are_stored_only_as_hashes(world):
    session = world["session"]
    token = world["tokens"]["viewer"]
    stored = session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and all(len(h) == 64 for h in stored)
    assert not session.scalar(select(func.count()).where(ApiToken.token_hash.contains(token[3:])))


def test_no_token_bad_token_and_good_token(world, world_client):
    assert world_client.get("/api/me").status_code == 401
    bad = world_client.get("/api/me", headers=bearer("gs_not-a-real-token"))
    assert bad.status_code == 401 and "令牌" in bad.get_json()["error"]
    good = world_client.get("/api/me", headers=bearer(world["tokens"]["viewer"]))
    assert good.status_code == 200
    body = good.get_json()
    assert body["username"] == "viewer" and body["scope"]["area"]["code"] == "320999001"
    assert "layers.read" in body["permissions"] and "users.admin" not in body["permissions"]


def test_an_expired_token_is_refused(world, world_client):
    session = world["session"]
    now = session.scalar(select(func.now()))
    past = issue_token(session, _user(world, "viewer"), expires_at=now - timedelta(seconds=1))
    future = issue_token(session, _user(world, "viewer"), expires_at=now + timedelta(days=1))
    session.commit()
    assert world_client.get("/api/me", headers=bearer(past)).status_code == 401
    assert world_client.get("/api/me", headers=bearer(future)).status_code == 200


def test_revoking_by_prefix_leaves_the_other_tokens_alive(world, world_client):
    session = world["session"]
    user = _user(world, "viewer")
    second = issue_token(session, user, label="second")
    session.commit()
    assert revoke_tokens(session, user, prefix=second[:10]) == 1
    session.commit()
    assert world_client.get("/api/me", headers=bearer(second)).status_code == 401
    assert world_client.get("/api/me", headers=bearer(world["tokens"]["viewer"])).status_code == 200
    assert revoke_tokens(session, user) == 1
    session.commit()
    assert world_client.get("/api/me", headers=bearer(world["tokens"]["viewer"])).status_code == 401


def test_a_token_scoped_to_one_collection_sees_only_that_one(world, world_client):
    session = world["session"]
    token = issue_token(session, _user(world, "integration"), scopes=["layers.read:grids"])
    unscoped = issue_token(session, _user(world, "integration"))
    session.commit()
    listed = world_client.get("/api/collections", headers=bearer(token)).get_json()
    assert [c["id"] for c in listed["collections"]] == ["grids"]
    assert world_client.get("/api/collections/grids", headers=bearer(token)).status_code == 200
    refused = world_client.get("/api/collections/roads", headers=bearer(token))
    assert refused.status_code == 403 and refused.get_json()["detail"]["collection"] == "roads"
    # An integration token without scopes may do nothing.
    assert world_client.get("/api/collections", headers=bearer(unscoped)).status_code == 403


def test_cli_create_token_revoke_deactivate_list(app, world, world_client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "cli_user",
            "--role",
            "leader",
            "--area",
            "320999002",
            "--leader",
            str(world["leaders"]["L2"]),
            "--password",
            "Cli-pass-77",
        ]
    )
    assert result.exit_code == 0, result.output
    first = result.output.strip().splitlines()[-1]
    assert first.startswith("gs_")
    me = world_client.get("/api/me", headers=bearer(first)).get_json()
    assert me["role"] == "leader" and me["scope"]["area"]["code"] == "320999002"

    result = runner.invoke(
        args=[
            "users",
            "token",
            "cli_user",
            "--expires-days",
            "7",
            "--scope",
            "issues.read layers.read",
        ]
    )
    assert result.exit_code == 0, result.output
    second = result.output.strip().splitlines()[-1]
    me = world_client.get("/api/me", headers=bearer(second)).get_json()
    assert me["token"]["scopes"] == ["issues.read", "layers.read"] and me["token"]["expires_at"]
    assert me["permissions"] == ["layers.read", "issues.read"]

    bad = runner.invoke(args=["users", "token", "cli_user", "--scope", "layers.destroy"])
    assert bad.exit_code != 0 and "未知权限" in bad.output

    result = runner.invoke(args=["users", "revoke", "cli_user", "--token-prefix", second[:10]])
    assert result.exit_code == 0 and "已吊销 1 个令牌" in result.output
    assert world_client.get("/api/me", headers=bearer(second)).status_code == 401
    assert world_client.get("/api/me", headers=bearer(first)).status_code == 200

    listing = runner.invoke(args=["users", "list"]).output
    assert "cli_user\tleader\tarea=320999002" in listing and "tokens=1" in listing

    assert runner.invoke(args=["users", "deactivate", "cli_user"]).exit_code == 0
    assert world_client.get("/api/me", headers=bearer(first)).status_code == 401
    assert "inactive" in runner.invoke(args=["users", "list"]).output

    result = runner.invoke(args=["users", "password", "cli_user"], input="weak\nweak\n")
    assert result.exit_code != 0 and "至少 8 位" in result.output
    actions = (
        world["session"]
        .scalars(select(AuditEntry.action).where(AuditEntry.actor == "cli").order_by(AuditEntry.id))
        .all()
    )
    assert actions[-5:] == [
        "user.create",
        "token.issue",
        "token.issue",
        "token.revoke",
        "user.deactivate",
    ]


def test_cli_refuses_unknown_area_and_leader_without_binding(app, world):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "x1", "--role", "viewer", "--area", "999"])
    assert result.exit_code != 0 and "未知行政区划代码" in result.output
    result = runner.invoke(args=["users", "create", "x2", "--role", "leader"])
    assert result.exit_code != 0 and "须绑定" in result.output


def test_a_token_revoked_by_another_process_stops_writes_at_once_and_reads_within_seconds(
    world, world_client, monkeypatch
):
    """Reads reuse a token's lookup for TOKEN_CACHE_SECONDS per process; a revocation made
    elsewhere (no `forget_tokens` here) holds for writes at once and for reads after that."""
    from geoservice.accounts import accounts

    session = world["session"]
    token = issue_token(session, _user(world, "viewer"), label="cached")
    session.commit()
    assert world_client.get("/api/me", headers=bearer(token)).status_code == 200
    session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == accounts.token_digest(token))
        .values(revoked_at=func.now())
    )
    session.commit()
    write = world_client.post("/api/collections/grids/items", json={}, headers=bearer(token))
    assert write.status_code == 401
    later = accounts.time.monotonic() + accounts.TOKEN_CACHE_SECONDS + 0.1
    monkeypatch.setattr(accounts.time, "monotonic", lambda: later)
    assert world_client.get("/api/me", headers=bearer(token)).status_code == 401


def test_the_token_form_says_what_an_empty_field_means(world, world_client):
    """Empty 有效天数 is TOKEN_DEFAULT_EXPIRY_DAYS, not "never"; empty scopes are the role's
    permissions, and none at all for a system account."""
    assert sign_in(world_client, "admin").status_code == 302
    user_id = _user(world, "viewer").id
    page = world_client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    assert "留空不过期" not in page and "有效天数（留空：90 天）" in page
    assert "系统对接账号则无任何权限" in page
