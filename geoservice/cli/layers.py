"""flask import-layer / export-layer: bulk import and export of collections."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from geoservice.areas.service_area import bounds
from geoservice.catalogue.exporters import write_file
from geoservice.catalogue.importers import (
    ImportFailed,
    format_report,
    import_features,
    open_features,
    parse_mapping,
)
from geoservice.catalogue.items import ItemsQuery, export_rows, set_timezone
from geoservice.cli.areas import link_and_print
from geoservice.db import database
from geoservice.edge.access import catalogue
from geoservice.registry import layers


def _spec(name: str):
    registry = layers()
    spec = registry.by_collection(name) or (registry.get(name) if name in registry else None)
    if spec is None:
        names = "、".join(f"{s.collection}（{s.title}）" for s in registry)
        raise click.ClickException(f"没有图层 {name!r}；可选：{names}")
    return spec


@click.command("import-layer")
@click.argument("layer_name", metavar="LAYER")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="源字段=属性",
    help="Rename a source attribute, e.g. --map 网格编码=code (repeatable).",
)
@click.option(
    "--default",
    "defaults",
    multiple=True,
    metavar="属性=值",
    help="Value for an attribute the file lacks, e.g. --default grade=主干道.",
)
@click.option(
    "--crs", help="CRS of the file when it declares none (or to override), e.g. EPSG:4490."
)
@click.option("--encoding", help="Text encoding of the attributes, e.g. GBK for Chinese DBF files.")
@click.option("--layer", "source_layer", help="Layer inside the file (GeoPackage, KML …).")
@click.option("--repair", is_flag=True, help="Repair invalid geometries with ST_MakeValid.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid features and report the rest (default: all or nothing).",
)
@click.option(
    "--generate-codes", is_flag=True, help="Number features that have no code: LAYER-FILE-00001 …"
)
@click.option(
    "--local-codes",
    is_flag=True,
    help="Accept local codes (letters, digits, - _ .) where the layer expects standard codes.",
)
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@with_appcontext
def import_layer_command(
    layer_name,
    file,
    maps,
    defaults,
    crs,
    encoding,
    source_layer,
    repair,
    skip_invalid,
    generate_codes,
    local_codes,
    dry_run,
) -> None:
    """Imports FILE (GeoJSON, Shapefile .zip/folder, GeoPackage, KML, CSV) into LAYER; features
    of a layer linked to admin areas (grids → communities) are then linked (flask link-areas)."""
    spec = _spec(layer_name)
    try:
        mapping = parse_mapping(maps)
        default_values = parse_mapping(defaults, "--default")
    except ImportFailed as exc:
        raise click.ClickException(str(exc)) from None
    session = database().session()
    try:
        area = bounds(session, layers(), current_app.config["SERVICE_AREA_MARGIN_M"])
        read = open_features(
            file,
            mapping=mapping,
            crs=crs,
            encoding=encoding,
            layer=source_layer,
            max_features=current_app.config.get("IMPORT_MAX_FEATURES") or None,
        )
        with click.progressbar(length=read.total, label=f"导入{spec.title}") as bar:
            report = import_features(
                session,
                spec,
                read,
                defaults=default_values,
                repair=repair,
                skip_invalid=skip_invalid,
                generate_codes=generate_codes,
                local_codes=local_codes,
                area=area,
                progress=bar.update,
            )
        click.echo(format_report(report, spec.title))
        if report.written and spec.area_links():
            link_and_print(session)
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
    if report.rejected and not report.written:
        raise SystemExit(1)


@click.command("export-layer")
@click.argument("collection_id", metavar="COLLECTION")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["geojson", "gpkg", "csv"]),
    help="Default: from the file extension.",
)
@click.option("--bbox", help="minlon,minlat,maxlon,maxlat")
@with_appcontext
def export_layer_command(collection_id, output, fmt, bbox) -> None:
    """Exports a collection (a layer or `issues`) as GeoJSON, GeoPackage or CSV (WKT)."""
    coll = catalogue().get(collection_id)
    if coll is None:
        raise click.ClickException(
            f"没有集合 {collection_id!r}；可选：{'、'.join(catalogue().ids)}"
        )
    fmt = fmt or {".gpkg": "gpkg", ".csv": "csv"}.get(output.suffix.lower(), "geojson")
    query = ItemsQuery()
    if bbox:
        try:
            values = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            raise click.ClickException("--bbox 应为 4 个逗号分隔的数字") from None
        if len(values) != 4:
            raise click.ClickException("--bbox 应为 4 个逗号分隔的数字")
        query.bbox = values
    if output.exists():
        output.unlink()
    session = database().session()
    try:
        set_timezone(session, current_app.config["TIMEZONE"])
        count = 0

        def counted():
            nonlocal count
            for row in export_rows(session, coll, query):
                count += 1
                yield row

        write_file(counted(), coll, output, fmt)
    finally:
        session.close()
    click.echo(f"已导出{coll.title} {count} 个要素到 {output}（{fmt}）")


def init_app(app) -> None:
    app.cli.add_command(import_layer_command)
    app.cli.add_command(export_layer_command)
