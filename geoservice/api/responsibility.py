"""包保 JSON API: units, leaders, assignments (with history), "who was responsible", a
leader's features as GeoJSON, the coverage audit and the Excel roster (import/export/template).

Access: a permission per endpoint + one scope check (geoservice.edge.responsibility).
"""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app, jsonify, request
from sqlalchemy import and_

from geoservice.accounts.auth import current_account, permission_required
from geoservice.api import bp
from geoservice.db import get_session
from geoservice.edge.json_input import json_object
from geoservice.edge.params import (
    content_disposition,
    moment_arg,
    parse_limit,
    parse_paging,
    single_args,
)
from geoservice.edge.responsibility import (
    READ,
    WRITE,
    assignment_place_where,
    check_holdings_in_scope,
    check_leader_visible,
    check_leader_writable,
    check_place_visible,
    check_unit_writable,
    county_required,
    only_visible_assignments,
    place_visibility,
    roster_upload,
    run_roster_import,
    visible_leader_ids,
    visible_place_ids,
)
from geoservice.edge.vocabularies import assignable_roles
from geoservice.edge.vocabularies import in_force as vocab_in_force
from geoservice.errors import ApiError
from geoservice.models import Place
from geoservice.registry import BASE_LAYER, layers
from geoservice.responsibility import coverage, myareas, roster_export, roster_template
from geoservice.responsibility import responsibility as resp

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---------------------------------------------------------------------------------------------
# Request helpers.


def _body(optional: bool = False) -> dict[str, Any]:
    return _typed(json_object(optional, not_json_status=400))  # docs/api.md: the 包保 family


# JSON types of the body fields (the OpenAPI schemas'); the service functions also read
# spreadsheets, where "是" or 1 mean true, so the API checks the types before them.
_BODY_TYPES: dict[str, tuple[type, ...]] = {
    "is_lead": (bool,),
    "is_unit_head": (bool,),
    "active": (bool,),
    "is_primary": (bool,),
    "name": (str,),
    "title": (str,),
    "phone": (str, type(None)),
    "unit_id": (int, type(None)),
    "leader_id": (int,),
    "place_id": (int,),
    "layer": (str,),
    "code": (str,),
    "role": (str,),
    "note": (str,),
    "at": (str,),
    "valid_from": (str,),
    "replace_primary": (bool,),
    "level": (str,),
}
_TYPE_NAMES = {bool: "true 或 false", str: "字符串", int: "整数", type(None): "null"}


def _typed(data: dict[str, Any]) -> dict[str, Any]:
    """400 naming the first field of a known name whose JSON type is not its schema's."""
    for name, value in data.items():
        kinds = _BODY_TYPES.get(name)
        if kinds is None:
            continue
        ok = isinstance(value, kinds) and not (bool not in kinds and isinstance(value, bool))
        if not ok:
            wanted = " 或 ".join(_TYPE_NAMES[k] for k in kinds)
            raise ApiError(400, f"字段 {name} 应为{wanted}", field=name)
    return data


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _instant(value: Any, field: str):
    return resp.parse_instant(value, _tz(), field)


def _int_arg(name: str) -> int | None:
    value = request.args.get(name)
    return None if value in (None, "") else resp.as_int(value, name)


def _bool_arg(name: str, default: bool = False) -> bool:
    value = request.args.get(name)
    return default if value is None else resp.as_bool(value, name)


def _layer_name(value: Any) -> str:
    text = str(value or "").strip()
    registry = layers()
    if text in registry:
        return text
    spec = registry.by_collection(text) or next((s for s in registry if s.title == text), None)
    if spec is None:
        raise ApiError(
            400, f"未知图层“{text}”", {"allowed": [s.name for s in registry]}, field="layer"
        )
    return spec.name


def _titles() -> dict[str, str]:
    return {spec.name: spec.title for spec in layers()}


def _place_from(data: dict[str, Any]):
    """The place named by `place_id`, else by `layer` and `code`. A `layer` or `code` given is
    checked even beside a `place_id` (an empty or misspelt one is a 400, not ignored)."""
    session = get_session()
    if "layer" in data:
        _layer_name(data["layer"])
    if "code" in data and (data["code"] is None or not str(data["code"]).strip()):
        raise ApiError(400, "code（要素编码）不能为空", field="code")
    if data.get("place_id") not in (None, ""):
        return resp.get_place(session, resp.as_int(data["place_id"], "place_id"))
    if data.get("layer") and data.get("code"):
        return resp.find_place(
            session,
            _layer_name(data["layer"]),
            str(data["code"]).strip(),
            place_visibility(current_account()),
        )
    raise ApiError(400, "请指定地点：place_id，或 layer 与 code", field="place_id")


def _assignment_json(assignment) -> dict[str, Any]:
    return resp.assignment_dict(assignment, _titles())


