"""flask db-upgrade / db-revision: the schema (Alembic)."""

from __future__ import annotations

import click
from flask import Flask, current_app

from geoservice import migrate
from geoservice.db import database


def init_app(app: Flask) -> None:
    app.cli.add_command(db_upgrade)
    app.cli.add_command(db_revision)


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
