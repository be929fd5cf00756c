"""Export a collection (all matching features, no paging): ?f=geojson|gpkg|csv."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import Response, current_app, send_file, stream_with_context

from geoservice.api import bp, collection_or_404
from geoservice.api.access import read_access
from geoservice.api.params import parse_items_query, single_args
from geoservice.db import get_session
from geoservice.errors import ApiError
from geoservice.exporters import FORMATS, csv_chunks, geojson_chunks, write_gpkg
from geoservice.features import export_rows, set_timezone


@bp.get("/collections/<collection_id>/export")
@read_access
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
    session = get_session()
    set_timezone(session, current_app.config["TIMEZONE"])
    mime, ext = FORMATS[fmt]
    filename = f"{coll.id}.{ext}"
    rows = export_rows(session, coll, query)
    if fmt == "gpkg":
        handle, name = tempfile.mkstemp(suffix=".gpkg")
        os.close(handle)
        path = Path(name)
        path.unlink()
        try:
            write_gpkg(rows, coll, path)
            data = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
        response = send_file(
            __import__("io").BytesIO(data),
            mimetype=mime,
            as_attachment=True,
            download_name=filename,
        )
        return response
    chunks = geojson_chunks(rows, coll.id) if fmt == "geojson" else csv_chunks(rows, coll)
    response = Response(stream_with_context(chunks), mimetype=mime)
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return response
