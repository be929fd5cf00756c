"""Account endpoints: GET /api/me (who am I, what may I do, what do I see) and, for admins,
GET/POST /api/users."""

from __future__ import annotations

from flask import jsonify, request
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from geoservice.accounts import accounts, scope
from geoservice.accounts.auth import current_account, current_token, permission_required
from geoservice.accounts.permissions import actions_for
from geoservice.api import bp
from geoservice.db import get_session
from geoservice.edge.params import single_args
from geoservice.errors import ApiError
from geoservice.models import User


@bp.get("/me")
def me():
    single_args(())
    account = current_account()
    token = current_token()
    body = {
        **accounts.user_summary(account),
        "permissions": actions_for(
            account.role, token.scopes if token else None, via_token=token is not None
        ),
        "scope": scope.describe(get_session(), account),
    }
    if token is not None:
        body["token"] = {
            "prefix": token.prefix,
            "label": token.label,
            "scopes": token.scopes,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
    else:
        # Scripts of a signed-in page send this as X-CSRFToken on writes.
        body["csrf_token"] = generate_csrf()
    return jsonify(body)


@bp.get("/users")
@permission_required("users.admin")
def users():
    single_args(())
    rows = get_session().scalars(select(User).order_by(User.username)).all()
    return jsonify({"users": [accounts.user_summary(u) for u in rows]})


@bp.post("/users")
@permission_required("users.admin")
def create_user():
    """Creates an account from JSON {username, role, password?, area?, leader_id?,
    display_name?}; 201 with the account. Integration accounts get their tokens from the
    admin page or `flask users token`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "请求体须为 JSON 对象")
    for field in ("username", "role"):
        if not isinstance(body.get(field), str):
            raise ApiError(400, f"缺少字段 {field}", field=field)
    leader_id = body.get("leader_id")
    if leader_id is not None and (not isinstance(leader_id, int) or isinstance(leader_id, bool)):
        raise ApiError(400, "leader_id 须为整数", field="leader_id")
    for field in ("password", "area", "display_name"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise ApiError(400, f"字段 {field} 须为字符串", field=field)
    db = get_session()
    try:
        user = accounts.create_user(
            db,
            body["username"],
            body["role"],
            body.get("password") or None,
            area_code=body.get("area") or None,
            leader_id=leader_id,
            display_name=(body.get("display_name") or "")[:100],
            by=current_account(),
        )
    except accounts.UserError as exc:
        db.rollback()
        raise ApiError(422, str(exc)) from exc
    db.commit()
    return jsonify(accounts.user_summary(user)), 201