def _account():
    return current_account()


# ---------------------------------------------------------------------------------------------
# Units.


@bp.get("/units")
@permission_required(READ)
def units_list():
    single_args(())
    return jsonify({"units": resp.unit_rows(get_session())})


@bp.post("/units")
@permission_required(WRITE)
def units_create():
    data = _body()
    session = get_session()
    unit = resp.create_unit(
        session, data.get("name"), resp.as_bool(data.get("is_lead"), "is_lead"), by=_account()
    )
    session.commit()
    return jsonify(resp.unit_dict(unit)), 201


@bp.get("/units/<int:unit_id>")
@permission_required(READ)
def units_get(unit_id: int):
    single_args(())
    session = get_session()
    unit = resp.unit_dict(resp.get_unit(session, unit_id))
    scope = visible_leader_ids(session, _account())
    unit["leaders"] = resp.leader_rows(
        session,
        unit_id=unit_id,
        ids=scope,
        place_where=assignment_place_where(session, _account()),
    )
    return jsonify(unit)


@bp.patch("/units/<int:unit_id>")
@permission_required(WRITE)
def units_update(unit_id: int):
    session = get_session()
    check_unit_writable(session, _account(), unit_id)
    unit = resp.update_unit(session, unit_id, _body(), by=_account())
    session.commit()
    return jsonify(resp.unit_dict(unit))


@bp.delete("/units/<int:unit_id>")
@permission_required(WRITE)
def units_delete(unit_id: int):
    session = get_session()
    check_unit_writable(session, _account(), unit_id)
    resp.delete_unit(session, unit_id, by=_account())
    session.commit()
    return "", 204


# ---------------------------------------------------------------------------------------------
# Leaders.


@bp.get("/leaders")
@permission_required(READ)
def leaders_list():
    single_args(("unit_id", "active", "q"))
    session = get_session()
    active = request.args.get("active")
    rows = resp.leader_rows(
        session,
        unit_id=_int_arg("unit_id"),
        active=None if active in (None, "") else resp.as_bool(active, "active"),
        query=request.args.get("q") or None,
        ids=visible_leader_ids(session, _account()),
        place_where=assignment_place_where(session, _account()),
    )
    return jsonify({"leaders": rows, "numberReturned": len(rows)})


@bp.post("/leaders")
@permission_required(WRITE)
def leaders_create():
    session = get_session()
    leader = resp.create_leader(session, _body(), vocab_in_force().levels, by=_account())
    session.commit()
    return jsonify(resp.leader_dict(leader)), 201


@bp.get("/leaders/<int:leader_id>")
@permission_required(READ)
def leaders_get(leader_id: int):
    single_args(())
    session = get_session()
    check_leader_visible(session, _account(), leader_id)
    leader = resp.get_leader(session, leader_id)
    held = only_visible_assignments(
        session, _account(), resp.assignments(session, leader_ids=[leader.id])
    )
    return jsonify(resp.leader_dict(leader) | {"assignments": [_assignment_json(a) for a in held]})


@bp.patch("/leaders/<int:leader_id>")
@permission_required(WRITE)
def leaders_update(leader_id: int):
    session = get_session()
    check_leader_writable(session, _account(), leader_id)
    leader = resp.update_leader(session, leader_id, _body(), vocab_in_force().levels, by=_account())
    session.commit()
    return jsonify(resp.leader_dict(leader))


@bp.delete("/leaders/<int:leader_id>")
@permission_required(WRITE)
def leaders_delete(leader_id: int):
    session = get_session()
    check_leader_writable(session, _account(), leader_id)
    check_holdings_in_scope(session, _account(), leader_id, "删除")
    resp.delete_leader(session, leader_id, by=_account())
    session.commit()
    return "", 204


@bp.post("/leaders/<int:leader_id>/deactivate")
@permission_required(WRITE)
def leaders_deactivate(leader_id: int):
    data = _body(optional=True)
    session = get_session()
    check_leader_writable(session, _account(), leader_id)
    check_holdings_in_scope(session, _account(), leader_id, "停用")
    ended = resp.deactivate_leader(
        session, leader_id, _instant(data.get("at"), "at"), by=_account()
    )
    session.commit()
    leader = resp.get_leader(session, leader_id)
    return jsonify(resp.leader_dict(leader) | {"ended": [_assignment_json(a) for a in ended]})


@bp.get("/leaders/<int:leader_id>/assignments")
@permission_required(READ)
def leaders_assignments(leader_id: int):
    single_args(("at", "history"))
    session = get_session()
    check_leader_visible(session, _account(), leader_id)
    resp.get_leader(session, leader_id)
    rows = resp.assignments(
        session,
        leader_ids=[leader_id],
        at=moment_arg("at"),
        include_history=_bool_arg("history"),
    )
    rows = only_visible_assignments(session, _account(), rows)
    return jsonify({"assignments": [_assignment_json(a) for a in rows]})


