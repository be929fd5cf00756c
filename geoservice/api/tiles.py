"""Vector tiles: /collections/{id}/tiles/{z}/{x}/{y}.pbf and its TileJSON.

Tiles take the collection's property filters (as items do) and `datetime` (issues), so a map
draws exactly what its filters select; `shift=gcj02` serves the tile of the GCJ-02 plane
(for 高德 basemaps: the WGS-84 data moved by the datum shift at the tile's centre).

Every tile answer carries an ETag (its request, the caller's scope and the generation of the
data it draws, geoservice.catalogue.tilecache) and `Cache-Control: private, no-cache`: the
browser keeps the tile but asks again each time, and gets 304 without the tile being rendered
when nothing it draws has changed; a write shows on the very next request. Each worker also
keeps recently rendered tiles (TILE_CACHE_BYTES) under the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request

from geoservice.accounts.auth import current_account
from geoservice.api import bp
from geoservice.api.features import json_response
from geoservice.catalogue.catalogue import ISSUES, Collection
from geoservice.catalogue.items import ItemsQuery
from geoservice.catalogue.tilecache import (
    ISSUES_LAYER,
    LAYERS_LAYER,
    TileCache,
    generation,
    issue_tile_generation,
    tile_key,
)
from geoservice.catalogue.tilegrid import MAX_ZOOM, SHIFTS, Offset, datum_offset, tile_in_range
from geoservice.catalogue.tiles import (
    AGGREGATE_MAX_ZOOM,
    LOW_DETAIL_MAX_ZOOM,
    collection_extents,
    generalisable,
    render_tile,
)
from geoservice.db import get_session
from geoservice.edge.access import collection_or_404, collection_read, scope_condition
from geoservice.edge.caching import enabled as caching_enabled
from geoservice.edge.params import MVT, parse_items_query, single_args, url
from geoservice.errors import ApiError
from geoservice.input_values import shown


def tile_params(collection: Collection) -> list[str]:
    """The collection's property filters (and `datetime`), plus `shift`."""
    names = list(collection.filters)
    if collection.temporal_column:
        names.append("datetime")
    return [*names, "shift"]


def tile_offset(shift: str | None, z: int, x: int, y: int) -> Offset | None:
    """`shift=gcj02`: the tile is of the GCJ-02 plane (高德 basemaps); None: no shift."""
    if shift is None:
        return None
    if shift not in SHIFTS:
        raise ApiError(400, f"shift 只支持 {'、'.join(SHIFTS)}，收到 {shown(shift)}", field="shift")
    return datum_offset(shift, z, x, y)


TILE_CACHE_CONTROL = "private, no-cache"


def _tile_cache() -> TileCache | None:
    size = int(current_app.config.get("TILE_CACHE_BYTES", 32 * 1024 * 1024))
    if size <= 0:
        return None
    cache = current_app.extensions.get("tile_cache")
    if cache is None or cache.max_bytes != size:
        cache = current_app.extensions["tile_cache"] = TileCache(size)
    return cache


def cached_tile(
    layer: str, scope: Any, render: Callable[[], bytes], area: tuple[int, int, int] | None = None
) -> Response:
    """The tile of this request: 304 when the client's ETag is current, else from the worker's
    cache or `render()`. `layer`: 'issues' or 'layers' (whose writes change the tile); `scope`:
    the caller's scope SQL (part of the key: accounts seeing different things never share);
    `area`: the tile's z, x, y (an issue tile then keys on the writes in its area only)."""
    session = get_session()
    parts = [request.path, sorted(request.args.items(multi=True)), repr(scope)]
    if layer == ISSUES_LAYER:
        if area is None:
            raise ValueError("an issue tile keys on its area")
        current = issue_tile_generation(session, *area)
    else:
        current = generation(session, layer)
    etag = tile_key(layer, current, parts)
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        cache = _tile_cache()
        data = cache.get(etag) if cache is not None else None
        if data is None:
            data = render()
            if cache is not None:
                cache.put(etag, data)
        response = Response(data, mimetype=MVT)
    response.set_etag(etag)
    response.headers["Cache-Control"] = TILE_CACHE_CONTROL
    return response


@bp.get("/collections/<collection_id>/tiles")
@collection_read
def tilejson(collection_id: str):
    coll = collection_or_404(collection_id)
    f = single_args(["f"]).get("f")
    if f not in (None, "json"):
        raise ApiError(400, f"不支持的输出格式 f={f!r}", {"formats": ["json"]}, field="f")
    extent = collection_extents(get_session(), [coll], remember=caching_enabled()).get(coll.id, {})
    bbox = extent.get("bbox") or [-180, -85.0511, 180, 85.0511]
    fields = {name: "" for name, _ in coll.tile_columns}
    if coll.id == ISSUES:
        fields.update({"count": "低缩放级别：格网内问题数", "open": "其中未销号", "cluster": ""})
    body = {
        "tilejson": "3.0.0",
        "name": coll.title,
        "description": coll.description,
        "scheme": "xyz",
        "tiles": [url("api.tilejson", collection_id=coll.id) + "/{z}/{x}/{y}.pbf"],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bbox,
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, 12],
        "vector_layers": [{"id": coll.id, "description": coll.title, "fields": fields}],
    }
    if generalisable(coll):  # low zoom: what is under a pixel, folded into counted points
        body["vector_layers"].append(
            {
                "id": f"{coll.id}_folded",
                "description": f"{coll.title}（低缩放级别：小于一个像素的要素，按格网计数）",
                "fields": {"count": "格网内被合并的要素数"},
                "minzoom": 0,
                "maxzoom": LOW_DETAIL_MAX_ZOOM,
            }
        )
    if coll.id == ISSUES:
        body["aggregate_max_zoom"] = AGGREGATE_MAX_ZOOM
    return json_response(body)


@bp.get("/collections/<collection_id>/tiles/<int:z>/<int:x>/<int:y>.pbf")
@collection_read
def tile(collection_id: str, z: int, x: int, y: int):
    coll = collection_or_404(collection_id)
    args = single_args(tile_params(coll))
    if not tile_in_range(z, x, y):
        raise ApiError(404, f"切片 {z}/{x}/{y} 不存在（缩放级别 0–{MAX_ZOOM}）")
    offset = tile_offset(args.pop("shift", None), z, x, y)
    query = parse_items_query(coll, args, paged=False) if args else ItemsQuery()
    query.scope = scope_condition(current_account(), coll)
    cap = int(current_app.config.get("TILE_MAX_FEATURES", 5000))
    layer = ISSUES_LAYER if coll.id == ISSUES else LAYERS_LAYER
    return cached_tile(
        layer,
        (query.scope, cap),
        lambda: render_tile(get_session(), coll, z, x, y, query, cap, offset),
        (z, x, y),
    )
