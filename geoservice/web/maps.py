"""Map pages (folium): the planner's map `/map` (also the leader's 我的包保 map with
`?mine=1`), the big screen `/screen`, and the popup fragments they load.

The page holds no data: every registered layer and the issues come as vector tiles, the
choropleth, heat map and counts as JSON (geoservice/api/maps.py), all with the filters in the
page's URL, so a view can be shared by its address. Popups are server-rendered fragments,
escaped by Jinja. docs/maps.md describes the page, the basemaps and the GCJ-02 shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select, text

from geoservice.accounts import scope
from geoservice.accounts.auth import can, current_account, permission_required, require
from geoservice.accounts.security import json_script, nonce_scripts
from geoservice.areas import service_area
from geoservice.basemaps import Basemap, basemap_from_config
from geoservice.catalogue.catalogue import ISSUES, name_list
from geoservice.catalogue.items import ItemsQuery
from geoservice.catalogue.tiles import AGGREGATE_MAX_ZOOM
from geoservice.db import get_session
from geoservice.edge.access import catalogue, scope_condition
from geoservice.edge.params import parse_datetime
from geoservice.edge.responsibility import whole_county
from geoservice.edge.vocabularies import filter_choices, unknown_issue_names
from geoservice.errors import ApiError
from geoservice.maps import mapdata, mappopups
from geoservice.models import Leader, User
from geoservice.registry import BASE_LAYER, LayerSpec, layers
from geoservice.responsibility import myareas
from geoservice.vocab import ISSUE_STATUSES
from geoservice.web import bp
from geoservice.web.mapelements import Call, LayerControl, LeafletMap, MetricScale, Overlay

FILTERS = ("leader_id", "unit_id", "category", "source", "status", "datetime")
BLANK = "blank"  # the plain background, always offered
SCREEN_REFRESH_SECONDS = 60


# --- the state a map URL carries -------------------------------------------------------------


@dataclass
class MapState:
    filters: dict[str, str] = field(default_factory=dict)
    mine: bool = False
    layers: set[str] = field(default_factory=set)
    theme: str = ""
    base: str = ""
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"filters": self.filters, "mine": self.mine, "theme": self.theme, "base": self.base}


def parse_state(
    args: dict[str, str], account: User, overlays: list[str], themes: list[str], bases: list[str]
) -> MapState:
    """The map's state from its query string. A shared link with a stale or wrong value still
    opens: the value is dropped and the page says so."""
    issues = catalogue().get(ISSUES)
    assert issues is not None
    state = MapState()
    for name in FILTERS:
        raw = (args.get(name) or "").strip()
        if not raw:
            continue
        try:
            if name == "datetime":
                parse_datetime(raw)
            elif not (name == "status" and raw == "all"):
                issues.filters[name].parse(raw)
            if name in ("category", "source") and unknown_issue_names(name, name_list(raw)):
                raise ValueError(raw)
        except (ValueError, ApiError):
            state.notices.append(f"已忽略无法识别的筛选条件：{name}={raw}")
            continue
        state.filters[name] = raw
    state.filters.setdefault("status", "open")
    state.mine = args.get("mine") == "1" and account.leader_id is not None
    default = [o for o in overlays if o not in ("heat",)]
    wanted = args["layers"].split(",") if "layers" in args else default
    state.layers = {o for o in wanted if o in overlays}
    state.theme = args.get("theme", "") if args.get("theme") in themes else ""
    state.base = args.get("base", "") if args.get("base") in bases else ""
    return state


# --- the page's settings (JSON for static/js/map.js) ------------------------------------------


def _tiles(endpoint: str, **values: Any) -> str:
    return url_for(endpoint, z=1, x=2, y=3, **values).replace("/1/2/3.pbf", "/{z}/{x}/{y}.pbf")


def style_by(spec: LayerSpec) -> dict[str, Any] | None:
    if spec.style_by is None:
        return None
    attribute, styles = spec.style_by
    return {"attribute": attribute, "styles": {str(k): dict(v) for k, v in styles.items()}}


def _themes() -> list[dict[str, str]]:
    """The choropleths the account may draw: by 社区/街道 only with outlines to colour, which an
    account bound to a leader but no area cannot see (its areas' tiles are empty)."""
    groupings = mapdata.choropleth_groupings(layers())
    seen = scope.for_account(current_account())
    if not seen.everything and seen.area_id is None:
        groupings = {of: title for of, title in groupings.items() if of == "grid"}
    order = [of for of in groupings if of != "grid"] + (["grid"] if "grid" in groupings else [])
    return [
        {"id": f"{of}:{measure}", "title": f"{groupings[of]} · {title}"}
        for of in order
        for measure, (title, _) in mapdata.MEASURES.items()
    ]


def map_settings(
    mode: str,
    basemap: Basemap,
    state: MapState,
    account: User,
    bounds: list[float] | None,
    min_zooms: dict[str, int],
) -> dict[str, Any]:
    specs = list(layers())
    layer_settings = [
        {
            "id": spec.collection,
            "title": spec.title,
            "tiles": _tiles("api.tile", collection_id=spec.collection),
            "labels": _tiles("api.map_label_tile", collection_id=spec.collection)
            if spec.label
            else None,
            "labelMinZoom": max(spec.label_min_zoom, min_zooms.get(spec.collection, 0)),
            "style": dict(spec.style),
            "styleBy": style_by(spec),
            "polygonal": set(spec.geometry_types) <= {"Polygon", "MultiPolygon"},
            "minZoom": min_zooms.get(spec.collection, 0),
            "zIndex": len(specs) - i,
        }
        for i, spec in enumerate(specs)
    ]
    shapes: dict[str, Any] = {}
    for of in mapdata.choropleth_groupings(layers()):
        if of == "grid":
            base = layers().get(BASE_LAYER)
            shapes[of] = {
                "tiles": _tiles("api.tile", collection_id=base.collection),
                "layer": base.collection,
                "minZoom": min_zooms.get(base.collection, 0),
                "places": True,
            }
        else:
            shapes[of] = {
                "tiles": _tiles("api.map_area_tile", level=of),
                "layer": of,
                "minZoom": 0,
                "places": False,
            }
    assignments = can("assignments.read")
    report = (
        url_for("web.report_page") if can("issues.report", ISSUES) and mode != "screen" else None
    )
    return {
        "mode": mode,
        "state": state.as_dict(),
        "filters": list(FILTERS),
        "me": {"leader_id": account.leader_id},
        "classes": [
            {"id": c.id, "title": c.title, "colour": c.colour} for c in mapdata.ISSUE_CLASSES
        ],
        "layers": layer_settings,
        "issues": {
            "tiles": _tiles("api.tile", collection_id=ISSUES),
            "layer": ISSUES,
            "aggregateMaxZoom": AGGREGATE_MAX_ZOOM,
        },
        "themes": _themes(),
        "themeShapes": shapes,
        "basemap": {
            "kind": basemap.kind,
            "shift": basemap.shift,
            "choices": [
                {"id": c.id, "title": c.title, "sources": [s.as_dict() for s in c.sources]}
                for c in basemap.choices
            ],
        },
        "endpoints": {
            "summary": url_for("api.map_summary"),
            "counts": url_for("api.map_counts"),
            "heat": url_for("api.map_heat"),
            "placePopup": url_for("web.map_place_popup", place_id=0)[:-1] + "{id}",
            "issuePopup": url_for("web.map_issue_popup", issue_id=0)[:-1] + "{id}",
            "report": report,
            "leaders": url_for("api.leaders_list") if assignments else None,
            "units": url_for("api.units_list") if assignments else None,
        },
        "bounds": bounds,
    }


# --- the folium map ---------------------------------------------------------------------------


def folium_parts(
    basemap: Basemap,
    state: MapState,
    overlays: list[tuple[str, str | None, str]],
    mode: str,
    bounds: list[float] | None,
) -> dict[str, Markup]:
    """The folium map as {"header", "html", "script"} (nonce'd for the CSP)."""
    # A placeholder view: GeoMap.view (first thing after the map is made) sets the real one.
    center = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2] if bounds else [0, 0]
    m = LeafletMap(
        location=center,
        zoom_start=13 if bounds else 3,
        tiles=None,
        crs="GCJ02" if basemap.shift == "gcj02" else "EPSG3857",
        prefer_canvas=True,
        zoom_control=mode != "screen",
        **{"maxZoom": 20, "minZoom": 3, "attributionControl": mode != "screen"},
    )
    MetricScale().add_to(m)
    Call("view").add_to(m)
    selected = state.base or (basemap.choices[0].id if basemap.choices else BLANK)
    for choice in basemap.choices:
        Overlay(
            "basemap", choice.id, choice.title, overlay=False, show=selected == choice.id
        ).add_to(m)
    blank = Overlay("basemap", BLANK, "空白底图", overlay=False, show=selected == BLANK)
    blank.control = bool(basemap.choices)
    blank.add_to(m)
    for overlay_id, factory_arg, title in overlays:
        factory = {"issues": "issues", "heat": "heat", "theme": "choropleth"}.get(
            overlay_id, "layer"
        )
        show = bool(state.theme) if overlay_id == "theme" else overlay_id in state.layers
        Overlay(factory, factory_arg, title, show=show).add_to(m)
    # The layers stack by their own panes and z-indexes, not by their order in the control.
    LayerControl(collapsed=mode == "screen", position="topright", autoZIndex=False).add_to(m)
    Call("start").add_to(m)
    root = m.get_root()
    root.render()
    return {
        "header": nonce_scripts(root.header.render()),
        "html": Markup(root.html.render()),
        "script": nonce_scripts(f"<script>{root.script.render()}</script>"),
    }


