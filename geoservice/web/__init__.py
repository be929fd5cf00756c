"""HTML pages (Chinese UI): blueprint `bp`."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from geoservice import scope
from geoservice.auth import current_account
from geoservice.db import get_session
from geoservice.models import AdminArea, Issue, Leader
from geoservice.registry import layers

bp = Blueprint("web", __name__, template_folder="templates")


@bp.get("/")
def index():
    session = get_session()
    account = current_account()
    layer_counts = []
    for spec in layers():
        table = spec.model.__table__
        count = session.scalar(
            select(func.count())
            .select_from(table)
            .where(scope.place_filter(account, table.c.geom, table.c.id))
        )
        layer_counts.append((spec, count))
    overview = {
        "areas": session.scalar(
            select(func.count())
            .select_from(AdminArea)
            .where(scope.area_filter(account, AdminArea.id))
        ),
        "leaders": session.scalar(
            select(func.count())
            .select_from(Leader)
            .where(scope.leader_filter(account, layers(), Leader.id))
        ),
        "issues": session.scalar(
            select(func.count()).select_from(Issue).where(scope.issue_filter(account))
        ),
    }
    return render_template(
        "index.html",
        layer_counts=layer_counts,
        overview=overview,
        scope=scope.describe(session, account),
    )


from geoservice.web import (  # noqa: E402, F401  (register pages)
    issues,
    maps,
    rankings,
    responsibility,
)
