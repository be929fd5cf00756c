"""条块 routing rules and area leaders over the API (effective-dated, audited).

GET  /api/area-assignments              community / street leaders (fallback chain)
POST /api/area-assignments              {"area_id", "leader_id", "role", "valid_from"}

GET  /api/routing-rules                 all rules (`at=`: only those in force then)
POST /api/routing-rules                 {"category", "unit_id", "role", "area_id", "layer",
                                         "co_responsible", "valid_from", "valid_to", "note"}
POST /api/routing-rules/{id}/end        {"valid_to": …} (default now): stops the rule
"""

from __future__ import annotations

from flask import jsonify, request

from geoservice.accounts import audit
from geoservice.accounts.auth import current_account, permission_required
from geoservice.api import bp
from geoservice.api.issues import _json_body
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.params import moment_arg, single_args
from geoservice.edge.responsibility import leader_writable, visible_area_ids
from geoservice.errors import ApiError
from geoservice.issues import routing_rules
from geoservice.models import RoutingRule
from geoservice.registry import layers

# A street's planner keeps the rules and area leaders of its own street and communities; the
# county-wide rules (no area) are the county's (docs/security.md). Another area's rule or area
# answers like an unknown one.


def _rule_in_scope(area_id: int | None, areas: set[int] | None) -> bool:
    return areas is None or (area_id is not None and area_id in areas)


def _check_area(fields: dict, areas: set[int] | None) -> None:
    area_id = fields.get("area_id")
    if areas is None:
        return
    if area_id is None:
        raise ApiError(
            403, "全县范围的规则由全县账号设置；请填写本辖区的社区或街道", field="area_id"
        )
    if area_id not in areas:
        raise ApiError(422, "area_id 应为已有社区或街道的编号", field="area_id")


@bp.get("/routing-rules")
@permission_required("assignments.read")
def routing_rule_list():
    single_args(("at",))
    session = get_session()
    areas = visible_area_ids(session, current_account())
    rules = routing_rules.list_rules(session, moment_arg("at"))
    # The county-wide rules apply inside every area: shown to all, changed by the county.
    shown = [r for r in rules if r["area_id"] is None or _rule_in_scope(r["area_id"], areas)]
    return jsonify({"items": shown})


@bp.post("/routing-rules")
@permission_required("assignments.write")
def routing_rule_create():
    session = get_session()
    fields = _json_body()
    _check_area(fields, visible_area_ids(session, current_account()))
    rule = routing_rules.create_rule(
        session, layers(), list(issue_settings_in_force().categories), current_account(), fields
    )
    body = routing_rules.rule_json(rule)
    audit.record(session, current_account(), "routing_rule.create", "routing_rule", rule.id,
                 after=body)  # fmt: skip
    session.commit()
    return jsonify(body), 201


@bp.post("/routing-rules/<int:rule_id>/end")
@permission_required("assignments.write")
def routing_rule_end(rule_id: int):
    session = get_session()
    # The body is optional (valid_to defaults to now): none at all is an empty object.
    fields = _json_body() if request.content_length or request.mimetype else {}
    existing = session.get(RoutingRule, rule_id)
    areas = visible_area_ids(session, current_account())
    if existing is not None and not _rule_in_scope(existing.area_id, areas):
        raise ApiError(404, f"没有编号为 {rule_id} 的条块规则", field="id")
    before = routing_rules.rule_json(existing) if existing else None
    rule = routing_rules.end_rule(
        session, rule_id, routing_rules._instant(fields.get("valid_to"), "valid_to")
    )
    body = routing_rules.rule_json(rule)
    audit.record(session, current_account(), "routing_rule.end", "routing_rule", rule.id,
                 before=before, after=body)  # fmt: skip
    session.commit()
    return jsonify(body)


@bp.get("/area-assignments")
@permission_required("assignments.read")
def area_assignment_list():
    single_args(())
    session = get_session()
    areas = visible_area_ids(session, current_account())
    rows = routing_rules.list_area_assignments(session)
    return jsonify({"items": [r for r in rows if _rule_in_scope(r["area_id"], areas)]})


@bp.post("/area-assignments")
@permission_required("assignments.write")
def area_assignment_create():
    session = get_session()
    fields = _json_body()
    account = current_account()
    _check_area(fields, visible_area_ids(session, account))
    leader_id = fields.get("leader_id")
    if isinstance(leader_id, int) and not leader_writable(session, account, leader_id):
        raise ApiError(422, "leader_id 应为在岗包保领导的编号", field="leader_id")
    row = routing_rules.assign_area(session, fields)
    body = routing_rules.area_assignment_json(row)
    audit.record(session, current_account(), "area_assignment.create", "area_assignment",
                 row.id, after=body)  # fmt: skip
    session.commit()
    return jsonify(body), 201
