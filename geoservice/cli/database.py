"""flask db-upgrade / db-revision: the schema (Alembic); flask partitions: the monthly
partitions of issues and issue_events (geoservice.partitions)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from geoservice import migrate, partitions
from geoservice.db import database


def init_app(app: Flask) -> None:
    app.cli.add_command(db_upgrade)
    app.cli.add_command(db_revision)
    app.cli.add_command(partitions_group)


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


@click.group("partitions", cls=AppGroup)
def partitions_group() -> None:
    """Monthly partitions of issues and issue_events (create ahead, list, retire old months)."""


def _month(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise click.BadParameter("月份格式应为 YYYY-MM") from None


@partitions_group.command("ensure")
@click.option("--ahead", default=1, show_default=True, help="Months to create after this one.")
@click.option(
    "--since", help="Also create the months from this one (YYYY-MM), e.g. before an import."
)
def partitions_ensure(ahead: int, since: str | None) -> None:
    """Creates the missing monthly partitions (idempotent); moves rows out of the default one."""
    tz = current_app.config["TIMEZONE"]
    today = datetime.now(ZoneInfo(tz)).date()
    start = _month(since)
    with database().session() as session, session.begin():
        names = partitions.ensure(
            session, today, months_ahead=ahead, since=start.date() if start else None, tz=tz
        )
    click.echo(f"分区已就绪：{len(names)} 个（{names[0]} … {names[-1]}）")


@partitions_group.command("list")
def partitions_list() -> None:
    """Lists the partitions with their bounds and estimated row counts."""
    with database().session() as session:
        for part in partitions.partitions(session):
            click.echo(f"{part.parent}\t{part.name}\t{part.bound}\t{max(part.rows, 0)}")


@partitions_group.command("retire")
@click.option("--before", required=True, help="First month kept (YYYY-MM); older months leave.")
@click.option("--drop", is_flag=True, help="Drop the detached months (else kept as tables).")
def partitions_retire(before: str, drop: bool) -> None:
    """Detaches (or drops) the months before --before, as a foreign key's ON DELETE would."""
    month = _month(before)
    try:
        with database().session() as session, session.begin():
            names = partitions.retire(session, month.date(), drop=drop)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "已删除" if drop else "已移出（保留为独立表，可 pg_dump 归档后删除）"
    click.echo(f"{verb}：{', '.join(names) or '无'}")
