"""Reading features: one SQL statement per page builds the GeoJSON text in PostgreSQL.

`numberMatched` is exact when it is known without visiting many rows, and omitted otherwise
(OGC API – Features lets a server omit it when it is "difficult to compute"):

- a page that is not full: offset + returned, free;
- `issues` filtered at most by status: a sum over the pre-aggregated tile counts
  (`issue_tile_counts`, kept exact by triggers), plus, with a bbox, the issues of the border
  strips counted one by one — only while the cells crossed by the bbox's edges hold at
  most 2 × COUNT_LIMIT issues (about twice the strips' own);
- otherwise a count of the filtered rows in the same statement (same snapshot) that stops
  after COUNT_LIMIT + 1 rows: exact up to COUNT_LIMIT, omitted above (for the other layers,
  which hold tens of thousands of features at most, LAYER_COUNT_LIMIT).

(The limit is `limit` instead when the page is larger: counting then costs at most as many
row visits as the page itself.)

Whether there is a next page never depends on the count: the page reads one row more than
`limit` (`Page.more`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice import prepared
from geoservice.catalogue.catalogue import ISSUES, Collection, Sql
from geoservice.catalogue.tilegrid import COUNT_LEVELS, FINEST_LEVEL, tile_lat, tile_lon, tile_y
from geoservice.db import driver_row
from geoservice.httpcache import IssueArea
from geoservice.vocab import OPEN_STATUSES

# The coarsest level of issue_tile_counts holds every issue exactly once.
COUNT_LEVEL = 5
# numberMatched visits at most this many rows one by one, or as many as the page holds
# (`limit`) if more; past that it is omitted. (A 100-feature page's exact count of a
# 20,000-issue bbox visited ~8,000 border rows: most of the page's time. See docs/api.md,
# "How a page is built".)
COUNT_LIMIT = 1000
# Layers (grids, roads, sites…) hold tens of thousands of features at most, read by integrations
# that want the total: counted exactly up to this many.
LAYER_COUNT_LIMIT = 100_000


@dataclass
class ItemsQuery:
    limit: int = 100
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    # What the caller may see (SQL on the collection's base aliases, its parameters).
    scope: tuple[str, dict[str, Any]] | None = None


@dataclass
class Page:
    body: bytes  # the features, comma-separated GeoJSON text (UTF-8)
    number_returned: int
    number_matched: int | None  # None: not counted (too many rows to count cheaply)
    more: bool  # are there features after this page?
    # Asked with an area: the id of the last feature, and the generation of the area's writes
    # that touched an issue up to it (read with the page): while it stays the same, so do the
    # page's features if the page was full (later reports have higher ids).
    last_id: int | None = None
    changes_below: tuple[int, int] | None = None
    # The first moment an open issue of the page becomes overdue (None: none will), as the
    # database's text of a timestamptz: until then its `overdue` flags hold.
    overdue_turns: str | None = None


def set_timezone(session: Session, timezone: str) -> None:
    """Timestamps in the JSON are rendered in this zone (e.g. +08:00)."""
    session.execute(text("SELECT set_config('TimeZone', :tz, true)"), {"tz": timezone})


def conditions(collection: Collection, query: ItemsQuery) -> Sql:
    sql = Sql()
    if query.bbox is not None:
        collection.bbox_condition(sql, query.bbox)
    if query.interval is not None:
        collection.datetime_condition(sql, *query.interval)
    for name, value in query.filters.items():
        collection.filters[name].apply(sql, value)
    if query.scope is not None:
        where, params = query.scope
        sql.add(f"({where})")
        sql.params.update(params)
    return sql


def geometry_sql(collection: Collection, column: str = "t.geom") -> str:
    """GeoJSON geometry text, RFC 7946: exterior rings counter-clockwise, ≤ 7 decimals."""
    geom = f"ST_ForcePolygonCCW({column})" if collection.polygonal else column
    return f"ST_AsGeoJSON({geom}, 7, 0)"


def feature_text_sql(collection: Collection) -> str:
    return (
        """'{"type":"Feature","id":' || t.id || ',"geometry":' || """
        + geometry_sql(collection)
        + """ || ',"properties":' || ("""
        + collection.properties_sql
        + """)::text || '}'"""
    )


def count_limit(query: ItemsQuery) -> int:
    return max(COUNT_LIMIT, query.limit)


def _capped_count_sql(collection: Collection, query: ItemsQuery, sql: Sql) -> str:
    """A scalar sub-select: the exact number of matching rows, or NULL when counting them
    would visit more than the cap's rows one by one."""
    cap = _count_cap(collection, query)
    return (
        f"SELECT CASE WHEN c <= {cap} THEN c END FROM (SELECT count(*) AS c FROM"
        f" (SELECT 1 FROM {collection.base_from} WHERE {sql.clause()} LIMIT {cap + 1}) x) y"
    )


