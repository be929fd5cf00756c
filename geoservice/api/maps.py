"""Data the map pages fetch besides the collections' tiles (all JSON, all within the caller's
scope, all taking the issues collection's filters as the items and tiles do):

- `GET /api/map/summary`: issues per display class (超期 / 办理中 / 待复核 / 已办结);
- `GET /api/map/counts?of=grid|community|street&measure=open|overdue`: the choropleth;
- `GET /api/map/heat?bbox=…&z=…`: open issues per cell, for the heat map;
- `GET /api/map/areas/{level}/tiles/{z}/{x}/{y}.pbf`: admin-area outlines (choropleth shapes);
- `GET /api/map/labels/{collection}/tiles/{z}/{x}/{y}.pbf`: label points (grid codes);
- `GET /api/map/screen`: the big screen's figures and latest issues.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, jsonify
from sqlalchemy import literal_column
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.accounts.auth import current_account, require
from geoservice.api import bp
from geoservice.api.tiles import cached_tile, tile_offset, tile_params
from geoservice.areas.levels import LEVELS
from geoservice.catalogue.catalogue import ISSUES, Collection
from geoservice.catalogue.items import ItemsQuery
from geoservice.catalogue.tilecache import LAYERS_LAYER
from geoservice.catalogue.tilegrid import MAX_ZOOM, tile_in_range
from geoservice.catalogue.tiles import area_tile, label_tile
from geoservice.db import get_session
from geoservice.edge.access import catalogue, collection_or_404, collection_read, scope_condition
from geoservice.edge.params import item_params, parse_bbox, parse_items_query, single_args
from geoservice.edge.responsibility import whole_county
from geoservice.errors import ApiError
from geoservice.maps import mapdata
from geoservice.ranking import ranking
from geoservice.ranking.periods import Period, custom_period, period_containing
from geoservice.registry import layers
from geoservice.ttlcache import TtlCache
from geoservice.vocab import ISSUE_STATUSES

# Issue filters the map passes to every endpoint (the items' own, minus paging, bbox and the
# output CRS).
_PAGING = {"f", "limit", "offset", "bbox", "bbox-crs", "crs"}


def _issues() -> Collection:
    collection = catalogue().get(ISSUES)
    assert collection is not None
    return collection


def issue_query(extra: tuple[str, ...] = ()) -> tuple[ItemsQuery, dict[str, str]]:
    """The issue filters of the request (400 on unknown or bad ones), scoped to the caller;
    and the values of the `extra` parameters."""
    require("issues.read", ISSUES)
    coll = _issues()
    names = [n for n in item_params(coll) if n not in _PAGING]
    args = single_args([*names, *extra])
    extras = {name: args.pop(name) for name in extra if name in args}
    query = parse_items_query(coll, args, paged=False)
    query.scope = scope_condition(current_account(), coll)
    return query, extras


def _map_error(exc: mapdata.MapDataError) -> ApiError:
    return ApiError(400, exc.message, field=exc.field)


@bp.get("/map/summary")
def map_summary():
    query, _ = issue_query()
    counts = mapdata.class_counts(get_session(), _issues(), query)
    return jsonify(
        {
            "classes": [
                {"id": c.id, "title": c.title, "colour": c.colour, "count": counts[c.id]}
                for c in mapdata.ISSUE_CLASSES
            ],
            "total": counts["total"],
        }
    )


@bp.get("/map/counts")
def map_counts():
    query, extra = issue_query(("of", "measure"))
    of, measure = extra.get("of", "grid"), extra.get("measure", "open")
    try:
        counts = mapdata.area_counts(get_session(), layers(), _issues(), of, measure, query)
    except mapdata.MapDataError as exc:
        raise _map_error(exc) from None
    values = list(counts.values())
    return jsonify(
        {
            "of": of,
            "of_title": mapdata.choropleth_groupings(layers())[of],
            "measure": measure,
            "measure_title": mapdata.MEASURES[measure][0],
            "counts": {str(k): v for k, v in counts.items()},
            "breaks": mapdata.class_breaks(values),
            "total": sum(values),
            "max": max(values, default=0),
        }
    )


@bp.get("/map/heat")
def map_heat():
    query, extra = issue_query(("bbox", "z"))
    if "bbox" not in extra:
        raise ApiError(
            400, "缺少 bbox（当前地图范围：最小经度,最小纬度,最大经度,最大纬度）", field="bbox"
        )
    bbox = parse_bbox(extra["bbox"])
    try:
        z = int(extra.get("z", ""))
    except ValueError:
        raise ApiError(400, "z 应为 0–22 的整数（当前缩放级别）", field="z") from None
    if not 0 <= z <= MAX_ZOOM:
        raise ApiError(400, "z 应为 0–22 的整数（当前缩放级别）", field="z")
    try:
        cells = mapdata.heat_cells(get_session(), _issues(), query, bbox, z)
    except mapdata.MapDataError as exc:
        raise _map_error(exc) from None
    return jsonify(
        {
            "points": [[round(lat, 6), round(lon, 6), n] for lat, lon, n in cells],
            "max": max((n for _, _, n in cells), default=0),
        }
    )


@bp.get("/map/areas/<level>/tiles/<int:z>/<int:x>/<int:y>.pbf")
def map_area_tile(level: str, z: int, x: int, y: int):
    require("layers.read")
    args = single_args(["shift"])
    if level not in LEVELS:
        raise ApiError(404, f"没有名为 {level!r} 的区划级别", {"levels": list(LEVELS)})
    if not tile_in_range(z, x, y):
        raise ApiError(404, f"切片 {z}/{x}/{y} 不存在（缩放级别 0–{MAX_ZOOM}）")
    offset = tile_offset(args.get("shift"), z, x, y)
    where, params = scope.to_sql(scope.area_filter(current_account(), literal_column("a.id")))
    return cached_tile(
        LAYERS_LAYER,
        (where, params),
        lambda: area_tile(get_session(), level, z, x, y, (where, params), offset),
    )


@bp.get("/map/labels/<collection_id>/tiles/<int:z>/<int:x>/<int:y>.pbf")
@collection_read
def map_label_tile(collection_id: str, z: int, x: int, y: int):
    """Label points of a layer that declares a `label` (grids: their codes), with the
    layer's filters, like its tiles."""
    coll = collection_or_404(collection_id)
    if coll.spec is None or coll.spec.label is None:
        raise ApiError(404, f"集合 {collection_id} 没有标注", field="collectionId")
    args = single_args(tile_params(coll))
    if not tile_in_range(z, x, y):
        raise ApiError(404, f"切片 {z}/{x}/{y} 不存在（缩放级别 0–{MAX_ZOOM}）")
    offset = tile_offset(args.pop("shift", None), z, x, y)
    query = parse_items_query(coll, args, paged=False) if args else ItemsQuery()
    query.scope = scope_condition(current_account(), coll)
    cap = int(current_app.config.get("TILE_MAX_FEATURES", 5000))
    return cached_tile(
        LAYERS_LAYER,
        (query.scope, cap),
        lambda: label_tile(get_session(), coll, z, x, y, query, cap, coll.spec.label, offset),
    )


