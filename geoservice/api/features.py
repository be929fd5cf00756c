"""OGC API – Features Part 1: landing page, conformance, collections, items, one item."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, render_template, request

from geoservice.accounts.auth import current_account, require
from geoservice.accounts.permissions import ANY_COLLECTION
from geoservice.api import bp
from geoservice.catalogue.catalogue import Collection
from geoservice.catalogue.items import get_feature, items_page, set_timezone
from geoservice.catalogue.tiles import collection_extents
from geoservice.db import autocommit_read, get_session
from geoservice.edge.access import (
    catalogue,
    collection_or_404,
    collection_read,
    readable,
    scope_condition,
    signed_in,
)
from geoservice.edge.caching import (
    catalogue_subjects,
    keep_page,
    kept_page,
    page_area,
    read_subjects,
    validated,
)
from geoservice.edge.caching import enabled as caching_enabled
from geoservice.edge.params import (
    CONTENT_CRS,
    CRS84,
    GEOJSON,
    HTML,
    JSON,
    MVT,
    OPENAPI,
    check_output_crs,
    item_params,
    link,
    output_format,
    parse_items_query,
    self_and_alternate,
    single_args,
    url,
)
from geoservice.errors import ApiError

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
]

TITLE = "创文包保 GIS"


def json_response(body: Any, content_type: str = JSON, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str), status=status, mimetype=content_type
    )


def _html(template: str, **context: Any) -> Response:
    return Response(render_template(template, **context), mimetype=HTML)


@bp.get("")
@bp.get("/")
@signed_in
def landing():
    fmt = output_format(single_args(["f"]))
    body = {
        "title": TITLE,
        "description": "网格、道路、农贸市场、居民小区等图层与问题的 OGC API – Features 接口",
        "links": [
            *self_and_alternate("api.landing", fmt == "html", "本页"),
            link("service-desc", OPENAPI, url("api.openapi_document"), "OpenAPI 3.0 接口定义"),
            link("service-doc", HTML, url("api.openapi_document", f="html"), "接口说明（网页）"),
            link("conformance", JSON, url("api.conformance"), "符合的标准类"),
            link("data", JSON, url("api.collections"), "集合列表"),
        ],
    }
    if fmt == "html":
        return _html("api/landing.html", body=body, collections=readable(catalogue()))
    return json_response(body)


@bp.get("/conformance")
@signed_in
def conformance():
    fmt = output_format(single_args(["f"]))
    body = {
        "conformsTo": CONFORMANCE,
        "links": self_and_alternate("api.conformance", fmt == "html", "符合的标准类"),
    }
    if fmt == "html":
        return _html("api/conformance.html", body=body)
    return json_response(body)


def describe(collection: Collection, extents: dict[str, Any]) -> dict[str, Any]:
    cid = collection.id
    out: dict[str, Any] = {
        "id": cid,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "geometryTypes": list(collection.geometry_types),
        "writable": collection.writable,
    }
    extent = extents.get(cid) or {}
    if extent.get("bbox"):
        out["extent"] = {"spatial": {"bbox": [extent["bbox"]], "crs": CRS84}}
    if collection.temporal_property:
        interval = extent.get("interval") or [None, None]
        out.setdefault("extent", {})["temporal"] = {
            "interval": [interval],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    out["links"] = collection_links(collection)
    return out


COLLECTION_LINKS = "geoservice.collection_links"  # app.extensions key


def collection_links(collection: Collection) -> list[dict[str, Any]]:
    """A collection's links (the same for every request to this scheme, host and script root:
    remembered per app, at most a few hosts' worth; copies are handed out)."""
    root = url("api.collections")
    cache = current_app.extensions.setdefault(COLLECTION_LINKS, {})
    key = (root, collection.id, collection.title)
    known = cache.get(key)
    if known is None:
        known = _collection_links(collection)
        if len(cache) >= 1024:
            cache.clear()
        cache[key] = known
    return [dict(entry) for entry in known]


def _collection_links(collection: Collection) -> list[dict[str, Any]]:
    cid = collection.id
    return [
        link("self", JSON, url("api.collection", collection_id=cid), collection.title),
        link("alternate", HTML, url("api.collection", collection_id=cid, f="html"), "网页"),
        link("items", GEOJSON, url("api.items", collection_id=cid), f"{collection.title}要素"),
        link("items", HTML, url("api.items", collection_id=cid, f="html"), "要素（网页）"),
        # Not OGC's rel "tilesets-vector": that names an OGC API – Tiles tileset list, which
        # clients (GDAL's OGCAPI driver) then fail to read from a TileJSON document.
        link(
            "describedby",
            JSON,
            url("api.tilejson", collection_id=cid),
            "矢量切片（TileJSON）",
        ),
        link(
            "item",
            MVT,
            url("api.tilejson", collection_id=cid) + "/{z}/{x}/{y}.pbf",
            "矢量切片（Mapbox Vector Tile）",
            templated=True,
        ),
        *(
            link("enclosure", mime, url("api.export", collection_id=cid, f=f), f"导出（{label}）")
            for f, mime, label in (
                ("geojson", GEOJSON, "GeoJSON"),
                ("gpkg", "application/geopackage+sqlite3", "GeoPackage"),
                ("csv", "text/csv", "CSV，WKT 几何"),
            )
        ),
    ]