def _count_cap(collection: Collection, query: ItemsQuery) -> int:
    return count_limit(query) if collection.id == ISSUES else max(LAYER_COUNT_LIMIT, query.limit)


def _fast_count_sql(collection: Collection, query: ItemsQuery, sql: Sql) -> str | None:
    if collection.id != ISSUES or query.interval is not None or query.scope is not None:
        return None
    if not all(collection.filters[name].countable for name in query.filters):
        return None
    filters = [f"{name} = ANY({sql.bind(value)})" for name, value in query.filters.items()]
    if query.bbox is not None:
        # The cells crossed by the bbox's edges hold about twice the issues of the border
        # strips (which are half a cell wide on average).
        return _bbox_count_sql(query.bbox, filters, sql, 2 * count_limit(query))
    where = [f"level = {COUNT_LEVEL}", *filters]
    return f"SELECT COALESCE(sum(n), 0) FROM issue_tile_counts WHERE {' AND '.join(where)}"


# The cell of a point at the finest level, exactly as the issue_tile_counts triggers compute it.
_CELL_X = "(least(greatest(floor((ST_X(i.geom) + 180.0) / 360.0 * 524288), 0), 524287)::int)"
_LAT = "least(greatest(ST_Y(i.geom), -85.0511), 85.0511)"
_CELL_Y = (
    f"(least(greatest(floor((1.0 - ln(tan(radians({_LAT})) + 1.0 / cos(radians({_LAT}))) / pi())"
    " / 2.0 * 524288), 0), 524287)::int)"
)


def _interior_cells(bbox: tuple[float, float, float, float]) -> Rect | None:
    """The finest cells lying whole inside the bbox (cx0, cx1, cy0, cy1), by a margin (1e-9°)
    far wider than any rounding of the triggers' arithmetic, so every issue they put in these
    cells lies inside the bbox; None when they are too few (under 5 across or down) for the
    tile counts to pay."""
    scale = 2**FINEST_LEVEL
    minx, miny, maxx, maxy = bbox
    m = 1e-9
    cx0 = math.ceil((minx + m + 180) / 360 * scale)
    cx1 = math.floor((maxx - m + 180) / 360 * scale) - 1
    cy0 = math.ceil(tile_y(maxy - m, FINEST_LEVEL))
    cy1 = math.floor(tile_y(miny + m, FINEST_LEVEL)) - 1
    if cx1 - cx0 < 4 or cy1 - cy0 < 4:
        return None
    return cx0, cx1, cy0, cy1


def counted_from_tiles(collection: Collection, query: ItemsQuery) -> bool:
    """Is numberMatched of this query summed from the tile counts (count_statement is not
    None)? Without building that statement (edge/caching.py asks it of every page)."""
    if collection.id != ISSUES or query.interval is not None or query.scope is not None:
        return False
    if not all(collection.filters[name].countable for name in query.filters):
        return False
    return query.bbox is None or _interior_cells(query.bbox) is not None


