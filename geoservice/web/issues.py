"""Issue pages: the mobile report page, one issue (map, photos before/after, timeline, who
answers for it, the caller's actions) and its folium map."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, make_response, render_template, url_for
from sqlalchemy import text

from geoservice.accounts import scope
from geoservice.accounts.auth import can, current_account
from geoservice.accounts.security import json_script
from geoservice.areas import service_area
from geoservice.basemaps import basemap_from_config
from geoservice.db import get_session
from geoservice.edge.issues import allows, photo_url
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.responsibility import assignable_leader_ids
from geoservice.issues import issues as service
from geoservice.issues.view import issue_summary, issue_view
from geoservice.registry import layers
from geoservice.responsibility.leaders import active_leaders
from geoservice.vocab import SEVERITIES
from geoservice.web import bp
from geoservice.web.featuremap import MapLayer, feature_map
from geoservice.web.maps import style_by

STATUS_COLORS = {
    "reported": "#1565c0",
    "accepted": "#6a1b9a",
    "rejected": "#757575",
    "dispatched": "#ef6c00",
    "in_progress": "#f9a825",
    "fixed": "#2e7d32",
    "closed": "#455a64",
}


def _refuse(status: int, title: str, message: str) -> None:
    abort(
        make_response(render_template("issue_message.html", title=title, message=message), status)
    )


def _signed_in():
    account = current_account()
    if account is None:
        _refuse(401, "请先登录", "查看和上报问题需要登录账号。")
    return account


# From this zoom on (street level) the report map draws the places around the spot.
CONTEXT_MIN_ZOOM = 16
# Features per layer and request for that context (a street-level view holds far fewer).
CONTEXT_LIMIT = 300


def report_map_settings(session: Any, can_preview: bool) -> dict[str, Any]:
    """What the report page's map needs: the service area, the basemap (GCJ-02 ones shift our
    data, as on /map), the registered layers the caller may read with their styles and items
    URL, and the attribution preview URL when the caller may ask it."""
    basemap = basemap_from_config(current_app.config)
    registry = layers()
    return {
        "area": service_area.outline(session, registry),
        "basemap": {
            "shift": basemap.shift,
            "choices": [
                {"id": c.id, "title": c.title, "sources": [s.as_dict() for s in c.sources]}
                for c in basemap.choices
            ],
        },
        "layers": [
            {
                "title": spec.title,
                "items": url_for("api.items", collection_id=spec.collection),
                "style": dict(spec.style),
                "styleBy": style_by(spec),
                "polygonal": set(spec.geometry_types) <= {"Polygon", "MultiPolygon"},
                "label": spec.label or "name",
            }
            for spec in registry
            if can("layers.read", spec.collection)
        ],
        "contextMinZoom": CONTEXT_MIN_ZOOM,
        "contextLimit": CONTEXT_LIMIT,
        "attribution": url_for("api.point_attribution") if can_preview else None,
    }


@bp.get("/issues/new")
def report_page():
    _signed_in()
    settings = issue_settings_in_force()
    session = get_session()
    can_preview = can("issues.report", "issues") or can("assignments.read")
    return render_template(
        "issue_report.html",
        can_report=can("issues.report", "issues"),
        can_set_meta=can("issues.set_report_meta", "issues"),
        categories=list(settings.categories),
        sources=list(settings.sources),
        severities=SEVERITIES,
        photo_optional_sources=list(settings.photo_optional_sources),
        min_photos=settings.report_min_photos,
        max_photos=settings.photo_limits.max_count,
        max_photo_mb=settings.photo_limits.max_bytes // (1024 * 1024),
        map_settings=json_script(report_map_settings(session, can_preview)),
    )


def _view(issue_id: int) -> dict[str, Any]:
    account = _signed_in()
    session = get_session()
    issue = (
        scope.visible_issue(session, account, issue_id) if can("issues.read", "issues") else None
    )
    if issue is None:
        _refuse(404, "未找到", f"没有编号为 {issue_id} 的问题。")
    settings = issue_settings_in_force()
    return issue_view(session, layers(), settings, issue, account, photo_url, allows=allows)


def _pickable_leaders() -> list:
    """Active leaders the account may dispatch to (its scope: geoservice.edge.responsibility)."""
    session = get_session()
    return active_leaders(session, assignable_leader_ids(session, current_account()))


@bp.get("/issues/<int:issue_id>")
def issue_page(issue_id: int):
    feature = _view(issue_id)
    p = feature["properties"]
    photos = {"before": [], "after": []}
    for photo in p["photos"]:
        photos[photo["kind"]].append(photo)
    leaders = []
    if any(t["needs_leader"] for t in p["allowed_transitions"]) or can("issues.dispatch", "issues"):
        leaders = _pickable_leaders()
    return render_template(
        "issue_detail.html",
        issue=p,
        feature=feature,
        photos=photos,
        photo_by_id={ph["id"]: ph for ph in p["photos"]},
        status_color=STATUS_COLORS.get(p["status"], "#333"),
        can_merge=can("issues.dispatch", "issues"),
        leaders=list(leaders),
    )


@bp.get("/issues/<int:issue_id>/map")
def issue_map(issue_id: int):
    """The issue's point over the places that claim it (offline: no basemap unless one is
    configured)."""
    feature = _view(issue_id)
    lon, lat = feature["geometry"]["coordinates"]
    p = feature["properties"]
    registry = layers()
    session = get_session()
    bounds = [[lat, lon], [lat, lon]]
    drawn: list[MapLayer] = []
    for claim in reversed(p["attribution"]["places"]):
        if claim["layer"] not in registry:
            continue
        spec = registry.get(claim["layer"])
        geometry = session.scalar(
            text(f"SELECT ST_AsGeoJSON(geom, 7)::json FROM {spec.table} WHERE id = :id"),
            {"id": claim["place_id"]},
        )
        if geometry is None:
            continue
        style = dict(spec.style)
        if claim["primary"]:
            style.update(weight=max(style.get("weight", 2), 4))
        properties = {"layer_title": claim["layer_title"], "name": claim["name"]}
        drawn.append(
            MapLayer(
                spec.title,
                {"type": "FeatureCollection", "features": [_feature(geometry, properties)]},
                style,
                fields=("layer_title", "name"),
                aliases=("图层", "名称"),
            )
        )
        west, south, east, north = _bbox(geometry)
        bounds = [[min(bounds[0][0], south), min(bounds[0][1], west)],
                  [max(bounds[1][0], north), max(bounds[1][1], east)]]  # fmt: skip
    point = {"type": "Point", "coordinates": [lon, lat]}
    label = f"#{p['id']} {p['category']}（{p['status_label']}）"
    drawn.append(
        MapLayer(
            "问题",
            {"type": "FeatureCollection", "features": [_feature(point, {"issue": label})]},
            {
                "radius": 9,
                "color": "#fff",
                "weight": 2,
                "fillColor": STATUS_COLORS.get(p["status"], "#c62828"),
                "fillOpacity": 1,
            },
            fields=("issue",),
            aliases=("问题",),
        )
    )
    # Keep the view near the point even when a long road claims it.
    span = 0.004
    view = [
        [max(bounds[0][0], lat - span), max(bounds[0][1], lon - span)],
        [min(bounds[1][0], lat + span), min(bounds[1][1], lon + span)],
    ]
    # One layer control entry per place would be noise here: draw them all, no control.
    parts = feature_map(drawn, height="100%", bounds=view, max_zoom=18, layer_control=False)
    return render_template("issue_map.html", map=parts)


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _bbox(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    xs, ys = [], []

    def walk(coords: Any) -> None:
        if coords and isinstance(coords[0], int | float):
            xs.append(coords[0])
            ys.append(coords[1])
        else:
            for c in coords:
                walk(c)

    walk(geometry["coordinates"])
    return min(xs), min(ys), max(xs), max(ys)


@bp.get("/issues/unassigned")
def queue_page():
    """待派遣队列: issues nobody answers for, with a leader to pick for each."""
    account = _signed_in()
    if not can("issues.dispatch", "issues"):
        _refuse(403, "无权查看", "待派遣队列由督办人员处理。")
    settings = issue_settings_in_force()
    session = get_session()
    now = datetime.now(UTC)
    rows = session.scalars(service.unassigned_query(200, 0, account)).all()
    leaders = _pickable_leaders()
    return render_template(
        "issue_queue.html",
        issues=[issue_summary(i, settings, now) for i in rows],
        total=service.count_unassigned(session, account),
        leaders=leaders,
    )
