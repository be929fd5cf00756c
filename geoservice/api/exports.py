"""Export a collection (all matching features, no paging): ?f=geojson|gpkg|csv."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flask import current_app, send_file

from geoservice.accounts.auth import current_account
from geoservice.api import bp
from geoservice.catalogue.exporters import FORMATS, csv_chunks, geojson_chunks, write_gpkg
from geoservice.catalogue.items import export_rows, set_timezone
from geoservice.db import get_session, statement_timeout
from geoservice.edge.access import collection_or_404, collection_read, scope_condition
from geoservice.edge.params import parse_items_query, single_args
from geoservice.errors import ApiError

SPOOL_MEMORY = 32 * 1024 * 1024


@bp.get("/collections/<collection_id>/export")
@collection_read
def export(collection_id: str):
    coll = collection_or_404(collection_id)
    allowed = [
        "f",
        "bbox",
        "bbox-crs",
        *(["datetime"] if coll.temporal_column else []),
        *coll.filters,
    ]
    args = single_args(allowed)
    fmt = args.get("f", "geojson")
    if fmt not in FORMATS:
        raise ApiError(400, f"不支持的导出格式 f={fmt!r}", {"formats": list(FORMATS)}, field="f")
    query = parse_items_query(coll, args, paged=False)
    query.scope = scope_condition(current_account(), coll)
    session = get_session()
    # A whole layer, however large, is what was asked for: longer than a page's statements,
    # but never unbounded (a reader must not hold a connection for good; `flask export-layer`
    # has no limit).
    statement_timeout(session, int(current_app.config.get("EXPORT_STATEMENT_TIMEOUT_MS") or 0))
    set_timezone(session, current_app.config["TIMEZONE"])
    mime, ext = FORMATS[fmt]
    filename = f"{coll.id}.{ext}"
    rows = export_rows(session, coll, query)
    if fmt == "gpkg":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            write_gpkg(rows, coll, path)
            spool = _spool(path)
    else:
        chunks = geojson_chunks(rows, coll.id) if fmt == "geojson" else csv_chunks(rows, coll)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115  (send_file closes it)
        for chunk in chunks:
            spool.write(chunk.encode("utf-8"))
        spool.seek(0)
    # Written out completely before the response starts: the database work ends with the
    # request, and a large export spills to a temporary file instead of memory.
    return send_file(spool, mimetype=mime, as_attachment=True, download_name=filename)


def _spool(path: Path) -> tempfile.SpooledTemporaryFile:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115  (send_file closes it)
    with path.open("rb") as source:
        shutil.copyfileobj(source, spool)
    spool.seek(0)
    return spool