def overlay_list(min_zooms: dict[str, int]) -> list[tuple[str, str | None, str]]:
    """(id, factory argument, title) of every overlay, in the layer control's order."""
    shapes = "/".join(reversed(mapdata.choropleth_groupings(layers()).values()))  # 街道/社区/网格
    out: list[tuple[str, str | None, str]] = [("theme", None, f"专题图（按{shapes}着色）")]
    for spec in layers():
        z = min_zooms.get(spec.collection, 0)
        out.append((spec.collection, spec.collection, spec.title + (f"（{z}级起）" if z else "")))
    out.append(("issues", None, "问题（按状态着色，低缩放聚合）"))
    out.append(("heat", None, "未办结问题热力图"))
    return out


# --- pages ------------------------------------------------------------------------------------


def _leader_label(account: User, leader_id: str | None) -> str:
    if not leader_id:
        return ""
    session = get_session()
    row = session.execute(
        select(Leader.id, Leader.name, Leader.title).where(
            Leader.id == int(leader_id), scope.leader_filter(account, layers(), Leader.id)
        )
    ).first()
    return f"{row.name} · {row.title} #{row.id}" if row else f"#{leader_id}"


def _area_bounds(account: User) -> list[float] | None:
    if account.area_id is None:
        return None
    row = (
        get_session()
        .execute(
            text(
                "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)"
                " FROM admin_areas WHERE id = :id"
            ),
            {"id": account.area_id},
        )
        .first()
    )
    return [float(v) for v in row] if row and row[0] is not None else None


