"""The /assessment pages (测评): a round's map, scores and rankings with drill-down to the failed
standards; kinds and standards; the inspector's phone pages (my sites, one site's standards);
printable QR sheets. Blueprint `assessment`; the data comes from geoservice.assessment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import case, select

from geoservice.accounts import audit, scope
from geoservice.accounts.auth import can, current_account, public
from geoservice.accounts.security import nonce_scripts
from geoservice.assessment import kinds as kind_service
from geoservice.assessment import rounds as round_service
from geoservice.assessment import scores as score_service
from geoservice.assessment import sites as site_service
from geoservice.assessment import standards as standard_service
from geoservice.assessment.models import AssessmentRound, RoundSite
from geoservice.citizens.settings import CitizenSettings
from geoservice.db import get_session
from geoservice.edge.sites import site_condition, sites_in_scope
from geoservice.errors import ApiError
from geoservice.input_values import shown
from geoservice.models import User
from geoservice.service_errors import ServiceError
from geoservice.web.featuremap import MapLayer, feature_map
from geoservice.web.paging import Page, requested_page

bp = Blueprint("assessment", __name__, template_folder="templates")

RESULT_STYLES = {
    "passed": {"color": "#1b5e20", "fillColor": "#43a047"},
    "failed": {"color": "#b71c1c", "fillColor": "#e53935"},
    "negative": {"color": "#4a148c", "fillColor": "#8e24aa"},
    "open": {"color": "#616161", "fillColor": "#bdbdbd"},
}
RESULT_TITLES = {
    "passed": "达标",
    "failed": "未达标",
    "negative": "负面清单",
    "open": "未测完",
}


def _page(action: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                account = current_account()
            except ApiError as exc:
                abort(401, exc.error)
            if account is None:
                abort(401)
            if not can(action):
                abort(403)
            try:
                return view(*args, **kwargs)
            except ServiceError as exc:
                abort(exc.status, exc.error)

        return wrapper

    return decorator


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw in (None, "", "none"):
        return None
    try:
        return int(raw)
    except ValueError:
        abort(400, f"{name} 应为整数")


def _settings() -> score_service.ScoreSettings:
    return score_service.ScoreSettings.from_config(current_app.config)


def _map(site_rows: list[dict[str, Any]], round_id: int) -> dict[str, Any]:
    """Sites coloured by their last result (达标 / 未达标 / 负面清单 / 未测完), drawn smaller
    the more there are (a city's round: ~9,000 sites, one blot at the size of a county's)."""
    radius = 7 if len(site_rows) <= 500 else 5 if len(site_rows) <= 3000 else 3
    layers = []
    for status, title in RESULT_TITLES.items():
        features = []
        for s in site_rows:
            state = (
                "negative"
                if s["negative"]
                else "passed"
                if s["passed"]
                else "failed"
                if s["failed"]
                else "open"
            )
            if state != status:
                continue
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                    "properties": {
                        "name": s["name"],
                        "kind": s["kind_name"],
                        "score": "—" if s["score"] is None else f"{s['score']:.1f}",
                        "leader": s["leader_name"] or "（未落实点长）",
                        "place_id": s["site_id"],
                    },
                }
            )
        style = {"weight": 1 if radius < 7 else 2, "fillOpacity": 0.8, **RESULT_STYLES[status]}
        style["radius"] = radius
        layers.append(
            MapLayer(
                f"{title}（{len(features)}）",
                {"type": "FeatureCollection", "features": features},
                style,
                fields=("name", "kind", "score", "leader"),
                aliases=("点位", "类别", "得分", "点长"),
                link=(
                    url_for(
                        "assessment.failures_page", round_id=round_id, of="site", key=0
                    ).replace("key=0", "key={place_id}"),
                    "查看不合格标准",
                ),
            )
        )
    fmap = feature_map(layers, height="480px")
    return {**fmap, "header": nonce_scripts(fmap["header"])}


@bp.get("/assessment")
@_page("rankings.read")
def assessment_page():
    session = get_session()
    rounds = round_service.list_rounds(session)
    settings = _settings()
    of = request.args.get("of", "street")
    if of not in score_service.GROUPINGS:
        abort(400, "未知分组")
    round_id = _int_arg("round") or (rounds[0]["id"] if rounds else None)
    current = next((r for r in rounds if r["id"] == round_id), None)
    if round_id is not None and current is None:
        abort(404, "没有该测评轮次")
    figures = sites = None
    fmap = None
    page = requested_page()
    if current is not None:
        sites = score_service.site_scores(session, current["id"], settings)
        rows = score_service.group_scores(sites, of, settings)
        # Rankings are county-wide; a site's own row and place on the map only in the
        # caller's area (with its county rank), as the sites API.
        seen = sites_in_scope(session, current_account(), [s["site_id"] for s in sites])
        if seen is not None and of == "site":
            rows = [r for r in rows if r["key"] in seen]
        table = Page(page, RANKING_PAGE_ROWS, len(rows))
        shown = table.of(rows)
        on_page = {id(r) for r in shown}
        figures = {
            "totals": score_service.totals(sites, settings),
            "rows": shown,
            "total_rows": table.total,
            "first": table.first,
            "pages": table.pages,
            "bottom_elsewhere": [r for r in rows if r["bottom"] and id(r) not in on_page],
        }
        fmap = _map(
            sites if seen is None else [s for s in sites if s["site_id"] in seen], current["id"]
        )
    return render_template(
        "assessment/page.html",
        rounds=rounds,
        current=current,
        figures=figures,
        of=of,
        groupings=score_service.GROUPINGS,
        trend=score_service.trend(
            session, None, None, settings, computed={current["id"]: sites} if current else None
        ),
        settings=settings,
        map=fmap,
        kinds=kind_service.list_kinds(session),
        versions=standard_service.list_versions(session),
        inspectors=session.execute(
            select(User.id, User.display_name, User.username)
            .where(User.active.is_(True), User.role.in_(("inspector", "planner")))
            .order_by(User.id)
        ).all(),
        page=page,
        can_manage=can("layers.write") and current_account().role in ("admin", "planner"),
        county_wide=scope.for_account(current_account()).everything,
    )


@bp.get("/assessment/rounds/<int:round_id>/failures")
@_page("rankings.read")
def failures_page(round_id: int):
    session = get_session()
    of = request.args.get("of")
    if of is not None and of not in score_service.GROUPINGS:
        abort(400, "未知分组")
    key = _int_arg("key")
    found = round_service.get_round(session, round_id)
    rows = score_service.failures(session, round_id, _settings(), of, key)
    seen = sites_in_scope(session, current_account(), sorted({r["site_id"] for r in rows}))
    rows = rows if seen is None else [r for r in rows if r["site_id"] in seen]  # as the API
    listed = Page(requested_page(), FAILURES_PAGE_ROWS, len(rows))
    return render_template(
        "assessment/failures.html",
        round=round_service.round_json(session, found),
        rows=listed.of(rows),
        total=listed.total,
        first=listed.first,
        page=listed.number,
        pages=listed.pages,
        args={"round_id": round_id, "of": of, "key": key},
        of_title=score_service.GROUPINGS.get(of or "", "全部"),
    )


# Grouped by site, a city's round ranks ~9,000 rows: the table shows a page of them (the bottom
# rows are named above it when they are on another page); the whole table is the API's.
RANKING_PAGE_ROWS = 200
# A city's mock round fails ~10,000 standards, each with its photo: shown a page at a time (a
# page of every row asked the server for 14,000 thumbnails at once); the whole list is the
# API's (GET /api/assessment/rounds/<id>/failures).
FAILURES_PAGE_ROWS = 200


@bp.get("/assessment/standards/<int:version_id>")
@_page("rankings.read")
def standards_page(version_id: int):
    session = get_session()
    version = standard_service.get_version(session, version_id)
    return render_template(
        "assessment/standards.html", version=standard_service.version_json(session, version)
    )


# --- the inspector's phone pages -------------------------------------------------------------


@bp.get("/assessment/record")
@_page("issues.report")
def record_list():
    session = get_session()
    account = current_account()
    manager = account.role in ("admin", "planner")
    today = datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()
    # The latest rounds under way first, and for an inspector only those with sites of theirs:
    # rounds planned ahead, or other inspectors' rounds, never push theirs off the page.
    recordable = select(AssessmentRound).where(
        AssessmentRound.kind == "mock"  # a 暗访's results are recorded by the inspection
    )
    if not manager:
        theirs = select(RoundSite.round_id).where(RoundSite.inspector_id == account.id)
        recordable = recordable.where(AssessmentRound.id.in_(theirs))
    started = case((AssessmentRound.starts_on <= today, 0), else_=1)
    rounds = session.scalars(
        recordable.order_by(
            started, AssessmentRound.starts_on.desc(), AssessmentRound.id.desc()
        ).limit(5)
    ).all()
    q = request.args.get("q", "").strip()
    show = request.args.get("show", "all")
    show = show if show in RECORD_SHOWS else "all"
    page = requested_page()
    words = q.lower().split()
    sections = []
    for found in rounds:
        rows = round_service.round_sites(session, found.id, None if manager else account.id)
        if not rows:
            continue
        matched = [r for r in rows if _record_shown(r, show) and _record_matches(r, words)]
        matched.sort(key=_recorded)  # those still to record first, each group in its order
        listed = Page(page, RECORD_PAGE_SITES, len(matched))
        sections.append(
            {
                "round": found,
                "sites": listed.of(matched),
                "total": len(rows),
                "done": sum(_recorded(r) for r in rows),
                "failed": sum(1 for r in rows if r["failed"]),
                "matched": listed.total,
                "first": listed.first,
                "pages": listed.pages,
            }
        )
    return render_template(
        "assessment/record_list.html",
        sections=sections,
        q=q,
        show=show,
        shows=RECORD_SHOWS,
        page=page,
    )


# The recording list shows a round's sites a page at a time (an inspector's phone; a city's
# round holds tens of thousands of sites), those still to record first.
RECORD_PAGE_SITES = 100
RECORD_SHOWS = {"all": "全部", "todo": "待录入", "failed": "有不合格"}


def _recorded(row: dict[str, Any]) -> bool:
    return row["recorded"] >= row["applicable"]


def _record_shown(row: dict[str, Any], show: str) -> bool:
    if show == "todo":
        return not _recorded(row)
    if show == "failed":
        return bool(row["failed"])
    return True


def _record_matches(row: dict[str, Any], words: list[str]) -> bool:
    text = " ".join(
        str(row.get(k) or "") for k in ("name", "code", "kind_name", "street", "community")
    ).lower()
    return all(w in text for w in words)


@bp.get("/assessment/record/<int:round_id>/<int:site_id>")
@_page("issues.report")
def record_site(round_id: int, site_id: int):
    session = get_session()
    sheet = round_service.site_sheet(session, round_id, site_id)
    account = current_account()
    if account.role not in ("admin", "planner") and sheet["inspector_id"] != account.id:
        abort(403, "该点位未分配给你")
    return render_template(
        "assessment/record_site.html",
        sheet=sheet,
        submit_url=url_for("assessment_api.rounds_results", round_id=round_id),
    )


# --- QR codes ---------------------------------------------------------------------------------


@bp.get("/assessment/qr")
@_page("layers.read")
def qr_sheet():
    """A printable A4 sheet per street: name, code and QR code of each site, QR_SHEET_SITES
    at a time (a city's ~17,000 sites are thousands of printed pages and as many codes to
    draw: chosen by street, then paged)."""
    session = get_session()
    street = request.args.get("street") or None
    page = requested_page()
    within = site_condition(current_account())  # the caller's area only, as the sites API
    total, rows = site_service.sites_for_sheet(
        session, street, QR_SHEET_SITES, Page(page, QR_SHEET_SITES, 0).offset, within
    )
    sheet = Page(page, QR_SHEET_SITES, total)
    return render_template(
        "assessment/qr_sheet.html",
        rows=rows,
        street=street,
        streets=site_service.streets_with_sites(session, within),
        total=total,
        first=sheet.first,
        page=page,
        pages=sheet.pages,
        per_page=QR_SHEET_SITES,
    )


QR_SHEET_SITES = 240  # twenty A4 pages of twelve codes


@bp.get("/qr/site/<int:site_id>")
@public
def site_qr_landing(site_id: int):
    """Where a site's QR code leads: a signed-in account that reports → the staff report page
    at the site; anyone else → the citizens' page at the site when it is open, else the
    sign-in page (then the staff page)."""
    try:
        site = site_service.site_json(get_session(), site_id)
    except ServiceError:
        abort(404)
    staff = site_service.staff_report_url(site)
    account = current_account()
    if account is not None and can("issues.report"):
        return redirect(staff, 302)
    if account is None and CitizenSettings.from_config(current_app.config).enabled:
        return redirect(url_for("public.report_page", site=f"site:{site['code']}"), 302)
    return redirect(url_for("account.login", next=staff), 302)


# --- kinds on a page ------------------------------------------------------------------------


def parse_attribute_lines(raw: str) -> list[dict[str, Any]]:
    """One attribute per line: `name|标题|type|必填|选项1、选项2` (type text, integer, choice or
    date; 必填 = 是 or 否), e.g. `grade|等级|choice|是|一级、二级、三级`."""
    out = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        parts += [""] * (5 - len(parts))
        item: dict[str, Any] = {
            "name": parts[0],
            "title": parts[1] or parts[0],
            "type": parts[2] or "text",
            "required": parts[3] in ("是", "必填", "true", "1", "yes"),
        }
        if item["type"] == "choice":
            item["choices"] = [c.strip() for c in parts[4].replace(",", "、").split("、") if c]
        out.append(item)
    return out


@bp.post("/assessment/kinds")
@_page("layers.write")
def kinds_create():
    """The kind form of /assessment (admin and county-wide planners)."""
    account = current_account()
    if account.role not in ("admin", "planner") or not scope.for_account(account).everything:
        abort(403, "点位类别只能由全县（市）范围的创文办账号维护")
    form = request.form
    payload: dict[str, Any] = {
        "code": form.get("code", "").strip(),
        "name": form.get("name", "").strip(),
        "geometry_type": form.get("geometry_type") or "point",
        "colour": form.get("colour") or "#1565c0",
        "attributes": parse_attribute_lines(form.get("attributes", "")),
    }
    for key, cast, title in (
        ("claim_radius_m", float, "认领半径（米）"),
        ("precedence", int, "优先级"),
    ):
        raw = form.get(key, "").strip()
        if raw:
            try:
                payload[key] = cast(raw)
            except ValueError:
                flash(f"{title}应为{'整数' if cast is int else '数字'}，收到 {shown(raw)}", "error")
                return redirect(url_for("assessment.assessment_page") + "#kinds")
    session = get_session()
    try:
        kind = kind_service.create_kind(session, payload)
    except ServiceError as exc:
        session.rollback()
        flash(f"未能新建类别：{exc.error}（{exc.field}）", "error")
        return redirect(url_for("assessment.assessment_page") + "#kinds")
    audit.record(session, account, "site_kind.create", "site_kind", kind.id,
                 after=kind_service.kind_json(kind, 0))  # fmt: skip
    session.commit()
    flash(f"已新建点位类别「{kind.name}」（集合 site-{kind.code}）", "success")
    return redirect(url_for("assessment.assessment_page") + "#kinds")


@bp.post("/assessment/rounds")
@_page("layers.write")
def rounds_create():
    """The round form of /assessment (admin and planners)."""
    account = current_account()
    if account.role not in ("admin", "planner"):
        abort(403, "只有创文办可以新建测评轮次")
    form = request.form
    payload: dict[str, Any] = {
        k: form.get(k, "").strip()
        for k in ("name", "starts_on", "ends_on", "version_id", "sample_per_kind", "seed",
                  "inspector_id")
    }  # fmt: skip
    payload = {k: v for k, v in payload.items() if v != ""}
    session = get_session()
    try:
        found = round_service.create_round(session, payload, account)
    except ServiceError as exc:
        session.rollback()
        flash(f"未能新建测评轮次：{exc.error}（{exc.field}）", "error")
        return redirect(url_for("assessment.assessment_page") + "#new-round")
    body = round_service.round_json(session, found)
    audit.record(session, account, "round.create", "assessment_round", found.id, after=body)
    session.commit()
    flash(f"已新建「{found.name}」，共 {body['sites']} 个点位", "success")
    return redirect(url_for("assessment.assessment_page", round=found.id))
