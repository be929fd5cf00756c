"""City rules as data over the API (effective-dated, audited).

GET  /api/rule-settings?at=   every rule: the value in force (at `at`, default now) and history
POST /api/rule-settings       {"key", "value", "valid_from", "note"}: a new value (rules.admin);
                              lists (issue_sources, issue_categories, leader_levels,
                              assignment_roles) are given whole
POST /api/rule-settings/categories  {"name", "deadline_hours", "min_photos", "negative_list",
                              "valid_from", "note"}: add or change a category in one change
GET  /api/vocabularies?at=    the vocabularies in force (any account): categories with their
                              rules, sources, leader levels, 包保 roles, and the retired values
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, jsonify

from geoservice.accounts import audit
from geoservice.accounts.auth import current_account, permission_required
from geoservice.api import bp
from geoservice.api.issues import _json_body
from geoservice.db import get_session
from geoservice.edge.access import signed_in
from geoservice.edge.params import moment_arg, single_args
from geoservice.edge.rankings import read_rankings
from geoservice.errors import ApiError
from geoservice.input_values import text_value
from geoservice.ranking import vocabularies


def _instant(raw, name: str, status: int) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ApiError(status, f"{name} 应为 ISO 8601 日期时间", field=name) from None
    if value.tzinfo is None:
        raise ApiError(status, f"{name} 需带时区，如 +08:00", field=name)
    return value


@bp.get("/rule-settings")
@read_rankings
def rule_settings():
    single_args(("at",))
    at = moment_arg("at") or datetime.now(UTC)
    return jsonify(vocabularies.overview(get_session(), current_app.config, at))


@bp.post("/rule-settings")
@permission_required("rules.admin")
def rule_setting_create():
    fields = _json_body()
    session = get_session()
    row = vocabularies.set_rule(
        session,
        current_account(),
        text_value(fields.get("key"), "key", "设置项"),
        fields.get("value"),
        _instant(fields.get("valid_from"), "valid_from", 422),
        text_value(fields.get("note"), "note", "备注"),
        config=current_app.config,
    )
    body = vocabularies.rule_json(row)
    audit.record(session, current_account(), "rule_setting.create", "rule_setting", row.id,
                 after=body)  # fmt: skip
    session.commit()
    return jsonify(body), 201


@bp.post("/rule-settings/categories")
@permission_required("rules.admin")
def rule_setting_category():
    fields = dict(_json_body())
    if fields.get("valid_from") is not None and not isinstance(fields["valid_from"], str):
        raise ApiError(422, "valid_from 应为 ISO 8601 日期时间", field="valid_from")
    if "valid_from" in fields and fields["valid_from"] is None:
        raise ApiError(422, "valid_from 应为 ISO 8601 日期时间（不填则为现在）", field="valid_from")
    fields["valid_from"] = _instant(fields.get("valid_from"), "valid_from", 422)
    session = get_session()
    rows = vocabularies.set_category(session, current_account(), current_app.config, fields)
    body = [vocabularies.rule_json(row) for row in rows]
    for row, after in zip(rows, body, strict=True):
        audit.record(session, current_account(), "rule_setting.create", "rule_setting", row.id,
                     after=after)  # fmt: skip
    session.commit()
    return jsonify({"items": body}), 201


@bp.get("/vocabularies")
@signed_in
def vocabulary_list():
    single_args(("at",))
    at = moment_arg("at") or datetime.now(UTC)
    return jsonify(vocabularies.vocabulary_listing(get_session(), current_app.config, at))
