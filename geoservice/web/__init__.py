"""HTML pages (Chinese UI): blueprint `bp`."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from geoservice.db import get_session
from geoservice.models import AdminArea, Issue, Leader, Place
from geoservice.registry import layers

bp = Blueprint("web", __name__, template_folder="templates")


@bp.get("/")
def index():
    session = get_session()
    counts = dict(session.execute(select(Place.layer, func.count()).group_by(Place.layer)).all())
    overview = {
        "areas": session.scalar(select(func.count()).select_from(AdminArea)),
        "leaders": session.scalar(select(func.count()).select_from(Leader)),
        "issues": session.scalar(select(func.count()).select_from(Issue)),
    }
    return render_template(
        "index.html",
        layer_counts=[(spec, counts.get(spec.name, 0)) for spec in layers()],
        overview=overview,
    )


from geoservice.web import issues  # noqa: E402, F401  (registers the issue pages on bp)
