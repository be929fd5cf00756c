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
from geoservice.issues import routing_rules
from geoservice.models import RoutingRule
from geoservice.registry import layers


@bp.get("/routing-rules")
@permission_required("assignments.read")
def routing_rule_list():
    single_args(("at",))
    return jsonify({"items": routing_rules.list_rules(get_session(), moment_arg("at"))})


@bp.post("/routing-rules")
@permission_required("assignments.write")
def routing_rule_create():
    session = get_session()
    rule = routing_rules.create_rule(
        session,
        layers(),
        list(issue_settings_in_force().categories),
        current_account(),
        _json_body(),
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
    return jsonify({"items": routing_rules.list_area_assignments(get_session())})


@bp.post("/area-assignments")
@permission_required("assignments.write")
def area_assignment_create():
    session = get_session()
    row = routing_rules.assign_area(session, _json_body())
    body = routing_rules.area_assignment_json(row)
    audit.record(session, current_account(), "area_assignment.create", "area_assignment",
                 row.id, after=body)  # fmt: skip
    session.commit()
    return jsonify(body), 201