@bp.get("/collections")
@autocommit_read
@signed_in
@validated(lambda: catalogue_subjects(catalogue()), store=True)
def collections():
    fmt = output_format(single_args(["f"]))
    shown = readable(catalogue())  # a token scoped to some collections lists only those
    if not shown:
        require("layers.read", ANY_COLLECTION)  # 403 with the reason
    extents = collection_extents(get_session(), shown, remember=caching_enabled())
    body = {
        "collections": [describe(c, extents) for c in shown],
        "links": self_and_alternate("api.collections", fmt == "html", "集合列表"),
    }
    if fmt == "html":
        return _html("api/collections.html", body=body)
    return json_response(body)


@bp.get("/collections/<collection_id>")
@collection_read
def collection(collection_id: str):
    coll = collection_or_404(collection_id)
    fmt = output_format(single_args(["f"]))
    body = describe(coll, collection_extents(get_session(), [coll], remember=caching_enabled()))
    if fmt == "html":
        return _html("api/collection.html", body=body, collection=coll)
    return json_response(body)


def _page_links(coll: Collection, args: dict[str, str], page, limit: int, offset: int, html: bool):
    cid = coll.id
    others = {k: v for k, v in args.items() if k not in ("offset", "f")}
    links = self_and_alternate(
        "api.items", html, f"{coll.title}要素", collection_id=cid, offset=offset, **others
    )
    fmt = "html" if html else "json"
    mime = HTML if html else GEOJSON
    for link_ in links:
        if link_["type"] == JSON:
            link_["type"] = GEOJSON
    if page.more:
        links.append(
            link(
                "next",
                mime,
                url("api.items", collection_id=cid, f=fmt, offset=offset + limit, **others),
                "下一页",
            )
        )
    if offset > 0:
        links.append(
            link(
                "prev",
                mime,
                url("api.items", collection_id=cid, f=fmt, offset=max(offset - limit, 0), **others),
                "上一页",
            )
        )
    links.append(link("collection", JSON, url("api.collection", collection_id=cid), coll.title))
    return links


@bp.get("/collections/<collection_id>/items")
@autocommit_read
@collection_read
@validated(lambda collection_id: read_subjects(collection_id), store=True)
def items(collection_id: str):
    coll = collection_or_404(collection_id)
    args = single_args(item_params(coll))
    fmt = output_format(args)
    query = parse_items_query(coll, args)
    query.scope = scope_condition(current_account(), coll)
    session = get_session()
    area = page_area(coll, query)
    page = kept_page(session, coll, query) if area is not None else None
    if page is None:
        page = items_page(session, coll, query, current_app.config["TIMEZONE"], area)
        if area is not None:
            keep_page(page, coll, query)
    links = _page_links(coll, args, page, query.limit, query.offset, fmt == "html")
    tail: dict[str, Any] = {}
    if page.number_matched is not None:  # omitted when too costly to count (OGC allows it)
        tail["numberMatched"] = page.number_matched
    tail["numberReturned"] = page.number_returned
    tail["timeStamp"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    tail["links"] = links
    if fmt == "html":
        features = json.loads(b"[" + page.body + b"]")
        return _html(
            "api/items.html",
            collection=coll,
            features=features,
            tail=tail,
            query=query,
            columns=_html_columns(coll, features),
        )
    body = b"".join(
        (
            b'{"type":"FeatureCollection","features":[',
            page.body,
            b"],",
            json.dumps(tail, ensure_ascii=False)[1:].encode(),
        )
    )
    response = Response(body, mimetype=GEOJSON)
    response.headers["Content-Crs"] = CONTENT_CRS
    return response


def _html_columns(coll: Collection, features: list[dict]) -> list[str]:
    columns: list[str] = []
    for feature in features:
        for key in feature["properties"]:
            if key not in columns:
                columns.append(key)
    return columns


def parse_feature_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(404, f"没有编号为 {raw!r} 的要素", field="featureId") from None
    if not 0 < value < 2**63:
        raise ApiError(404, f"没有编号为 {raw!r} 的要素", field="featureId")
    return value


def feature_response(coll: Collection, fid: int, text: str, etag: str, status: int = 200):
    cid = coll.id
    links = [
        link("self", GEOJSON, url("api.item", collection_id=cid, feature_id=fid)),
        link("alternate", HTML, url("api.item", collection_id=cid, feature_id=fid, f="html")),
        link("collection", JSON, url("api.collection", collection_id=cid), coll.title),
    ]
    body = text[:-1] + ',"links":' + json.dumps(links, ensure_ascii=False) + "}"
    response = Response(body, status=status, mimetype=GEOJSON)
    response.headers["ETag"] = f'"{etag}"'
    response.headers["Content-Crs"] = CONTENT_CRS
    return response


@bp.get("/collections/<collection_id>/items/<feature_id>")
@collection_read
def item(collection_id: str, feature_id: str):
    coll = collection_or_404(collection_id)
    args = single_args(["f", "crs"])
    check_output_crs(args)
    fmt = output_format(args)
    fid = parse_feature_id(feature_id)
    session = get_session()
    set_timezone(session, current_app.config["TIMEZONE"])
    found = get_feature(session, coll, fid, scope_condition(current_account(), coll))
    if found is None:
        raise ApiError(404, f"集合 {coll.id} 中没有编号为 {fid} 的要素", field="featureId")
    text, etag = found
    if fmt == "html":
        return _html("api/item.html", collection=coll, feature=json.loads(text))
    if request.if_none_match and request.if_none_match.contains(etag):
        response = Response(status=304)
        response.headers["ETag"] = f'"{etag}"'
        return response
    return feature_response(coll, fid, text, etag)
