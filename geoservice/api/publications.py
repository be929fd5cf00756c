"""Published 通报 (frozen) and attribution corrections over the API.

GET  /api/rankings/publications                    the list (who published what, when)
POST /api/rankings/publications                    publish a closed period (rankings.publish)
GET  /api/rankings/publications/{id}               figures as published + the recomputation check
GET  /api/rankings/publications/{id}/report.xlsx   the workbook exactly as published
POST /api/issues/{id}/attribution-correction       纠正责任归属 (retroactive, with a reason)
"""

from __future__ import annotations

import io
from datetime import datetime

from flask import current_app, jsonify, request, send_file

from geoservice.accounts import audit
from geoservice.accounts.auth import current_account, permission_required, require
from geoservice.api import bp
from geoservice.api.issues import _int_field, _json_body, view, visible_issue
from geoservice.db import get_session
from geoservice.edge.issues import COLLECTION, allows
from geoservice.edge.params import content_disposition, parse_paging, single_args
from geoservice.edge.rankings import read_rankings, settings, tz
from geoservice.edge.responsibility import check_leader_writable
from geoservice.errors import ApiError
from geoservice.input_values import text_value
from geoservice.issues import corrections
from geoservice.models import Issue
from geoservice.ranking import publications
from geoservice.ranking.periods import PeriodError, parse_period
from geoservice.registry import layers

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.get("/rankings/publications")
@read_rankings
def publication_list():
    single_args(("limit", "offset"))
    limit, offset = parse_paging(request.args, 200, 1000)
    return jsonify(publications.listing(get_session(), limit, offset))


@bp.post("/rankings/publications")
@permission_required("rankings.publish")
def publication_create():
    """{"period": "week", "from": "2026-W47", "note": reason when republishing}."""
    fields = _json_body()
    for name in ("period", "from", "to", "note"):
        if name in fields and not isinstance(fields[name], str):
            raise ApiError(422, f"{name} 应为文字", field=name)
    if fields.get("period") == "":
        raise ApiError(422, "period 不能为空：不填（省略该字段）为 week", field="period")
    zone = tz()
    try:
        period = parse_period(
            text_value(fields.get("period"), "period", "统计周期", default="week"),
            text_value(fields.get("from"), "from", "起始期") or None,
            text_value(fields.get("to"), "to", "截止期") or None,
            zone,
            datetime.now(zone).date(),
        )
    except PeriodError as exc:
        raise ApiError(422, exc.message, field=exc.field) from exc
    session = get_session()
    pub = publications.publish(
        session,
        layers(),
        period,
        settings(period),
        current_account(),
        text_value(fields.get("note"), "note", "备注"),
    )
    body = publications.summary(session, pub)
    audit.record(session, current_account(), "publication.create", "publication", pub.id,
                 after={k: body[k] for k in ("period", "version", "note", "workbook_sha256",
                                             "figures_sha256", "inputs_sha256")})  # fmt: skip
    session.commit()
    return jsonify(body), 201


@bp.get("/rankings/publications/<int:publication_id>")
@read_rankings
def publication_detail(publication_id: int):
    single_args(("check",))
    session = get_session()
    pub = publications.get(session, publication_id)
    body = publications.summary(session, pub)
    body["figures"] = pub.figures
    if request.args.get("check", "1") not in ("0", "false"):
        body["check"] = publications.check(session, layers(), pub)
    return jsonify(body)


@bp.get("/rankings/publications/<int:publication_id>/report.xlsx")
@read_rankings
def publication_workbook(publication_id: int):
    single_args(())
    session = get_session()
    info = publications.workbook_info(session, publication_id)
    if request.if_none_match.contains(info.workbook_sha256):
        # Revalidation: answered from the hash, the stored bytes are not read.
        response = current_app.response_class(status=304)
        response.set_etag(info.workbook_sha256)
        response.last_modified = info.published_at
    else:
        response = send_file(
            io.BytesIO(publications.workbook_bytes(session, publication_id)),
            mimetype=XLSX,
            as_attachment=True,
            download_name=info.filename,
            etag=info.workbook_sha256,
            last_modified=info.published_at,
        )
    if response.status_code == 200:  # a meaningful ASCII name beside the Chinese one
        response.headers["Content-Disposition"] = content_disposition(info.filename, "report")
    response.headers["X-Content-SHA256"] = info.workbook_sha256
    return response


@bp.post("/issues/<int:issue_id>/attribution-correction")
def issue_attribution_correction(issue_id: int):
    """{"leader_id": the right leader, "reason": …, "wrong_leader_id": optional}."""
    account = require("issues.read", COLLECTION)
    visible_issue(issue_id)
    fields = _json_body()
    leader_id = _int_field(fields, "leader_id", "正确的责任领导 leader_id ")
    if leader_id is None:
        raise ApiError(422, "缺少正确的责任领导 leader_id", field="leader_id")
    session = get_session()
    check_leader_writable(session, account, leader_id)  # another area's leader: as unknown
    event = corrections.correct_attribution(
        session,
        issue_id,
        account,
        leader_id,
        text_value(fields.get("reason"), "reason", "理由"),
        _int_field(fields, "wrong_leader_id", "原记录的责任领导 wrong_leader_id "),
        allows=allows,
    )
    audit.record(session, account, "issue.correct_attribution", "issue", issue_id,
                 after={"event_id": event.id, **event.data, "reason": event.note})  # fmt: skip
    body = view(session.get(Issue, issue_id))
    body["event_id"] = event.id
    session.commit()
    return jsonify(body)
