"""申请退回 / 确权 over the API.

POST /api/issues/{id}/return            {"reason": …}                      (the responsible side)
POST /api/issues/{id}/return/decision   {"grant": bool, "note": …, "leader_id": …}  (planner)
"""

from __future__ import annotations

from flask import jsonify

from geoservice.accounts.auth import require
from geoservice.api import bp
from geoservice.api.issues import _int_field, _json_body, view, visible_issue
from geoservice.db import get_session
from geoservice.edge.issues import COLLECTION, allows, settings
from geoservice.edge.responsibility import check_leader_writable
from geoservice.errors import ApiError
from geoservice.input_values import text_value
from geoservice.issues import returns
from geoservice.models import Issue


@bp.post("/issues/<int:issue_id>/return")
def issue_return_request(issue_id: int):
    account = require("issues.read", COLLECTION)
    visible_issue(issue_id)
    fields = _json_body()
    session = get_session()
    event = returns.request_return(
        session,
        issue_id,
        account,
        text_value(fields.get("reason"), "reason", "理由"),
        allows=allows,
    )
    body = view(session.get(Issue, issue_id))
    body["event_id"] = event.id
    session.commit()
    return jsonify(body), 201


@bp.post("/issues/<int:issue_id>/return/decision")
def issue_return_decision(issue_id: int):
    account = require("issues.read", COLLECTION)
    visible_issue(issue_id)
    fields = _json_body()
    grant = fields.get("grant")
    if not isinstance(grant, bool):
        raise ApiError(422, "grant 应为 true（同意退回）或 false（驳回）", field="grant")
    session = get_session()
    leader_id = _int_field(fields, "leader_id", "确权对象 leader_id ")
    check_leader_writable(session, account, leader_id)  # another area's leader: as unknown
    event = returns.decide_return(
        session,
        settings(),
        issue_id,
        account,
        grant,
        text_value(fields.get("note"), "note", "备注"),
        leader_id,
        allows=allows,
    )
    body = view(session.get(Issue, issue_id))
    body["event_id"] = event.id
    session.commit()
    return jsonify(body)
