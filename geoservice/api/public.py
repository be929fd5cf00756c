"""JSON of the citizens package.

`bp` (/public/api, no account needed, 404 unless CITIZENS_PUBLIC is on): the proof-of-work
challenge, nearby duplicates, filing a 随手拍 report, "me too", a ticket by its private link
and its 回访, the cached public map/list and the 曝光台.

`staff_bp` (/citizens/api, signed-in staff): the citizen side of an issue (phone, ticket,
switches, photo approvals, 回访 answers) and the decisions on 不满意.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from geoservice.accounts import scope
from geoservice.accounts.auth import can, current_account, public, require
from geoservice.citizens import challenge, followup, intake, publish
from geoservice.citizens.settings import CitizenSettings
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.json_input import json_object
from geoservice.edge.responsibility import leader_writable
from geoservice.errors import ApiError, error_response
from geoservice.input_values import shown, text_value
from geoservice.issues.photos import PhotoLimits, Upload, prepare_all
from geoservice.issues.workflow import IssueSettings
from geoservice.registry import layers
from geoservice.service_errors import ServiceError

bp = Blueprint("public_api", __name__, url_prefix="/public/api")
staff_bp = Blueprint("citizens_api", __name__, url_prefix="/citizens/api")
NOT_FOUND = "未找到"


def citizen_settings() -> CitizenSettings:
    return CitizenSettings.from_config(current_app.config)


def issue_settings() -> IssueSettings:
    return issue_settings_in_force()


def _json_errors(blueprint: Blueprint) -> None:
    @blueprint.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        response = error_response(exc.status, exc.error, exc.detail, exc.field)
        if isinstance(exc.detail, dict) and "retry_after_s" in exc.detail:
            response.headers["Retry-After"] = str(exc.detail["retry_after_s"])
        return response

    @blueprint.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.error, exc.detail, exc.field)


_json_errors(bp)
_json_errors(staff_bp)


@bp.before_request
def _only_when_enabled() -> None:
    if not citizen_settings().enabled:
        raise ApiError(404, NOT_FOUND)


def _fields() -> dict[str, Any]:
    if request.is_json:
        return json_object()
    return {k: v for k, v in request.form.items()}


def _uploads(limit: int) -> list[Upload]:
    files = [f for f in request.files.getlist("photos") if f.filename or f.content_length]
    # One byte past the limit: enough to refuse a file without holding more of it.
    return [Upload(f.stream.read(limit + 1), f.filename or "", f.mimetype or None) for f in files]


def _checked_challenge(fields: dict[str, Any], cs: CitizenSettings) -> str:
    """The solved challenge (checked, not yet spent: spent with the write it allows)."""
    return challenge.check(
        cs.secret, fields.get("challenge"), fields.get("solution"), cs.pow_difficulty
    )


def _count_attempt(cs: CitizenSettings, phone: str | None) -> None:
    session = get_session()
    try:
        intake.count_attempt(session, cs, request.remote_addr, phone)
    finally:
        session.commit()  # the attempt counts even when refused


# --- anonymous -----------------------------------------------------------------------------


@bp.get("/challenge")
@public
def new_challenge():
    cs = citizen_settings()
    return jsonify(challenge.issue(cs.secret, cs.pow_difficulty, cs.pow_ttl_s).as_json())


@bp.get("/nearby")
@public
def nearby():
    spot = intake.issue_service.locate(
        request.args.get("lon"), request.args.get("lat"), request.args.get("coord_sys")
    )
    category = (request.args.get("category") or "").strip()
    return jsonify(intake.nearby(get_session(), issue_settings(), spot.lon, spot.lat, category))


@bp.post("/reports")
@public
def file_report():
    """A 随手拍 report (multipart: lon, lat, coord_sys, category, description, phone,
    challenge, solution, photos)."""
    cs, cfg = citizen_settings(), issue_settings()
    fields = _fields()
    phone = intake.normalise_phone(fields.get("phone"))
    # An unsolved attempt costs nothing and is not counted (it would eat the quota of everyone
    # behind the same address); a solved one counts even when refused afterwards.
    token = _checked_challenge(fields, cs)
    _count_attempt(cs, phone)
    challenge.spend(get_session(), token)
    report, phone = intake.validate(fields, cfg, cs, now=None)
    limits = PhotoLimits(
        max_bytes=min(cs.photo_max_bytes, cfg.photo_limits.max_bytes),
        max_count=cs.max_photos,
        max_pixels=cfg.photo_limits.max_pixels,
    )
    photos = prepare_all(
        _uploads(limits.max_bytes),
        limits,
        cfg.tz,
        min_count=intake.issue_service.min_photos_for(report, cfg),
    )
    session = get_session()
    filed = intake.file_report(session, layers(), cfg, report, phone, photos)
    session.commit()
    response = jsonify(
        {
            "ticket": filed.ticket,
            "link": url_for("public.ticket_page", token=filed.token),
            "status_label": "已收到，等待受理",
        }
    )
    response.status_code = 201
    return response


@bp.post("/issues/<int:issue_id>/metoo")
@public
def me_too(issue_id: int):
    """我也遇到: {lon, lat, challenge, solution} — one more voice on a nearby open issue."""
    cs, cfg = citizen_settings(), issue_settings()
    fields = _fields()
    token = _checked_challenge(fields, cs)
    _count_attempt(cs, None)
    challenge.spend(get_session(), token)
    spot = intake.issue_service.locate(
        fields.get("lon"), fields.get("lat"), fields.get("coord_sys")
    )
    session = get_session()
    count = intake.me_too(session, cfg, issue_id, spot.lon, spot.lat)
    session.commit()
    return jsonify({"issue_id": issue_id, "metoo": count, "message": "已记录，感谢您的反映"})


def _ticket(token: str):
    row = intake.find_ticket(get_session(), token)
    if row is None:
        raise ApiError(404, NOT_FOUND)
    return row


@bp.get("/tickets/<token>")
@public
def ticket(token: str):
    return jsonify(intake.ticket_view(get_session(), issue_settings(), _ticket(token)))


@bp.post("/tickets/<token>/feedback")
@public
def ticket_feedback(token: str):
    """回访: {answer: satisfied | basically | unsatisfied, comment}."""
    cs = citizen_settings()
    row = _ticket(token)
    _count_attempt(cs, None)
    fields = _fields()
    session = get_session()
    followup.answer(session, row.issue_id, fields.get("answer"), fields.get("comment"))
    session.commit()
    return jsonify(intake.ticket_view(session, issue_settings(), row))


@bp.get("/issues")
@public
def public_issues():
    cs, cfg = citizen_settings(), issue_settings()
    status = request.args.get("status") or None
    if status is not None and status not in publish.PUBLIC_STATUSES:
        raise ApiError(
            422, f"未知状态 {shown(status)}", {"statuses": list(publish.PUBLIC_STATUSES)}, "status"
        )
    body = publish.CACHE.get(
        ("issues", status),
        cs.cache_seconds,
        lambda: publish.public_issues(get_session(), cfg, cs, status),
    )
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={cs.cache_seconds}"
    return response


def public_photo_url(photo_id: int, thumb: bool) -> str:
    return url_for("public.photo", photo_id=photo_id, thumb=1 if thumb else None)


@bp.get("/exposure")
@public
def exposure():
    cs, cfg = citizen_settings(), issue_settings()
    body = publish.CACHE.get(
        ("exposure",),
        cs.cache_seconds,
        lambda: {"issues": publish.exposure(get_session(), cfg, public_photo_url)},
    )
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={cs.cache_seconds}"
    return response


# --- staff ---------------------------------------------------------------------------------


def _visible(issue_id: int) -> None:
    if scope.visible_issue(get_session(), current_account(), issue_id) is None:
        raise ApiError(404, f"没有编号为 {issue_id} 的问题", field="id")


@staff_bp.get("/issues/<int:issue_id>")
def staff_issue(issue_id: int):
    require("issues.read", "issues")
    _visible(issue_id)
    body = publish.staff_view(get_session(), issue_settings(), issue_id)
    if not can("issues.dispatch", "issues"):
        body["phone"] = None  # the reporter's phone: planners only
    return jsonify(body)


def _ids(value: Any, field: str) -> list[int]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ApiError(422, f"{field} 必须是照片编号列表", field=field)
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        raise ApiError(422, f"{field} 必须是照片编号列表", field=field) from None


def _flag(value: Any, field: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text_value = str(value).strip().lower()
    if text_value in ("1", "true", "on", "yes"):
        return True
    if text_value in ("0", "false", "off", "no"):
        return False
    raise ApiError(422, f"{field} 只能是 true 或 false", field=field)


@staff_bp.post("/issues/<int:issue_id>/public")
def staff_set_public(issue_id: int):
    """{sensitive, published, approve: [photo ids], revoke: [photo ids]}."""
    account = require("issues.dispatch", "issues")
    _visible(issue_id)
    fields = _fields()
    session = get_session()
    publish.set_public(
        session,
        issue_id,
        account.id,
        sensitive=_flag(fields.get("sensitive"), "sensitive"),
        published=_flag(fields.get("published"), "published"),
        approve=_ids(fields.get("approve"), "approve"),
        revoke=_ids(fields.get("revoke"), "revoke"),
    )
    session.commit()
    return jsonify(publish.staff_view(session, issue_settings(), issue_id))


@staff_bp.get("/feedback/pending")
def staff_pending():
    account = require("issues.dispatch", "issues")
    session = get_session()
    rows = [
        f
        for f in followup.pending(session)
        if scope.visible_issue(session, account, f.issue_id) is not None
    ]
    return jsonify(
        {
            "feedback": [
                {"id": f.id, "issue_id": f.issue_id, "comment": f.comment, "at": f.at.isoformat()}
                for f in rows
            ]
        }
    )


@staff_bp.post("/feedback/<int:feedback_id>/decision")
def staff_decide(feedback_id: int):
    """{decision: reopen | keep, note, leader_id}."""
    account = require("issues.dispatch", "issues")
    session = get_session()
    feedback = session.get(followup.CitizenFeedback, feedback_id)
    if feedback is None or scope.visible_issue(session, account, feedback.issue_id) is None:
        raise ApiError(404, f"没有编号为 {feedback_id} 的回访", field="id")
    fields = _fields()
    leader_id = fields.get("leader_id")
    try:
        leader_id = int(leader_id) if leader_id not in (None, "") else None
    except (TypeError, ValueError):
        raise ApiError(422, "leader_id 必须是整数编号", field="leader_id") from None
    decided = followup.decide(
        session,
        issue_settings(),
        feedback_id,
        fields.get("decision"),
        account,
        text_value(fields.get("note"), "note", "备注"),
        leader_id,
        allows=lambda action: can(action, "issues"),
        leader_allowed=lambda lid: leader_writable(session, account, lid),
    )
    session.commit()
    return jsonify({"id": decided.id, "decision": decided.decision})