@bp.get("/leaders/<int:leader_id>/features")
@permission_required(READ)
def leaders_features(leader_id: int):
    """The places the leader holds now, as RFC 7946 GeoJSON. `scope=unit` (a unit head):
    the places of every leader of the unit."""
    single_args(("scope", "layer"))
    session = get_session()
    check_leader_visible(session, _account(), leader_id)
    leader = resp.get_leader(session, leader_id)
    scope = request.args.get("scope", "own")
    if scope not in ("own", "unit"):
        raise ApiError(400, "scope 只能为 own 或 unit", field="scope")
    if scope == "unit" and not leader.is_unit_head:
        raise ApiError(400, f"{leader.name} 不是单位负责人，没有本单位视图", field="scope")
    ids = resp.leaders_in_view(session, leader) if scope == "unit" else [leader.id]
    layer = request.args.get("layer")
    held = resp.assignments(session, leader_ids=ids)
    collection = myareas.held_places_geojson(
        session,
        layers(),
        ids,
        resp.now(),
        _layer_name(layer) if layer else None,
        only_places=visible_place_ids(session, _account(), [a.place_id for a in held]),
    )
    response = jsonify(collection)
    response.mimetype = "application/geo+json"
    return response


# ---------------------------------------------------------------------------------------------
# Assignments.


ASSIGNMENT_LIST_PARAMS = ("leader_id", "place_id", "layer", "code", "at", "history")
ASSIGNMENTS_DEFAULT_LIMIT = 1000
ASSIGNMENTS_MAX_LIMIT = 10_000


@bp.get("/assignments")
@permission_required(READ)
def assignments_list():
    args = single_args((*ASSIGNMENT_LIST_PARAMS, "limit", "offset"))
    session = get_session()
    scope = visible_leader_ids(session, _account())
    leader_id = _int_arg("leader_id")
    if leader_id is not None:
        resp.get_leader(session, leader_id)  # unknown: 404, for every account
        check_leader_visible(session, _account(), leader_id)
    place_id, layer = None, None
    if "layer" in args:  # checked even without code: a misspelt layer is a 400
        layer = _layer_name(args["layer"])
    if "place_id" in args or "code" in args:
        place_id = _place_from(args).id
        check_place_visible(session, _account(), place_id)
    limit, offset = parse_paging(args, ASSIGNMENTS_DEFAULT_LIMIT, ASSIGNMENTS_MAX_LIMIT)
    place_where = assignment_place_where(session, _account())
    if layer is not None and place_id is None:  # `layer` alone: that layer's places
        by_layer = Place.layer == layer
        place_where = by_layer if place_where is None else and_(place_where, by_layer)
    filters = {
        "leader_ids": [leader_id] if leader_id is not None else scope,
        "place_id": place_id,
        "at": moment_arg("at"),
        "include_history": _bool_arg("history"),
        "place_where": place_where,
    }
    rows = resp.assignments(session, **filters, limit=limit, offset=offset)
    return jsonify(
        {
            "assignments": [_assignment_json(a) for a in rows],
            "numberMatched": resp.count_assignments(session, **filters),
            "numberReturned": len(rows),
        }
    )


@bp.post("/assignments")
@permission_required(WRITE)
def assignments_create():
    data = _body()
    session = get_session()
    place = _place_from(data)
    check_place_visible(session, _account(), place.id)
    leader_id = resp.as_int(data.get("leader_id"), "leader_id")
    check_leader_writable(session, _account(), leader_id)
    result = resp.assign(
        session,
        leader_id=leader_id,
        place_id=place.id,
        role=data.get("role"),
        roles=assignable_roles(),
        is_primary=resp.as_bool(data.get("is_primary", True), "is_primary"),
        valid_from=_instant(data.get("valid_from"), "valid_from"),
        note=data.get("note"),
        by=_account(),
        replace_primary=resp.as_bool(data.get("replace_primary", False), "replace_primary"),
    )
    session.commit()
    body = _assignment_json(result.assignment)
    body["closed"] = [_assignment_json(a) for a in result.closed]
    return jsonify(body), 201


def _visible_assignment(session, assignment_id: int):
    """The assignment, or 404 worded as for an unknown id when its place or its leader lies
    outside the caller's scope (the answer must not tell it exists, nor whose it is)."""
    assignment = resp.get_assignment(session, assignment_id)
    try:
        check_place_visible(session, _account(), assignment.place_id)
        check_leader_visible(session, _account(), assignment.leader_id)
    except ApiError:
        raise ApiError(
            404, f"没有编号为 {assignment_id} 的包保记录", field="assignment_id"
        ) from None
    return assignment


