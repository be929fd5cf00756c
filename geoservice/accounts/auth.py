"""Who is calling and may they: the Flask side of accounts.

- Every request needs an account (a signed-in session or `Authorization: Bearer <token>`),
  except the endpoints in PUBLIC_ENDPOINTS or marked `@public`: anonymous HTML requests are
  redirected to /login, anonymous API requests get 401 JSON.
- `@permission_required("layers.write")` (or `require("layers.write", collection)` inside a
  view) checks the permission table of geoservice.accounts.permissions, including token scopes:
  401 without an account, 403 when the role or token may not. Which *rows* the account sees
  is geoservice.accounts.scope's business.

The services (hashing, tokens, users) live in geoservice.accounts and are re-exported here
for older imports.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, g, redirect, request, url_for
from flask_login import LoginManager, current_user

from geoservice.accounts.accounts import (  # noqa: F401  (re-exported)
    UserError,
    cached_token_for,
    create_user,
    hash_password,
    issue_token,
    revoke_tokens,
    session_stamp,
    token_digest,
    token_for,
    user_for_token,
    verify_password,
)
from geoservice.accounts.permissions import ANY_COLLECTION, allowed
from geoservice.db import get_session
from geoservice.errors import ApiError, wants_json
from geoservice.models import ApiToken, User

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Endpoints anyone may call (besides views decorated with @public).
PUBLIC_ENDPOINTS = frozenset(
    {"static", "health.healthz", "assets.vendor", "assets.vendor_folium", "account.login"}
)
# Endpoints a user who must change their password may still reach.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"account.password", "account.logout"})

UNAUTHENTICATED = "请先登录或提供 API 令牌（Authorization: Bearer …）"
FORBIDDEN = "当前账号无权执行此操作"


def public(view: Callable) -> Callable:
    """Marks a view as reachable without an account."""
    view.public = True  # type: ignore[attr-defined]
    return view


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def current_account() -> User | None:
    """The caller: the owner of a Bearer token, or the signed-in user of the session.

    A request carrying a bad, expired or revoked token is refused (401), never treated as
    anonymous or as the session's user.
    """
    if "account" in g:
        return g.account
    account, token_row = None, None
    token = bearer_token()
    if token is not None:
        # Reads may reuse a lookup for a few seconds (cached_token_for says how revocation
        # still holds); writes always look the token up.
        lookup = cached_token_for if request.method in SAFE_METHODS else token_for
        found = lookup(get_session(), token)
        if found is None:
            raise ApiError(401, "API 令牌无效、已过期或已被吊销")
        token_row, account = found
    elif current_user.is_authenticated:
        account = current_user._get_current_object().user
    g.account = account
    g.api_token = token_row
    return account


def current_token() -> ApiToken | None:
    """The API token of this request (None for session sign-ins)."""
    current_account()
    return g.api_token


def can(action: str, collection: str | None = None) -> bool:
    """May the caller do `action` (on `collection`)? For templates and views."""
    account = current_account()
    if account is None:
        return False
    token = current_token()
    return allowed(
        account.role,
        action,
        collection,
        token_scopes=token.scopes if token is not None else None,
        via_token=token is not None,
    )


def require(action: str, collection: str | None = None) -> User:
    """The caller, if allowed to do `action` (on `collection`); else 401/403."""
    account = current_account()
    if account is None:
        raise ApiError(401, UNAUTHENTICATED)
    if not can(action, collection):
        detail: dict[str, Any] = {"role": account.role, "action": action}
        if collection is not None and collection != ANY_COLLECTION:
            detail["collection"] = collection
        raise ApiError(403, FORBIDDEN, detail)
    return account


def permission_required(action: str, collection_arg: str | None = None) -> Callable:
    """Decorator: the view needs `action`; `collection_arg` names the URL variable holding
    the collection id when the permission can be narrowed per collection (token scopes)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require(action, kwargs.get(collection_arg) if collection_arg else None)
            return view(*args, **kwargs)

        wrapper.permission = action  # type: ignore[attr-defined]
        return wrapper

    return decorator


def roles_required(*roles: str) -> Callable:
    """401 for anonymous callers, 403 for callers outside `roles` (admin always passes).

    Prefer permission_required: it reads the one permission table and token scopes.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None:
                raise ApiError(401, UNAUTHENTICATED)
            if account.role != "admin" and account.role not in roles:
                raise ApiError(403, FORBIDDEN, {"role": account.role})
            return view(*args, **kwargs)

        return wrapper

    return decorator


def is_public(endpoint: str | None) -> bool:
    """Whether anyone may call the endpoint (PUBLIC_ENDPOINTS, views marked @public); an
    unknown URL (None) is answered 404 by routing whoever asks."""
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
        return True
    return bool(getattr(current_app.view_functions.get(endpoint), "public", False))


def _require_sign_in(app: Flask) -> Any:
    endpoint = request.endpoint
    if is_public(endpoint):
        return None
    account = current_account()
    if account is None:
        if wants_json():
            raise ApiError(401, UNAUTHENTICATED)
        return redirect(url_for("account.login", next=_local_path()))
    if (
        g.api_token is None
        and account.must_change_password
        and endpoint not in PASSWORD_CHANGE_ENDPOINTS
    ):
        if wants_json():
            raise ApiError(403, "请先修改初始密码", {"action": "password_change"})
        return redirect(url_for("account.password"))
    return None


def _local_path() -> str:
    path = request.full_path if request.query_string else request.path
    return path


class _SessionUser:
    """Flask-Login's view of a User row; the id carries the session stamp."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.id}:{session_stamp(self.user)}"


def login_session(user: User) -> _SessionUser:
    return _SessionUser(user)


def init_app(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = None
    manager.session_protection = "basic"
    manager.init_app(app)

    @manager.user_loader
    def _load(user_id: str) -> _SessionUser | None:
        raw_id, _, stamp = user_id.partition(":")
        if not raw_id.isdigit():
            return None
        user = get_session().get(User, int(raw_id))
        if user is None or not user.active or stamp != session_stamp(user):
            return None
        return _SessionUser(user)

    app.before_request(lambda: _require_sign_in(app))
    app.jinja_env.globals.update(can=can, current_account=current_account)
