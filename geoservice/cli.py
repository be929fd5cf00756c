"""flask commands: db-upgrade, db-revision, seed-demo, users …"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from geoservice import migrate
from geoservice.db import database
from geoservice.registry import layers


def init_app(app: Flask) -> None:
    app.cli.add_command(db_upgrade)
    app.cli.add_command(db_revision)
    app.cli.add_command(seed_demo)
    app.cli.add_command(users)
    app.cli.add_command(reattribute)


@click.command("db-upgrade")
def db_upgrade() -> None:
    """Applies all migrations (idempotent)."""
    migrate.upgrade(database().engine, layers_package=current_app.config["LAYERS_PACKAGE"])
    click.echo("数据库已是最新结构")


@click.command("db-revision")
@click.argument("message")
def db_revision(message: str) -> None:
    """Generates a migration from the models and layers/ (e.g. after adding a layer)."""
    migrate.autogenerate(
        database().engine, message, layers_package=current_app.config["LAYERS_PACKAGE"]
    )


@click.command("seed-demo")
@click.option("--seed", default=1, show_default=True, help="Random seed (same seed ⇒ same data).")
@click.option("--scale", default=1.0, show_default=True, help="Multiplies every count.")
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day of the 8-week issue window (default: yesterday, so no event lies ahead).",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database holds data.")
def seed_demo(seed: int, scale: float, today, if_empty: bool) -> None:
    """Loads the demo county (演示县, Jiangsu): areas, layers, leaders, assignments, issues."""
    from geoservice.demo import generate_county
    from geoservice.seed import database_is_empty, load_demo

    session = database().session()
    try:
        if not database_is_empty(session):
            if if_empty:
                click.echo("数据库已有数据，跳过演示数据")
                return
            raise click.ClickException(
                "数据库已有数据；演示数据只能载入空库（可先 scripts/pg reset）"
            )
        click.echo(f"生成演示县（seed={seed}, scale={scale}）…")
        last_day = today.date() if today else date.today() - timedelta(days=1)
        county = generate_county(seed=seed, scale=scale, today=last_day)
        counts = load_demo(session, layers(), county, progress=lambda m: click.echo(f"  {m}"))
        session.commit()
    finally:
        session.close()
    click.echo("演示数据已载入：" + "，".join(f"{k} {v}" for k, v in counts.items()))


users = AppGroup("users", help="Accounts and API tokens.")


@users.command("create")
@click.argument("username")
@click.option("--role", required=True, help="admin|planner|leader|inspector|viewer|integration")
@click.option("--area", "area_code", help="Admin-area code the account is bound to.")
@click.option("--leader", "leader_id", type=int, help="Leader record of a leader account.")
@click.option("--password", help="Sign-in password (omit for token-only accounts).")
def users_create(username, role, area_code, leader_id, password) -> None:
    """Creates an account; prints its API token on the last line."""
    from geoservice.auth import UserError, create_user, issue_token

    session = database().session()
    try:
        user = create_user(session, username, role, password, area_code, leader_id)
        token = issue_token(session, user, label="cli")
        session.commit()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        session.close()
    click.echo(f"已创建用户 {username}（{role}）")
    click.echo(token)


@users.command("token")
@click.argument("username")
def users_token(username: str) -> None:
    """Issues a new API token for USERNAME (printed on the last line)."""
    from geoservice.auth import issue_token
    from geoservice.models import User

    session = database().session()
    try:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"没有用户 {username!r}")
        token = issue_token(session, user, label="cli")
        session.commit()
    finally:
        session.close()
    click.echo(token)


@users.command("ensure-demo-admin")
@click.option(
    "--credentials-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=".instance/demo-admin.txt",
    show_default=True,
)
def users_ensure_demo_admin(credentials_file: Path) -> None:
    """Creates the demo admin on first run; prints its login and a fresh API token."""
    import secrets

    from geoservice.auth import create_user, issue_token, revoke_tokens
    from geoservice.models import User

    username = current_app.config["DEMO_ADMIN_USERNAME"]
    session = database().session()
    try:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            password = secrets.token_urlsafe(12)
            user = create_user(session, username, "admin", password, display_name="演示管理员")
            credentials_file.parent.mkdir(parents=True, exist_ok=True)
            credentials_file.write_text(password + "\n")
            credentials_file.chmod(0o600)
        elif credentials_file.is_file():
            password = credentials_file.read_text().strip()
        else:
            password = "（首次启动时生成，已不在本机；可用 flask users password 重置）"
        revoke_tokens(session, user, label="run")
        token = issue_token(session, user, label="run")
        session.commit()
    finally:
        session.close()
    out = sys.stdout
    out.write(f"演示管理员 / demo admin: 用户名 {username}  密码 {password}\n")
    out.write(f"API token: {token}\n")


@click.command("reattribute")
@click.option(
    "--since",
    required=True,
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="Issues reported at or after this local time (YYYY-MM-DD[THH:MM]).",
)
@click.option("--open-only", is_flag=True, help="Only issues not yet closed or rejected.")
@with_appcontext
def reattribute(since, open_only: bool) -> None:
    """Recomputes issue attribution after layers or assignments changed; one event per change."""
    from zoneinfo import ZoneInfo

    from geoservice.issues import reattribute as run

    tz = ZoneInfo(current_app.config["TIMEZONE"])
    session = database().session()
    try:
        report = run(session, layers(), since.replace(tzinfo=tz), open_only=open_only)
        session.commit()
    finally:
        session.close()
    click.echo(
        f"已重新归属：检查 {report.checked} 件，归属变化 {report.changed} 件"
        f"（已记录事件），人工交办保留 {report.skipped_manual} 件"
    )
