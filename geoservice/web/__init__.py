"""HTML pages (Chinese UI): blueprint `bp`."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import bindparam, func, select, text

from geoservice import scope
from geoservice.attribution import BASE_LAYER
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
        tree=hierarchy_overview(session, layers(), account),
        base_title=layers().get(BASE_LAYER).title if BASE_LAYER in layers() else "",
    )


def hierarchy_overview(session, registry, account) -> list[dict]:
    """The top-level admin areas in the account's scope, with the number of areas directly
    below and of base-layer features (grids) anywhere below."""
    from geoservice.areas import LEVEL_TITLES, RANK
    from geoservice.collections import area_links

    levels = session.execute(text("SELECT DISTINCT level FROM admin_areas")).scalars().all()
    if not levels:
        return []
    top = max(RANK[level] for level in levels)
    count = "0"
    if BASE_LAYER in registry:
        base = registry.get(BASE_LAYER)
        link = next(iter(area_links(base)), None)
        if link is not None:
            count = (
                f"(SELECT count(*) FROM {base.table} g JOIN d ON d.id = g.{link.column}"
                " WHERE d.top = a.id)"
            )
    rows = session.execute(
        text(f"""
WITH RECURSIVE d(top, id) AS (
  SELECT id, id FROM admin_areas WHERE level IN :levels
  UNION ALL SELECT d.top, c.id FROM admin_areas c JOIN d ON c.parent_id = d.id)
SELECT a.id, a.level, a.code, a.name,
  (SELECT count(*) FROM admin_areas c WHERE c.parent_id = a.id) AS children,
  {count} AS features
FROM admin_areas a WHERE a.level IN :levels ORDER BY a.code""").bindparams(
            bindparam("levels", expanding=True)
        ),
        {"levels": [lv for lv in levels if RANK[lv] == top]},
    ).mappings()
    visible = set(
        session.scalars(select(AdminArea.id).where(scope.area_filter(account, AdminArea.id)))
    )
    return [dict(r) | {"level_title": LEVEL_TITLES[r["level"]]} for r in rows if r["id"] in visible]


from geoservice.web import (  # noqa: E402, F401  (register pages)
    issues,
    maps,
    rankings,
    responsibility,
)
