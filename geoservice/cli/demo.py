"""flask seed-demo: the demo county (geoservice.demo) into an empty database."""

from __future__ import annotations

import time
from datetime import date, timedelta

import click
from flask import Flask, current_app

from geoservice import partitions
from geoservice.db import database
from geoservice.demo import generate_county
from geoservice.demo.issues import ISSUE_WINDOW_DAYS
from geoservice.demo.seed import database_is_empty, load_demo
from geoservice.issues.photos import PhotoStore
from geoservice.registry import layers


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo)


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
    session = database().session()
    try:
        if not database_is_empty(session):
            if if_empty:
                click.echo("数据库已有数据，跳过演示数据")
                return
            raise click.ClickException(
                "数据库已有数据；演示数据只能载入空库（可先 scripts/pg reset）"
            )
        started = time.monotonic()
        click.echo(f"生成演示县（seed={seed}, scale={scale}）…")
        last_day = today.date() if today else date.today() - timedelta(days=1)
        county = generate_county(seed=seed, scale=scale, today=last_day)
        # The months of the issue window get their partitions (not the default one).
        partitions.ensure(
            session,
            today=max(date.today(), last_day),
            since=last_day - timedelta(days=ISSUE_WINDOW_DAYS),
            tz=current_app.config["TIMEZONE"],
        )
        store = PhotoStore(current_app.config["UPLOAD_DIR"])
        counts = load_demo(session, layers(), county, progress=_timed_echo(), photo_store=store)
        session.commit()
    finally:
        session.close()
    click.echo("演示数据已载入：" + "，".join(f"{k} {v}" for k, v in counts.items()))
    click.echo(f"用时 {time.monotonic() - started:.1f} s")


def _timed_echo():
    """Echoes each step's message with the seconds since the previous one (the step's time:
    every message closes a step)."""
    last = time.monotonic()

    def echo(message: str) -> None:
        nonlocal last
        now = time.monotonic()
        click.echo(f"  {message}（{now - last:.1f} s）")
        last = now

    return echo
