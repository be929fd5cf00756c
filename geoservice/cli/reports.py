"""flask report weekly / monthly: the 通报 workbooks (geoservice.ranking.report)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from geoservice.db import database
from geoservice.ranking import report as reports
from geoservice.ranking.periods import PeriodError, parse_period
from geoservice.ranking.vocabularies import ranking_settings
from geoservice.registry import layers


def init_app(app: Flask) -> None:
    app.cli.add_command(report)


report = AppGroup("report", help="通报 workbooks (.xlsx) of the rankings.")


def _write_report(kind: str, value: str | None, output: Path | None) -> None:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    try:
        period = parse_period(kind, value, None, tz, date.today())
    except PeriodError as exc:
        raise click.ClickException(exc.message) from exc
    session = database().session()
    try:
        settings = ranking_settings(session, current_app.config, period.start)
        wb = reports.workbook(session, layers(), period, settings)
        target = output or Path(reports.filename(period))
        wb.save(target)
    finally:
        session.close()
    click.echo(f"已生成{period.title}通报：{target}")


@report.command("weekly")
@click.option("--week", help="ISO week, e.g. 2026-W47, or a date in it (default: last week).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def report_weekly(week: str | None, output: Path | None) -> None:
    """Writes the weekly 通报 workbook (cover, rankings of leaders/units/grids, overdue)."""
    _write_report("week", week, output)


@report.command("monthly")
@click.option("--month", help="e.g. 2026-11, or a date in it (default: last month).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def report_monthly(month: str | None, output: Path | None) -> None:
    """Writes the monthly 通报 workbook."""
    _write_report("month", month, output)
