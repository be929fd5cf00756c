"""Issue endpoints: report (POST to the issues collection), one issue with its timeline,
transitions, the unassigned queue and dispatch, overdue list, duplicates and merge, photos.

Reading issue collections (GET items, tiles) is the generic features API's job.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import jsonify, request, send_file, url_for
from werkzeug.datastructures import FileStorage

from geoservice.accounts import scope
from geoservice.accounts.auth import current_account, require
from geoservice.api import bp
from geoservice.db import autocommit_read, get_session
from geoservice.edge.issues import COLLECTION, allows, photo_url, settings
from geoservice.edge.json_input import json_object
from geoservice.edge.params import parse_paging, single_args
from geoservice.edge.responsibility import check_leader_writable
from geoservice.errors import ApiError
from geoservice.input_values import shown, text_value, whole_number
from geoservice.issues import issues as service
from geoservice.issues.photos import Upload, prepare_all
from geoservice.issues.view import issue_summary, issue_view
from geoservice.issues.workflow import check_move, transition
from geoservice.models import Issue, Photo
from geoservice.registry import layers

PHOTO_FIELDS = ("photos", "photo", "photos[]")
_DATA_URL = re.compile(r"^data:([\w/+.-]+)?(;[\w=-]+)*;base64,(.*)$", re.DOTALL)


def visible_issue(issue_id: int) -> Issue:
    """The issue if the caller may see it; 404 alike for unknown and out of scope."""
    issue = scope.visible_issue(get_session(), current_account(), issue_id)
    if issue is None:
        raise ApiError(404, f"没有编号为 {issue_id} 的问题", field="id")
    return issue


def view(issue: Issue, new: bool = False) -> dict[str, Any]:
    return issue_view(
        get_session(),
        layers(),
        settings(),
        issue,
        current_account(),
        photo_url,
        allows=allows,
        new=new,
    )


# --- request parsing -----------------------------------------------------------------------


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(
            415, "请以 JSON（application/json）或 multipart/form-data 提交", field="Content-Type"
        )
    return json_object()


def _json_uploads(items: Any) -> list[Upload]:
    """Photos inlined in JSON: base64 strings, data: URLs or {"data", "filename",
    "content_type"} objects."""
    if items in (None, ""):
        return []
    if not isinstance(items, list):
        raise ApiError(422, "photos 必须是数组", field="photos")
    uploads = []
    for index, item in enumerate(items):
        filename, declared = f"photo{index + 1}", None
        if isinstance(item, Mapping):
            filename = str(item.get("filename") or filename)
            declared = item.get("content_type")
            item = item.get("data")
        if not isinstance(item, str):
            raise ApiError(422, f"第 {index + 1} 张照片不是 base64 文本", field="photos")
        match = _DATA_URL.match(item)
        if match:
            declared = declared or match.group(1)
            item = match.group(3)
        try:
            data = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, f"第 {index + 1} 张照片不是合法的 base64", field="photos") from None
        uploads.append(Upload(data, filename, declared))
    return uploads


def _file_uploads(limit: int) -> list[Upload]:
    files: list[FileStorage] = []
    for name in PHOTO_FIELDS:
        files.extend(f for f in request.files.getlist(name) if f.filename or f.content_length)
    uploads = []
    for f in files:
        # Read one byte past the limit: enough to refuse it without holding more.
        data = f.stream.read(limit + 1)
        uploads.append(Upload(data, f.filename or "", f.mimetype or None))
    return uploads


def parse_body() -> tuple[dict[str, Any], list[Upload]]:
    """The request's fields and photos, from JSON (a Feature or a flat object) or multipart."""
    limits = settings().photo_limits
    if request.mimetype == "multipart/form-data" or request.mimetype == (
        "application/x-www-form-urlencoded"
    ):
        fields: dict[str, Any] = {k: v for k, v in request.form.items()}
        return fields, _file_uploads(limits.max_bytes)
    body = _json_body()
    photos = body.pop("photos", None)
    if body.get("type") == "Feature":
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise ApiError(422, "Feature 的 properties 必须是对象", field="properties")
        photos = props.pop("photos", photos)
        body = {**props, "geometry": body.get("geometry")}
        if body["geometry"] is None:
            raise ApiError(422, "Feature 缺少 geometry（问题位置）", field="geometry")
    return body, _json_uploads(photos)


