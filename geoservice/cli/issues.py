"""flask reattribute: issue attribution again after layers or assignments changed."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from geoservice.db import database
from geoservice.issues.issues import reattribute as run
from geoservice.registry import layers


def init_app(app: Flask) -> None:
    app.cli.add_command(reattribute)


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
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    session = database().session()
    try:
        report = run(
            session,
            layers(),
            since.replace(tzinfo=tz),
            open_only=open_only,
            fallback=tuple(current_app.config.get("RESPONSIBILITY_FALLBACK") or ()),
        )
        session.commit()
    finally:
        session.close()
    click.echo(
        f"已重新归属：检查 {report.checked} 件，归属变化 {report.changed} 件"
        f"（已记录事件），人工交办保留 {report.skipped_manual} 件"
    )
