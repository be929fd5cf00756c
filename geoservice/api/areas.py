"""Admin areas the caller sees: GET /api/areas, GET /api/areas/<code> (GeoJSON Feature).

An area outside the caller's scope answers 404, exactly like an unknown code.
"""

from __future__ import annotations

import json

from flask import jsonify
from sqlalchemy import func, select

from geoservice import scope
from geoservice.api import bp
from geoservice.auth import current_account, permission_required
from geoservice.db import get_session
from geoservice.errors import ApiError
from geoservice.models import AdminArea


def _properties(area: AdminArea, parent_code: str | None) -> dict:
    return {"code": area.code, "name": area.name, "level": area.level, "parent": parent_code}


@bp.get("/areas")
@permission_required("layers.read")
def areas():
    parent = AdminArea.__table__.alias("parent")
    rows = get_session().execute(
        select(AdminArea, parent.c.code)
        .outerjoin(parent, parent.c.id == AdminArea.parent_id)
        .where(scope.area_filter(current_account(), AdminArea.id))
        .order_by(AdminArea.code)
    )
    return jsonify({"areas": [_properties(area, parent_code) for area, parent_code in rows]})


@bp.get("/areas/<code>")
@permission_required("layers.read")
def area(code: str):
    db = get_session()
    found = scope.visible_area(db, current_account(), code)
    if found is None:
        raise ApiError(404, f"没有代码为 {code!r} 的行政区划", field="code")
    geometry, parent_code = db.execute(
        select(
            func.ST_AsGeoJSON(AdminArea.geom, 7),
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
