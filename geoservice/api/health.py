"""GET /healthz: 200 with database and PostGIS versions, 503 when the database is unreachable."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy.exc import DBAPIError

from geoservice.db import get_session, postgis_versions
from geoservice.errors import error_response

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    try:
        versions = postgis_versions(get_session())
    except DBAPIError as exc:
        log.warning("health check: database unreachable: %s", exc.orig)
        return error_response(503, "数据库不可用", "database unreachable")
    from geoservice.notifications.outbox import queue_health

    session = get_session()
    try:
        with session.begin_nested():
            queue = queue_health(session)
    except DBAPIError as exc:  # e.g. a database not yet upgraded: the service still answers
        log.warning("health check: notification queue unreadable: %s", exc.orig)
        queue = None
    return jsonify({"status": "ok", "database": versions, "notifications": queue})
