"""The audit log: writes recorded with before/after, queryable by admins only."""

from __future__ import annotations

from sqlalchemy import select

from geoservice.accounts import audit
from geoservice.models import AuditEntry, User
from tests.world import bearer, csrf_token_of, sign_in


def test_record_and_snapshot_keep_values_but_never_secrets(world):
    session = world["session"]
    user = session.get(User, world["users"]["viewer"])
    before = audit.snapshot(user)
    assert "password_hash" not in before and before["username"] == "viewer"
    user.display_name = "王五"
    changed_before, changed_after = audit.diff(before, audit.snapshot(user))
    entry = audit.record(
        session, user, "user.update", "user", user.id, changed_before, changed_after
    )
    assert entry.before == {"display_name": ""} and entry.after == {"display_name": "王五"}
    assert entry.actor == "viewer" and entry.entity_id == str(user.id)


def test_user_management_through_the_api_is_audited_with_the_clients_ip(world, world_client):
    response = world_client.post(
        "/api/users",
        json={
            "username": "audited",
            "role": "viewer",
            "area": "320999001",
            "password": "Audit-pass-1",
        },
        headers=bearer(world["tokens"]["admin"]),
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 201
    entry = world["session"].scalar(
        select(AuditEntry).where(AuditEntry.action == "user.create").order_by(AuditEntry.id.desc())
    )
    assert entry.actor == "admin" and entry.ip == "10.1.2.3"
    assert entry.after["username"] == "audited" and entry.after["area_id"] == world["areas"]["S1"]
    assert "password_hash" not in entry.after


def test_api_audit_filters_and_pages(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    for name in ("a1", "a2", "a3"):
        world_client.post("/api/users", json={"username": name, "role": "viewer"}, headers=admin)
    body = world_client.get(
        "/api/audit?user=admin&entity=user&action=user.create&limit=2", headers=admin
    ).get_json()
    assert body["numberMatched"] == 3 and body["numberReturned"] == 2
    assert [e["after"]["username"] for e in body["entries"]] == ["a3", "a2"]  # newest first
    (link,) = [link for link in body["links"] if link["rel"] == "next"]
    rest = world_client.get(link["href"], headers=admin).get_json()
    assert [e["after"]["username"] for e in rest["entries"]] == ["a1"]
    future = world_client.get("/api/audit?since=2999-01-01", headers=admin).get_json()
    assert future["numberMatched"] == 0
    past = world_client.get(
        "/api/audit?until=2000-01-01T00:00:00%2B08:00", headers=admin
    ).get_json()
    assert past["numberMatched"] == 0


def test_api_audit_rejects_bad_filters_in_chinese(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    response = world_client.get("/api/audit?since=yesterday", headers=admin)
    assert response.status_code == 400 and response.get_json()["field"] == "since"
    response = world_client.get("/api/audit?limit=100000", headers=admin)
    assert response.status_code == 400 and response.get_json()["field"] == "limit"


def test_admin_audit_page_lists_entries(world, world_client):
    sign_in(world_client, "admin")
    token = csrf_token_of(world_client, "/admin/users")
    viewer_id = world["users"]["viewer"]
    world_client.post(f"/admin/users/{viewer_id}/unlock", data={"csrf_token": token})
    page = world_client.get("/admin/audit?action=user.unlock").get_data(as_text=True)
    assert "user.unlock" in page and "共 1 条" in page
    page = world_client.get(f"/admin/users/{viewer_id}").get_data(as_text=True)
    assert "user.unlock" in page
