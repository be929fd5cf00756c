"""City rules as data over the API (effective-dated, audited).

GET  /api/rule-settings?at=   every rule: the value in force (at `at`, default now) and history
POST /api/rule-settings       {"key", "value", "valid_from", "note"}: a new value (rules.admin)
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, jsonify, request

from geoservice.accounts import audit
from geoservice.accounts.auth import current_account, permission_required
from geoservice.api import bp
from geoservice.api.issues import _json_body
from geoservice.db import get_session
from geoservice.edge.params import single_args
from geoservice.edge.rankings import read_rankings
from geoservice.errors import ApiError
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
    at = _instant(request.args.get("at"), "at", 400) or datetime.now(UTC)
    return jsonify(vocabularies.overview(get_session(), current_app.config, at))


@bp.post("/rule-settings")
@permission_required("rules.admin")
def rule_setting_create():
    fields = _json_body()
    session = get_session()
    row = vocabularies.set_rule(
        session,
        current_account(),
        str(fields.get("key") or ""),
        fields.get("value"),
        _instant(fields.get("valid_from"), "valid_from", 422),
        str(fields.get("note") or ""),
    )
    body = vocabularies.rule_json(row)
    audit.record(session, current_account(), "rule_setting.create", "rule_setting", row.id,
                 after=body)  # fmt: skip
    session.commit()
    return jsonify(body), 201
