"""Accounts as plain services (no Flask): passwords, sign-in with throttling, API tokens,
user management. Every change to an account is written to the audit log by the caller's
session, so it commits with the change.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import event, func, select, text, update
from sqlalchemy.orm import Session

from geoservice.accounts import audit, ratelimit
from geoservice.accounts.permissions import INTERACTIVE_ROLES, ROLE_LABELS, validate_scopes
from geoservice.input_values import shown
from geoservice.models import AdminArea, ApiToken, Leader, User
from geoservice.vocab import USER_ROLES

TOKEN_PREFIX = "gs_"
# How stale `api_tokens.last_used_at` may get before a request that commits rewrites it.
LAST_USED_GRAIN = timedelta(minutes=1)
_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

# Fields of a user shown in the audit log (never the password hash).
USER_AUDIT_EXCLUDE = ("password_hash", "created_at", "updated_at", "last_login_at")


class UserError(ValueError):
    """A user-management request that cannot be done; the message is for the user, `field`
    names the input at fault and `status` is the API's answer (409: the name is taken)."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, username: str = "", min_length: int = 8) -> str | None:
    """Why the password is too weak (a Chinese sentence), or None."""
    if len(password) < min_length:
        return f"密码至少 {min_length} 位"
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 2:
        return "密码须包含至少两类字符（小写字母、大写字母、数字、符号）"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名"
    return None


def session_stamp(user: User) -> str:
    """Changes whenever the password changes or the user signs out (`end_sessions`):
    sessions signed in before that end."""
    seed = f"{user.id}:{user.password_hash or ''}:{user.session_generation or 0}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def end_sessions(session: Session, user: User) -> None:
    """Revokes every session cookie of the user (logout): the stamp they carry changes."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_generation=User.session_generation + 1)
    )
    session.refresh(user)


# --- tokens -------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session,
    user: User,
    label: str = "",
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
    created_by: User | None = None,
) -> str:
    """Creates an API token for `user` and returns it in clear (the only time it exists)."""
    if scopes is not None:
        validate_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=token_digest(token),
        prefix=token[:10],
        label=label,
        expires_at=expires_at,
        scopes=scopes,
        created_by_id=created_by.id if created_by is not None else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        created_by,
        "token.issue",
        "api_token",
        row.id,
        after={
            "user": user.username,
            "prefix": row.prefix,
            "label": label,
            "scopes": scopes,
            "expires_at": expires_at,
        },
        actor=None if created_by is not None else "cli",
    )
    return token


def revoke_tokens(
    session: Session,
    user: User,
    label: str | None = None,
    prefix: str | None = None,
    by: User | None = None,
) -> int:
    """Revokes the user's live tokens (all, or those with `label` / starting with `prefix`)."""
    stmt = update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if label is not None:
        stmt = stmt.where(ApiToken.label == label)
    if prefix is not None:
        stmt = stmt.where(ApiToken.prefix.startswith(prefix, autoescape=True))
    ids = session.scalars(stmt.values(revoked_at=func.now()).returning(ApiToken.id)).all()
    forget_tokens()
    if ids:
        # The account's row is touched so that its write counter moves: every process stops
        # serving the revoked tokens from its cache (cached_token_for) once this commits.
        session.execute(update(User).where(User.id == user.id).values(updated_at=func.now()))
        audit.record(
            session,
            by,
            "token.revoke",
            "user",
            user.id,
            after={"user": user.username, "tokens": sorted(ids), "label": label, "prefix": prefix},
            actor=None if by is not None else "cli",
        )
    return len(ids)


def token_for(session: Session, token: str) -> tuple[ApiToken, User] | None:
    """The live token row and its active owner, else None (unknown, revoked, expired)."""
    found = _live_token(session, token_digest(token))
    return found[:2] if found is not None else None


