"""/api/notifications: channels (secrets write-only), the queue and its dead letters (replay),
people's preferences (an admin, or the leader themself), unit contacts, integration callbacks.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from geoservice.accounts import audit
from geoservice.accounts.auth import current_account, permission_required, require
from geoservice.api import bp
from geoservice.db import get_session
from geoservice.edge.json_input import json_object
from geoservice.edge.params import parse_paging, single_args
from geoservice.errors import ApiError
from geoservice.models import User
from geoservice.notifications import manage, outbox

ADMIN = "notifications.admin"


def _json_object() -> dict[str, Any]:
    return json_object()


@bp.get("/notifications/status")
@permission_required(ADMIN)
def notification_status():
    single_args(())
    return jsonify(outbox.queue_health(get_session()))


@bp.get("/notifications/channels")
@permission_required(ADMIN)
def notification_channels():
    single_args(())
    return jsonify({"channels": manage.list_channels(get_session())})


@bp.post("/notifications/channels")
@permission_required(ADMIN)
def create_notification_channel():
    session = get_session()
    channel = manage.save_channel(session, _json_object())
    body = manage.channel_view(channel)  # never the secrets: neither is the audit entry
    audit.record(session, current_account(), "notify_channel.create", "notify_channel",
                 channel.id, after=body)  # fmt: skip
    session.commit()
    return jsonify(body), 201


@bp.patch("/notifications/channels/<int:channel_id>")
@permission_required(ADMIN)
def update_notification_channel(channel_id: int):
    session = get_session()
    before = manage.channel_view(manage.get_channel(session, channel_id))
    channel = manage.save_channel(session, _json_object(), channel_id)
    body = manage.channel_view(channel)
    audit.record(session, current_account(), "notify_channel.update", "notify_channel",
                 channel_id, before=before, after=body)  # fmt: skip
    session.commit()
    return jsonify(body)


@bp.delete("/notifications/channels/<int:channel_id>")
@permission_required(ADMIN)
def delete_notification_channel(channel_id: int):
    session = get_session()
    before = manage.channel_view(manage.get_channel(session, channel_id))
    manage.delete_channel(session, channel_id)
    audit.record(session, current_account(), "notify_channel.delete", "notify_channel",
                 channel_id, before=before)  # fmt: skip
    session.commit()
    return Response(status=204)


@bp.get("/notifications/deliveries")
@permission_required(ADMIN)
def notification_deliveries():
    args = single_args(("status", "limit", "offset"))
    limit, offset = parse_paging(args)
    total, rows = manage.deliveries(get_session(), args.get("status") or None, limit, offset)
    return jsonify({"deliveries": rows, "numberMatched": total, "numberReturned": len(rows)})


@bp.post("/notifications/deliveries/replay")
@permission_required(ADMIN)
def replay_notification_deliveries():
    body = _json_object()
    ids = body.get("ids")
    if "all" in body and not isinstance(body["all"], bool):
        raise ApiError(422, "all 只能是 true 或 false", field="all")
    if body.get("all") is True:
        ids = None
    elif (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids)
    ):
        raise ApiError(422, "请给出要重发的死信编号列表 ids，或 all: true", field="ids")
    session = get_session()
    count = manage.replay(session, ids)
    audit.record(session, current_account(), "notify_delivery.replay", "notify_delivery",
                 after={"ids": ids, "all": ids is None, "replayed": count})  # fmt: skip
    session.commit()
    return jsonify({"replayed": count})


def _own_or_admin(leader_id: int) -> None:
    account = current_account()
    if account is None:
        raise ApiError(401, "请先登录或提供 API 令牌（Authorization: Bearer …）")
    if account.leader_id == leader_id and account.role == "leader":
        return
    require(ADMIN)


@bp.get("/notifications/preferences/<int:leader_id>")
def notification_preferences(leader_id: int):
    _own_or_admin(leader_id)
    single_args(())
    return jsonify(manage.preference_view(get_session(), leader_id))


@bp.put("/notifications/preferences/<int:leader_id>")
def set_notification_preferences(leader_id: int):
    _own_or_admin(leader_id)
    session = get_session()
    before = manage.preference_view(session, leader_id)
    body = manage.save_preference(session, leader_id, _json_object())
    audit.record(session, current_account(), "notify_preference.update", "leader", leader_id,
                 before=before, after=body)  # fmt: skip
    session.commit()
    return jsonify(body)


def _optional_id(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(422, f"{name} 须是领导编号或 null", field=name)
    return value


@bp.put("/notifications/units/<int:unit_id>/contacts")
@permission_required(ADMIN)
def set_notification_unit_contacts(unit_id: int):
    body = _json_object()
    session = get_session()
    row = manage.set_unit_contacts(
        session,
        unit_id,
        _optional_id(body, "contact_leader_id"),
        _optional_id(body, "supervisor_leader_id"),
    )
    result = {
        "unit_id": row.unit_id,
        "contact_leader_id": row.contact_leader_id,
        "supervisor_leader_id": row.supervisor_leader_id,
    }
    audit.record(session, current_account(), "notify_unit_contacts.update", "unit", unit_id,
                 after=result)  # fmt: skip
    session.commit()
    return jsonify(result)


@bp.put("/notifications/callbacks/<int:user_id>")
@permission_required(ADMIN)
def set_notification_callback(user_id: int):
    body = _json_object()
    session = get_session()
    user = session.get(User, user_id)
    if user is None:
        raise ApiError(404, f"没有编号为 {user_id} 的账号", field="user_id")
    secret = body.get("secret")
    if secret is not None and not isinstance(secret, str):
        raise ApiError(422, "secret 须是文字", field="secret")
    manage.set_callback(session, user, body.get("url"), secret)
    audit.record(session, current_account(), "integration_callback.update", "user", user_id,
                 after={"url": body.get("url"), "secret_changed": secret is not None})  # fmt: skip
    session.commit()
    return jsonify({"user_id": user_id, "url": body.get("url"), "secret_set": True})