def _int_field(fields: Mapping[str, Any], name: str, label: str) -> int | None:
    value = fields.get(name)
    if value in (None, ""):
        return None
    try:
        return whole_number(value)
    except ValueError:
        raise ApiError(422, f"{label}必须是整数编号，收到 {shown(value)}", field=name) from None


# --- endpoints -----------------------------------------------------------------------------

REPORT_META = {"reported_at": "上报时间", "severity": "严重程度", "negative_list": "负面清单"}


def _check_report_meta(report: service.Report) -> None:
    """Backdating a report or setting its severity / negative list weighs on the rankings:
    `issues.set_report_meta` (planners; integration tokens whose scopes list it). Anyone else
    gets a 403 naming the field; the defaults (now, 一般, not on the list) need nothing."""
    if allows("issues.set_report_meta"):
        return
    given = {
        "reported_at": report.reported_at is not None,
        "severity": report.severity != service.DEFAULT_SEVERITY,
        "negative_list": report.negative_list,
    }
    for field, label in REPORT_META.items():
        if given[field]:
            raise ApiError(
                403,
                f"当前账号无权设定{label}（{field}），需要“设定上报信息”权限"
                "（issues.set_report_meta），请删除该项或请创文办处理",
                field=field,
            )


@bp.post("/collections/issues/items")
def create_issue():
    """Report an issue (JSON: {lon, lat, …} or a GeoJSON Feature; or multipart with photos)."""
    account = require("issues.report", COLLECTION)
    cfg = settings()
    fields, uploads = parse_body()
    if request.args.get("coord_sys") and not fields.get("coord_sys"):
        fields["coord_sys"] = request.args["coord_sys"]
    report = service.validate_report(fields, cfg)
    _check_report_meta(report)
    photos = prepare_all(
        uploads, cfg.photo_limits, cfg.tz, min_count=service.min_photos_for(report, cfg)
    )
    session = get_session()
    issue = service.create_issue(
        session,
        layers(),
        cfg,
        report,
        account,
        photos,
        candidates_for=account,
        with_candidates=True,
    )
    body = view(issue, new=True)  # the caller's view: the candidates were found for `account`
    session.commit()
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for(
        "api.item", collection_id=COLLECTION, feature_id=issue.id
    )
    return response


@bp.get("/issues/<int:issue_id>")
@autocommit_read  # reads only, no transaction-local settings: no BEGIN/ROLLBACK
def issue_detail(issue_id: int):
    require("issues.read", COLLECTION)
    single_args(())
    return jsonify(view(visible_issue(issue_id)))


@bp.post("/issues/<int:issue_id>/transitions")
def issue_transition(issue_id: int):
    """{"to": status, "note": …, "leader_id": … (交办), "from": expected status} + photos."""
    account = require("issues.read", COLLECTION)
    cfg = settings()
    issue = visible_issue(issue_id)
    fields, uploads = parse_body()
    to_status = fields.get("to")
    if not isinstance(to_status, str) or not to_status:
        raise ApiError(422, "缺少目标状态 to", field="to")
    expected = fields.get("from") or None
    leader_id = _int_field(fields, "leader_id", "交办对象 leader_id ")
    session = get_session()
    # Permission and state first: photos are decoded only for a move the caller may make.
    check_move(session, issue, to_status, account, expected, allows)
    check_leader_writable(session, account, leader_id)
    photos = prepare_all(uploads, cfg.photo_limits, cfg.tz)
    event = transition(
        session,
        cfg,
        issue_id,
        to_status,
        account,
        note=text_value(fields.get("note"), "note", "备注"),
        leader_id=leader_id,
        expected_status=expected,
        photos=photos,
        allows=allows,
    )
    body = view(session.get(Issue, issue_id))
    body["event_id"] = event.id
    session.commit()
    return jsonify(body)


QUEUE_MAX = 1000
QUEUE_PARAMS = ("limit", "offset")