def _bbox_count_sql(
    bbox: tuple[float, float, float, float], filters: list[str], sql: Sql, cap: int
) -> str | None:
    """Exact count of issues in a bbox without visiting most of them: the tile-count cells
    lying well inside the bbox are summed (its largest aligned blocks at the coarser levels,
    the rest at the finest: a few hundred rows, not the thousands of finest cells of a
    viewport); only the issues of the border strips (the
    bbox minus those cells) are counted one by one, with the triggers' own cell formula —
    and only when the cells the strips cross hold at most `cap` issues (else NULL).
    None when the bbox holds too few whole cells for this to pay."""
    scale = 2**FINEST_LEVEL
    minx, miny, maxx, maxy = bbox
    interior = _interior_cells(bbox)
    if interior is None:
        return None
    cx0, cx1, cy0, cy1 = interior
    eps = 1e-6
    west, east = tile_lon(cx0, FINEST_LEVEL), tile_lon(cx1 + 1, FINEST_LEVEL)
    north, south = tile_lat(cy0, FINEST_LEVEL), tile_lat(cy1 + 1, FINEST_LEVEL)
    strips = [
        (minx, miny, west + eps, maxy),
        (east - eps, miny, maxx, maxy),
        (minx, miny, maxx, south + eps),
        (minx, north - eps, maxx, maxy),
    ]
    envelopes = " OR ".join(
        f"i.geom && ST_MakeEnvelope({', '.join(sql.bind(v) for v in strip)}, 4326)"
        for strip in strips
    )
    b = [sql.bind(v) for v in bbox]
    cells = [sql.bind(v) for v in (cx0, cx1, cy0, cy1)]
    issue_filters = [f.replace("status = ANY", "i.status = ANY") for f in filters]
    # The cells the bbox touches: those not inside hold the issues of the border strips
    # (about, up to rounding: this only decides whether to count them).
    outer = [
        math.floor((minx + 180) / 360 * scale),
        math.floor((maxx + 180) / 360 * scale),
        math.floor(tile_y(maxy, FINEST_LEVEL)),
        math.floor(tile_y(miny, FINEST_LEVEL)),
    ]
    inside = f"cx BETWEEN {cells[0]} AND {cells[1]} AND cy BETWEEN {cells[2]} AND {cells[3]}"
    # The cells to read: the interior as the largest aligned blocks of the coarser levels
    # (each level's ring around the next coarser one's blocks), and the finest cells the
    # bbox's edges cross, as four strips around the interior — index ranges, not the
    # thousands of finest cells of a large bbox.
    parts = _interior_parts(sql, (cx0, cx1, cy0, cy1))
    x0, x1, y0, y1 = outer
    for strip, narrow in (
        ((x0, cx0 - 1, y0, y1), True),
        ((cx1 + 1, x1, y0, y1), True),
        ((cx0, cx1, y0, cy0 - 1), False),
        ((cx0, cx1, cy1 + 1, y1), False),
    ):
        if strip[0] <= strip[1] and strip[2] <= strip[3]:
            parts.append((_columns_sql if narrow else _rect_sql)(sql, FINEST_LEVEL, strip))
    read = " OR ".join(parts)
    touched = " AND ".join([f"({read})", *filters])
    border_cells = f"level = {FINEST_LEVEL} AND NOT ({inside})"
    border = " AND ".join(
        [
            f"({envelopes})",
            f"ST_X(i.geom) BETWEEN {b[0]} AND {b[2]}",
            f"ST_Y(i.geom) BETWEEN {b[1]} AND {b[3]}",
            f"NOT ({_CELL_X} BETWEEN {cells[0]} AND {cells[1]}"
            f" AND {_CELL_Y} BETWEEN {cells[2]} AND {cells[3]})",
            *issue_filters,
        ]
    )
    return (
        f"SELECT CASE WHEN border <= {cap} THEN"
        f" interior + (SELECT count(*) FROM issues i WHERE {border}) END"
        f" FROM (SELECT COALESCE(sum(n) FILTER (WHERE NOT ({border_cells})), 0) AS interior,"
        f" COALESCE(sum(n) FILTER (WHERE {border_cells}), 0) AS border"
        f" FROM issue_tile_counts WHERE {touched}) cells"
    )


Rect = tuple[int, int, int, int]  # x0, x1, y0, y1: cells of one level, inclusive


