"""工作台 (the home page): today's figures for the signed-in account, within its scope.

Plain functions over a session. Every issue figure is a named *view* (a condition on the
issues table); the home page counts them and the issue list (/issues?view=…) lists them with
the same condition, so a number on the home page is exactly the length of its list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, or_, select, text
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.areas import hierarchy_audit
from geoservice.areas.levels import LEVEL_TITLES, RANK
from geoservice.issues.workflow import RECTIFYING_STATUSES, overdue_clause
from geoservice.models import AdminArea, Assignment, Issue, Leader, Place, User
from geoservice.ranking import ranking
from geoservice.ranking.periods import Period
from geoservice.registry import BASE_LAYER, LayerRegistry
from geoservice.responsibility import coverage, myareas
from geoservice.vocab import OPEN_STATUSES

DUE_SOON = timedelta(hours=24)
RECENT_LIMIT = 8


@dataclass(frozen=True)
class IssueView:
    name: str
    title: str
    condition: ColumnElement[bool]
    newest_first: bool = True  # else: most urgent deadline first


def issue_views(now: datetime, week: Period, account: User | None = None) -> dict[str, IssueView]:
    """The named issue lists: `week` is the current week (本周), its predecessor is 上周."""
    is_open = Issue.status.in_(OPEN_STATUSES)
    last = week.previous()
    views = [
        IssueView("open", "未办结", is_open),
        IssueView("overdue", "超期未办结", overdue_clause(now), newest_first=False),
        IssueView(
            "due_soon",
            "24 小时内到期",
            and_(
                Issue.status.in_(RECTIFYING_STATUSES),
                Issue.deadline >= now,
                Issue.deadline < now + DUE_SOON,
            ),
            newest_first=False,
        ),
        IssueView("rework", "返工（整改被退回）", and_(is_open, Issue.rework_count > 0)),
        IssueView("relapse", "反弹（销号后复发）", and_(is_open, Issue.relapse_of_id.is_not(None))),
        IssueView("negative", "负面清单", and_(is_open, Issue.negative_list)),
        IssueView("week", f"本周上报（{week.title}）", Issue.reported_at >= week.start),
        IssueView(
            "last_week_so_far",
            "上周同期上报",
            and_(
                Issue.reported_at >= last.start,
                Issue.reported_at < last.start + (now - week.start),
            ),
        ),
        IssueView(
            "last_week",
            f"上周上报（{last.title}）",
            and_(Issue.reported_at >= last.start, Issue.reported_at < last.end),
        ),
    ]
    if account is not None:
        views.append(IssueView("mine", "我上报的问题", Issue.reported_by_id == account.id))
    return {v.name: v for v in views}


def issue_figures(session: Session, account: User, views: dict[str, IssueView]) -> dict[str, int]:
    """Each view's count among the issues the account sees, in one statement over the issues
    in at least one view (open, recent, or one's own: each disjunct has an index, so a city's
    closed past is not read)."""
    columns = [func.count().filter(v.condition).label(name) for name, v in views.items()]
    in_a_view = or_(*(v.condition for v in views.values()))
    row = session.execute(select(*columns).where(scope.issue_filter(account), in_a_view)).one()
    return dict(row._mapping)


def issue_list(
    session: Session, account: User, view: IssueView, limit: int, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """(total, rows) of one view within the account's scope, a page of `limit` rows."""
    where = and_(scope.issue_filter(account), view.condition)
    total = session.scalar(select(func.count()).select_from(Issue).where(where)) or 0
    order = (
        (Issue.reported_at.desc(), Issue.id.desc())
        if view.newest_first
        else (Issue.deadline.asc().nulls_last(), Issue.id)
    )
    rows = session.execute(
        select(Issue, Leader.name.label("leader"), Place.name.label("place"))
        .outerjoin(Leader, Leader.id == Issue.leader_id)
        .outerjoin(Place, Place.id == Issue.primary_place_id)
        .where(where)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    ).all()
    return total, [{"issue": r.Issue, "leader": r.leader, "place": r.place} for r in rows]


def _held() -> Any:
    """The coverage audit's rule: an active assignment held by an active leader."""
    return (
        select(1)
        .select_from(Assignment)
        .join(Leader, Leader.id == Assignment.leader_id)
        .where(Assignment.valid_to.is_(None), Leader.active)
    )


