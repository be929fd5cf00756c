"""flask import-areas / link-areas / service-area: onboarding a city's admin hierarchy."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from geoservice.accounts import audit
from geoservice.areas import hierarchy, service_area
from geoservice.areas.area_import import format_report, import_areas
from geoservice.areas.levels import LEVELS
from geoservice.areas.service_area import bounds
from geoservice.catalogue.importers import ImportFailed, open_features, parse_mapping
from geoservice.db import database
from geoservice.registry import layers


def link_and_print(session, sliver_m2: float | None = None, listed: int | None = 20):
    """Links the whole hierarchy (in the caller's transaction) and prints the report."""
    report = hierarchy.link(session, layers(), sliver_m2 or hierarchy.DEFAULT_SLIVER_M2)
    if report.edges:
        click.echo("层级关系：")
        for line in report.lines(listed):
            click.echo(f"  {line}")
    return report


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@click.command("import-areas")
@click.argument("level", type=click.Choice(LEVELS))
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="源字段=code|name",
    help="Which source attribute holds the code or the name, e.g. --map 街道代码=code.",
)
@click.option(
    "--crs",
    help="CRS of the file when it declares none (or to override): EPSG:4490, a PROJ string, "
    "WKT, or a .prj file.",
)
@click.option("--encoding", help="Text encoding of the attributes, e.g. GBK for Chinese DBF files.")
@click.option("--layer", "source_layer", help="Layer inside the file (GeoPackage, KML …).")
@click.option(
    "--local-codes",
    is_flag=True,
    help="Accept a local code scheme (letters, digits, - _ .) instead of GB/T lengths.",
)
@click.option("--repair", is_flag=True, help="Repair invalid geometries with ST_MakeValid.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid areas and report the rest (default: all or nothing).",
)
@click.option("--replace", is_flag=True, help="Update areas of this level whose code exists.")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@with_appcontext
def import_areas_command(
    level,
    file,
    maps,
    crs,
    encoding,
    source_layer,
    local_codes,
    repair,
    skip_invalid,
    replace,
    dry_run,
) -> None:
    """Imports admin areas of LEVEL (city, district, county, street, community) from FILE
    (GeoJSON, Shapefile .zip/folder, GeoPackage, KML, CSV) and links the hierarchy."""
    try:
        mapping = parse_mapping(maps)
    except ImportFailed as exc:
        raise click.ClickException(str(exc)) from None
    session = database().session()
    linked = None
    try:
        area = bounds(session, layers(), current_app.config["SERVICE_AREA_MARGIN_M"])
        source = open_features(
            file,
            mapping=mapping,
            crs=crs,
            encoding=encoding,
            layer=source_layer,
            max_features=current_app.config.get("IMPORT_MAX_FEATURES") or None,
        )
        with click.progressbar(length=source.total, label="导入行政区划") as bar:
            report = import_areas(
                session,
                level,
                source,
                local_codes=local_codes,
                repair=repair,
                skip_invalid=skip_invalid,
                replace=replace,
                area=area,
                progress=bar.update,
            )
        click.echo(format_report(report, level))
        if report.written:
            audit.record(
                session,
                None,
                "areas.import",
                "admin_area",
                None,
                None,
                {"level": level, "file": file.name, "imported": report.imported},
                actor=_actor(),
            )
            linked = link_and_print(session)
        if report.written and not dry_run:
            session.commit()
        else:
            session.rollback()
    except ImportFailed as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    finally:
        session.close()
    if dry_run:
        click.echo("（试运行：未写入数据库）")
    if not report.written:
        raise SystemExit(1)
    if linked is not None and linked.unresolved and not dry_run:
        click.echo("（区划已导入；不一致之处见上，可用 flask link-areas 复查）")


