"""Rankings as the edges read them (API and the rankings pages): who may read what, the
requested period and grouping, the payloads. Who may read what is decided here and only here:
accounts with `rankings.read` read the rankings — the published 通报 figures, county-wide;
the issues behind a number are listed only within the caller's scope
(geoservice.accounts.scope); a leader account may open only its own scorecard
(`check_scorecard_access`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, request

from geoservice import httpcache
from geoservice.accounts import scope
from geoservice.accounts.auth import current_account, permission_required
from geoservice.db import get_session
from geoservice.errors import ApiError
from geoservice.models import User
from geoservice.ranking import cards, patrol, ranking, report, vocabularies
from geoservice.ranking.periods import Period, PeriodError, parse_period
from geoservice.registry import layers

# Roles that may open any leader's scorecard; a leader account opens only its own.
SCORECARD_READERS: tuple[str, ...] = ("planner", "viewer")

read_rankings = permission_required("rankings.read")

MAX_DRILL = 5000
MAX_TREND = 26
PERIOD_PARAMS = ("period", "from", "week", "to")  # `week`: older name of `from`


def check_scorecard_access(account: User | None, leader_id: int) -> None:
    """403 unless the account may see leader `leader_id`'s scorecard."""
    if account is None:
        raise ApiError(401, "请先登录或提供 API 令牌（Authorization: Bearer …）")
    if account.role == "admin" or account.role in SCORECARD_READERS:
        return
    if account.role == "leader" and account.leader_id == leader_id:
        return
    raise ApiError(403, "只能查看本人的包保考核情况", {"leader_id": leader_id})


def tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def settings(period: Period | None = None) -> ranking.Settings:
    """The scoring settings of `period`: those in force at its start
    (geoservice.ranking.vocabularies), else the configuration's."""
    if period is None:
        return ranking.Settings.from_config(current_app.config)
    return vocabularies.ranking_settings(get_session(), current_app.config, period.start)


def requested_period() -> Period:
    """`period`, `from`, `to` from the query string → a Period, or 400 naming the field."""
    zone = tz()
    try:
        return parse_period(
            request.args.get("period"),
            request.args.get("from") or request.args.get("week"),
            request.args.get("to"),
            zone,
            datetime.now(zone).date(),
        )
    except PeriodError as exc:
        raise ApiError(400, exc.message, field=exc.field) from exc


def ranking_subjects() -> tuple:
    """What a ranking answer is computed from: for a closed period (the default, the last
    complete week) the rows dated before its end and the other tables — its figures are a
    function of the events up to its end (docs/rankings.md), so reports after it leave the
    answer current; else every table."""
    try:
        period = requested_period()
    except ApiError:
        return (httpcache.EVERYTHING,)  # the view answers the 400
    if period.end > datetime.now(UTC):
        return (httpcache.EVERYTHING,)
    return httpcache.written_before(period.end)


def requested_of(default: str | None = None) -> str:
    of = request.args.get("of", default)
    if not of:
        raise ApiError(400, "缺少参数 of（排名对象）", field="of")
    available = ranking.groupings(layers())
    if of not in available:
        raise ApiError(400, f"未知的排名对象 {of!r}", {"choices": list(available)}, field="of")
    return of


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"参数 {name} 应为整数", field=name) from exc
    if not low <= value <= high:
        raise ApiError(400, f"参数 {name} 应在 {low}–{high} 之间", field=name)
    return value


def ranking_error(exc: ranking.RankingError) -> ApiError:
    return ApiError(400, exc.message, field=exc.field)


def indicator_titles() -> dict[str, str]:
    return {
        **ranking.COUNTS,
        **ranking.RATES,
        **ranking.HOURS,
        "score": "综合得分",
        **patrol.FIELDS,
    }


def ranking_payload(of: str, period: Period) -> dict[str, Any]:
    cfg = settings(period)
    g = ranking.groupings(layers())[of]
    if g.name == "all":  # the city-wide figures: one row, zeros when nothing happened
        rows = [ranking.totals(get_session(), layers(), period, cfg)]
    else:
        rows = ranking.ranking(get_session(), layers(), of, period, cfg)
    if of in patrol.GROUPINGS or of == "all":  # 巡查到位率 beside the other indicators
        rows = patrol.merge(get_session(), layers(), of, period, rows, cfg)
    return {
        "of": of,
        "title": g.title,
        "ranked": g.ranked,
        "period": period.as_dict(),
        "settings": {
            "weights": dict(cfg.weights),
            "threshold": cfg.threshold,
            "bottom_n": cfg.bottom_n,
            "formula": report.score_formula(cfg),
        },
        "indicators": indicator_titles(),
        "drillable": list(ranking.DRILLABLE),
        "rows": rows,
    }


def scorecard_or_404(leader_id: int) -> dict[str, Any]:
    check_scorecard_access(current_account(), leader_id)
    period = requested_period()
    # The figures are the county-wide 通报's; the issues behind them only within the scope.
    account = current_account()
    card = cards.scorecard(
        get_session(),
        layers(),
        leader_id,
        period,
        settings(period),
        visible=scope.issue_sql(account, alias="i"),
    )
    if card is None:
        raise ApiError(404, f"没有编号为 {leader_id} 的包保领导", field="leader_id")
    return card
