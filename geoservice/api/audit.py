"""GET /api/audit: the audit log for admins (filters: user, entity, entity_id, action,
since, until; paging with limit/offset)."""

from __future__ import annotations

from flask import jsonify, request, url_for

from geoservice.accounts import audit
from geoservice.accounts.auth import permission_required
from geoservice.api import bp
from geoservice.db import get_session
from geoservice.edge.params import parse_audit_filters, single_args
from geoservice.errors import ApiError

AUDIT_PARAMS = ("user", "entity", "entity_id", "action", "since", "until", "limit", "offset")


@bp.get("/audit")
@permission_required("audit.read")
def audit_entries():
    args = single_args(AUDIT_PARAMS)
    for name, value in args.items():  # the admin page's empty boxes mean "any"; here a 400
        if not value.strip():
            raise ApiError(400, f"参数 {name} 不能为空", field=name)
    filters, limit, offset = parse_audit_filters(args)
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
