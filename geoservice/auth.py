"""Accounts: password hashing, API tokens (stored hashed), sign-in sessions, role checks."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, g, request
from flask_login import LoginManager, current_user
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from geoservice.db import get_session
from geoservice.errors import ApiError
from geoservice.models import AdminArea, ApiToken, User
from geoservice.vocab import USER_ROLES

TOKEN_PREFIX = "gs_"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, label: str = "", expires_at: datetime | None = None
) -> str:
    """Creates an API token for `user` and returns it in clear (the only time it exists)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            token_hash=token_digest(token),
            prefix=token[:10],
            label=label,
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def revoke_tokens(session: Session, user: User, label: str | None = None) -> int:
    stmt = update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if label is not None:
        stmt = stmt.where(ApiToken.label == label)
    return session.execute(stmt.values(revoked_at=datetime.now(UTC))).rowcount


def user_for_token(session: Session, token: str) -> User | None:
    """The active user owning a valid (unrevoked, unexpired) token, else None."""
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_digest(token))
    ).first()
    if row is None:
        return None
    api_token, user = row
    now = datetime.now(UTC)
    if api_token.revoked_at is not None or not user.active:
        return None
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return None
    api_token.last_used_at = now
    return user


class UserError(ValueError):
    pass


def create_user(
    session: Session,
    username: str,
    role: str,
    password: str | None = None,
    area_code: str | None = None,
    leader_id: int | None = None,
    display_name: str = "",
) -> User:
    if role not in USER_ROLES:
        raise UserError(f"未知角色 {role!r}，可选：{', '.join(USER_ROLES)}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"用户名 {username!r} 已存在")
    area_id = None
    if area_code is not None:
        area_id = session.scalar(select(AdminArea.id).where(AdminArea.code == area_code))
        if area_id is None:
            raise UserError(f"未知行政区划代码 {area_code!r}")
    user = User(
        username=username,
        role=role,
        password_hash=hash_password(password) if password else None,
        area_id=area_id,
        leader_id=leader_id,
        display_name=display_name,
    )
    session.add(user)
    session.flush()
    return user


def current_account() -> User | None:
    """The caller: the owner of a Bearer token, or the signed-in user of the session."""
    if "account" in g:
        return g.account
    account = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        account = user_for_token(get_session(), header[len("Bearer ") :].strip())
        if account is None:
            raise ApiError(401, "API 令牌无效、已过期或已被吊销")
    elif current_user.is_authenticated:
        account = current_user._get_current_object().user
    g.account = account
    return account


def roles_required(*roles: str) -> Callable:
    """401 for anonymous callers, 403 for callers outside `roles` (admin always passes)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None:
                raise ApiError(401, "请先登录或提供 API 令牌（Authorization: Bearer …）")
            if account.role != "admin" and account.role not in roles:
                raise ApiError(403, "当前账号的角色无权执行此操作", {"role": account.role})
            return view(*args, **kwargs)

        return wrapper

    return decorator


class _SessionUser:
    """Flask-Login's view of a User row."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)


def init_app(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = None
    manager.init_app(app)

    @manager.user_loader
    def _load(user_id: str) -> _SessionUser | None:
        user = get_session().get(User, int(user_id))
        return _SessionUser(user) if user is not None and user.active else None