def layer_rows(session: Session, registry: LayerRegistry, account: User) -> list[dict[str, Any]]:
    """Per layer: features the account sees, and how many of them no (active) leader holds."""
    out = []
    for spec in registry:
        table = spec.model.__table__
        held = exists(_held().where(Assignment.place_id == table.c.id))
        row = session.execute(
            select(func.count(), func.count().filter(~held))
            .select_from(table)
            .where(scope.layer_filter(account, spec))
        ).one()
        out.append({"spec": spec, "count": row[0], "unassigned": row[1]})
    return out


def coverage_headline(
    session: Session, registry: LayerRegistry, base_layer: str | None, stale_ok: bool = True
) -> dict[str, Any]:
    """The whole-deployment coverage findings the home page shows (counts, no geometries
    kept): grid gaps and overlaps and the hierarchy audit's findings — from the coverage
    page's own report (the same arguments: the counts agree with it; computed once while the
    layers, areas and assignments are unchanged). After a change, the last audit the worker
    processes stored (`current` False, `checked_at` its time) while the notifications worker
    computes the new one (`stale_ok`: one is running): a city's audit takes 10–13 s, longer
    than a home page should wait."""
    stored = coverage.last_report(session, registry, base_layer) if stale_ok else None
    report = stored or coverage.coverage_report(session, registry, base_layer)
    gaps, overlaps, tree = report["gaps"], report["overlaps"], report["hierarchy"]
    checked_at = report.get("checked_at")
    return {
        "current": report.get("current", True),
        "checked_at": checked_at and datetime.fromisoformat(checked_at),
        "gaps": gaps["count"],
        "gap_area_m2": gaps["area_m2"],
        "overlaps": overlaps["count"],
        "overlap_area_m2": overlaps["area_m2"],
        "hierarchy": hierarchy_audit.finding_count(tree),
        "has_areas": bool(tree["levels"]),
    }


def rankings(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    settings: ranking.Settings,
    groupings: tuple[str, ...] = ("leader", "unit"),
) -> dict[str, list[dict[str, Any]]]:
    """The period's ranking rows per grouping (those the registry offers)."""
    available = ranking.groupings(registry)
    return {
        of: ranking.ranking(session, registry, of, period, settings)
        for of in groupings
        if of in available
    }


def bottom_rows(
    registry: LayerRegistry, ranked_rows: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """后三名 (bottom N) per grouping, best of them first, with how many rows were ranked and
    how many fell under the threshold. Ties put many rows in the bottom N (a city's leaders:
    hundreds at 0 分): BOTTOM_LISTED are named, `more` counts the rest."""
    available = ranking.groupings(registry)
    out = []
    for of, rows in ranked_rows.items():
        ranked = [r for r in rows if r["ranked"]]
        bottom = sorted((r for r in ranked if r["bottom"]), key=lambda r: r["rank"])
        out.append(
            {
                "of": of,
                "title": available[of].title,
                "ranked": len(ranked),
                "below_threshold": sum(1 for r in ranked if r["below_threshold"]),
                "bottom": bottom[:BOTTOM_LISTED],
                "more": max(0, len(bottom) - BOTTOM_LISTED),
            }
        )
    return out


BOTTOM_LISTED = 10


def leader_figures(
    session: Session,
    registry: LayerRegistry,
    leader_id: int,
    now: datetime,
    leader_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """A leader's own figures (as on 我的包保): places held, their open and overdue issues,
    the issues waiting for the leader's rectification, and the leader's row among
    `leader_rows` (a period's `ranking.ranking(…, "leader", …)`)."""
    places = myareas.held_places(session, registry, [leader_id], now)
    todo_where = and_(Issue.leader_id == leader_id, Issue.status.in_(RECTIFYING_STATUSES))
    todo_total = session.scalar(select(func.count()).select_from(Issue).where(todo_where)) or 0
    todo = session.scalars(
        select(Issue)
        .where(todo_where)
        .order_by(Issue.deadline.asc().nulls_last(), Issue.id)
        .limit(RECENT_LIMIT)
    ).all()
    rows = leader_rows
    return {
        "places": len(places),
        **myareas.held_issue_totals(session, [leader_id], now),
        "todo_total": todo_total,
        "todo": todo,
        "row": next((r for r in rows if r["key"] == leader_id), None),
        "ranked": sum(1 for r in rows if r["ranked"]),
    }


def own_reports(session: Session, account: User, week: Period) -> dict[str, Any]:
    """The account's own reports: counts by state and the latest few."""
    mine = Issue.reported_by_id == account.id
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Issue.status.in_(OPEN_STATUSES)),
            func.count().filter(Issue.status == "closed"),
            func.count().filter(Issue.status == "rejected"),
            func.count().filter(Issue.reported_at >= week.start),
        ).where(mine)
    ).one()
    recent = session.scalars(
        select(Issue)
        .where(mine)
        .order_by(Issue.reported_at.desc(), Issue.id.desc())
        .limit(RECENT_LIMIT)
    ).all()
    return {
        "total": row[0],
        "open": row[1],
        "closed": row[2],
        "rejected": row[3],
        "week": row[4],
        "recent": recent,
    }


