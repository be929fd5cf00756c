"""flask users …: accounts and API tokens (services in geoservice.accounts.accounts)."""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, or_, select

from geoservice.accounts.accounts import (
    UserError,
    create_user,
    issue_token,
    revoke_tokens,
    set_active,
    set_password,
    unlock,
    user_by_name,
)
from geoservice.accounts.permissions import ScopeSyntaxError, validate_scopes
from geoservice.db import database
from geoservice.models import ApiToken, User


def init_app(app: Flask) -> None:
    app.cli.add_command(users)


users = AppGroup("users", help="Accounts and API tokens.")


def _user_or_fail(session, username: str):
    user = user_by_name(session, username)
    if user is None:
        raise click.ClickException(f"没有用户 {username!r}")
    return user


def _expiry(session, days: int | None):
    if days is None:
        days = int(current_app.config.get("TOKEN_DEFAULT_EXPIRY_DAYS") or 0)
        return session.scalar(select(func.now())) + timedelta(days=days) if days else None
    if days < 1:
        raise click.BadParameter("有效天数须为正整数", param_hint="--expires-days")
    return session.scalar(select(func.now())) + timedelta(days=days)


def _warn_unscoped_integration(role: str, scopes: list[str] | None) -> None:
    if role == "integration" and not scopes:
        click.echo("注意：系统对接令牌未指定 --scope，不能执行任何操作", err=True)


def _scopes(values: tuple[str, ...]) -> list[str] | None:
    if not values:
        return None
    try:
        return validate_scopes([v for value in values for v in value.replace(",", " ").split()])
    except ScopeSyntaxError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from exc


SCOPE_HELP = (
    "Narrow the token: an action (layers.read) or action:collection (layers.read:grids); "
    "repeatable. Integration tokens need at least one."
)


@users.command("create")
@click.argument("username")
@click.option("--role", required=True, help="admin|planner|leader|inspector|viewer|integration")
@click.option("--area", "area_code", help="Admin-area code the account is bound to.")
@click.option("--leader", "leader_id", type=int, help="Leader record of a leader account.")
@click.option("--password", help="Sign-in password (omit for token-only accounts).")
@click.option("--display-name", default="", help="Name shown on the pages.")
@click.option(
    "--expires-days",
    type=int,
    help="The printed token expires after N days (default TOKEN_DEFAULT_EXPIRY_DAYS).",
)
@click.option("--scope", "scopes", multiple=True, help=SCOPE_HELP)
def users_create(
    username, role, area_code, leader_id, password, display_name, expires_days, scopes
) -> None:
    """Creates an account; prints its API token on the last line."""
    session = database().session()
    try:
        user = create_user(
            session, username, role, password, area_code, leader_id, display_name=display_name
        )
        token = issue_token(
            session,
            user,
            label="cli",
            expires_at=_expiry(session, expires_days),
            scopes=_scopes(scopes),
        )
        session.commit()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        session.close()
    click.echo(f"已创建用户 {username}（{role}）")
    _warn_unscoped_integration(role, _scopes(scopes))
    click.echo(token)


@users.command("token")
@click.argument("username")
@click.option(
    "--expires-days",
    type=int,
    help="The token expires after N days (default TOKEN_DEFAULT_EXPIRY_DAYS).",
)
@click.option("--scope", "scopes", multiple=True, help=SCOPE_HELP)
@click.option("--label", default="cli", show_default=True, help="A note to recognise the token.")
def users_token(username: str, expires_days: int | None, scopes, label: str) -> None:
    """Issues a new API token for USERNAME (printed on the last line)."""
    session = database().session()
    try:
        user = _user_or_fail(session, username)
        token = issue_token(
            session,
            user,
            label=label,
            expires_at=_expiry(session, expires_days),
            scopes=_scopes(scopes),
        )
        session.commit()
        _warn_unscoped_integration(user.role, _scopes(scopes))
    finally:
        session.close()
    click.echo(token)


@users.command("revoke")
@click.argument("username")
@click.option("--token-prefix", help="Revoke only the token starting with this (e.g. gs_AbC12).")
@click.option("--label", help="Revoke only the tokens with this label.")
def users_revoke(username: str, token_prefix: str | None, label: str | None) -> None:
    """Revokes USERNAME's API tokens (all of them unless narrowed)."""
    session = database().session()
    try:
        user = _user_or_fail(session, username)
        count = revoke_tokens(session, user, label=label, prefix=token_prefix)
        session.commit()
    finally:
        session.close()
    click.echo(f"已吊销 {count} 个令牌")