@bp.get("/assignments/<int:assignment_id>")
@permission_required(READ)
def assignments_get(assignment_id: int):
    single_args(())
    return jsonify(_assignment_json(_visible_assignment(get_session(), assignment_id)))


@bp.post("/assignments/<int:assignment_id>/end")
@permission_required(WRITE)
def assignments_end(assignment_id: int):
    data = _body(optional=True)
    session = get_session()
    _visible_assignment(session, assignment_id)
    assignment = resp.end_assignment(
        session, assignment_id, _instant(data.get("at"), "at"), data.get("note"), by=_account()
    )
    session.commit()
    return jsonify(_assignment_json(assignment))


@bp.post("/assignments/<int:assignment_id>/reassign")
@permission_required(WRITE)
def assignments_reassign(assignment_id: int):
    data = _body()
    session = get_session()
    _visible_assignment(session, assignment_id)
    leader_id = resp.as_int(data.get("leader_id"), "leader_id")
    check_leader_writable(session, _account(), leader_id)
    result = resp.reassign(
        session,
        assignment_id,
        leader_id,
        _instant(data.get("at"), "at"),
        data.get("note"),
        by=_account(),
    )
    session.commit()
    body = _assignment_json(result.assignment)
    body["closed"] = [_assignment_json(a) for a in result.closed]
    return jsonify(body), 201


@bp.get("/responsible")
@permission_required(READ)
def responsible():
    """Who was responsible for a place at an instant: ?place_id= (or layer=&code=) &at=."""
    args = single_args(("place_id", "layer", "code", "at"))
    session = get_session()
    place = _place_from(args)
    check_place_visible(session, _account(), place.id)
    at = moment_arg("at") or resp.now()
    rows = resp.responsible_at(session, place.id, at)
    primary = next((a for a in rows if a.is_primary), None)
    return jsonify(
        {
            "place": resp.place_dict(place, _titles()),
            "at": at.isoformat(),
            "primary": _assignment_json(primary) if primary else None,
            "assignments": [_assignment_json(a) for a in rows],
        }
    )


# ---------------------------------------------------------------------------------------------
# Coverage audit.


COVERAGE_MAX_LIMIT = 10_000


@bp.get("/coverage")
@county_required(READ)
def coverage_audit():
    args = single_args(("min_area_m2", "limit"))
    min_area = args.get("min_area_m2")
    try:
        min_area_m2 = float(min_area) if min_area else coverage.DEFAULT_MIN_AREA_M2
    except ValueError:
        raise ApiError(400, "min_area_m2 应为数字", field="min_area_m2") from None
    if not 0 <= min_area_m2 <= 1e9:
        raise ApiError(400, "min_area_m2 超出范围", field="min_area_m2")
    limit = parse_limit(args.get("limit"), coverage.DEFAULT_FEATURE_LIMIT, COVERAGE_MAX_LIMIT)
    report = coverage.coverage_report(get_session(), layers(), BASE_LAYER, min_area_m2, limit)
    return jsonify(report)


# ---------------------------------------------------------------------------------------------
# Excel roster.


def _xlsx(buffer: io.BytesIO, filename: str, ascii_hint: str) -> Response:
    response = Response(buffer.getvalue(), mimetype=XLSX)
    response.headers["Content-Disposition"] = content_disposition(filename, ascii_hint)
    return response


@bp.get("/roster.xlsx")
@county_required(READ)
def roster_export_xlsx():
    single_args(("unit_id",))
    session = get_session()
    buffer = io.BytesIO()
    unit_id = _int_arg("unit_id")
    if unit_id is not None:
        resp.get_unit(session, unit_id)
    roster_export.export_roster(
        session,
        layers(),
        buffer,
        levels=vocab_in_force().levels,
        timezone=_tz(),
        unit_id=unit_id,
    )
    today = resp.now().astimezone(ZoneInfo(_tz())).date()
    return _xlsx(buffer, f"包保责任情况一览表-{today:%Y%m%d}.xlsx", "roster")


@bp.get("/roster/template.xlsx")
@permission_required(READ)
def roster_template_xlsx():
    single_args(())
    buffer = io.BytesIO()
    roster_template.write_template(
        buffer,
        layers(),
        assignable_roles(),
        vocab_in_force().levels,
    )
    return _xlsx(buffer, "包保清单模板.xlsx", "roster-template")


@bp.post("/roster/import")
@county_required(WRITE)
def roster_import():
    """Multipart upload (`file`, optional `dry_run=1`). 200 with the per-row report when every
    row passed (applied unless dry run); 422 with the report when any row was rejected."""
    dry_run = resp.as_bool(request.form.get("dry_run") or request.args.get("dry_run"), "dry_run")
    report = run_roster_import(roster_upload(), dry_run)
    if not report.ok:
        raise ApiError(422, report.summary(), report.as_dict(), field="file")
    return jsonify(report.as_dict() | {"message": report.summary()})