def _live_token(session: Session, digest: str) -> tuple[ApiToken, User, datetime] | None:
    row = session.execute(
        select(ApiToken, User, func.now())
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest)
    ).first()
    if row is None:
        return None
    api_token, user, now = row
    if api_token.revoked_at is not None or not user.active:
        return None
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_GRAIN:
        _note_use(session, api_token.id)
    return api_token, user, now


# Reads may reuse a token's lookup for this long, per process (`cached_token_for`), while the
# accounts' write generation is unchanged.
TOKEN_CACHE_SECONDS = 5.0
_token_cache: dict[str, tuple[float, ApiToken, User, Any]] = {}


def _accounts_generation(session: Session) -> Any:
    """The write counter of `users` (httpcache): any committed change of an account — and a
    revocation, which touches its account (revoke_tokens) — moves it, in every process."""
    from geoservice import httpcache

    return httpcache.generation(session, ("users",))


def cached_token_for(session: Session, token: str) -> tuple[ApiToken, User] | None:
    """token_for, remembered for TOKEN_CACHE_SECONDS (never past the token's expiry) while no
    account has changed: for reads, where the lookup was a round trip and ORM work on every
    request; the check is one small prepared read of the `users` write counter. A token
    revoked, an account deactivated or changed — in any worker process, or by the CLI — is
    not served from the cache once committed. Writes use token_for."""
    digest = token_digest(token)
    clock = time.monotonic()
    current = _accounts_generation(session)  # before the lookup: never newer than the rows
    hit = _token_cache.get(digest)
    if hit is not None and hit[0] > clock and current is not None and hit[3] == current:
        # Copies of the remembered rows in this session (no query): lazy loads still work.
        return session.merge(hit[1], load=False), session.merge(hit[2], load=False)
    found = _live_token(session, digest)
    if found is None:
        _token_cache.pop(digest, None)
        return None
    api_token, user, now = found
    lifetime = TOKEN_CACHE_SECONDS
    if api_token.expires_at is not None:
        lifetime = min(lifetime, (api_token.expires_at - now).total_seconds())
    if len(_token_cache) > 10_000:
        _token_cache.clear()
    _token_cache[digest] = (clock + lifetime, api_token, user, current)
    return api_token, user


def forget_tokens() -> None:
    """Drops every remembered token lookup of this process."""
    _token_cache.clear()


@event.listens_for(Session, "after_flush")
def _forget_changed_accounts(session: Session, _context: Any) -> None:
    if any(isinstance(o, User | ApiToken) for o in (*session.dirty, *session.deleted)):
        forget_tokens()


_noted: dict[int, float] = {}  # token id → monotonic time this process last wrote its use


def _note_use(session: Session, token_id: int) -> None:
    """Writes `last_used_at` at most once a minute per token and process, in its own short
    autocommit statement that never waits for a lock (SKIP LOCKED). Assigning it on the
    request's row made every read UPDATE and lock the token's row until the request ended
    (and roll it back: reads never commit), so concurrent requests with one token queued
    behind each other."""
    clock = time.monotonic()
    if clock - _noted.get(token_id, -1e9) < LAST_USED_GRAIN.total_seconds():
        return
    _noted[token_id] = clock
    bind = (
        session.bind or session.get_bind()
    )  # the session's own bind: the primary, never a replica
    engine = getattr(bind, "engine", bind)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text(
                "UPDATE api_tokens SET last_used_at = now() WHERE id IN (SELECT id FROM"
                " api_tokens WHERE id = :id AND (last_used_at IS NULL"
                " OR last_used_at < now() - interval '1 minute') FOR UPDATE SKIP LOCKED)"
            ),
            {"id": token_id},
        )


def user_for_token(session: Session, token: str) -> User | None:
    """The active user owning a valid (unrevoked, unexpired) token, else None."""
    found = token_for(session, token)
    return found[1] if found else None


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