@click.command("link-areas")
@click.option(
    "--accept",
    type=click.Choice(["code", "geometry"]),
    help="Settle disagreements: link by the code's parent or by the largest overlap.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="CODE",
    help="With --accept: only these children (codes of areas or grids; repeatable or "
    "comma-separated).",
)
@click.option("--note", help="With --accept: why (kept with the decision).")
@click.option(
    "--sliver",
    type=float,
    default=None,
    help="Overlaps smaller than this many m² are ignored (default 10).",
)
@click.option("--all", "list_all", is_flag=True, help="List every disagreement.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--dry-run", is_flag=True, help="Show what would change, write nothing.")
@with_appcontext
def link_areas_command(accept, only, note, sliver, list_all, as_json, dry_run) -> None:
    """Links communities to streets (and so on up) and grids to communities: by code prefix
    when code and geometry agree, by the largest overlap when not; reports every
    disagreement. --accept code|geometry [--only CODE …] records which side wins."""
    if only and not accept:
        raise click.UsageError("--only 需与 --accept 一起使用")
    only = [code.strip() for value in only for code in value.split(",") if code.strip()]
    sliver = sliver if sliver is not None else hierarchy.DEFAULT_SLIVER_M2
    session = database().session()
    try:
        if accept:
            decided = hierarchy.decide(
                session, layers(), accept, list(only), actor=_actor(), note=note, sliver_m2=sliver
            )
            side = "按编码" if accept == "code" else "按位置"
            for link in decided.accepted:
                click.echo(f"✓ {link.code} {link.name}：确认{side}归属")
            for code, why in decided.refused:
                click.echo(f"✗ {code}：{why}")
        report = hierarchy.link(session, layers(), sliver)
        if report.changed:
            audit.record(
                session,
                None,
                "areas.link",
                "admin_area",
                None,
                None,
                {"changed": report.changed, "accept": accept, "only": list(only)},
                actor=_actor(),
            )
        if as_json:
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        else:
            if not report.edges:
                click.echo("还没有可建立层级关系的行政区划（先用 flask import-areas 导入）")
            for line in report.lines(None if list_all else 50):
                click.echo(line)
        if dry_run:
            session.rollback()
            click.echo("（试运行：未写入数据库）")
        else:
            session.commit()
    finally:
        session.close()
    if accept and decided.refused and not decided.accepted:
        raise SystemExit(1)


@click.command("service-area")
@click.option(
    "--use",
    "codes",
    multiple=True,
    metavar="CODE",
    help="Make these admin areas the service area (repeatable).",
)
@click.option("--derive", is_flag=True, help="Forget --use: derive it from the top-level areas.")
@with_appcontext
def service_area_command(codes, derive) -> None:
    """Shows the service area (what the "far outside" checks, issue reporting and the coverage
    audit use); --use CODE … sets it to chosen admin areas, --derive goes back to the union of
    the top-level areas."""
    if codes and derive:
        raise click.UsageError("--use 与 --derive 不能同时使用")
    session = database().session()
    try:
        if codes or derive:
            missing = service_area.use_areas(session, list(codes))
            if missing:
                raise click.ClickException(f"没有这些代码的行政区划：{'、'.join(missing)}")
            audit.record(
                session,
                None,
                "service_area.set",
                "admin_area",
                None,
                None,
                {"use": list(codes)},
                actor=_actor(),
            )
            session.commit()
        info = service_area.summary(session, layers())
    finally:
        session.close()
    click.echo(f"服务范围：{info['title']}")
    if info["source"] is None:
        click.echo("  尚无行政区划和网格：不检查坐标是否远离服务范围")
        return
    for area in info["areas"]:
        click.echo(f"  {area['code']} {area['name']}（{area['level']}）")
    click.echo(f"  面积 {info['area_m2'] / 1e6:.2f} km²")
    west, south, east, north = info["extent"]
    click.echo(f"  范围 经度 {west:.5f}…{east:.5f}，纬度 {south:.5f}…{north:.5f}")


def init_app(app) -> None:
    app.cli.add_command(import_areas_command)
    app.cli.add_command(link_areas_command)
    app.cli.add_command(service_area_command)
