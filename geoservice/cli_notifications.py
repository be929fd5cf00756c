"""flask notifications-worker | notifications status | notifications replay."""

from __future__ import annotations

import json
import logging

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from geoservice.db import database
from geoservice.notifications import manage, outbox
from geoservice.notifications.worker import WorkerSettings, run_forever, run_once


def init_app(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(notifications)


@click.command("notifications-worker")
@with_appcontext
@click.option("--once", is_flag=True, help="run the scans and one delivery round, then exit")
def worker_command(once: bool) -> None:
    """Delivers queued notifications (run beside gunicorn; see docs/deploy.md)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = WorkerSettings.from_config(current_app.config)
    db = database()
    if once:
        with db.session() as session:
            click.echo(json.dumps(run_once(session, settings), ensure_ascii=False))
        return
    run_forever(db.engine, db.session, settings)


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