# --- users --------------------------------------------------------------------------------


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(
    session: Session,
    username: str,
    role: str,
    password: str | None = None,
    area_code: str | None = None,
    leader_id: int | None = None,
    display_name: str = "",
    by: User | None = None,
    check_strength: bool = True,
) -> User:
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise UserError("用户名须为 1–64 个字符，且不含空格", "username")
    if role not in USER_ROLES:
        choices = "、".join(f"{ROLE_LABELS.get(r, r)}（{r}）" for r in USER_ROLES)
        raise UserError(f"未知角色 {shown(role)}，可选：{choices}", "role")
    if user_by_name(session, username) is not None:
        raise UserError(f"用户名 {shown(username)} 已存在", "username", 409)
    area_id = None
    if area_code:
        area_id = session.scalar(select(AdminArea.id).where(AdminArea.code == area_code))
        if area_id is None:
            raise UserError(f"未知行政区划代码 {shown(area_code)}", "area")
    if leader_id is not None and session.get(Leader, leader_id) is None:
        raise UserError(f"没有编号为 {leader_id} 的包保领导", "leader_id")
    if role == "leader" and leader_id is None and area_id is None:
        raise UserError(
            "包保领导账号须绑定一位包保领导或一个行政区划（命令行为 --leader / --area）",
            "leader_id",
        )
    if password and role not in INTERACTIVE_ROLES:
        raise UserError("系统对接账号只能使用 API 令牌，不能设置登录密码", "password")
    if password and check_strength:
        problem = password_problem(password, username)
        if problem:
            raise UserError(problem, "password")
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
    audit.record(
        session,
        by,
        "user.create",
        "user",
        user.id,
        after=audit.snapshot(user, USER_AUDIT_EXCLUDE),
        actor=None if by is not None else "cli",
    )
    return user


def set_password(
    session: Session,
    user: User,
    password: str,
    by: User | None = None,
    must_change: bool = False,
) -> None:
    """Sets a new password (ends the user's other sessions: the session stamp changes)."""
    if user.role not in INTERACTIVE_ROLES:
        raise UserError("系统对接账号只能使用 API 令牌，不能设置登录密码")
    problem = password_problem(password, user.username)
    if problem:
        raise UserError(problem)
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    action = (
        "user.password_change" if by is not None and by.id == user.id else "user.password_reset"
    )
    audit.record(
        session,
        by,
        action,
        "user",
        user.id,
        after={"must_change_password": must_change},
        actor=None if by is not None else "cli",
    )


class WrongPassword(UserError):
    """The current password was wrong (counted like a failed sign-in; the caller commits)."""


def change_own_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    policy: LoginPolicy | None = None,
    ip: str | None = None,
) -> None:
    if not verify_password(user.password_hash, current):
        if policy is not None and register_failure(session, user, policy, ip):
            raise WrongPassword("当前密码连续输错次数过多，账号已锁定，请稍后重新登录")
        raise WrongPassword("当前密码不正确")
    if current == new:
        raise UserError("新密码不能与当前密码相同")
    set_password(session, user, new, by=user)


def set_active(session: Session, user: User, active: bool, by: User | None = None) -> None:
    """Deactivating ends the user's sessions and disables their tokens at once."""
    if by is not None and by.id == user.id and not active:
        raise UserError("不能停用自己的账号")
    if user.active == active:
        return
    user.active = active
    session.flush()
    if not active:  # a copied cookie stays dead when the account is switched on again
        end_sessions(session, user)
    audit.record(
        session,
        by,
        "user.activate" if active else "user.deactivate",
        "user",
        user.id,
        before={"active": not active},
        after={"active": active},
        actor=None if by is not None else "cli",
    )


def unlock(session: Session, user: User, by: User | None = None) -> None:
    before = {"failed_logins": user.failed_logins, "locked_until": user.locked_until}
    user.failed_logins = 0
    user.locked_until = None
    # … and the sign-in locks of this username from every address (authenticate).
    session.execute(
        text("DELETE FROM rate_counters WHERE starts_with(key, :prefix)"),
        {"prefix": _pair_key(user.username, None).rsplit(":", 1)[0] + ":"},
    )
    session.flush()
    audit.record(
        session,
        by,
        "user.unlock",
        "user",
        user.id,
        before=before,
        after={"failed_logins": 0, "locked_until": None},
        actor=None if by is not None else "cli",
    )


