"""GET /api/audit: the audit log for admins (filters: user, entity, entity_id, action,
since, until; paging with limit/offset)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, jsonify, request, url_for

from geoservice.accounts import audit
from geoservice.accounts.auth import permission_required
from geoservice.api import bp
from geoservice.api.params import parse_paging, single_args
from geoservice.db import get_session
from geoservice.errors import ApiError

MAX_LIMIT = 1000


def _when(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(
            400, "时间格式应为 ISO 8601，例如 2026-11-01 或 2026-11-01T08:00:00+08:00", field=field
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
    return moment


AUDIT_PARAMS = ("user", "entity", "entity_id", "action", "since", "until", "limit", "offset")


def parse_audit_filters(
    args: Mapping[str, str], default_limit: int = 100
) -> tuple[dict[str, Any], int, int]:
    filters: dict[str, Any] = {
        key: (args.get(key) or "").strip()[:64] or None
        for key in ("user", "entity", "entity_id", "action")
    }
    for key in ("since", "until"):
        raw = (args.get(key) or "").strip()
        filters[key] = _when(raw, key) if raw else None
    # An empty box of the admin page's filter form means the default.
    paging = {k: v for k in ("limit", "offset") if (v := args.get(k)) not in (None, "")}
    limit, offset = parse_paging(paging, default_limit, MAX_LIMIT)
    return filters, limit, offset


@bp.get("/audit")
@permission_required("audit.read")
def audit_entries():
    filters, limit, offset = parse_audit_filters(single_args(AUDIT_PARAMS))
    db = get_session()
    stmt = audit.query(**filters)
    total = audit.count(db, stmt)
    entries = db.scalars(stmt.limit(limit).offset(offset)).all()
    links = []
    if offset + limit < total:
        args = {**request.args.to_dict(), "offset": offset + limit, "limit": limit}
        links.append({"rel": "next", "href": url_for("api.audit_entries", **args)})
    return jsonify(
        {
            "entries": [audit.as_dict(e) for e in entries],
            "numberMatched": total,
            "numberReturned": len(entries),
            "links": links,
        }
    )