def overview_counts(session: Session, registry: LayerRegistry, account: User) -> dict[str, int]:
    """Admin areas, leaders and issues within the account's scope (the home page's overview)."""
    return {
        "areas": session.scalar(
            select(func.count())
            .select_from(AdminArea)
            .where(scope.area_filter(account, AdminArea.id))
        ),
        "leaders": session.scalar(
            select(func.count())
            .select_from(Leader)
            .where(scope.leader_filter(account, registry, Leader.id))
        ),
        "issues": session.scalar(
            select(func.count()).select_from(Issue).where(scope.issue_filter(account))
        ),
    }


def hierarchy_overview(
    session: Session, registry: LayerRegistry, account: User, with_issues: bool, now: datetime
) -> dict[str, Any]:
    """The admin areas at the top of the account's scope (the top level, or the bound area),
    or, when that is one area, the areas directly below it: each with the number of areas
    directly below, base-layer features (grids) anywhere below and, `with_issues`, its open
    and overdue issues (an issue belongs to every area covering its point)."""
    bound = scope.for_account(account)
    levels = session.execute(text("SELECT DISTINCT level FROM admin_areas")).scalars().all()
    if not levels or (bound.area_id is None and not bound.everything):
        return {"parent": None, "rows": []}
    if bound.area_id is not None:
        roots = [bound.area_id]
    else:
        top = max(RANK[level] for level in levels)
        roots = list(
            session.scalars(
                select(AdminArea.id).where(
                    AdminArea.level.in_([lv for lv in levels if RANK[lv] == top])
                )
            )
        )
    parent = None
    if len(roots) == 1:
        below = select(AdminArea.id).where(AdminArea.parent_id == roots[0])
        children = list(session.scalars(below))
        if children:
            parent, roots = session.get(AdminArea, roots[0]), children
    count = "0"
    if BASE_LAYER in registry:
        base = registry.get(BASE_LAYER)
        link = next(iter(base.area_links()), None)
        if link is not None:
            count = (
                f"(SELECT count(*) FROM {base.table} g JOIN d ON d.id = g.{link.column}"
                " WHERE d.top = a.id)"
            )
    issues, counted = "NULL::bigint AS open_issues, NULL::bigint AS overdue_issues", ""
    if with_issues:  # one pass over each area's issues for both counts
        issues = "o.open_issues, o.overdue_issues"
        counted = """
CROSS JOIN LATERAL (
  SELECT count(*) AS open_issues, count(*) FILTER (WHERE i.deadline < :now) AS overdue_issues
  FROM issues i
  WHERE i.geom && a.geom AND ST_Covers(a.geom, i.geom) AND i.status IN :open) o"""
    sql = text(f"""
WITH RECURSIVE d(top, id) AS (
  SELECT id, id FROM admin_areas WHERE id IN :roots
  UNION ALL SELECT d.top, c.id FROM admin_areas c JOIN d ON c.parent_id = d.id)
SELECT a.id, a.level, a.code, a.name,
  (SELECT count(*) FROM admin_areas c WHERE c.parent_id = a.id) AS children,
  {count} AS features, {issues}
FROM admin_areas a{counted} WHERE a.id IN :roots ORDER BY a.code""").bindparams(
        bindparam("roots", expanding=True)
    )
    params: dict[str, Any] = {"roots": roots}
    if with_issues:
        sql = sql.bindparams(bindparam("open", expanding=True))
        params |= {"open": OPEN_STATUSES, "now": now}
    rows = session.execute(sql, params).mappings()
    return {
        "parent": parent,
        "rows": [dict(r) | {"level_title": LEVEL_TITLES[r["level"]]} for r in rows],
    }
