"""POST /collections/{id}/import: upload a file (multipart) and import it, all or nothing."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import current_app, request
from pyproj import CRS
from werkzeug.datastructures import FileStorage

from geoservice.api import bp
from geoservice.api.features import json_response
from geoservice.api.writes import _commit
from geoservice.areas import hierarchy
from geoservice.areas.service_area import bounds
from geoservice.catalogue.catalogue import BOOL_VALUES, parse_bool
from geoservice.catalogue.importers import (
    SUFFIXES,
    ImportFailed,
    import_layer,
    parse_mapping,
    request_crs,
)
from geoservice.db import get_session, unlimited_statements
from geoservice.edge.access import Change, check_write, collection_or_404, record_write, visible
from geoservice.errors import ApiError
from geoservice.input_values import shown
from geoservice.registry import layers

FORM_FIELDS = (
    "map",
    "default",
    "crs",
    "encoding",
    "layer",
    "repair",
    "skip_invalid",
    "generate_codes",
    "local_codes",
)


def _flag(name: str) -> bool:
    """A switch of the form: exactly one of the values the OpenAPI document lists."""
    raw = request.form.get(name)
    if raw is None:
        return False
    if raw not in BOOL_VALUES:
        raise ApiError(
            400, f"参数 {name} 应为 {'、'.join(BOOL_VALUES)} 之一，收到 {shown(raw)}", field=name
        )
    return parse_bool(raw)


def _pairs(name: str) -> list[str]:
    return [p for value in request.form.getlist(name) for p in value.split(",") if p.strip()]


_SWITCHES = ("replace", "repair", "skip-invalid", "local-codes", "generate-codes", "dry-run")
_VALUED = re.compile(r"(?<!命令行的 )(?<!命令行 )--(encoding|crs|layer)(?: ([A-Za-z0-9:._+/-]+))?")
_MAPPED = re.compile(
    r"(?<!命令行的 )(?<!命令行 )--(map|default)(?: ([^\s，。；）=]+=[^\s，。；）]+))?"
)
_SWITCH = re.compile(rf"(?<!命令行的 )(?<!命令行 )--({'|'.join(_SWITCHES)})\b")


def for_form(value: Any) -> Any:
    """The importers' messages name the command line's flags (`加 --replace`); over the API
    the same options are form fields: `replace=true`, `encoding=GBK`, `map` … (strings in
    lists and objects too, as a report holds them)."""
    if isinstance(value, str):
        value = _SWITCH.sub(lambda m: f"表单字段 {m[1].replace('-', '_')}=true", value)
        value = _VALUED.sub(lambda m: f"表单字段 {m[1]}" + (f"={m[2]}" if m[2] else ""), value)
        return _MAPPED.sub(lambda m: f"表单字段 {m[1]}" + (f"（{m[2]}）" if m[2] else ""), value)
    if isinstance(value, list):
        return [for_form(v) for v in value]
    if isinstance(value, dict):
        return {k: for_form(v) for k, v in value.items()}
    return value


def form_crs() -> CRS | None:
    """The form's `crs`: an EPSG code, PROJ string or WKT text, never a path or URL (400)."""
    raw = request.form.get("crs") or None
    if raw is None:
        return None
    try:
        return request_crs(raw)
    except ImportFailed as exc:
        raise ApiError(400, str(exc), field="crs") from None


def import_cap() -> int | None:
    """Most features one import may hold (IMPORT_MAX_FEATURES; 0: no cap)."""
    return int(current_app.config.get("IMPORT_MAX_FEATURES") or 0) or None


def checked_upload(allowed_fields: Sequence[str]) -> tuple[FileStorage, str]:
    """The request's `file` upload and its suffix, once the form holds only `allowed_fields`
    (400) and the file is of a format the importers read (415)."""
    unknown = [k for k in request.form if k not in allowed_fields]
    if unknown:
        raise ApiError(
            400, f"未知的表单字段 {unknown[0]!r}", {"allowed": allowed_fields}, field=unknown[0]
        )
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "请用 multipart/form-data 上传文件（字段名 file）", field="file")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise ApiError(
            415,
            f"不支持的文件类型 {suffix or '（无扩展名）'}",
            {"supported": list(SUFFIXES)},
            field="file",
        )
    return upload, suffix


def upload_stem(filename: str | None) -> str:
    """The uploaded file's name without its suffix, as the command line would see it: Chinese
    kept (generated codes are made from it: `compound-小区-00001` by either way in, where
    `secure_filename` made every Chinese name "upload", so two files' codes collided), path
    separators and other punctuation made `_`."""
    stem = Path((filename or "").replace("\\", "/")).stem
    return re.sub(r"[^\w.-]+", "_", stem).strip("._")[:100] or "upload"


@contextmanager
def saved_upload(upload: FileStorage, suffix: str) -> Iterator[Path]:
    """The upload as a file in a temporary folder (GDAL reads paths), removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (upload_stem(upload.filename) + suffix)
        upload.save(path)
        yield path


@bp.post("/collections/<collection_id>/import")
def import_file(collection_id: str):
    coll = collection_or_404(collection_id)
    account = check_write(coll)
    if request.args:
        name = next(iter(request.args))
        raise ApiError(400, f"未知的查询参数 {name!r}（选项请放在表单中）", field=name)
    upload, suffix = checked_upload(FORM_FIELDS)
    try:
        mapping = parse_mapping(_pairs("map"))
        defaults = parse_mapping(_pairs("default"), "default")
    except ImportFailed as exc:
        raise ApiError(400, str(exc), field="map") from None
    crs = form_crs()
    session = get_session()
    unlimited_statements(session)
    margin = float(current_app.config.get("SERVICE_AREA_MARGIN_M", 50_000))
    with saved_upload(upload, suffix) as path:
        try:
            report = import_layer(
                session,
                coll.spec,
                path,
                mapping=mapping,
                defaults=defaults,
                crs=crs,
                encoding=request.form.get("encoding") or None,
                layer=request.form.get("layer") or None,
                max_features=import_cap(),
                repair=_flag("repair"),
                skip_invalid=_flag("skip_invalid"),
                generate_codes=_flag("generate_codes"),
                local_codes=_flag("local_codes"),
                area=bounds(session, layers(), margin),
            )
        except ImportFailed as exc:
            raise ApiError(422, for_form(str(exc)), field="file") from None
    body = for_form(report.as_dict())
    if not report.written:
        session.rollback()
        message = (
            f"导入未执行：{len(report.rejected)} 个要素有错误，全部未写入"
            if report.rejected
            else "文件中没有可导入的要素"
        )
        raise ApiError(422, message, body, field="file")
    if not visible(session, account, coll, report.ids):
        raise ApiError(403, "文件中有要素位于您的管辖范围之外，全部未写入", field="file")
    if coll.spec.area_links():  # grids: link them to their communities, as flask import-layer
        body["links"] = hierarchy.link(session, layers()).as_dict(limit=100)
    record_write(
        session,
        account,
        Change("import", coll.id, None, None, {"file": upload.filename, "ids": report.ids}),
    )
    _commit(session)
    return json_response(body, status=201)