def _paging() -> tuple[int, int]:
    return parse_paging(single_args(QUEUE_PARAMS), maximum=QUEUE_MAX)


@bp.get("/issues/unassigned")
def unassigned_queue():
    """待派遣队列: open issues no place claims or whose place has no leader."""
    account = require("issues.dispatch", COLLECTION)
    cfg, session = settings(), get_session()
    limit, offset = _paging()
    now = datetime.now(UTC)
    rows = session.scalars(service.unassigned_query(limit, offset, account)).all()
    return jsonify(
        {
            "numberMatched": service.count_unassigned(session, account),
            "numberReturned": len(rows),
            "issues": [issue_summary(i, cfg, now) for i in rows],
        }
    )


@bp.post("/issues/<int:issue_id>/dispatch")
def issue_dispatch(issue_id: int):
    """交办 (from the queue): {"leader_id": …, "note": …}; a reported issue is 立案 first."""
    account = require("issues.dispatch", COLLECTION)
    cfg = settings()
    visible_issue(issue_id)
    fields = _json_body()
    leader_id = _int_field(fields, "leader_id", "交办对象 leader_id ")
    session = get_session()
    check_leader_writable(session, account, leader_id)
    service.dispatch(
        session,
        cfg,
        issue_id,
        leader_id,
        account,
        text_value(fields.get("note"), "note", "备注"),
        allows=allows,
    )
    body = view(session.get(Issue, issue_id))
    session.commit()
    return jsonify(body)


@bp.get("/issues/overdue")
def overdue_issues():
    """Overdue issues (超期未办结: deadline passed, not closed) the caller may see."""
    account = require("issues.read", COLLECTION)
    cfg, session = settings(), get_session()
    limit, offset = _paging()
    now = datetime.now(UTC)
    rows = session.scalars(service.overdue_query(now, account, limit, offset)).all()
    return jsonify(
        {
            "numberMatched": service.count_overdue(session, now, account),
            "numberReturned": len(rows),
            "issues": [issue_summary(i, cfg, now) for i in rows],
        }
    )


@bp.get("/issues/<int:issue_id>/duplicates")
def issue_duplicates(issue_id: int):
    account = require("issues.read", COLLECTION)
    single_args(())
    visible_issue(issue_id)
    candidates = service.duplicate_candidates(get_session(), settings(), issue_id, account=account)
    return jsonify({"candidates": candidates})


@bp.post("/issues/<int:issue_id>/merge")
def issue_merge(issue_id: int):
    """Merge this issue into a master: {"into": master_id, "note": …}."""
    account = require("issues.dispatch", COLLECTION)
    visible_issue(issue_id)
    fields = _json_body()
    master_id = _int_field(fields, "into", "主问题编号 into ")
    if master_id is None:
        raise ApiError(422, "缺少主问题编号 into", field="into")
    visible_issue(master_id)
    session = get_session()
    service.merge_duplicate(
        session, issue_id, master_id, account, text_value(fields.get("note"), "note", "备注")
    )
    body = view(session.get(Issue, issue_id))
    session.commit()
    return jsonify(body)


@bp.get("/photos/<int:photo_id>")
def issue_photo(photo_id: int):
    """A photo (`?thumb=1` for its thumbnail) of an issue the caller may see."""
    require("issues.read", COLLECTION)
    args = single_args(("thumb",))
    session = get_session()
    photo = session.get(Photo, photo_id)
    store = settings().store
    if (
        photo is None
        or store is None
        or scope.visible_issue(session, current_account(), photo.issue_id) is None
    ):
        raise ApiError(404, f"没有编号为 {photo_id} 的照片")
    thumb = args.get("thumb") not in (None, "", "0")
    path = (
        store.thumbnail(photo.sha256, photo.content_type, settings().photo_limits.thumb_px)
        if thumb
        else store.path(photo.sha256, photo.content_type)
    )
    if path is None or not path.is_file():
        raise ApiError(404, "照片文件缺失", {"photo_id": photo_id})
    response = send_file(
        path,
        mimetype="image/jpeg" if thumb else photo.content_type,
        max_age=86400,
        etag=True,
    )
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
