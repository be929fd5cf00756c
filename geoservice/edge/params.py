"""Query parameters, formats and links of the OGC API (the edge: parse, check, render)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, request, url_for
from werkzeug.datastructures import MIMEAccept

from geoservice.catalogue.catalogue import ISSUES, Collection
from geoservice.catalogue.items import ItemsQuery
from geoservice.edge.vocabularies import unknown_issue_names
from geoservice.errors import ApiError
from geoservice.input_values import shown

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
MVT = "application/vnd.mapbox-vector-tile"

DEFAULT_LIMIT = 100


def max_limit() -> int:
    return int(current_app.config.get("MAX_FEATURES_PER_REQUEST", 10_000))


def single_args(allowed: Iterable[str]) -> dict[str, str]:
    """The query string as a dict; unknown or repeated parameters are a 400 naming them."""
    allowed = set(allowed)
    out: dict[str, str] = {}
    for name in request.args:
        if name not in allowed:
            listed = "、".join(sorted(allowed)) if allowed else "（无，此接口不接受查询参数）"
            raise ApiError(
                400,
                f"未知的查询参数 {name!r}；可用的参数：{listed}",
                {"parameter": name, "allowed": sorted(allowed)},
                field=name,
            )
        values = request.args.getlist(name)
        if len(values) > 1:
            raise ApiError(400, f"查询参数 {name!r} 只能出现一次", field=name)
        if "\x00" in values[0]:  # PostgreSQL text cannot hold it
            raise ApiError(400, f"查询参数 {name!r} 含有非法字符（NUL）", field=name)
        out[name] = values[0]
    return out


def accepted_types() -> MIMEAccept:
    """The request's Accept without media-type parameters (`application/json; charset=utf-8`,
    `…openapi+json;version=3.0`): each is served as the plain type it names (RFC 9110
    §12.5.1), where matching them literally refused the very types we send."""
    return MIMEAccept(
        [(value.split(";", 1)[0].strip(), quality) for value, quality in request.accept_mimetypes]
    )


def output_format(args: Mapping[str, str], formats: tuple[str, ...] = ("json", "html")) -> str:
    """`f=` wins; otherwise the Accept header (JSON for */*, HTML only when preferred)."""
    f = args.get("f")
    if f is not None:
        if f == "geojson" and "json" in formats:
            return "json"
        if f not in formats:
            raise ApiError(400, f"不支持的输出格式 f={f!r}", {"formats": list(formats)}, field="f")
        return f
    offered = [GEOJSON, JSON, "application/vnd.oai.openapi+json", HTML]
    if not request.accept_mimetypes:
        return "json"
    best = accepted_types().best_match(offered)
    if best is None:
        raise ApiError(406, "不支持请求的格式（Accept）", {"available": [GEOJSON, JSON, HTML]})
    if best == HTML and "html" in formats:
        return "html"
    return "json"


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT, maximum: int | None = None) -> int:
    """`limit`: a positive integer. Without `maximum` (the OGC items) a larger value is cut to
    MAX_FEATURES_PER_REQUEST, as OGC API – Features asks; the JSON lists pass their `maximum`
    and refuse more with a 400 naming it."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"limit 应为正整数，收到 {shown(raw)}", field="limit") from None
    if value < 1:
        raise ApiError(400, "limit 至少为 1", field="limit")
    if maximum is not None and value > maximum:
        raise ApiError(400, f"limit 不能超过 {maximum}", {"maximum": maximum}, field="limit")
    return min(value, max_limit())


MAX_OFFSET = 1_000_000_000  # beyond any table here; larger numbers overflow PostgreSQL's bigint


def parse_offset(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"offset 应为非负整数，收到 {shown(raw)}", field="offset") from None
    if value < 0:
        raise ApiError(400, "offset 不能为负数", field="offset")
    if value > MAX_OFFSET:
        raise ApiError(400, f"offset 不能超过 {MAX_OFFSET}", field="offset")
    return value


def parse_paging(
    args: Mapping[str, str], default: int = DEFAULT_LIMIT, maximum: int = 1000
) -> tuple[int, int]:
    """`limit` and `offset` of a JSON list (answered with numberMatched / numberReturned)."""
    return parse_limit(args.get("limit"), default, maximum), parse_offset(args.get("offset"))


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    try:
        numbers = [float(v) for v in raw.split(",")]
    except ValueError:
        raise ApiError(
            400, "bbox 应为逗号分隔的数字：最小经度,最小纬度,最大经度,最大纬度", field="bbox"
        ) from None
    # Four numbers: the only bbox-crs is CRS84, which has no height (6 numbers are CRS84h's).
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise ApiError(400, "bbox 需要 4 个数字：最小经度,最小纬度,最大经度,最大纬度", field="bbox")
    minx, miny, maxx, maxy = numbers
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise ApiError(
            400, "bbox 超出经纬度范围（经度 −180…180，纬度 −90…90，顺序为经度在前）", field="bbox"
        )
    if miny > maxy:
        raise ApiError(400, "bbox 的最小纬度大于最大纬度", field="bbox")
    if minx > maxx:
        raise ApiError(
            400,
            "bbox 的最小经度大于最大经度：若是顺序写反，应为 最小经度,最小纬度,最大经度,最大纬度；"
            "若是跨越 180° 经线的范围，暂不支持，请拆成两次查询",
            field="bbox",
        )
    return minx, miny, maxx, maxy


UNENCODED_PLUS = re.compile(r":\d{2}(\.\d+)? \d{2}:?\d{2}$")  # hh:mm:ss[.f] then " 08:00"


def _parse_instant(raw: str, end: bool) -> datetime:
    tz = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))
    if UNENCODED_PLUS.search(raw):
        # A "+08:00" offset sent unencoded arrives as " 08:00" (a + in a query is a space).
        raise ApiError(
            400,
            f"datetime 无法识别 {raw!r}：时区偏移的 + 须编码为 %2B"
            "（如 2026-11-01T08:00:00%2B08:00），或用 Z 表示 UTC",
            field="datetime",
        )
    raw = raw.replace("t", "T").replace("z", "Z")  # RFC 3339 §5.6 allows lower case
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day, time.min, tz)
            return moment + timedelta(days=1, microseconds=-1) if end else moment
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            400,
            f"datetime 无法识别 {raw!r}，应为 RFC 3339 时间，如 2026-11-01T08:00:00+08:00",
            field="datetime",
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def parse_datetime(raw: str) -> tuple[datetime | None, datetime | None]:
    if "/" in raw:
        start_raw, _, end_raw = raw.partition("/")
        start = None if start_raw in ("", "..") else _parse_instant(start_raw, end=False)
        end = None if end_raw in ("", "..") else _parse_instant(end_raw, end=True)
        if start is not None and end is not None and start > end:
            raise ApiError(400, "datetime 的开始时间晚于结束时间", field="datetime")
        return start, end
    if len(raw) == 10:  # a whole day
        return _parse_instant(raw, end=False), _parse_instant(raw, end=True)
    moment = _parse_instant(raw, end=False)
    return moment, moment


BASE_ITEM_PARAMS = ("f", "limit", "offset", "bbox", "bbox-crs", "crs")
CRS84_NAMES = (CRS84, "CRS84", "EPSG:4326")  # lon, lat: "EPSG:4326" as GIS tools write it
CONTENT_CRS = f"<{CRS84}>"


def check_output_crs(args: Mapping[str, str]) -> None:
    """`crs` (OGC API – Features Part 2), as clients send the storageCrs a collection states
    (GDAL does): CRS84 only, the one the features are stored and served in."""
    crs = args.get("crs")
    if crs is not None and crs not in (CRS84, "CRS84"):
        raise ApiError(400, f"crs 只支持 {CRS84}（经度、纬度）", {"crs": [CRS84]}, field="crs")


def item_params(collection: Collection) -> list[str]:
    # `datetime` on every collection (OGC API – Features /req/core/fc-time-definition): a
    # collection without a time matches it whatever its value (parse_items_query).
    return [*BASE_ITEM_PARAMS, "datetime", *collection.filters]


def parse_items_query(
    collection: Collection, args: Mapping[str, str], paged: bool = True
) -> ItemsQuery:
    query = ItemsQuery()
    if paged:
        query.limit = parse_limit(args.get("limit"))
        query.offset = parse_offset(args.get("offset"))
    check_output_crs(args)
    crs = args.get("bbox-crs")
    if crs is not None and crs not in CRS84_NAMES:
        raise ApiError(400, f"bbox-crs 只支持 {CRS84}", field="bbox-crs")
    if "bbox" in args:
        query.bbox = parse_bbox(args["bbox"])
    if "datetime" in args:
        interval = parse_datetime(args["datetime"])  # checked even where it filters nothing
        if collection.temporal_column:
            query.interval = interval
    for name, flt in collection.filters.items():
        if name in args:
            try:
                query.filters[name] = flt.parse(args[name])
            except ValueError as exc:
                raise ApiError(400, f"查询参数 {name}：{exc}", field=name) from None
            if collection.id == ISSUES and name in ("category", "source"):
                unknown = unknown_issue_names(name, query.filters[name])
                if unknown:
                    what = "问题类别" if name == "category" else "问题来源"
                    raise ApiError(
                        400,
                        f"查询参数 {name}：没有这个{what}：{'、'.join(unknown)}"
                        "（可选值见 /api/vocabularies）",
                        field=name,
                    )
    return query


def link(rel: str, type_: str, href: str, title: str | None = None, **extra: Any) -> dict:
    out: dict[str, Any] = {"rel": rel, "type": type_, "href": href}
    if title:
        out["title"] = title
    out.update(extra)
    return out


URL_CACHE = "geoservice.url_cache"  # app.extensions key
URL_CACHE_SIZE = 4096
# What url_for(_external=True) reads of a request (ProxyFix, when on, has rewritten them).
_URL_ENVIRON = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")


def url(endpoint: str, **values: Any) -> str:
    """url_for(endpoint, _external=True, **values), remembered per app for the request's
    scheme, host and script root (issue 19: a catalogue answer builds ~170 links, an items page
    5, each a werkzeug build with its quoting). Relative endpoints, unhashable values and apps
    with URL default functions are not remembered."""
    if not has_request_context() or endpoint.startswith(".") or current_app.url_default_functions:
        return url_for(endpoint, _external=True, **values)
    environ = request.environ
    try:
        key = (
            endpoint,
            tuple(environ.get(name) for name in _URL_ENVIRON),
            tuple((name, type(value), value) for name, value in values.items()),
        )
        cache = current_app.extensions.setdefault(URL_CACHE, {})
        known = cache.get(key)
    except TypeError:  # a list of values (a repeated query parameter)
        return url_for(endpoint, _external=True, **values)
    if known is None:
        known = url_for(endpoint, _external=True, **values)
        if len(cache) >= URL_CACHE_SIZE:
            cache.clear()
        cache[key] = known
    return known


def self_and_alternate(endpoint: str, html: bool, title: str, **values: Any) -> list[dict]:
    """`self` for the format served, `alternate` for the other one."""
    json_link = link("self", JSON, url(endpoint, f="json", **values), title)
    html_link = link("alternate", HTML, url(endpoint, f="html", **values), f"{title}（网页）")
    if html:
        json_link["rel"], html_link["rel"] = "alternate", "self"
    return [json_link, html_link]


# The audit log's filters (GET /api/audit and the admin page).
AUDIT_MAX_LIMIT = 1000


def _when(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(
            400, "时间格式应为 ISO 8601，例如 2026-11-01 或 2026-11-01T08:00:00+08:00", field=field
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
    return moment


def moment_arg(name: str) -> datetime | None:
    """A query parameter naming a moment (`at=`): an ISO 8601 day (its start, local time) or
    time (without an offset: local time); absent: None; given empty: a 400."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.strip():
        raise ApiError(400, f"{name} 为空：不指定时刻请省略该参数", field=name)
    return _when(raw.strip(), name)


def parse_audit_filters(
    args: Mapping[str, str], default_limit: int = 100
) -> tuple[dict[str, Any], int, int]:
    filters: dict[str, Any] = {
        key: (args.get(key) or "").strip()[:64] or None
        for key in ("user", "entity", "entity_id", "action")
    }
    for key in ("since", "until"):
        raw = (args.get(key) or "").strip()
        filters[key] = _when(raw, key) if raw else None
    # An empty box of the admin page's filter form means the default.
    paging = {k: v for k in ("limit", "offset") if (v := args.get(k)) not in (None, "")}
    limit, offset = parse_paging(paging, default_limit, AUDIT_MAX_LIMIT)
    return filters, limit, offset


def content_disposition(filename: str, ascii_hint: str) -> str:
    """`attachment` with the Chinese file name (RFC 5987 `filename*`) and a meaningful ASCII
    `filename` for clients that ignore it (RFC 6266 §4.3): `ascii_hint` plus the name's own
    ASCII part (通报-2026-W48.xlsx → report-2026-W48.xlsx), never ".xlsx" or "-2026…"."""
    path = PurePosixPath(filename)
    own = re.sub(r"[^A-Za-z0-9._-]+", "", path.stem).strip("-._")
    fallback = f"{ascii_hint}-{own}" if own else ascii_hint
    return f"attachment; filename=\"{fallback}{path.suffix}\"; filename*=UTF-8''{quote(filename)}"
