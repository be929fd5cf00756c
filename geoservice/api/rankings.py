"""Rankings API (督查考核): /api/rankings, drill-down, trend, charts, 通报 download, scorecards.

Who may read what is decided in geoservice.edge.rankings: accounts with `rankings.read` (the
permission table) read the rankings — the published 通报 figures, county-wide; the issues
behind a number are listed only within the caller's scope (geoservice.accounts.scope); a leader
account may open only its own scorecard (`check_scorecard_access`).
"""

from __future__ import annotations

import io
from typing import Any

import orjson
from flask import Response, current_app, jsonify, request

from geoservice.accounts import scope
from geoservice.accounts.auth import current_account
from geoservice.api import bp
from geoservice.db import get_session
from geoservice.edge.caching import validated
from geoservice.edge.params import content_disposition, parse_limit, single_args
from geoservice.edge.rankings import (
    MAX_DRILL,
    MAX_TREND,
    PERIOD_PARAMS,
    int_arg,
    ranking_error,
    ranking_payload,
    ranking_subjects,
    read_rankings,
    requested_of,
    requested_period,
    scorecard_or_404,
    settings,
    tz,
)
from geoservice.ranking import cards, drilldown, ranking, report, vocabularies
from geoservice.ranking.periods import period_containing
from geoservice.registry import layers

_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def json_response(payload: Any) -> Response:
    """`jsonify(payload)` by orjson: the same JSON (UTF-8, compact, newline-terminated); what
    orjson does not encode natively (dates, decimals, …) goes through Flask's own default."""
    body = orjson.dumps(payload, default=current_app.json.default, option=_ORJSON)
    return current_app.response_class(body + b"\n", mimetype=current_app.json.mimetype)


@bp.get("/rankings")
@read_rankings
@validated(
    ranking_subjects, store=True, fresh_setting="RANKINGS_FRESH_SECONDS", per_audience=False
)  # the whole table for every account that may read rankings
def rankings():
    single_args(("of", *PERIOD_PARAMS))
    of = requested_of()
    period = requested_period()
    # The rows are built, encoded and dropped with the collector paused (ranking.gc_paused),
    # encoded by orjson: the grid's 28,213 rows (17 MB) took Flask's encoder ~300–500 ms of
    # CPU, orjson ~70–85 ms, the same JSON once decoded (docs/rankings.md, Figures).
    with ranking.gc_paused():
        return json_response(ranking_payload(of, period))


@bp.get("/rankings/issues")
@read_rankings
def ranking_issues():
    args = single_args(("of", *PERIOD_PARAMS, "indicator", "key", "limit"))
    of = requested_of()
    period = requested_period()
    indicator = args.get("indicator", "")
    limit = parse_limit(args.get("limit"), 1000, MAX_DRILL)
    try:
        key = drilldown.parse_key(layers(), of, request.args.get("key"))
        found = drilldown.issues_behind(
            get_session(),
            layers(),
            of,
            key,
            indicator,
            period,
            limit,
            tz(),
            visible=scope.issue_sql(current_account(), alias="i"),
        )
    except ranking.RankingError as exc:
        raise ranking_error(exc) from exc
    return jsonify(
        {
            "of": of,
            "key": key,
            "indicator": indicator,
            "indicator_title": ranking.COUNTS[indicator],
            "period": period.as_dict(),
            **found,
            "numberMatched": found["total"],
            "numberReturned": len(found["issues"]),
        }
    )


@bp.get("/rankings/trend")
@read_rankings
@validated(
    ranking_subjects, store=True, fresh_setting="RANKINGS_FRESH_SECONDS", per_audience=False
)  # eight periods of every row: the same for every reader
def ranking_trend():
    single_args(("of", *PERIOD_PARAMS, "periods"))
    of = requested_of()
    period = requested_period()
    count = int_arg("periods", 8, 2, MAX_TREND)
    history = [period.previous(n) for n in range(count - 1, 0, -1)] + [period]
    per_period = vocabularies.ranking_settings_for(get_session(), current_app.config, history)
    with ranking.gc_paused():  # as /api/rankings: the grid's ~30,000 rows × eight periods
        data = ranking.trend(get_session(), layers(), of, history, per_period)
        return json_response({"of": of, **data})


@bp.get("/rankings/charts")
@read_rankings
@validated(
    ranking_subjects, store=True, fresh_setting="RANKINGS_FRESH_SECONDS", per_audience=False
)  # eight weeks and the period's breakdowns: the same for every reader
def ranking_charts():
    single_args((*PERIOD_PARAMS, "weeks"))
    period = requested_period()
    count = int_arg("weeks", 8, 2, MAX_TREND)
    last_week = period_containing("week", period.last_day, tz())
    weeks = [last_week.previous(n) for n in range(count - 1, 0, -1)] + [last_week]
    session, registry = get_session(), layers()
    return jsonify(
        {
            "period": period.as_dict(),
            "weekly": cards.weekly_series(session, registry, weeks),
            "overdue_by_category": cards.breakdown(
                session, registry, "category", period, "overdue_end"
            ),
            "overdue_by_source": cards.breakdown(
                session, registry, "source", period, "overdue_end"
            ),
            "received_by_source": cards.breakdown(session, registry, "source", period, "received"),
        }
    )


@bp.get("/rankings/report.xlsx")
@read_rankings
def ranking_report():
    single_args(PERIOD_PARAMS)
    period = requested_period()
    account = current_account()
    # The 超期问题 sheet lists the caller's issues only, as the drill-down (rankings: county).
    visible = None if scope.for_account(account).everything else scope.issue_sql(account, "i")
    wb = report.workbook(get_session(), layers(), period, settings(period), visible=visible)
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    response = Response(
        buffer.getvalue(),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response.headers["Content-Disposition"] = content_disposition(report.filename(period), "report")
    return response


@bp.get("/leaders/<int:leader_id>/scorecard")
@read_rankings
def leader_scorecard(leader_id: int):
    single_args(PERIOD_PARAMS)
    return jsonify(scorecard_or_404(leader_id))
