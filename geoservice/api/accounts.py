"""Account endpoints: GET /api/me (who am I, what may I do, what do I see) and, for admins,
GET /api/users."""

from __future__ import annotations

from flask import jsonify
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from geoservice import accounts, scope
from geoservice.api import bp
from geoservice.auth import current_account, current_token, permission_required
from geoservice.db import get_session
from geoservice.models import User
from geoservice.permissions import actions_for


@bp.get("/me")
def me():
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
    rows = get_session().scalars(select(User).order_by(User.username)).all()
    return jsonify({"users": [accounts.user_summary(u) for u in rows]})