def _page(mode: str, template: str, **extra: Any):
    account = current_account()
    assert account is not None
    session = get_session()
    basemap = basemap_from_config(current_app.config)
    extents = mapdata.layer_extents(session, list(catalogue()))
    min_zooms = mapdata.layer_min_zooms(session, list(catalogue()), extents=extents)
    overlays = overlay_list(min_zooms)
    theme_ids = [t["id"] for t in _themes()]
    bases = [c.id for c in basemap.choices] + [BLANK]
    args = request.args.to_dict()
    if mode == "screen":
        args = {"layers": "issues", "theme": args.get("theme") or theme_ids[0]}
    state = parse_state(args, account, [o[0] for o in overlays], theme_ids, bases)
    mine = None
    bounds = None
    if state.mine:
        now = datetime.now(ZoneInfo(current_app.config["TIMEZONE"]))
        places = myareas.held_places(session, layers(), [account.leader_id], now)
        # The leader's issues as the map draws them (and the rankings count them): those
        # attributed to the leader at report time.
        issues = catalogue().get(ISSUES)
        query = ItemsQuery(
            filters={"leader_id": account.leader_id}, scope=scope_condition(account, issues)
        )
        counts = mapdata.class_counts(session, issues, query)
        mine = {
            "places": len(places),
            "open": counts["total"] - counts["closed"],
            "overdue": counts["overdue"],
        }
        bounds = mapdata.held_extent(session, layers(), [account.leader_id])
    if bounds is None:
        bounds = _area_bounds(account)
    if bounds is None:
        box = service_area.extent(session, layers())
        bounds = list(box) if box is not None else None
    settings = map_settings(mode, basemap, state, account, bounds, min_zooms)
    choices = filter_choices()  # in force, then retired (old issues keep theirs)
    return render_template(
        template,
        map=folium_parts(basemap, state, overlays, mode, bounds),
        settings=json_script(settings),
        state=state,
        mine=mine,
        account=account,
        leader_label=_leader_label(account, state.filters.get("leader_id")),
        categories=choices[0],
        sources=choices[1],
        statuses=ISSUE_STATUSES,
        themes=_themes(),
        classes=mapdata.ISSUE_CLASSES,
        can_filter_people=can("assignments.read"),
        report_enabled=settings["endpoints"]["report"] is not None,
        **extra,
    )


