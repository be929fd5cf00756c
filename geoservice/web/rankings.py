"""The rankings page (督查考核排名) and the scorecard fragment for 我的包保."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import render_template, request

from geoservice import httpcache
from geoservice.db import get_session
from geoservice.edge.rankings import (
    ranking_payload,
    ranking_subjects,
    read_rankings,
    requested_of,
    requested_period,
    scorecard_or_404,
)
from geoservice.ranking import ranking
from geoservice.ranking.periods import PERIOD_KINDS, Period
from geoservice.registry import layers
from geoservice.web import bp

# The table shows TABLE_PAGE_ROWS rows a page. A ranking longer than EMBEDDED_ROWS (the grids:
# ~30,000 rows, 17 MB of JSON) is embedded by its first page only; the page fetches the whole
# table from /api/rankings (a shared, stored answer) for sorting, search and the other pages.
TABLE_PAGE_ROWS = 100
EMBEDDED_ROWS = 1000


def embedded_payload(of: str, period: Period) -> dict[str, Any]:
    """`ranking_payload`, its rows cut to the first table page when there are many. A closed
    period's is kept per process while what it is computed from is unchanged (the subjects of
    the stored `/api/rankings` answers): a 9:00 rush of the page computes it once per process,
    not per view (0.7 s by the pipeline at city scale when the week's snapshot is stale)."""

    def compute(_generation: Any) -> dict[str, Any]:
        payload = ranking_payload(of, period)
        rows = payload["rows"]
        payload["rows_total"] = len(rows)
        payload["partial"] = len(rows) > EMBEDDED_ROWS
        if payload["partial"]:
            payload["rows"] = rows[:TABLE_PAGE_ROWS]
        return payload

    if period.end > datetime.now(UTC):  # an open period's overdue figures move with the clock
        return compute(None)
    session = get_session()
    key = (repr(session.get_bind().engine.url), of, period)
    return _KEPT.get(session, key, ranking_subjects(), compute)


_KEPT = httpcache.KeptByGeneration(size=32)


@bp.get("/rankings")
@read_rankings
def rankings_page():
    of = requested_of(default="leader")
    period = requested_period()
    available = ranking.groupings(layers())
    return render_template(
        "rankings/page.html",
        initial=embedded_payload(of, period),
        page_rows=TABLE_PAGE_ROWS,
        choices=[(name, g.title) for name, g in available.items() if g.ranked],
        kinds={k: v for k, v in PERIOD_KINDS.items() if k != "custom"},
        period=period,
        of=of,
        query=request.args.to_dict(),
    )


@bp.get("/rankings/scorecard/<int:leader_id>")
@read_rankings
def scorecard_fragment(leader_id: int):
    """HTML fragment of a leader's scorecard; 我的包保 includes it (or the partial template
    rankings/_scorecard.html with a `card` from `cards.scorecard`)."""
    return render_template("rankings/_scorecard.html", card=scorecard_or_404(leader_id))
