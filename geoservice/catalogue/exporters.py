"""Export a collection as GeoJSON, GeoPackage or CSV (geometry as WKT), from the API or CLI.

Rows come from `features.export_rows` (the same SQL and properties as the API). Nested
properties (a feature's leaders) are written as JSON text in GeoPackage and CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geoservice.catalogue.catalogue import Collection
from geoservice.spreadsheet_text import text_value

FORMATS = {
    "geojson": ("application/geo+json", "geojson"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "csv": ("text/csv", "csv"),  # werkzeug adds "; charset=utf-8" to text types
}

Row = tuple[int, str, bytes, str]  # id, GeoJSON geometry, WKB, properties JSON


def geojson_chunks(rows: Iterable[Row], name: str) -> Iterator[str]:
    """A FeatureCollection (RFC 7946) as text chunks, streamed."""
    yield '{"type":"FeatureCollection","name":' + json.dumps(name, ensure_ascii=False)
    yield ',"features":['
    first = True
    for fid, geometry, _wkb, props in rows:
        yield ("" if first else ",\n") + (
            f'{{"type":"Feature","id":{fid},"geometry":{geometry},"properties":{props}}}'
        )
        first = False
    yield "]}\n"


def columns(collection: Collection) -> list[str]:
    return list(collection.property_schema)


def flat_value(value: Any) -> Any:
    """A property as a CSV / GeoPackage attribute: nested values as JSON text, strings a
    spreadsheet would read as a formula with a leading apostrophe (geoservice.spreadsheet_text)."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return text_value(value)  # a no-op on numbers, booleans and None


def csv_chunks(rows: Iterable[Row], collection: Collection) -> Iterator[str]:
    """CSV with a UTF-8 BOM (Excel reads the Chinese right), geometry as WKT in `wkt`."""
    names = columns(collection)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(["id", *names, "wkt"])
    for n, (fid, _geometry, wkb, props) in enumerate(rows, 1):
        values = json.loads(props)
        wkt = shapely.to_wkt(shapely.from_wkb(wkb), rounding_precision=7, trim=True)
        writer.writerow([fid, *(flat_value(values.get(k)) for k in names), wkt])
        if n % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _ogr_geometry_type(collection: Collection) -> str:
    if collection.spec is not None:
        column_type = collection.spec.geometry_column.geometry_type.upper()
        return {
            "POINT": "Point",
            "LINESTRING": "LineString",
            "POLYGON": "Polygon",
            "MULTIPOINT": "MultiPoint",
            "MULTILINESTRING": "MultiLineString",
            "MULTIPOLYGON": "MultiPolygon",
        }.get(column_type, "Unknown")
    return collection.geometry_types[0] if len(collection.geometry_types) == 1 else "Unknown"


def _field_arrays(collection: Collection, batch: list[dict[str, Any]]):
    names = columns(collection)
    arrays, masks = [], []
    for name in names:
        kind = collection.property_schema[name].get("type")
        raw = [props.get(name) for props in batch]
        values = [flat_value(v) if kind not in ("integer", "number", "boolean") else v for v in raw]
        mask = np.array([v is None for v in values], dtype=bool)
        if kind == "integer":
            array = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
        elif kind == "number":
            array = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        elif kind == "boolean":
            array = np.array([bool(v) for v in values], dtype=bool)
        else:
            array = np.array(["" if v is None else str(v) for v in values], dtype=object)
        arrays.append(array)
        masks.append(mask)
    return ["id", *names], arrays, masks


def write_gpkg(rows: Iterable[Row], collection: Collection, path: Path, batch: int = 20_000) -> int:
    """Writes a GeoPackage (EPSG:4326) with one layer named after the collection."""
    from pyogrio.raw import write

    total = 0
    ids: list[int] = []
    wkbs: list[bytes] = []
    props: list[dict[str, Any]] = []

    def flush(append: bool) -> None:
        names, arrays, masks = _field_arrays(collection, props)
        write(
            str(path),
            np.array(wkbs, dtype=object),
            [np.array(ids, dtype=np.int64), *arrays],
            names,
            field_mask=[np.zeros(len(ids), dtype=bool), *masks],
            layer=collection.id,
            driver="GPKG",
            geometry_type=_ogr_geometry_type(collection),
            crs="EPSG:4326",
            encoding="UTF-8",
            append=append,
        )

    written_once = False
    for fid, _geometry, wkb, text in rows:
        ids.append(fid)
        wkbs.append(wkb)
        props.append(json.loads(text))
        total += 1
        if len(ids) >= batch:
            flush(written_once)
            written_once = True
            ids, wkbs, props = [], [], []
    if ids or not written_once:
        flush(written_once)
    return total


def write_file(rows: Iterable[Row], collection: Collection, path: Path, fmt: str) -> None:
    if fmt == "gpkg":
        write_gpkg(rows, collection, path)
        return
    chunks = (
        geojson_chunks(rows, collection.id) if fmt == "geojson" else csv_chunks(rows, collection)
    )
    with open(path, "w", encoding="utf-8", newline="") as out:
        for chunk in chunks:
            out.write(chunk)