# --- sign-in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginPolicy:
    """Throttling: an account locks after `max_failures` wrong passwords in a row, for
    `lock_minutes`; an IP address may fail `ip_max_failures` times per `ip_window_s`."""

    max_failures: int = 5
    lock_minutes: int = 15
    ip_max_failures: int = 20
    ip_window_s: int = 900


class LoginRefused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


BAD_CREDENTIALS = "用户名或密码错误"


def register_failure(
    session: Session, user: User, policy: LoginPolicy, ip: str | None = None
) -> bool:
    """Counts a wrong password for `user`; locks the account at the limit (True then)."""
    user.failed_logins += 1
    if user.failed_logins < policy.max_failures:
        return False
    now = session.scalar(select(func.now()))
    user.locked_until = now + timedelta(minutes=policy.lock_minutes)
    user.failed_logins = 0
    audit.record(
        session,
        None,
        "user.lock",
        "user",
        user.id,
        after={"locked_until": user.locked_until},
        actor="system",
        ip=ip,
    )
    return True


LOCKED_OUT = "登录失败次数过多，请 {minutes} 分钟后再试或联系管理员"


def _pair_key(username: str, ip: str | None) -> str:
    return f"login-fail:user-ip:{username.strip().lower()}:{ip or '-'}"


def authenticate(
    session: Session, username: str, password: str, ip: str | None, policy: LoginPolicy
) -> User:
    """The user for these credentials, or LoginRefused. The caller commits either way, so
    the failure counters persist.

    Wrong passwords lock a *username from one address* (`max_failures` per `lock_minutes`),
    not the account: a stranger cannot lock the admin out from elsewhere. Unknown usernames
    are counted and answered exactly alike (same messages, a password hash checked either
    way), so the answers tell no existing username apart. An address is also throttled
    across usernames (`ip_max_failures` per `ip_window_s`)."""
    ip_key = f"login-fail:ip:{ip}"
    if ip:
        failures, retry = ratelimit.peek(session, ip_key, policy.ip_window_s)
        if failures >= policy.ip_max_failures:
            raise LoginRefused(429, "本机登录失败次数过多，请稍后再试", retry)
    pair_key, pair_window = _pair_key(username, ip), policy.lock_minutes * 60
    failures, retry = ratelimit.peek(session, pair_key, pair_window)
    if failures >= policy.max_failures:
        raise LoginRefused(429, LOCKED_OUT.format(minutes=max(1, retry // 60 + 1)), retry)
    user = session.scalar(select(User).where(User.username == username).with_for_update())
    now = session.scalar(select(func.now()))
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is not None and user.locked_until is not None and user.locked_until > now:
        # Locked by the account's own session guessing its password (register_failure).
        retry = int((user.locked_until - now).total_seconds()) + 1
        raise LoginRefused(429, LOCKED_OUT.format(minutes=max(1, retry // 60 + 1)), retry)
    ok = ok and user is not None and user.active and user.role in INTERACTIVE_ROLES
    if not ok:
        if ip:
            ratelimit.hit(session, ip_key, policy.ip_window_s)
        count, _ = ratelimit.hit(session, pair_key, pair_window)
        if count == policy.max_failures and user is not None:
            audit.record(
                session,
                None,
                "user.lock",
                "user",
                user.id,
                after={"locked_for_ip": ip, "minutes": policy.lock_minutes},
                actor="system",
                ip=ip,
            )
        raise LoginRefused(401, BAD_CREDENTIALS)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    ratelimit.clear(session, pair_key)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def user_summary(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "area": user.area.code if user.area is not None else None,
        "leader_id": user.leader_id,
        "active": user.active,
    }
