"""OGC API – Features Part 4 style writes on layer collections: POST (one Feature, or a
FeatureCollection all-or-nothing), PUT, PATCH, DELETE, with ETag / If-Match."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from geoservice.accounts.auth import current_account, require
from geoservice.api import bp
from geoservice.api.features import feature_response, json_response, parse_feature_id
from geoservice.areas import service_area
from geoservice.assessment import sites as site_service
from geoservice.catalogue.catalogue import Collection, parse_bool
from geoservice.catalogue.editing import (
    FeatureHeld,
    current_properties,
    delete_feature,
    insert_features,
    update_feature,
)
from geoservice.catalogue.items import current_etag, get_feature, set_timezone
from geoservice.catalogue.validation import (
    Candidate,
    Invalid,
    Problem,
    Rejected,
    parse_geometry,
    validate,
)
from geoservice.db import get_session
from geoservice.edge.access import (
    Change,
    check_write,
    collection_or_404,
    record_write,
    scope_condition,
    visible,
)
from geoservice.edge.json_input import strict_loads, why_not_json
from geoservice.edge.params import single_args, url
from geoservice.edge.text_input import refused, unstorable_path
from geoservice.errors import ApiError
from geoservice.input_values import json_kind, shown
from geoservice.registry import layers
from geoservice.service_errors import ServiceError


def read_body() -> Any:
    raw = request.get_data(cache=False)  # 413 beyond MAX_CONTENT_LENGTH
    if not raw.strip():
        raise ApiError(400, "请求体为空：应为 GeoJSON", field="body")
    try:
        body = strict_loads(raw)
    except ValueError as exc:
        raise ApiError(400, "请求体不是有效的 JSON", why_not_json(exc), field="body") from None
    where = unstorable_path(body)
    if where is not None:
        raise refused(where, "GeoJSON 字段", json=True)
    return body


def _problem_error(problems: list[Problem]) -> ApiError:
    first = problems[0]
    detail = first.detail
    if len(problems) > 1:
        detail = {"problems": [p.as_dict() for p in problems]}
    return ApiError(first.status, first.message, detail, first.field)


def _candidate(obj: Any, index: int, geometry_required: bool, label: str = "") -> Candidate:
    """A Feature object → Candidate; raises Invalid for structural problems."""
    if not isinstance(obj, dict) or obj.get("type") != "Feature":
        kind = shown(obj.get("type")) if isinstance(obj, dict) else json_kind(obj)
        raise Invalid(Problem(f"应为 GeoJSON Feature，收到 {kind}", "type", status=400))
    props = obj.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise Invalid(Problem("properties 应为对象", "properties", status=400))
    if "crs" in obj:
        raise Invalid(
            Problem("不支持 crs 成员：坐标须为 WGS-84 经纬度（RFC 7946）", "crs", status=400)
        )
    geometry = None
    if obj.get("geometry") is not None or geometry_required:
        try:
            geometry = parse_geometry(obj.get("geometry"))
        except Invalid as exc:
            exc.problem.status = 400
            raise
    return Candidate(index, geometry, props, label)


def _repair_flag(args: dict[str, str]) -> bool:
    if "repair" not in args:
        return False
    try:
        return parse_bool(args["repair"])
    except ValueError as exc:
        raise ApiError(400, f"参数 repair：{exc}", field="repair") from None


def _area(session):
    margin = float(current_app.config.get("SERVICE_AREA_MARGIN_M", 50_000))
    return service_area.bounds(session, layers(), margin)


def _commit(session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        message = getattr(getattr(exc.orig, "diag", None), "message_primary", None)
        raise ApiError(409, "与现有数据冲突（可能有人同时写入），未保存", message) from None


def _saved_response(coll: Collection, fid: int, status: int, notices: list[str]) -> Response:
    session = get_session()
    set_timezone(session, current_app.config["TIMEZONE"])
    text_, etag = get_feature(session, coll, fid)
    if notices:
        text_ = text_[:-1] + ',"notices":' + json.dumps(notices, ensure_ascii=False) + "}"
    response = feature_response(coll, fid, text_, etag, status)
    if status == 201:
        response.headers["Location"] = url("api.item", collection_id=coll.id, feature_id=fid)
    return response


# POST to a sites collection (issue 15): sites of its kind, checked by the assessment service.
def create_site_features(coll, body: Any) -> Response:
    """POST /api/collections/{sites|site-<code>}/items: one Feature (201 with the feature) or a
    FeatureCollection (all or nothing); the kind is the collection's (or `kind` per feature
    in `sites`), attributes are checked against it."""
    account = require("layers.write", coll.id)
    if account.role not in ("admin", "planner", "integration"):
        raise ApiError(403, "只有创文办可以新增点位", field="role")
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "Feature":
        features = [body]
    elif kind == "FeatureCollection" and isinstance(body.get("features"), list):
        features = body["features"]
    else:
        raise ApiError(400, "请求体应为 GeoJSON Feature 或 FeatureCollection", field="type")
    if not features:
        raise ApiError(400, "FeatureCollection 中没有要素", field="features")
    limit = int(current_app.config.get("MAX_FEATURES_PER_REQUEST", 10_000))
    if len(features) > limit:
        raise ApiError(413, f"一次最多新增 {limit} 个要素", field="features")
    session = get_session()
    ids, errors = [], []
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
            errors.append({"index": index, "field": "properties", "error": "要素须有 properties"})
            continue
        payload = dict(feature["properties"])
        payload["geometry"] = feature.get("geometry")
        if coll.kind_code is not None:
            payload["kind"] = coll.kind_code
        savepoint = session.begin_nested()
        try:
            ids.append(site_service.create_site(session, payload).id)
            savepoint.commit()
        except ServiceError as exc:
            savepoint.rollback()
            errors.append({"index": index, "field": exc.field, "error": exc.error})
    if errors:
        session.rollback()
        if kind == "Feature":
            raise ApiError(422, errors[0]["error"], errors[0], field=errors[0]["field"])
        raise ApiError(
            422,
            f"批量新增未执行：{len(errors)} 个要素有错误，全部未写入",
            {"rejected": errors, "total": len(features)},
            field=errors[0]["field"],
        )
    if not visible(session, account, coll, ids):
        session.rollback()
        raise ApiError(403, "要素位于您的管辖范围之外，不能在此新增", field="geometry")
    for fid in ids:
        record_write(session, account, Change("create", coll.id, fid, None, None))
    session.commit()
    if kind == "Feature":
        return _saved_response(coll, ids[0], 201, [])
    response = jsonify({"inserted": len(ids), "ids": ids})
    response.status_code = 201
    return response


@bp.post("/collections/<collection_id>/items")
def create_items(collection_id: str):
    coll = collection_or_404(collection_id)
    if getattr(coll, "accepts_sites", False):  # sites: their kind's attributes (issue 15)
        return create_site_features(coll, read_body())
    account = check_write(coll)
    repair = _repair_flag(single_args(["repair"]))
    body = read_body()
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "FeatureCollection":
        return _create_many(coll, account, body, repair)
    if kind != "Feature":
        raise ApiError(
            400,
            "请求体应为 GeoJSON Feature（批量新增时为 FeatureCollection）",
            {"received": kind if kind is not None else json_kind(body)},
            field="type",
        )
    session = get_session()
    try:
        candidate = _candidate(body, 0, geometry_required=True)
    except Invalid as exc:
        raise _problem_error([exc.problem]) from None
    checked, rejected = validate(
        session, coll.spec, [candidate], repair=repair, area=_area(session)
    )
    if rejected:
        raise _problem_error(rejected[0].problems)
    (fid,) = insert_features(session, coll.spec, checked)
    _within_scope(session, account, coll, [fid])
    after = current_properties(session, coll.spec, fid)
    record_write(session, account, Change("create", coll.id, fid, None, after))
    _commit(session)
    return _saved_response(coll, fid, 201, checked[0].notices)


def _create_many(coll: Collection, account, body: dict, repair: bool):
    features = body.get("features")
    if not isinstance(features, list):
        raise ApiError(400, "FeatureCollection 缺少 features 数组", field="features")
    limit = int(current_app.config.get("MAX_FEATURES_PER_REQUEST", 10_000))
    if len(features) > limit:
        raise ApiError(
            413,
            f"一次最多新增 {limit} 个要素，本次 {len(features)} 个；请分批提交或使用文件导入",
            field="features",
        )
    if not features:
        raise ApiError(400, "FeatureCollection 中没有要素", field="features")
    session = get_session()
    candidates: list[Candidate] = []
    early: list[Rejected] = []
    for i, obj in enumerate(features):
        label = f"第 {i + 1} 个要素"
        try:
            candidates.append(_candidate(obj, i, geometry_required=True, label=label))
        except Invalid as exc:
            early.append(Rejected(i, label, [exc.problem]))
    checked, rejected = validate(session, coll.spec, candidates, repair=repair, area=_area(session))
    rejected = sorted(early + rejected, key=lambda r: r.index)
    if rejected:
        statuses = {p.status for r in rejected for p in r.problems}
        status = 409 if statuses == {409} else 400 if statuses == {400} else 422
        raise ApiError(
            status,
            f"批量新增未执行：{len(rejected)} 个要素有错误，全部未写入",
            {
                "rejected": [r.as_dict() for r in rejected],
                "total": len(features),
            },
            field=rejected[0].problems[0].field,
        )
    ids = insert_features(session, coll.spec, checked)
    _within_scope(session, account, coll, ids)
    for fid in ids:
        record_write(session, account, Change("create", coll.id, fid, None, None))
    _commit(session)
    notices = [
        {"index": c.index, "id": fid, "notice": n}
        for c, fid in zip(checked, ids, strict=True)
        for n in c.notices
    ]
    body_out = {
        "inserted": len(ids),
        "ids": ids,
        "notices": notices,
        "links": [
            {
                "rel": "item",
                "type": "application/geo+json",
                "href": url("api.item", collection_id=coll.id, feature_id=fid),
            }
            for fid in ids[:100]
        ],
    }
    return json_response(body_out, status=201)


def _within_scope(session, account, coll: Collection, ids: list[int]) -> None:
    """A write may not put a feature outside the caller's area (the transaction is not
    committed: raising undoes it)."""
    if not visible(session, account, coll, ids):
        raise ApiError(403, "要素位于您的管辖范围之外，不能在此新增或移入", field="geometry")


def _lock_and_match(coll: Collection, fid: int) -> str:
    """Locks the feature row, checks If-Match; returns the current ETag (404/412 otherwise)."""
    session = get_session()
    set_timezone(session, current_app.config["TIMEZONE"])  # the ETag hashes timestamps as text
    etag = current_etag(session, coll, fid, scope_condition(current_account(), coll))
    if etag is None:
        raise ApiError(404, f"集合 {coll.id} 中没有编号为 {fid} 的要素", field="featureId")
    if "If-Match" in request.headers:
        wanted = request.if_match
        if not wanted.star_tag and not wanted.contains(etag):
            raise ApiError(
                412,
                "要素已被他人修改（ETag 不符），请重新读取后再提交",
                {"current_etag": f'"{etag}"'},
                field="If-Match",
            )
    return etag


@bp.put("/collections/<collection_id>/items/<feature_id>")
def replace_item(collection_id: str, feature_id: str):
    coll = collection_or_404(collection_id)
    account = check_write(coll)
    fid = parse_feature_id(feature_id)
    repair = _repair_flag(single_args(["repair"]))
    _lock_and_match(coll, fid)
    body = read_body()
    try:
        candidate = _candidate(body, 0, geometry_required=True)
    except Invalid as exc:
        raise _problem_error([exc.problem]) from None
    return _save(coll, account, fid, candidate, repair, "replace")


@bp.patch("/collections/<collection_id>/items/<feature_id>")
def update_item(collection_id: str, feature_id: str):
    coll = collection_or_404(collection_id)
    account = check_write(coll)
    fid = parse_feature_id(feature_id)
    repair = _repair_flag(single_args(["repair"]))
    _lock_and_match(coll, fid)
    body = read_body()
    if not isinstance(body, dict) or body.get("type", "Feature") != "Feature":
        raise ApiError(
            400,
            "PATCH 的请求体应为（部分的）GeoJSON Feature：properties 和/或 geometry",
            field="type",
        )
    patch = {"type": "Feature", **body}
    session = get_session()
    before = current_properties(session, coll.spec, fid)
    try:
        candidate = _candidate(patch, 0, geometry_required=False)
    except Invalid as exc:
        raise _problem_error([exc.problem]) from None
    merged = dict(before["properties"])
    merged.update(candidate.properties)
    candidate.properties = merged
    return _save(coll, account, fid, candidate, repair, "update", before)


def _save(coll, account, fid, candidate, repair, action, before=None):
    session = get_session()
    if before is None:
        before = current_properties(session, coll.spec, fid)
    checked, rejected = validate(
        session, coll.spec, [candidate], repair=repair, area=_area(session), exclude_id=fid
    )
    if rejected:
        raise _problem_error(rejected[0].problems)
    update_feature(session, coll.spec, fid, checked[0])
    _within_scope(session, account, coll, [fid])
    after = current_properties(session, coll.spec, fid)
    record_write(session, account, Change(action, coll.id, fid, before, after))
    _commit(session)
    return _saved_response(coll, fid, 200, checked[0].notices)


@bp.delete("/collections/<collection_id>/items/<feature_id>")
def delete_item(collection_id: str, feature_id: str):
    coll = collection_or_404(collection_id)
    account = check_write(coll)
    fid = parse_feature_id(feature_id)
    single_args([])
    _lock_and_match(coll, fid)
    session = get_session()
    before = current_properties(session, coll.spec, fid)
    try:
        delete_feature(session, fid)
    except FeatureHeld as exc:
        raise ApiError(
            409,
            f"该{coll.title}仍被引用，不能删除：{exc}",
            {"holders": [h.__dict__ for h in exc.holders]},
            field="featureId",
        ) from None
    record_write(session, account, Change("delete", coll.id, fid, before, None))
    _commit(session)
    return Response(status=204)
