"""flask commands for 包保: import-roster, roster-template, export-roster, coverage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from geoservice import rules
from geoservice.db import database
from geoservice.registry import BASE_LAYER, layers
from geoservice.responsibility import coverage, roster, roster_export
from geoservice.responsibility import responsibility as resp
from geoservice.responsibility.roster_template import write_template


def init_app(app: Flask) -> None:
    for command in (import_roster, roster_template, export_roster, coverage_audit):
        app.cli.add_command(command)


@click.command("import-roster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_appcontext
def import_roster(file: Path, dry_run: bool, as_json: bool) -> None:
    """Imports a 包保 roster (.xlsx) all-or-nothing; reports every row. Exit 1 if rejected."""
    config = current_app.config
    session = database().session()
    try:
        vocab = rules.vocabularies(session, config, rules.now())
        report = roster.import_roster(
            session,
            layers(),
            file,
            roles=vocab.roles,
            levels=vocab.levels,
            retired_levels=rules.retired(session, config, "leader_levels", vocab.at, vocab.levels),
            timezone=config["TIMEZONE"],
            dry_run=dry_run,
        )
        if report.applied:
            session.commit()
        else:
            session.rollback()
    except resp.ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        session.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        for row in report.rows:
            click.echo(row.line(report.applied))
        click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


def _levels_in_order(session, config) -> list[str]:
    """The levels in force, then the retired ones (the export's sort order)."""
    vocab = rules.vocabularies(session, config, rules.now())
    return [*vocab.levels, *rules.retired(session, config, "leader_levels", vocab.at, vocab.levels)]


@click.command("roster-template")
@click.argument(
    "output", type=click.Path(dir_okay=False, path_type=Path), default="包保清单模板.xlsx"
)
@with_appcontext
def roster_template(output: Path) -> None:
    """Writes the roster template workbook (drop-down lists, 说明 sheet)."""
    session = database().session()
    try:
        vocab = rules.vocabularies(session, current_app.config, rules.now())
    finally:
        session.close()
    write_template(output, layers(), vocab.roles, vocab.levels)
    click.echo(f"已生成模板 {output}")


@click.command("export-roster")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--unit", "unit_name", help="Only the leaders of this unit.")
@click.option("--title", default=roster_export.DEFAULT_TITLE, show_default=True)
@with_appcontext
def export_roster(output: Path | None, unit_name: str | None, title: str) -> None:
    """Exports the current 包保责任情况一览表 (.xlsx)."""
    config = current_app.config
    session = database().session()
    try:
        unit_id = None
        if unit_name:
            unit = resp.unit_by_name(session, unit_name)
            if unit is None:
                raise click.ClickException(f"没有单位“{unit_name}”")
            unit_id = unit.id
        if output is None:
            today = resp.now().astimezone(ZoneInfo(config["TIMEZONE"])).date()
            output = Path(f"包保责任情况一览表-{today:%Y%m%d}.xlsx")
        count = roster_export.export_roster(
            session,
            layers(),
            output,
            levels=_levels_in_order(session, config),
            timezone=config["TIMEZONE"],
            title=title,
            unit_id=unit_id,
        )
    finally:
        session.close()
    click.echo(f"已导出 {count} 条包保责任到 {output}")


@click.command("coverage")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report (GeoJSON) as JSON.")
@click.option("--min-area", default=coverage.DEFAULT_MIN_AREA_M2, show_default=True, type=float)
@with_appcontext
def coverage_audit(as_json: bool, min_area: float) -> None:
    """Coverage audit: unassigned features, grid gaps and overlaps, idle leaders, dangling rows."""
    session = database().session()
    try:
        report = coverage.coverage_report(session, layers(), BASE_LAYER, min_area)
    finally:
        session.close()
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, default=str))
        return
    for line in coverage.report_lines(report):
        click.echo(line)
