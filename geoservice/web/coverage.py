"""包保 pages beyond the records: 我的包保 (/my), the coverage audit (/coverage) and the Excel
roster (/roster). Access as on the other 包保 pages (geoservice.web.responsibility.page).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from shapely.geometry import mapping, shape

from geoservice.areas import hierarchy, service_area
from geoservice.db import get_session
from geoservice.edge.responsibility import (
    READ,
    WRITE,
    roster_upload,
    run_roster_import,
)
from geoservice.errors import ApiError
from geoservice.ranking import cards
from geoservice.ranking.periods import parse_period
from geoservice.ranking.vocabularies import ranking_settings
from geoservice.registry import BASE_LAYER, layers
from geoservice.responsibility import coverage, myareas, roster
from geoservice.responsibility import responsibility as resp
from geoservice.vocab import ISSUE_STATUSES
from geoservice.web import bp
from geoservice.web.featuremap import MapLayer, feature_map
from geoservice.web.responsibility import (
    layer_styles,
    page,
    page_account,
    place_url_template,
)

# ---------------------------------------------------------------------------------------------
# 我的包保.


@bp.get("/my")
@page(READ)
def my_areas():
    session = get_session()
    account = page_account()
    if account.leader_id is None:
        return render_template("resp/my.html", leader=None)
    leader = resp.get_leader(session, account.leader_id)
    scope = request.args.get("scope", "own")
    unit_view = scope == "unit" and leader.is_unit_head
    ids = resp.leaders_in_view(session, leader) if unit_view else [leader.id]
    collection = myareas.held_places_geojson(session, layers(), ids, resp.now())
    rows = myareas.held_places(session, layers(), ids, resp.now())
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    last_week = parse_period("week", None, None, zone, datetime.now(zone).date())
    card = cards.scorecard(
        session,
        layers(),
        leader.id,
        last_week,
        ranking_settings(session, current_app.config, last_week.start),
    )
    return render_template(
        "resp/my.html",
        leader=leader,
        card=card,
        unit_view=unit_view,
        rows=rows,
        totals={"places": len(rows), **myareas.held_issue_totals(session, ids, resp.now())},
        map=feature_map(
            [
                MapLayer(
                    "我的包保",
                    collection,
                    {"color": "#b71c1c", "weight": 2, "fillOpacity": 0.2},
                    fields=("layer_title", "code", "name", "open_issues", "overdue_issues"),
                    aliases=("图层", "编码", "名称", "未办结问题", "超期问题"),
                    style_by_layer=layer_styles(),
                )
            ],
            fallback_extent=service_area.extent(session, layers()),
        ),
        statuses=ISSUE_STATUSES,
    )


# ---------------------------------------------------------------------------------------------
# Coverage audit.

FINDING_STYLES = {
    "gaps": {"color": "#d50000", "weight": 2, "fillColor": "#ff1744", "fillOpacity": 0.55},
    "overlaps": {"color": "#ff6d00", "weight": 2, "fillColor": "#ff9100", "fillOpacity": 0.6},
    "unassigned": {"color": "#6a1b9a", "weight": 3, "dashArray": "6 4", "fillOpacity": 0.25},
    "no_primary": {"color": "#f9a825", "weight": 3, "dashArray": "2 4", "fillOpacity": 0.2},
}


HIERARCHY_LAYERS = (
    (
        "links",
        "编码与位置不一致",
        {"color": "#00838f", "weight": 3, "fillColor": "#00bcd4", "fillOpacity": 0.35},
        ("code", "name", "message"),
        ("编码", "名称", "问题"),
    ),
    (
        "uncovered",
        "未被网格覆盖的区划",
        {"color": "#ad1457", "weight": 2, "fillColor": "#f06292", "fillOpacity": 0.5},
        ("label", "code", "name", "uncovered_m2"),
        ("问题", "编码", "名称", "未覆盖面积（m²）"),
    ),
    (
        "not_tiled",
        "未被下级区划铺满",
        {"color": "#4e342e", "weight": 2, "fillColor": "#a1887f", "fillOpacity": 0.5},
        ("label", "code", "name", "gap_m2"),
        ("问题", "编码", "名称", "空白面积（m²）"),
    ),
)


@bp.get("/coverage")
@page(READ, county=True)
def coverage_page():
    session = get_session()
    report = coverage.coverage_report(session, layers(), BASE_LAYER)
    map_layers = [
        MapLayer(
            "网格空白",
            report["gaps"]["features"],
            FINDING_STYLES["gaps"],
            fields=("area_m2",),
            aliases=("空白面积（m²）",),
        ),
        MapLayer(
            "网格重叠",
            report["overlaps"]["features"],
            FINDING_STYLES["overlaps"],
            fields=("area_m2",),
            aliases=("重叠面积（m²）",),
        ),
    ]
    # Gaps and overlaps can be a few metres wide: a ring marker shows where they are.
    map_layers.append(
        MapLayer(
            "空白/重叠位置",
            _markers(report["gaps"]["features"], report["overlaps"]["features"]),
            {"color": "#d50000", "weight": 3, "fillOpacity": 0.0, "radius": 12},
            fields=("label", "area_m2"),
            aliases=("类型", "面积（m²）"),
            style_by_layer={"overlap": {"color": "#ff6d00"}},
        )
    )
    for item in report["layers"]:
        for key, label in (("unassigned", "无包保领导"), ("no_primary", "无主要负责人")):
            map_layers.append(
                MapLayer(
                    f"{item['layer_title']}{label}",
                    item[key]["features"],
                    FINDING_STYLES[key],
                    fields=("layer_title", "code", "name"),
                    aliases=("图层", "编码", "名称"),
                    link=(place_url_template(), "查看 / 分配包保领导"),
                )
            )
    tree = report["hierarchy"]
    for key, title, style, fields, aliases in HIERARCHY_LAYERS:
        collection = tree[key]["features"]
        map_layers.append(MapLayer(title, collection, style, fields=fields, aliases=aliases))
    outline = _service_outline(session)
    if outline is not None:
        map_layers.insert(
            0,
            MapLayer("服务范围", outline, {"color": "#555", "weight": 1, "fillOpacity": 0.02}),
        )
    return render_template(
        "resp/coverage.html",
        report=report,
        status_titles=hierarchy.STATUS_TITLES,
        map=feature_map(
            map_layers, height="600px", fallback_extent=service_area.extent(session, layers())
        ),
    )


def _markers(gaps: dict[str, Any], overlaps: dict[str, Any]) -> dict[str, Any]:
    features = []
    for collection, kind, label in ((gaps, "gap", "网格空白"), (overlaps, "overlap", "网格重叠")):
        for feature in collection["features"]:
            point = shape(feature["geometry"]).representative_point()
            features.append(
                {
                    "type": "Feature",
                    "geometry": mapping(point),
                    "properties": {
                        "layer": kind,
                        "label": label,
                        "area_m2": feature["properties"]["area_m2"],
                    },
                }
            )
    return {"type": "FeatureCollection", "features": features}


def _service_outline(session) -> dict[str, Any] | None:
    geometry = service_area.outline(session, layers())
    if geometry is None:
        return None
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": geometry, "properties": {}}],
    }


# ---------------------------------------------------------------------------------------------
# Excel roster.


@bp.get("/roster")
@page(READ)
def roster_page():
    return render_template(
        "resp/roster.html", units=resp.unit_rows(get_session()), report=None, columns=roster.COLUMNS
    )


@bp.post("/roster")
@page(WRITE, county=True)
def roster_upload_form():
    dry_run = request.form.get("dry_run") == "on"
    try:
        report = run_roster_import(roster_upload(), dry_run)
    except (resp.ServiceError, ApiError) as exc:
        flash(getattr(exc, "message", None) or getattr(exc, "error", ""), "error")
        return redirect(url_for("web.roster_page"))
    status = 200 if report.ok else 422
    return (
        render_template(
            "resp/roster.html",
            units=resp.unit_rows(get_session()),
            report=report,
            columns=roster.COLUMNS,
        ),
        status,
    )
