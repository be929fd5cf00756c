"""The rankings page (督查考核排名) and the scorecard fragment for 我的包保."""

from __future__ import annotations

from flask import render_template, request

from geoservice.edge.rankings import (
    ranking_payload,
    read_rankings,
    requested_of,
    requested_period,
    scorecard_or_404,
)
from geoservice.ranking import ranking
from geoservice.ranking.periods import PERIOD_KINDS
from geoservice.registry import layers
from geoservice.web import bp


@bp.get("/rankings")
@read_rankings
def rankings_page():
    of = requested_of(default="leader")
    period = requested_period()
    available = ranking.groupings(layers())
    return render_template(
        "rankings/page.html",
        initial=ranking_payload(of, period),
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