@users.command("deactivate")
@click.argument("username")
def users_deactivate(username: str) -> None:
    """Deactivates USERNAME: sessions end and tokens stop working at once."""
    session = database().session()
    try:
        set_active(session, _user_or_fail(session, username), False)
        session.commit()
    finally:
        session.close()
    click.echo(f"已停用用户 {username}")


@users.command("activate")
@click.argument("username")
def users_activate(username: str) -> None:
    """Re-activates USERNAME."""
    session = database().session()
    try:
        set_active(session, _user_or_fail(session, username), True)
        session.commit()
    finally:
        session.close()
    click.echo(f"已启用用户 {username}")


@users.command("password")
@click.argument("username")
@click.option(
    "--password",
    prompt="新密码",
    hide_input=True,
    confirmation_prompt="再次输入",
    help="The new password (prompted when omitted).",
)
def users_password(username: str, password: str) -> None:
    """Sets USERNAME's password (ends their sessions) and unlocks the account."""
    session = database().session()
    try:
        set_password(session, _user_or_fail(session, username), password)
        session.commit()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        session.close()
    click.echo(f"已设置用户 {username} 的密码")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Clears USERNAME's failed sign-ins and lock."""
    session = database().session()
    try:
        unlock(session, _user_or_fail(session, username))
        session.commit()
    finally:
        session.close()
    click.echo(f"已解除用户 {username} 的锁定")


@users.command("list")
def users_list() -> None:
    """Lists the accounts: name, role, scope, state, live tokens."""
    session = database().session()
    try:
        live = (
            select(ApiToken.user_id, func.count().label("n"))
            .where(
                ApiToken.revoked_at.is_(None),
                or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > func.now()),
            )
            .group_by(ApiToken.user_id)
            .subquery()
        )
        rows = session.execute(
            select(User, func.coalesce(live.c.n, 0), func.now())
            .outerjoin(live, live.c.user_id == User.id)
            .order_by(User.username)
        ).all()
        for user, tokens, now in rows:
            state = "active" if user.active else "inactive"
            if user.locked_until is not None and user.locked_until > now:
                state = "locked"
            area = user.area.code if user.area is not None else "-"
            leader = str(user.leader_id) if user.leader_id is not None else "-"
            click.echo(
                f"{user.username}\t{user.role}\tarea={area}\tleader={leader}\t{state}"
                f"\ttokens={tokens}"
            )
    finally:
        session.close()


def _write_private(path: Path, content: str) -> None:
    """Writes a secret to a file that is 0600 from its creation (a temporary file in the
    same folder, then an atomic rename): never readable by others, not even for a moment."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@users.command("ensure-demo-admin")
@click.option(
    "--credentials-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=".instance/demo-admin.txt",
    show_default=True,
)
@click.option(
    "--first-run-only",
    is_flag=True,
    help="Only while the database has no active admin (a real deployment, DEMO=0): later "
    "starts print no password or token.",
)
def users_ensure_demo_admin(credentials_file: Path, first_run_only: bool) -> None:
    """Creates the demo admin on first run; prints its login and a fresh API token that
    expires after FIRST_ADMIN_TOKEN_HOURS. The password file is created 0600 at once; the
    first admin of a real deployment (--first-run-only) must change the password at the
    first sign-in."""
    username = current_app.config["DEMO_ADMIN_USERNAME"]
    session = database().session()
    try:
        if first_run_only and session.scalar(
            select(User.id).where(User.role == "admin", User.active).limit(1)
        ):
            session.close()
            sys.stdout.write("已有管理员账号（账号管理：/admin/users 或 flask users）\n")
            return
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            password = secrets.token_urlsafe(12)
            user = create_user(
                session,
                username,
                "admin",
                password,
                display_name="演示管理员",
                check_strength=False,
            )
            user.must_change_password = first_run_only
            _write_private(credentials_file, password + "\n")
        elif credentials_file.is_file():
            password = credentials_file.read_text().strip()
        else:
            password = "（首次启动时生成，已不在本机；可用 flask users password 重置）"
        revoke_tokens(session, user, label="run")
        hours = int(current_app.config.get("FIRST_ADMIN_TOKEN_HOURS") or 24)
        expires = session.scalar(select(func.now())) + timedelta(hours=hours)
        token = issue_token(session, user, label="run", expires_at=expires)
        session.commit()
    finally:
        session.close()
    out = sys.stdout
    out.write(f"演示管理员 / demo admin: 用户名 {username}  密码 {password}\n")
    out.write(f"API token: {token}\n")
