"""Admin areas: GET /api/areas, GET /api/areas/<code> (GeoJSON Feature) within the caller's
scope (an area outside it answers 404, exactly like an unknown code); POST /api/areas/import
(planners and admins seeing the whole deployment); GET /api/service-area.
"""

from __future__ import annotations

import json

from flask import current_app, jsonify, request
from sqlalchemy import func, select

from geoservice.accounts import audit, scope
from geoservice.accounts.auth import current_account, permission_required
from geoservice.api import bp
from geoservice.api.imports import (
    _flag,
    _pairs,
    checked_upload,
    for_form,
    form_crs,
    import_cap,
    saved_upload,
)
from geoservice.areas import hierarchy, service_area
from geoservice.areas.area_import import import_areas
from geoservice.areas.levels import LEVELS
from geoservice.catalogue.catalogue import parse_bool
from geoservice.catalogue.importers import ImportFailed, open_features, parse_mapping
from geoservice.db import get_session, unlimited_statements
from geoservice.edge.params import single_args
from geoservice.edge.responsibility import county_required
from geoservice.errors import ApiError
from geoservice.models import AdminArea
from geoservice.registry import layers


def _properties(area: AdminArea, parent_code: str | None) -> dict:
    return {"code": area.code, "name": area.name, "level": area.level, "parent": parent_code}


AREA_PARAMS = ("level", "parent", "geometry")


@bp.get("/areas")
@permission_required("layers.read")
def areas():
    """The areas in scope; `level` and `parent` (a code) narrow them; `geometry=true` answers
    a GeoJSON FeatureCollection with boundaries simplified to about a metre (map layers by
    street or community)."""
    args = single_args(AREA_PARAMS)
    level = args.get("level")
    if level is not None and level not in LEVELS:
        raise ApiError(400, f"level 应为 {'、'.join(LEVELS)} 之一", field="level")
    try:
        with_geometry = parse_bool(args.get("geometry", "false"))
    except ValueError as exc:
        raise ApiError(400, f"参数 geometry：{exc}", field="geometry") from None
    parent = AdminArea.__table__.alias("parent")
    columns = [AdminArea, parent.c.code]
    if with_geometry:
        # RFC 7946 §3.1.6: exterior rings counter-clockwise (as imported, they may not be).
        simple = func.ST_SimplifyPreserveTopology(AdminArea.geom, 1e-5)
        columns.append(func.ST_AsGeoJSON(func.ST_ForcePolygonCCW(simple), 7))
    query = (
        select(*columns)
        .outerjoin(parent, parent.c.id == AdminArea.parent_id)
        .where(scope.area_filter(current_account(), AdminArea.id))
        .order_by(AdminArea.code)
    )
    if level is not None:
        query = query.where(AdminArea.level == level)
    if args.get("parent") is not None:
        query = query.where(parent.c.code == args["parent"])
    rows = get_session().execute(query).all()
    if not with_geometry:
        return jsonify({"areas": [_properties(area, parent_code) for area, parent_code in rows]})
    return jsonify(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": area.code,
                    "geometry": json.loads(geometry),
                    "properties": _properties(area, parent_code),
                }
                for area, parent_code, geometry in rows
            ],
        }
    )


@bp.get("/areas/<areacode:code>")
@permission_required("layers.read")
def area(code: str):
    single_args(())
    db = get_session()
    found = scope.visible_area(db, current_account(), code)
    if found is None:
        raise ApiError(404, f"没有代码为 {code!r} 的行政区划", field="code")
    geometry, parent_code = db.execute(
        select(
            func.ST_AsGeoJSON(func.ST_ForcePolygonCCW(AdminArea.geom), 7),
            select(AdminArea.code).where(AdminArea.id == found.parent_id).scalar_subquery(),
        ).where(AdminArea.id == found.id)
    ).one()
    return jsonify(
        {
            "type": "Feature",
            "id": found.code,
            "geometry": json.loads(geometry),
            "properties": _properties(found, parent_code),
        }
    )


@bp.get("/service-area")
@permission_required("layers.read")
def service_area_get():
    """The service area: where it comes from, its areas, m², extent and simplified outline."""
    single_args(())
    db = get_session()
    info = service_area.summary(db, layers())
    outline = service_area.outline(db, layers())
    return jsonify(
        {
            "type": "Feature",
            "geometry": outline,
            "properties": info | {"extent": list(info["extent"]) if info.get("extent") else None},
        }
    )


AREA_FORM_FIELDS = (
    "level",
    "map",
    "crs",
    "encoding",
    "layer",
    "local_codes",
    "repair",
    "skip_invalid",
    "replace",
)


@bp.post("/areas/import")
@county_required("areas.write")
def areas_import():
    """Upload a file of admin areas (multipart: `file`, `level`, options as for flask
    import-areas); all or nothing; the hierarchy is linked afterwards. 201 with the import
    and link reports; 422 with the report when anything is rejected."""
    upload, suffix = checked_upload(AREA_FORM_FIELDS)
    level = request.form.get("level", "")
    if level not in LEVELS:
        raise ApiError(400, f"level 应为 {'、'.join(LEVELS)} 之一", field="level")
    try:
        mapping = parse_mapping(_pairs("map"))
    except ImportFailed as exc:
        raise ApiError(400, str(exc), field="map") from None
    crs = form_crs()
    db = get_session()
    unlimited_statements(db)
    account = current_account()
    margin = float(current_app.config.get("SERVICE_AREA_MARGIN_M", 50_000))
    with saved_upload(upload, suffix) as path:
        try:
            source = open_features(
                path,
                mapping=mapping,
                crs=crs,
                encoding=request.form.get("encoding") or None,
                layer=request.form.get("layer") or None,
                max_features=import_cap(),
            )
            report = import_areas(
                db,
                level,
                source,
                local_codes=_flag("local_codes"),
                repair=_flag("repair"),
                skip_invalid=_flag("skip_invalid"),
                replace=_flag("replace"),
                area=service_area.bounds(db, layers(), margin),
            )
        except ImportFailed as exc:
            db.rollback()
            raise ApiError(422, for_form(str(exc)), field="file") from None
    body = for_form(report.as_dict())
    if not report.written:
        db.rollback()
        message = (
            f"导入未执行：{len(report.rejected)} 个区划有错误，全部未写入"
            if report.rejected
            else "文件中没有可导入的区划"
        )
        raise ApiError(422, message, body, field="file")
    links = hierarchy.link(db, layers())
    audit.record(
        db,
        account,
        "areas.import",
        "admin_area",
        None,
        None,
        {"level": level, "file": upload.filename, "imported": report.imported},
    )
    db.commit()
    return jsonify(body | {"links": links.as_dict(limit=100)}), 201
