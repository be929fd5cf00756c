"""Pages of the published 通报: the list (publish a closed week), and one 通报 with its
recomputation check ("重算结果不同" and the corrections that cause it)."""

from __future__ import annotations

from flask import render_template

from geoservice.accounts.auth import can
from geoservice.db import get_session
from geoservice.edge.rankings import read_rankings
from geoservice.errors import ApiError
from geoservice.ranking import dashboard, publications, ranking
from geoservice.registry import layers
from geoservice.service_errors import NotFound
from geoservice.web import bp

FIELD_TITLES = {
    **ranking.COUNTS,
    **ranking.RATES,
    **ranking.HOURS,
    "score": "综合得分",
    "rank": "排名",
    "ranked": "参与排名",
    "bottom": "后N名",
    "below_threshold": "低于达标线",
}


@bp.get("/rankings/publications")
@read_rankings
def publications_page():
    session = get_session()
    return render_template(
        "rankings/publications.html",
        listing=publications.listing(session),
        may_publish=can("rankings.publish"),
    )


@bp.get("/rankings/publications/<int:publication_id>")
@read_rankings
def publication_page(publication_id: int):
    session = get_session()
    try:
        pub = publications.get(session, publication_id)
    except NotFound as exc:
        raise ApiError(404, str(exc), field="id") from exc
    return render_template(
        "rankings/publication.html",
        pub=publications.summary(session, pub),
        figures=pub.figures,
        check=publications.check(session, layers(), pub),
        titles=FIELD_TITLES,
        groupings={name: g.title for name, g in ranking.groupings(layers()).items()},
        table_rows=PUBLISHED_TABLE_ROWS,
        listed=dashboard.BOTTOM_LISTED,  # as the home page's bottom lists
    )


# Rows of each published ranking shown on the page (the workbook holds them all).
PUBLISHED_TABLE_ROWS = 200
