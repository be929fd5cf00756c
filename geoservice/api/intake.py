"""/api/intake: a feedback list (.xlsx) in, matched to our places, a confirmation queue; an
issue is created only when a planner confirms a row. County-wide planners only (a list spans
the whole city)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from geoservice.accounts.auth import permission_required, require
from geoservice.api import bp
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.json_input import json_object
from geoservice.edge.params import single_args
from geoservice.errors import ApiError
from geoservice.models import User
from geoservice.notifications import intake
from geoservice.registry import layers

ACTION = "issues.dispatch"


def _county_planner() -> User:
    account = require(ACTION)
    if account.area_id is not None or account.leader_id is not None:
        raise ApiError(403, "反馈清单导入需要不限辖区的账号（全县/全市）", {"action": ACTION})
    return account


def _body() -> dict[str, Any]:
    return json_object(optional=True)


@bp.post("/intake/batches")
@permission_required(ACTION)
def create_intake_batch():
    account = _county_planner()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "请以 multipart/form-data 上传 .xlsx 文件（字段 file）", field="file")
    if not upload.filename.lower().endswith(".xlsx"):
        raise ApiError(415, "只接受 .xlsx 文件", field="file")
    source = (request.form.get("source") or "测评反馈").strip()
    sources = list(issue_settings_in_force().sources)
    if source not in sources:
        raise ApiError(400, f"未知问题来源「{source}」", {"sources": sources}, "source")
    session = get_session()
    batch = intake.create_batch(
        session,
        upload.read(),
        upload.filename,
        source,
        issue_settings_in_force().categories,
        account,
    )
    body = intake.batch_view(session, batch.id)
    session.commit()
    return jsonify(body), 201


@bp.get("/intake/batches/<int:batch_id>")
@permission_required(ACTION)
def intake_batch(batch_id: int):
    _county_planner()
    single_args(())
    return jsonify(intake.batch_view(get_session(), batch_id))


@bp.post("/intake/batches/<int:batch_id>/confirm-matched")
@permission_required(ACTION)
def confirm_intake_matched(batch_id: int):
    account = _county_planner()
    session = get_session()
    intake.batch_view(session, batch_id)  # 404 for an unknown batch
    settings = issue_settings_in_force()
    issue_ids = intake.confirm_matched(session, layers(), settings, batch_id, account)
    session.commit()
    return jsonify({"issue_ids": issue_ids})


@bp.post("/intake/rows/<int:row_id>/confirm")
@permission_required(ACTION)
def confirm_intake_row(row_id: int):
    account = _county_planner()
    body = _body()
    place_id = body.get("place_id")
    if place_id is not None and (isinstance(place_id, bool) or not isinstance(place_id, int)):
        raise ApiError(422, "place_id 须是地点编号", field="place_id")
    session = get_session()
    settings = issue_settings_in_force()
    row = intake.confirm_row(
        session, layers(), settings, row_id, account, place_id, body.get("lon"), body.get("lat")
    )
    result = intake.row_view(row)
    session.commit()
    return jsonify(result)


@bp.post("/intake/rows/<int:row_id>/skip")
@permission_required(ACTION)
def skip_intake_row(row_id: int):
    _county_planner()
    session = get_session()
    result = intake.row_view(intake.skip_row(session, row_id))
    session.commit()
    return jsonify(result)
