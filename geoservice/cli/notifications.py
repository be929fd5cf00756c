"""flask notifications-worker | notifications status | notifications replay."""

from __future__ import annotations

import dataclasses
import json
import logging

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from geoservice.db import database
from geoservice.notifications import manage, outbox
from geoservice.notifications.worker import WorkerSettings, run, run_once


def init_app(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(notifications)


@click.command("notifications-worker")
@with_appcontext
@click.option("--once", is_flag=True, help="run the scans and every due delivery job, then exit")
def worker_command(once: bool) -> None:
    """Delivers queued notifications: procrastinate's worker on the `notifications` queue
    (run beside gunicorn; see docs/deploy.md)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from geoservice.fieldwork.settings import FieldSettings
    from geoservice.registry import layers

    settings = dataclasses.replace(
        WorkerSettings.from_config(current_app.config),
        registry=layers(),
        field_settings=FieldSettings.from_config(current_app.config),
    )
    db = database()
    if once:
        with db.session() as session:
            click.echo(json.dumps(run_once(session, settings), ensure_ascii=False))
        return
    run(db.engine.url, db.session, settings)


@click.group("notifications", cls=AppGroup)
def notifications() -> None:
    """The notification queue: figures, dead letters, replay."""


@notifications.command("status")
def status() -> None:
    with database().session() as session:
        click.echo(json.dumps(outbox.queue_health(session), ensure_ascii=False))


@notifications.command("replay")
@click.argument("delivery_ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="every dead letter")
def replay(delivery_ids: tuple[int, ...], all_dead: bool) -> None:
    """Puts dead letters back in the queue."""
    with database().session() as session:
        count = manage.replay(session, None if all_dead else list(delivery_ids))
        session.commit()
    click.echo(f"已重新排队 {count} 条")


@notifications.command("publish-report")
@click.option("--week", help="ISO week, e.g. 2026-W47, or a date in it (default: last week).")
@click.option("--month", help="e.g. 2026-11, or a date in it (instead of --week).")
def publish_report(week: str | None, month: str | None) -> None:
    """Sends the 通报 to the units named in it (their contacts and heads)."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from geoservice.notifications import bulletin
    from geoservice.ranking import vocabularies
    from geoservice.ranking.periods import PeriodError, parse_period
    from geoservice.registry import layers

    tz = ZoneInfo(current_app.config["TIMEZONE"])
    kind, value = ("month", month) if month else ("week", week)
    try:
        period = parse_period(kind, value, None, tz, date.today())
    except PeriodError as exc:
        raise click.ClickException(exc.message) from exc
    with database().session() as session:
        # The rules in force at the period's start, as the office's ranking of that period.
        settings = vocabularies.ranking_settings(session, current_app.config, period.start)
        made = bulletin.publish(session, layers(), period, settings)
        session.commit()
    click.echo(f"{period.title}通报：已排队 {made} 条消息")
