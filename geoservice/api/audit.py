"""GET /api/audit: the audit log for admins (filters: user, entity, entity_id, action,
since, until; paging with limit/offset)."""

from __future__ import annotations

from flask import jsonify, request, url_for

from geoservice.accounts import audit
from geoservice.accounts.auth import permission_required
from geoservice.api import bp
from geoservice.api.openapi_kit import (
    answer,
    array,
    documented,
    free,
    instant,
    integer,
    nullable,
    obj,
    op,
    paging,
    query,
    string,
    text_or_null,
)
from geoservice.api.openapi_people import TAG_AUDIT
from geoservice.catalogue.catalogue import TEXT_PATTERN
from geoservice.db import get_session
from geoservice.edge.params import parse_audit_filters, single_args
from geoservice.errors import ApiError

AUDIT_PARAMS = ("user", "entity", "entity_id", "action", "since", "until", "limit", "offset")


@bp.get("/audit")
@documented(
    lambda config: op(
        TAG_AUDIT,
        "list_audit_entries",
        "操作日志（新的在前）",
        "audit.read",
        {
            "200": answer(
                obj(
                    {
                        "entries": array(
                            obj(
                                {
                                    "id": integer(),
                                    "at": instant(),
                                    "user": text_or_null("操作人"),
                                    "user_id": nullable(integer()),
                                    "action": string("如 feature.update、unit.create"),
                                    "entity": text_or_null(),
                                    "entity_id": text_or_null(),
                                    "before": free(),
                                    "after": free(),
                                    "ip": text_or_null(),
                                }
                            )
                        ),
                        "numberMatched": integer(),
                        "numberReturned": integer(),
                        "links": array(obj({"rel": string(), "href": string()})),
                    }
                )
            )
        },
        parameters=[
            query("user", "操作人用户名", string(minLength=1, pattern=TEXT_PATTERN)),
            query("entity", "对象类型", string(minLength=1, pattern=TEXT_PATTERN)),
            query("entity_id", "对象编号", string(minLength=1, pattern=TEXT_PATTERN)),
            query("action", "动作", string(minLength=1, pattern=TEXT_PATTERN)),
            query("since", "起（ISO 8601 时间或日期）", string(format="iso-instant")),
            query("until", "止（ISO 8601 时间或日期）", string(format="iso-instant")),
            *paging(100, 1000),
        ],
        errors=(400,),
    )
)
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