@bp.get("/map/screen")
def map_screen():
    """City-wide figures for the big screen (accounts not bound to an area: the figures are
    the published county-wide ones)."""
    account = require("issues.read", ISSUES)
    require("rankings.read")
    if not whole_county(account):
        raise ApiError(403, "大屏统计为全县口径，仅供不限区域的账号使用")
    single_args(())
    session = get_session()
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    now = datetime.now(zone)
    week = custom_period(period_containing("week", now.date(), zone).start, now)
    totals = _week_totals(session, week)
    query = ItemsQuery(scope=scope_condition(account, _issues()))
    counts = mapdata.class_counts(session, _issues(), query)
    latest = mapdata.latest_issues(session, _issues(), query, limit=12)
    return jsonify(
        {
            "at": now.isoformat(timespec="seconds"),
            "week": week.as_dict(),
            "open": counts["total"] - counts["closed"],
            "overdue": counts["overdue"],
            "fixed": counts["fixed"],
            "closed_this_week": totals["closed"],
            "received_this_week": totals["received"],
            "close_rate": totals["close_rate"],
            "classes": [
                {"id": c.id, "title": c.title, "colour": c.colour, "count": counts[c.id]}
                for c in mapdata.ISSUE_CLASSES
            ],
            "latest": [_latest_row(r, zone) for r in latest],
        }
    )


# The week's ranking figures take a second or two on a million issues; every wall screen asks
# each minute. They are the same for every caller (county-wide), so each worker keeps them
# for MAP_SCREEN_CACHE_SECONDS (config).
_week_totals_cache = TtlCache()


def _week_totals(session: Session, week: Period) -> dict[str, Any]:
    from geoservice.ranking.vocabularies import ranking_settings

    settings = ranking_settings(session, current_app.config, week.start)
    return _week_totals_cache.get(
        (current_app.config["DATABASE_URL"], week.start),
        current_app.config["MAP_SCREEN_CACHE_SECONDS"],
        lambda: ranking.totals(session, layers(), week, settings),
    )


def _latest_row(row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": row["id"],
        "category": row["category"],
        "source": row["source"],
        "status": row["status"],
        "status_label": ISSUE_STATUSES.get(row["status"], row["status"]),
        "class": row["class"],
        "reported_at": row["reported_at"].astimezone(zone).isoformat(timespec="minutes"),
        "place": row["place"],
        "leader": row["leader"],
        "description": row["description"],
        "lon": row["lon"],
        "lat": row["lat"],
    }
