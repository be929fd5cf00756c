"""工作台 (the home page, by role and scope) and the issue lists its figures link to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, render_template, request
from psycopg2.errors import QueryCanceled
from sqlalchemy.exc import OperationalError

from geoservice.accounts import scope
from geoservice.accounts.auth import can, current_account
from geoservice.accounts.permissions import ROLE_LABELS
from geoservice.db import get_session, statement_budget
from geoservice.edge.responsibility import whole_county
from geoservice.issues import issues as issue_service
from geoservice.models import Leader, User
from geoservice.notifications import queue
from geoservice.ranking import dashboard
from geoservice.ranking.periods import Period, period_containing
from geoservice.registry import BASE_LAYER, layers
from geoservice.ttlcache import TtlCache
from geoservice.vocab import ISSUE_STATUSES, SEVERITIES
from geoservice.web import bp
from geoservice.web.issues import STATUS_COLORS, _refuse

LIST_PAGE_SIZE = 50
# The figures of the office's panel, in order, and the lists shown as tabs on /issues.
OFFICE_FIGURES = ("open", "overdue", "due_soon", "rework", "relapse", "negative")


def _weeks() -> tuple[datetime, Period]:
    """Now (UTC) and the current week in the deployment's time zone."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    now = datetime.now(UTC)
    return now, period_containing("week", now.astimezone(zone).date(), zone)


def _links(account: User) -> dict[str, bool]:
    """Which pages the account may open (the permission table; whole-county pages)."""
    issues = can("issues.read", "issues")
    return {
        "issues": issues,
        "map": can("layers.read") and issues,
        "report": can("issues.report", "issues"),
        "dispatch": can("issues.dispatch", "issues"),
        "rankings": can("rankings.read"),
        "assignments": can("assignments.read"),
        "coverage": can("assignments.read") and whole_county(account),
        "my": account.leader_id is not None and can("assignments.read"),
    }


@bp.get("/")
def index():
    session = get_session()
    account = current_account()
    registry = layers()
    now, week = _weeks()
    last_week = week.previous()
    # The rules in force when last week started (geoservice.ranking.vocabularies).
    from geoservice.ranking.vocabularies import ranking_settings

    settings = ranking_settings(session, current_app.config, last_week.start)
    bound = scope.for_account(account)
    links = _links(account)
    page: dict[str, Any] = {"links": links, "week": week, "last_week": last_week}

    if links["issues"] and bound.own_reports_of is None and not bound.nothing:
        views = dashboard.issue_views(now, week)
        page["views"] = views
        page["figures"] = dashboard.issue_figures(session, account, views)
        page["office_figures"] = OFFICE_FIGURES
    if links["dispatch"]:
        page["unassigned"] = issue_service.count_unassigned(session, account)
    if bound.own_reports_of is not None:
        page["mine"] = dashboard.own_reports(session, account, week)
    wanted = ("leader", "unit") if links["rankings"] else ()
    if account.leader_id is not None:
        wanted = (*wanted, "leader") if "leader" not in wanted else wanted
    ranked = _rankings(session, registry, last_week, settings, wanted)
    page["settings"] = settings
    if account.leader_id is not None:
        page["leader"] = session.get(Leader, account.leader_id)
        page["own"] = dashboard.leader_figures(
            session, registry, account.leader_id, now, ranked.get("leader", [])
        )
    if links["rankings"]:
        page["bottom"] = dashboard.bottom_rows(registry, ranked)
    if links["coverage"]:
        page["coverage"] = _coverage_headline(session, registry)
    layer_rows = dashboard.layer_rows(session, registry, account)
    overview = dashboard.overview_counts(session, registry, account)
    return render_template(
        "index.html",
        **page,
        layer_rows=layer_rows,
        unassigned_features=sum(r["unassigned"] for r in layer_rows),
        overview=overview,
        scope=scope.describe(session, account),
        tree=_tree(session, registry, account, "figures" in page, now),
        base_title=registry.get(BASE_LAYER).title if BASE_LAYER in registry else "",
        statuses=ISSUE_STATUSES,
        status_colors=STATUS_COLORS,
        now=now,
        role_label=ROLE_LABELS.get(account.role, account.role),
    )


# The coverage counts and last week's rankings are the same for every caller who may see them
# (county-wide), the areas' open and overdue issues for every caller of one scope; each worker
# keeps them for HOME_CACHE_SECONDS (config), like the big screen.
_home_cache = TtlCache()


# The headline is geometry work on the whole base layer: on a very large city it may take
# longer than a home page should wait. Then the page says so (and links the audit) until the
# cache's next turn, instead of failing.
COVERAGE_BUDGET_MS = 10_000


def _coverage_headline(session, registry) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        try:
            with statement_budget(session, COVERAGE_BUDGET_MS):
                found = dashboard.coverage_headline(
                    session, registry, BASE_LAYER, stale_ok=queue.worker_alive(session)
                )
        except OperationalError as exc:
            if not isinstance(exc.orig, QueryCanceled):
                raise
            return {"timed_out": True, "checked_at": datetime.now(UTC)}
        return {**found, "checked_at": found["checked_at"] or datetime.now(UTC)}

    key = ("coverage", current_app.config["DATABASE_URL"])
    return _home_cache.get(key, current_app.config["HOME_CACHE_SECONDS"], compute)


def _tree(session, registry, account, with_issues: bool, now: datetime) -> dict[str, Any]:
    """The areas at the top of the account's scope with their open and overdue issues: one
    geometric count per area over every issue in it (1.4 s for a city's 400 streets), the same
    for every account of that scope."""
    bound = scope.for_account(account)
    key = ("tree", current_app.config["DATABASE_URL"], bound, with_issues)

    def compute() -> dict[str, Any]:
        tree = dashboard.hierarchy_overview(session, registry, account, with_issues, now)
        parent = tree["parent"]  # kept across requests: plain values, not a session's object
        return tree | {"parent": parent and {"id": parent.id, "name": parent.name}}

    return _home_cache.get(key, current_app.config["HOME_CACHE_SECONDS"], compute)


def _rankings(session, registry, period, settings, wanted) -> dict[str, list[dict[str, Any]]]:
    key = ("rankings", current_app.config["DATABASE_URL"], period.start, wanted)
    return _home_cache.get(
        key,
        current_app.config["HOME_CACHE_SECONDS"],
        lambda: dashboard.rankings(session, registry, period, settings, wanted),
    )


MAX_PAGE = 1_000_000  # past the last page the list is simply empty; no offset overflows


@bp.get("/issues")
def issue_list_page():
    """One of the home page's issue lists (未办结, 超期 …), within the caller's scope."""
    account = current_account()
    if not can("issues.read", "issues"):
        _refuse(403, "无权查看", "当前账号无权查看问题。")
    session = get_session()
    now, week = _weeks()
    views = dashboard.issue_views(now, week, account)
    name = request.args.get("view", "open")
    if name not in views:
        _refuse(404, "未找到", f"没有名为 {name!r} 的问题清单。")
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    total, rows = dashboard.issue_list(
        session, account, views[name], LIST_PAGE_SIZE, (page - 1) * LIST_PAGE_SIZE
    )
    return render_template(
        "issue_list.html",
        views=views,
        view=views[name],
        counts=dashboard.issue_figures(session, account, views),
        total=total,
        rows=rows,
        page=page,
        pages=max((total + LIST_PAGE_SIZE - 1) // LIST_PAGE_SIZE, 1),
        now=now,
        statuses=ISSUE_STATUSES,
        status_colors=STATUS_COLORS,
        severities=SEVERITIES,
        links=_links(account),
    )