def _interior_parts(sql: Sql, interior: Rect) -> list[str]:
    """Conditions on issue_tile_counts that select each issue of the finest-level rectangle
    `interior` exactly once: at every level, from the coarsest holding a whole block of it,
    the cells inside it that no coarser level's blocks cover."""
    parts: list[str] = []
    covered: Rect | None = None  # at the finest level: what coarser blocks already sum
    for level in sorted(COUNT_LEVELS):
        size = 2 ** (FINEST_LEVEL - level)
        x0, x1, y0, y1 = interior
        blocks = (-(-x0 // size), (x1 + 1) // size - 1, -(-y0 // size), (y1 + 1) // size - 1)
        if blocks[0] > blocks[1] or blocks[2] > blocks[3]:
            continue
        hole = None
        if covered is not None:
            hole = tuple(v // size if i % 2 == 0 else (v + 1) // size - 1
                         for i, v in enumerate(covered))  # fmt: skip
        parts.append(_cells_sql(sql, level, blocks, hole))
        covered = (
            blocks[0] * size,
            (blocks[1] + 1) * size - 1,
            blocks[2] * size,
            (blocks[3] + 1) * size - 1,
        )
    return parts


def _cells_sql(sql: Sql, level: int, rect: Rect, hole: Rect | None) -> str:
    """The cells of `level` in `rect` but not in `hole` (inside it): a ring as its four bands
    (north and south across, west and east between them, narrower than a block of the next
    coarser level; a band may be empty), so that the index reads the ring's rows only, not
    the hole's rows too to filter them out (a planner's viewport: ~18,000 rows fetched for
    ~3,000 summed)."""
    if hole is None:
        return _rect_sql(sql, level, rect)
    x0, x1, y0, y1 = rect
    hx0, hx1, hy0, hy1 = hole
    return " OR ".join(
        [
            _rect_sql(sql, level, (x0, x1, y0, hy0 - 1)),
            _rect_sql(sql, level, (x0, x1, hy1 + 1, y1)),
            _columns_sql(sql, level, (x0, hx0 - 1, hy0, hy1)),
            _columns_sql(sql, level, (hx1 + 1, x1, hy0, hy1)),
        ]
    )


def _rect_sql(sql: Sql, level: int, rect: Rect) -> str:
    x0, x1, y0, y1 = (sql.bind(v) for v in rect)
    return f"(level = {level} AND cx BETWEEN {x0} AND {x1} AND cy BETWEEN {y0} AND {y1})"


def _columns_sql(sql: Sql, level: int, rect: Rect) -> str:
    """A rectangle a few cells wide and many high, by its columns: `cx = ANY` leads the
    planner (generic plans: it cannot see the ranges' widths) to ix_issue_tile_counts_key
    (level, cx, cy), which reads just these cells, where ix_issue_tile_counts_rows (level, cy,
    cx) would walk every cell of the county in the rectangle's rows (~1 ms a strip)."""
    x0, x1, y0, y1 = rect
    columns, top, bottom = sql.bind(list(range(x0, x1 + 1))), sql.bind(y0), sql.bind(y1)
    return f"(level = {level} AND cx = ANY({columns}) AND cy BETWEEN {top} AND {bottom})"


# A page's walk in id order visits about `fetched × total / matching` rows (one by one, cheap),
# a bitmap of the bbox then a sort reads every matching row (each on a heap page of its own,
# about 7× a walked row): the walk wins when matching² > WALK_RATIO × fetched × total.
# (Measured on the 1,000,000-issue bench: the walk from ~3,500 matching issues for 101 rows.)
WALK_RATIO = 0.12
# The tile-count cells read for that estimate: the finest level where the bbox spans at most
# this many cells (a few dozen index entries).
ESTIMATE_CELLS = 48


# Larger pages are planned for their values: planning (~3 ms) is small beside them, and the
# generic statement of a 10,000-feature page ran ~10 % slower than its custom plan (124.5
# against 112.6 ms, alternated, the 1M bench's items bbox).
GENERIC_MAX_LIMIT = 1000


def generic_page(collection: Collection, query: ItemsQuery) -> bool:
    """Is this page's statement planned once per connection (a prepared, generic plan; see
    items_statement's `generic`)? Issues in a bbox, filtered at most by the tile counts'
    columns, first page of at most GENERIC_MAX_LIMIT, no data scope, no dates: the map's
    pages, whose plans only the bbox's issue count decides."""
    return (
        collection.id == ISSUES
        and query.bbox is not None
        and query.limit <= GENERIC_MAX_LIMIT
        and query.interval is None
        and query.scope is None
        and query.offset == 0
        and all(collection.filters[name].countable for name in query.filters)
    )


def _estimate_sql(query: ItemsQuery, sql: Sql, fetched: int) -> str:
    """One row, one boolean: should the page walk the id index (else: a bitmap of the bbox,
    then a sort)? Decided by the issues in the tile-count cells the bbox touches, scaled by
    the share of their area it covers, against all issues (same status filter)."""
    assert query.bbox is not None
    minx, miny, maxx, maxy = query.bbox
    for level in reversed(COUNT_LEVELS):
        scale = 2**level
        x0, x1 = math.floor((minx + 180) / 360 * scale), math.floor((maxx + 180) / 360 * scale)
        y0, y1 = math.floor(tile_y(maxy, level)), math.floor(tile_y(miny, level))
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= ESTIMATE_CELLS:
            break
    cells = (tile_lon(x1 + 1, level) - tile_lon(x0, level)) * (
        tile_lat(y0, level) - tile_lat(y1 + 1, level)
    )
    share = min(1.0, max(0.0, (maxx - minx) * (maxy - miny) / cells)) if cells > 0 else 1.0
    filters = "".join(
        f" AND {name} = ANY({sql.bind(value)})" for name, value in query.filters.items()
    )
    b = [sql.bind(v) for v in (x0, x1, y0, y1)]
    inside = (
        f"SELECT COALESCE(sum(n), 0) * {sql.bind(share)} FROM issue_tile_counts WHERE level ="
        f" {sql.bind(level)} AND cx BETWEEN {b[0]} AND {b[1]} AND cy BETWEEN {b[2]} AND {b[3]}"
        f"{filters}"
    )
    total = (
        f"SELECT COALESCE(sum(n), 0) FROM issue_tile_counts WHERE level = {COUNT_LEVEL}{filters}"
    )
    return f"SELECT ({inside}) ^ 2 > {WALK_RATIO} * {fetched} * ({total}) AS walk"


def items_statement(
    collection: Collection,
    query: ItemsQuery,
    area: IssueArea | None = None,
    generic: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The one statement of a page: (SQL, parameters). Returns (n, body, more, numberMatched
    or NULL). The page reads `limit` + 1 rows: the last one only tells that there are more.
    With `area` (the page's bbox), also the id of its last feature, in the same snapshot the
    generation of the writes in the area that touched an issue up to that id, and the first
    deadline ahead of an open issue of the page (its `overdue` turns then): edge/caching.py,
    kept_page.

    `generic` (generic_page's pages): a statement whose text depends on the query's shape
    only, to be planned once per connection (a generic plan: bbox values unknown): limit and
    offset in the text, and both ways of reading the page — the walk in id order, the bitmap
    of the bbox and a sort — each behind a one-time filter that an estimate from the tile
    counts decides when it runs (`_estimate_sql`), so only one of them reads rows."""
    sql = conditions(collection, query)
    fast_count_sql = _fast_count_sql(collection, query, sql)
    count_sql = fast_count_sql or _capped_count_sql(collection, query, sql)
    fetch_limit, fetched_rows = ":_limit + 1", query.limit + 1
    matched = (
        "CASE WHEN m <= :_limit AND (n > 0 OR :_offset = 0) THEN :_offset + n"
        f" ELSE ({count_sql}) END"
    )
    if collection.id == ISSUES and fast_count_sql is None:
        # Counted one by one: the page's own scan reads the rows up to the count's cap (a
        # sort of every matching row, or a walk in id order, reads them anyway) instead of a
        # second scan of the same rows for numberMatched.
        cap = _count_cap(collection, query)
        fetch_limit, fetched_rows = f"{cap} + 1", cap + 1
        matched = (
            f"CASE WHEN m > {cap} THEN NULL WHEN m > 0 OR :_offset = 0 THEN :_offset + m"
            f" ELSE ({count_sql}) END"
        )
    if generic:
        matched = matched.replace(":_limit", str(int(query.limit))).replace(":_offset", "0")
    tail, extra = "", ""
    if area is not None:
        # Read in the features' own pass over the page's first `limit` rows (no other sort).
        open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
        extra = (
            ", max(t.id) AS last, min(t.deadline) FILTER (WHERE t.status IN"
            f" ({open_list}) AND t.deadline >= now())::text AS turns"
        )
        changes = area.count_sql("page", " AND first_issue <= feats.last", ":{}")
        tail = f", feats.last, {changes}, feats.turns"
        sql.params.update(area.changes_sql("page")[1])
    select = f"SELECT {collection.select_columns} FROM {collection.base_from}"
    order = f"ORDER BY {collection.id_column}"
    if generic:
        columns = page_columns(
            collection.select_columns, collection.id_column, feature_text_sql(collection),
            collection.outer_joins, extra,
        )  # fmt: skip
        select = f"SELECT {columns} FROM {collection.base_from}"
        where = sql.clause()
        # The walk's conditions inside a CASE: no index on them, and no selectivity estimate
        # (1/2), so its plan is the id index's walk whatever the bbox.
        page = f"""WITH est AS MATERIALIZED ({_estimate_sql(query, sql, fetched_rows)}),
page AS MATERIALIZED (
  ({select} WHERE CASE WHEN {where} THEN true ELSE false END AND (SELECT walk FROM est)
   {order} LIMIT {fetched_rows})
  UNION ALL
  ({select} WHERE {where} AND NOT (SELECT walk FROM est) {order} LIMIT {fetched_rows})
)"""
        limit, params = str(int(query.limit)), dict(sql.params)
    else:
        page = f"""WITH page AS MATERIALIZED (
  {select}
  WHERE {sql.clause()}
  {order} LIMIT {fetch_limit} OFFSET :_offset
)"""
        limit = ":_limit"
        params = {**sql.params, "_limit": query.limit, "_offset": query.offset}
    statement = f"""
{page}, feats AS (
  SELECT count(*) AS n, string_agg({feature_text_sql(collection)}, ',' ORDER BY t.id) AS body{extra}
  FROM (SELECT * FROM page ORDER BY id LIMIT {limit}) t
  {collection.outer_joins}
), fetched AS (SELECT count(*) AS m FROM page)
SELECT n, COALESCE(body, ''), m > {limit},
  {matched}
  {tail}
FROM feats, fetched"""
    if generic:
        # A generic plan calls ST_MakeEnvelope(…) of parameters for every row it tests (a
        # custom plan folds it into a constant): as an InitPlan it is made once.
        statement = _ENVELOPE.sub(r"(SELECT \g<0>)", statement)
    return statement, params


_ENVELOPE = re.compile(r"ST_MakeEnvelope\([^()]*\)")
_ROW_COLUMN = re.compile(r"\bt\.([a-z_][a-z0-9_]*)\b")
_ROW = re.compile(r"\bt\b(?!\.)")


@lru_cache(maxsize=64)
def page_columns(select_columns: str, id_column: str, *reading: str) -> str:
    """The columns a generic page keeps of each matching row: of `x.*` (the issues' `i.*`),
    only those the feature text, joins and tail (`reading`) use as `t.<column>`, and the id.
    The bitmap way reads and sorts every matching row (up to the count's cap + 1, 1,001 for
    pages whose numberMatched is counted from the rows), and the whole row (description,
    attribution…) cost about 1.4 ms of a ~7.7 ms page there (bench/small_cpu.py). Anything
    else (explicit columns, the row `t` used whole) keeps `select_columns`."""
    alias, _, star = select_columns.partition(".")
    if star != "*" or not alias.isidentifier() or not id_column.startswith(f"{alias}."):
        return select_columns
    text_read = " ".join(reading)
    if _ROW.search(text_read):
        return select_columns
    names = [id_column.removeprefix(f"{alias}.")]
    for name in _ROW_COLUMN.findall(text_read):
        if name not in names:
            names.append(name)
    return ", ".join(f"{alias}.{name}" for name in names)


def count_statement(collection: Collection, query: ItemsQuery) -> tuple[str, dict[str, Any]] | None:
    """numberMatched alone, when it is summed from the tile counts (else None)."""
    sql = conditions(collection, query)
    fast = _fast_count_sql(collection, query, sql)
    if fast is None:
        return None
    return f"SELECT ({fast})", sql.params


def items_page(
    session: Session,
    collection: Collection,
    query: ItemsQuery,
    timezone: str | None = None,
    area: IssueArea | None = None,
) -> Page:
    """One page; `timezone` (e.g. Asia/Shanghai) renders its timestamps. Set in the same
    round trip as the page's statement, with no parallel workers: for a page of 100 the
    planner sometimes chose a parallel walk of the whole id index (~80 ms) where one process
    answers in a few ms, and a worker start costs more than most pages. `area`: see Page."""
    generic = generic_page(collection, query)
    statement, params = items_statement(collection, query, area, generic)
    prelude = "SELECT set_config('max_parallel_workers_per_gather', '0', true)"
    if timezone is not None:
        prelude += ", set_config('TimeZone', :_tz, true)"
        params["_tz"] = timezone
    if generic:
        prelude += ", set_config('plan_cache_mode', 'force_generic_plan', true)"
        row = _fetch_prepared(session, prelude, statement, params)
    else:
        row = _fetch_bytes(session, prelude + ";" + statement, params)
    n, body, more, matched, *rest = row
    page = Page(
        body=body,
        number_returned=int(n),
        number_matched=int(matched) if matched is not None else None,
        more=bool(more),
    )
    if area is not None:
        page.last_id = int(rest[0]) if rest[0] is not None else None
        page.changes_below = (int(rest[1][0]), int(rest[1][1]))
        page.overdue_turns = bytes(rest[2]).decode() if rest[2] is not None else None
    return page


def page_count(
    session: Session, collection: Collection, query: ItemsQuery, until: str | None = None
) -> int | None:
    """numberMatched of the page's query from the tile counts; None when it is not summed
    from them, when the bbox's border holds too many issues to count one by one, or when the
    database's clock is past `until` (a timestamptz's text; None: no bound)."""
    counted = count_statement(collection, query)
    if counted is None:
        return None
    statement, params = counted
    if until is not None:
        statement = f"SELECT CASE WHEN now() <= CAST(:_until AS timestamptz) THEN ({statement}) END"
        params = {**params, "_until": until}
    prelude = "SELECT set_config('max_parallel_workers_per_gather', '0', true);"
    (matched,) = _fetch_bytes(session, prelude + statement, params)
    return int(matched) if matched is not None else None


def _fetch_bytes(session: Session, statement: str, params: dict[str, Any]) -> tuple:
    """The one row of `statement`, its text columns as UTF-8 bytes, undecoded: a 10,000-
    feature page is ~6 MB of text that Python would otherwise decode, copy and encode again
    (~130 ms of a ~500 ms page). Runs on the session's connection (its transaction, time zone
    and statement timeout), on a cursor of its own that keeps text as bytes."""
    compiled = _compiled(statement, session.connection().dialect)
    row = driver_row(session, str(compiled), compiled.construct_params(params), True)
    assert row is not None
    return row


# Prepared statements kept per connection (the least recently used one is deallocated). A
# page's generic plan holds ~0.9 MB of the backend's memory (measured on the 1M bench: 64
# statements, 60 MB): 16 keep a map client's few shapes (limit × filters) at ≤ 15 MB a
# connection, a pool of 30 connections at ≤ 450 MB.
PREPARED_PER_CONNECTION = 16
PAGES = "page"  # their family of prepared statements (geoservice.prepared)
PREPARED = prepared.record_key(PAGES)  # its record in the pooled connection's `info`


def _fetch_prepared(
    session: Session, prelude: str, statement: str, params: dict[str, Any]
) -> tuple:
    """As _fetch_bytes(prelude; statement), but `statement` is prepared once per database
    connection (geoservice.prepared: PREPARE, then EXECUTE with this call's values): its plan
    is made once, not per page (~2–3 ms of a page's ~10 ms of database time). Inside a
    transaction the generic-plan setting is put back after the page (it would otherwise hold
    for the transaction's later statements)."""
    dialect = session.connection().dialect
    values = _compiled(prelude, dialect).construct_params(params)
    values.update(_compiled(statement, dialect).construct_params(params))
    row = prepared.fetch_row(
        session,
        PAGES,
        PREPARED_PER_CONNECTION,
        str(_compiled(statement, dialect)),
        values,
        head=str(_compiled(prelude, dialect)),
        tail="SET LOCAL plan_cache_mode TO DEFAULT",
        text_as_bytes=True,
    )
    assert row is not None
    return row


@lru_cache(maxsize=512)
def _compiled(statement: str, dialect: Any) -> Any:
    """A page statement compiled for the driver (its text differs by the query's shape only:
    values are parameters), once per process."""
    return text(statement).compile(dialect=dialect)


def _scope_where(scope: tuple[str, dict[str, Any]] | None) -> tuple[str, dict[str, Any]]:
    return (f"AND ({scope[0]})", scope[1]) if scope is not None else ("", {})


def item_sql(collection: Collection, scope_where: str = "", lock: bool = False) -> str:
    """One feature by id: (GeoJSON text, ETag). The ETag hashes the whole representation: the
    row, and what is joined or computed into it (the 包保 leaders, an issue's overdue flag),
    so a client revalidating never keeps a stale leader (RFC 9110 §8.8.3). `lock`: the
    feature's row is locked for the rest of the transaction (a write's If-Match)."""
    return f"""
WITH page AS MATERIALIZED (
  SELECT {collection.select_columns} FROM {collection.base_from}
  WHERE {collection.id_column} = :_id {scope_where}{" FOR UPDATE" if lock else ""}
)
SELECT f, md5(f) FROM (SELECT {feature_text_sql(collection)} AS f
FROM page t
{collection.outer_joins}) feature"""


def get_feature(
    session: Session,
    collection: Collection,
    feature_id: int,
    scope: tuple[str, dict[str, Any]] | None = None,
) -> tuple[str, str] | None:
    """None when there is no such feature or it lies outside `scope`."""
    where, params = _scope_where(scope)
    row = session.execute(text(item_sql(collection, where)), {**params, "_id": feature_id}).first()
    return (row[0], row[1]) if row is not None else None


def current_etag(
    session: Session,
    collection: Collection,
    feature_id: int,
    scope: tuple[str, dict[str, Any]] | None = None,
) -> str | None:
    """Locks the feature's row for the rest of the transaction and returns its ETag."""
    where, params = _scope_where(scope)
    statement = item_sql(collection, where, lock=True)
    row = session.execute(text(statement), {**params, "_id": feature_id}).first()
    return row[1] if row is not None else None


def export_rows(
    session: Session, collection: Collection, query: ItemsQuery, batch: int = 2000
) -> Iterator[tuple[int, str, bytes, str]]:
    """Every matching feature (no paging): (id, GeoJSON geometry, WKB, properties JSON)."""
    sql = conditions(collection, query)
    statement = f"""
SELECT t.id, {geometry_sql(collection)}, ST_AsBinary(t.geom), ({collection.properties_sql})::text
FROM (
  SELECT {collection.select_columns} FROM {collection.base_from} WHERE {sql.clause()}
) t
{collection.export_joins or collection.outer_joins}
ORDER BY t.id"""
    result = session.execute(
        text(statement).execution_options(stream_results=True, yield_per=batch), sql.params
    )
    for row in result:
        yield int(row[0]), row[1], bytes(row[2]), row[3]
