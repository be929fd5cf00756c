"""The rules page (/admin/rules): rules as data (weights, the line, 后N名, category time limits)
with their history, the vocabularies (categories, sources, leader levels, 包保 roles), and the
条块 routing rules. Changes post JSON to the API
(/api/rule-settings, /api/routing-rules), which checks, audits and dates them."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, render_template
from sqlalchemy import select

from geoservice.accounts.auth import can, current_account
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.rankings import read_rankings
from geoservice.edge.responsibility import visible_area_ids
from geoservice.issues import routing_rules
from geoservice.models import AdminArea, Unit
from geoservice.ranking import vocabularies
from geoservice.registry import layers
from geoservice.web import bp


@bp.get("/admin/rules")
@read_rankings
def rules_page():
    session = get_session()
    now = datetime.now(UTC)
    units = dict(session.execute(select(Unit.id, Unit.name).order_by(Unit.name)).all())
    # The routing rules and areas of the caller's area (and the county-wide rules), as the
    # API lists them (geoservice.api.routing).
    seen = visible_area_ids(session, current_account())
    areas = {
        area_id: name
        for area_id, name in session.execute(
            select(AdminArea.id, AdminArea.name)
            .where(AdminArea.level.in_(("community", "street")))
            .order_by(AdminArea.code)
        ).all()
        if seen is None or area_id in seen
    }
    routing = [
        rule
        for rule in routing_rules.list_rules(session)
        if rule["area_id"] is None or seen is None or rule["area_id"] in seen
    ]
    return render_template(
        "rules/admin.html",
        overview=vocabularies.overview(session, current_app.config, now),
        vocab=vocabularies.vocabulary_listing(session, current_app.config, now),
        routing=routing,
        units=units,
        areas=areas,
        layers=[(spec.name, spec.title) for spec in layers()],
        categories=list(issue_settings_in_force().categories),
        may_edit_rules=can("rules.admin"),
        may_edit_routing=can("assignments.write"),
    )
