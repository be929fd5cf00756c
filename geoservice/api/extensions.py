"""延期 over the API: the responsible side requests, a planner grants or refuses.

POST /api/issues/{id}/extensions            {"reason": …, "deadline": ISO 8601}
POST /api/issues/{id}/extensions/decision   {"grant": true|false, "note": …, "deadline": …}
GET  /api/issues/{id}/extensions            the history and the pending request
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import jsonify

from geoservice.accounts.auth import require
from geoservice.api import bp
from geoservice.api.issues import _json_body, view, visible_issue
from geoservice.db import get_session
from geoservice.edge.issues import COLLECTION, allows
from geoservice.edge.params import single_args
from geoservice.errors import ApiError
from geoservice.input_values import text_value
from geoservice.issues import extensions
from geoservice.models import Issue


def _datetime(fields: dict[str, Any], name: str, required: bool) -> datetime | None:
    raw = fields.get(name)
    if raw is None and not required:
        return None
    if raw in (None, ""):
        raise ApiError(422, f"缺少 {name}（ISO 8601 日期时间，带时区）", field=name)
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ApiError(422, f"{name} 应为 ISO 8601 日期时间，如 2026-11-20T18:00:00+08:00",
                       field=name) from None  # fmt: skip
    if value.tzinfo is None:
        raise ApiError(422, f"{name} 需带时区，如 +08:00", field=name)
    return value


@bp.get("/issues/<int:issue_id>/extensions")
def issue_extensions(issue_id: int):
    require("issues.read", COLLECTION)
    single_args(())
    visible_issue(issue_id)
    return jsonify(extensions.extension_view(get_session(), issue_id))


@bp.post("/issues/<int:issue_id>/extensions")
def issue_extension_request(issue_id: int):
    account = require("issues.read", COLLECTION)
    visible_issue(issue_id)
    fields = _json_body()
    session = get_session()
    event = extensions.request_extension(
        session,
        issue_id,
        account,
        text_value(fields.get("reason"), "reason", "理由"),
        _datetime(fields, "deadline", True),
        allows=allows,
    )
    body = view(session.get(Issue, issue_id))
    body["event_id"] = event.id
    session.commit()
    return jsonify(body), 201


@bp.post("/issues/<int:issue_id>/extensions/decision")
def issue_extension_decision(issue_id: int):
    account = require("issues.read", COLLECTION)
    visible_issue(issue_id)
    fields = _json_body()
    grant = fields.get("grant")
    if not isinstance(grant, bool):
        raise ApiError(422, "grant 应为 true（批准）或 false（驳回）", field="grant")
    session = get_session()
    event = extensions.decide_extension(
        session,
        issue_id,
        account,
        grant,
        text_value(fields.get("note"), "note", "备注"),
        _datetime(fields, "deadline", False),
        allows=allows,
    )
    body = view(session.get(Issue, issue_id))
    body["event_id"] = event.id
    session.commit()
    return jsonify(body)