@bp.get("/map")
@permission_required("layers.read")
def map_page():
    require("issues.read", ISSUES)
    return _page("planner", "maps/map.html")


@bp.get("/screen")
@permission_required("rankings.read")
def screen_page():
    account = require("issues.read", ISSUES)
    if not whole_county(account):
        raise ApiError(403, "大屏为全县口径，仅供不限区域的账号使用")
    screen = {
        "data": url_for("api.map_screen"),
        "refresh": SCREEN_REFRESH_SECONDS,
        "issuePopup": url_for("web.map_issue_popup", issue_id=0)[:-1] + "{id}",
        "timezone": current_app.config["TIMEZONE"],
    }
    name = service_area.place_name(get_session())
    return _page(
        "screen",
        "maps/screen.html",
        refresh_seconds=SCREEN_REFRESH_SECONDS,
        screen_settings=json_script(screen),
        place_name=name or "",
    )


# --- popup fragments --------------------------------------------------------------------------


@bp.get("/map/popup/place/<int:place_id>")
@permission_required("layers.read")
def map_place_popup(place_id: int):
    session = get_session()
    account = current_account()
    if scope.visible_place(session, account, layers(), place_id) is None:
        raise ApiError(404, "没有这个地点，或当前账号无权查看")
    issues = catalogue().get(ISSUES)
    read_issues = can("issues.read", ISSUES)
    detail = mappopups.place_detail(
        session, layers(), place_id, scope_condition(account, issues) if read_issues else None
    )
    if detail is None:
        raise ApiError(404, "没有这个地点，或当前账号无权查看")
    issues_url = url_for(
        "api.items", collection_id=ISSUES, f="html", **{detail["issue_filter"]: place_id}
    )
    return render_template(
        "maps/_place_popup.html",
        p=detail,
        show_issues=read_issues,
        show_phone=can("assignments.read"),
        issues_url=issues_url,
        responsibility_url=url_for("web.place_page", place_id=place_id)
        if can("assignments.read")
        else None,
    )


@bp.get("/map/popup/issue/<int:issue_id>")
@permission_required("issues.read")
def map_issue_popup(issue_id: int):
    session = get_session()
    if scope.visible_issue(session, current_account(), issue_id) is None:
        raise ApiError(404, "没有这个问题，或当前账号无权查看")
    detail = mappopups.issue_detail(session, layers(), issue_id)
    assert detail is not None
    thumbs = [
        url_for("api.issue_photo", photo_id=photo["id"], thumb=1) for photo in detail["photos"][:2]
    ]
    return render_template(
        "maps/_issue_popup.html",
        i=detail,
        thumbs=thumbs,
        page_url=url_for("web.issue_page", issue_id=issue_id),
        show_phone=can("assignments.read"),
    )
