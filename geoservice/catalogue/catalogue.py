"""The feature collections the API serves: one per registered layer, plus `issues`.

A collection knows how to select its rows (SQL fragments), which query parameters filter it
(declared here once: the API parses them, the OpenAPI document lists them), and how a feature's
properties are built in PostgreSQL (`json_build_object`; `json_object_text` for the issues).
No Flask here; no layer is named.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer

from geoservice.input_values import shown
from geoservice.registry import AreaLink, LayerRegistry, LayerSpec
from geoservice.vocab import ISSUE_STATUSES, OPEN_STATUSES, SEVERITIES

ISSUES = "issues"


class FilterError(ValueError):
    """A query parameter has a value we cannot use; the message is Chinese."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class Sql:
    """WHERE conditions and their bound parameters, built up by filters."""

    def __init__(self) -> None:
        self.where: list[str] = []
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def add(self, condition: str) -> None:
        self.where.append(condition)

    def clause(self) -> str:
        return " AND ".join(self.where) if self.where else "TRUE"


@dataclass(frozen=True)
class Filter:
    """A query parameter filtering a collection (a declared property filter)."""

    name: str
    description: str  # Chinese, shown in the OpenAPI document
    schema: Mapping[str, Any]  # OpenAPI schema of the parameter
    parse: Callable[[str], Any]  # raw text → value; raises ValueError with a Chinese message
    apply: Callable[[Sql, Any], None]  # adds the condition
    # Issues only: a condition the pre-aggregated counts can answer exactly (status filters).
    countable: bool = False


# ---- value parsers ---------------------------------------------------------------------------


INT_MAX = 2_147_483_647  # PostgreSQL integer: ids and counts
INT_SCHEMA = {"type": "integer", "minimum": -INT_MAX - 1, "maximum": INT_MAX}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": INT_MAX}
# White space as the server strips it (Python's str.strip: ECMA's \s and U+001C–U+001F, U+0085),
# for the document's patterns (ECMA-262 regular expressions).
SPACE_CHARS = r"\s\u001c-\u001f\u0085"
# Text in a query parameter: not only spaces, and no NUL (a 400 for every parameter).
TEXT_PATTERN = rf"^[^\x00]*[^{SPACE_CHARS}\x00][^\x00]*$"
# parse_text's rule: 1–200 characters, not only spaces.
TEXT_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": TEXT_PATTERN}


def int_parser(minimum: int = -INT_MAX - 1, maximum: int = INT_MAX) -> Callable[[str], int]:
    """Whole numbers in [minimum, maximum] (the schema's bounds; outside them a 400)."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"应为整数，收到 {shown(raw)}") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"应在 {minimum}–{maximum} 之间，收到 {value}")
        return value

    return parse


parse_int = int_parser()
parse_id = int_parser(1)


def parse_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"应为数字，收到 {shown(raw)}") from None
    if not math.isfinite(value):
        raise ValueError(f"应为有限的数字，收到 {shown(raw)}")
    return value


# The spellings of a yes/no value a form or query may use (parse_bool reads them).
BOOL_VALUES = ("true", "false", "1", "0", "yes", "no", "是", "否")


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "是"):
        return True
    if value in ("false", "0", "no", "否"):
        return False
    raise ValueError(f"应为 true 或 false，收到 {shown(raw)}")


def parse_text(raw: str) -> str:
    if len(raw) > 200:
        raise ValueError("过长（最多 200 字）")
    value = raw.strip()
    if not value:
        raise ValueError("不能为空")
    return value


def choice_list_schema(
    choices: tuple[Any, ...], aliases: Mapping[str, tuple[str, ...]] | None = None, **extra: Any
) -> dict[str, Any]:
    """The schema of what choice_list parses: comma-separated values (spaces and empty parts
    allowed around them), at least one of them a choice or an alias."""
    one = "(?:" + "|".join(re.escape(str(c)) for c in (*(aliases or {}), *choices)) + ")"
    space = f"[{SPACE_CHARS}]*"
    pattern = rf"^(?:{space},)*{space}{one}{space}(?:,{space}(?:{one}{space})?)*$"
    return {"type": "string", "pattern": pattern, **extra}


def choice_list(choices: tuple[Any, ...], aliases: Mapping[str, tuple[str, ...]] | None = None):
    """Parses a comma-separated list of values out of `choices` (strings)."""

    def parse(raw: str) -> list[str]:
        values: list[str] = []
        for part in (p.strip() for p in raw.split(",")):
            if not part:
                continue
            if aliases and part in aliases:
                values.extend(aliases[part])
            elif part in choices:
                values.append(part)
            else:
                allowed = "、".join(str(c) for c in (*(aliases or {}), *choices))
                raise ValueError(f"未知取值 {part!r}，可选：{allowed}")
        if not values:
            raise ValueError("不能为空")
        return sorted(set(values))

    return parse


def name_list_schema() -> dict[str, Any]:
    """The schema of what name_list parses: comma-separated names, at least one."""
    return {
        "type": "string",
        "pattern": rf"^[{SPACE_CHARS},]*[^{SPACE_CHARS},][^,]*(?:,[^,]*)*$",
    }


def name_list(raw: str) -> list[str]:
    """Comma-separated names of a vocabulary that changes over time (categories, sources):
    any name filters (a retired one finds the old rows that carry it; an unknown one, none)."""
    values = sorted({part.strip() for part in raw.split(",") if part.strip()})
    if not values:
        raise ValueError("不能为空")
    return values


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---- collections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    geometry_types: tuple[str, ...]
    spec: LayerSpec | None
    # Inner query: the rows of the collection (aliased `p`/`l` or `i`), their columns.
    base_from: str
    select_columns: str
    id_column: str  # in the inner query
    geom_column: str  # in the inner query
    # Outer query (page rows aliased `t`): extra joins and the properties object.
    outer_joins: str
    properties_sql: str
    tile_columns: tuple[tuple[str, str], ...]
    tile_joins: str
    filters: Mapping[str, Filter] = field(default_factory=dict)
    temporal_column: str | None = None  # in the inner query; enables `datetime`
    temporal_property: str | None = None
    property_schema: Mapping[str, Any] = field(default_factory=dict)
    area_links: tuple[AreaLink, ...] = ()
    points_only: bool = False
    # The joins of an export (every matching row, streamed), when they differ from a page's.
    export_joins: str | None = None

    @property
    def writable(self) -> bool:
        return self.spec is not None

    @property
    def polygonal(self) -> bool:
        return any(t.endswith("Polygon") for t in self.geometry_types)

    def bbox_condition(self, sql: Sql, bbox: tuple[float, float, float, float]) -> None:
        env = (
            f"ST_MakeEnvelope({sql.bind(bbox[0])}, {sql.bind(bbox[1])}, "
            f"{sql.bind(bbox[2])}, {sql.bind(bbox[3])}, 4326)"
        )
        if self.points_only:
            # `&&` compares float4-rounded boxes (it lets through points up to ~1e-5° outside);
            # the index does the coarse work, the coordinates decide exactly (cheaper than
            # ST_Intersects on points). The exact test sits in a CASE so that the planner
            # estimates it at 1/2, not as two unrelated ranges (1/200 each): with those, a
            # 20,000-issue bbox was estimated at 1 row, and a 100-feature page fetched and
            # sorted all 20,000 (~35 ms) instead of walking ids until 100 matched (~1 ms).
            g = self.geom_column
            sql.add(
                f"{g} && {env} AND CASE WHEN ST_X({g}) BETWEEN {sql.bind(bbox[0])}"
                f" AND {sql.bind(bbox[2])} AND ST_Y({g}) BETWEEN {sql.bind(bbox[1])}"
                f" AND {sql.bind(bbox[3])} THEN true ELSE false END"
            )
        elif bbox[0] == bbox[2] or bbox[1] == bbox[3]:
            # A box of no width or height (GDAL's spatial filter on a point) is a point or a
            # line: as an envelope it would be an empty polygon that intersects nothing.
            corners = [
                f"ST_MakePoint({sql.bind(bbox[i])}, {sql.bind(bbox[i + 1])})" for i in (0, 2)
            ]
            shape = corners[0] if bbox[:2] == bbox[2:] else f"ST_MakeLine({', '.join(corners)})"
            g = self.geom_column
            sql.add(f"{g} && {env} AND ST_Intersects({g}, ST_SetSRID({shape}, 4326))")
        else:
            sql.add(f"ST_Intersects({self.geom_column}, {env})")

    def datetime_condition(self, sql: Sql, start: datetime | None, end: datetime | None) -> None:
        column = self.temporal_column
        if start is not None and end is not None and start == end:
            sql.add(f"{column} = {sql.bind(start)}")
            return
        if start is not None:
            sql.add(f"{column} >= {sql.bind(start)}")
        if end is not None:
            sql.add(f"{column} <= {sql.bind(end)}")


class Catalogue:
    """The collections, in the order the API lists them (layers by precedence, then issues)."""

    def __init__(self, collections: list[Collection]) -> None:
        self._list = collections
        self._by_id = {c.id: c for c in collections}

    def __iter__(self):
        return iter(self._list)

    def get(self, collection_id: str) -> Collection | None:
        return self._by_id.get(collection_id)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self._list]


ACTIVE_ASSIGNMENT = "a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now())"

# How json_object_text writes a property's value: RAW, its text (integers, booleans); JSON,
# to_json() (text, timestamps, anything else).
RAW, JSON = "raw", "json"
_JSON_KEY = re.compile(r"[a-z_][a-z0-9_]*")


def json_object_text(pairs: list[tuple[str, str, str]]) -> str:
    """SQL: the text `json_build_object(k1, v1, …)::text` gives (`{"k1" : v1, "k2" : v2}`),
    concatenated from each (key, expression, RAW or JSON) instead. Same bytes, about half the
    CPU: json_build_object looks up the type of each of its arguments again on every row
    (~8.5 µs a row for the issues' 22 properties, against ~4 µs concatenated)."""
    parts = []
    for i, (key, expression, kind) in enumerate(pairs):
        assert _JSON_KEY.fullmatch(key) and kind in (RAW, JSON), (key, kind)
        value = f"({expression})::text" if kind == RAW else f"to_json({expression})::text"
        opening = "{" if i == 0 else ", "
        parts.append(f"""'{opening}"{key}" : ' || COALESCE({value}, 'null')""")
    return "(" + "\n  || ".join(parts) + " || '}')"


def lookup_join(alias: str, columns: str, table: str, key: str) -> str:
    """LEFT JOIN of the row of `table` whose id is `key` (a column of the page's rows `t`),
    looked up by its primary key for each page row: OFFSET 0 keeps PostgreSQL from turning it
    into a hash join over the whole table, which its generic plans chose for 100 rows as for
    10,000 (a 4,092-leader table read for each page: 0.4–0.5 ms of a 100-issue page's ~2 ms,
    and slower at 10,000 rows too: 78 against 61 ms)."""
    return (
        f"LEFT JOIN LATERAL (SELECT {columns} FROM {table} WHERE id = {key} OFFSET 0)"
        f" {alias} ON true"
    )


LEADERS_JSON = f"""LEFT JOIN LATERAL (
  SELECT json_agg(json_build_object(
    'id', ld.id, 'name', ld.name, 'title', ld.title, 'unit_id', ld.unit_id, 'unit', un.name,
    'role', a.role, 'is_primary', a.is_primary) ORDER BY a.is_primary DESC, a.id) AS leaders
  FROM assignments a JOIN leaders ld ON ld.id = a.leader_id
  LEFT JOIN units un ON un.id = ld.unit_id
  WHERE a.place_id = t.id AND {ACTIVE_ASSIGNMENT}
) lead ON TRUE"""

PRIMARY_LEADER = f"""LEFT JOIN LATERAL (
  SELECT ld.id AS leader_id, ld.name AS leader_name
  FROM assignments a JOIN leaders ld ON ld.id = a.leader_id
  WHERE a.place_id = t.id AND a.is_primary AND {ACTIVE_ASSIGNMENT}
  ORDER BY a.valid_from DESC LIMIT 1
) primary_lead ON TRUE"""

LEADER_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "title": {"type": "string"},
        "unit_id": {"type": "integer", "nullable": True},
        "unit": {"type": "string", "nullable": True},
        "role": {"type": "string"},
        "is_primary": {"type": "boolean"},
    },
}


def _attribute_schema(attr) -> dict[str, Any]:
    kind = {str: "string", int: "integer", float: "number", bool: "boolean"}[attr.type]
    schema: dict[str, Any] = {"type": kind, "title": attr.title}
    if attr.choices:
        schema["enum"] = list(attr.choices)
    if attr.max_length:
        schema["maxLength"] = attr.max_length
    return schema


def _attribute_filter(attr) -> Filter:
    column = f"l.{attr.name}"
    if attr.choices:
        parse = choice_list(tuple(str(c) for c in attr.choices))

        def convert(raw: str):
            values = parse(raw)
            return [attr.type(v) for v in values]

        schema = choice_list_schema(tuple(str(c) for c in attr.choices))
        schema["description"] = "可用逗号分隔多个值"

        def apply(sql: Sql, values):
            sql.add(f"{column} = ANY({sql.bind(values)})")

        return Filter(
            attr.name,
            f"{attr.title}（{'、'.join(map(str, attr.choices))}）",
            schema,
            convert,
            apply,
        )
    parser = {int: parse_int, float: parse_float, bool: parse_bool, str: parse_text}[attr.type]

    def apply_eq(sql: Sql, value):
        sql.add(f"{column} = {sql.bind(value)}")

    schema = _attribute_schema(attr)
    if attr.type is str:
        schema = {"type": "string", "title": attr.title, **TEXT_SCHEMA}
    elif attr.type is int:
        schema = {**schema, **INT_SCHEMA}
    return Filter(attr.name, f"{attr.title}（等于）", schema, parser, apply_eq)


def layer_collection(spec: LayerSpec) -> Collection:
    table = spec.model.__table__
    own_columns = [c.name for c in table.c if c.name != "id"]
    select_columns = ", ".join(
        ["p.id", "p.code", "p.name", "p.created_at", "p.updated_at"]
        + [f"l.{c}" for c in own_columns]
    )
    links = spec.area_links()
    props = ["'code', t.code", "'name', t.name"]
    schema: dict[str, Any] = {
        "code": {"type": "string", "title": "编码"},
        "name": {"type": "string", "title": "名称"},
    }
    for attr in spec.attributes:
        props.append(f"'{attr.name}', t.{attr.name}")
        schema[attr.name] = _attribute_schema(attr)
    joins = []
    for link in links:
        props.append(f"'{link.prefix}_code', {link.alias}.code")
        props.append(f"'{link.prefix}_name', {link.alias}.name")
        joins.append(f"LEFT JOIN admin_areas {link.alias} ON {link.alias}.id = t.{link.column}")
        schema[f"{link.prefix}_code"] = {"type": "string", "nullable": True, "title": "区划代码"}
        schema[f"{link.prefix}_name"] = {
            "type": "string",
            "nullable": True,
            "readOnly": True,
            "title": "所属区划",
        }
    props.append("'leaders', COALESCE(lead.leaders, '[]'::json)")
    props.append("'updated_at', t.updated_at")
    schema["leaders"] = {
        "type": "array",
        "items": LEADER_SCHEMA,
        "readOnly": True,
        "title": "包保领导",
    }
    schema["updated_at"] = {
        "type": "string",
        "format": "date-time",
        "readOnly": True,
        "title": "更新时间",
    }
    joins.append(LEADERS_JSON)
    tile_columns = (
        ("code", "t.code"),
        ("name", "t.name"),
        *((a.name, f"t.{a.name}") for a in spec.attributes),
        ("leader_id", "primary_lead.leader_id"),
        ("leader", "primary_lead.leader_name"),
    )

    filters: dict[str, Filter] = {}

    def add(f: Filter) -> None:
        filters[f.name] = f

    add(
        Filter(
            "code",
            "编码（等于）",
            TEXT_SCHEMA,
            parse_text,
            lambda sql, v: sql.add(f"p.code = {sql.bind(v)}"),
        )
    )
    add(
        Filter(
            "q",
            "名称包含的文字",
            TEXT_SCHEMA,
            parse_text,
            lambda sql, v: sql.add(f"p.name ILIKE {sql.bind(like_pattern(v))}"),
        )
    )

    def leader_apply(sql: Sql, value: int) -> None:
        sql.add(
            f"EXISTS (SELECT 1 FROM assignments a WHERE a.place_id = p.id"
            f" AND a.leader_id = {sql.bind(value)} AND {ACTIVE_ASSIGNMENT})"
        )

    add(Filter("leader_id", "现任包保领导编号", ID_SCHEMA, parse_id, leader_apply))
    for attr in spec.attributes:
        add(_attribute_filter(attr))
    for link in links:

        def area_apply(sql: Sql, value: str, link=link) -> None:
            sql.add(
                f"l.{link.column} IN (SELECT id FROM admin_areas WHERE code = {sql.bind(value)})"
            )

        add(
            Filter(
                f"{link.prefix}_code",
                "所属行政区划代码（等于）",
                TEXT_SCHEMA,
                parse_text,
                area_apply,
            )
        )

    return Collection(
        id=spec.collection,
        title=spec.title,
        description=spec.description,
        geometry_types=spec.geometry_types,
        spec=spec,
        base_from=f"places p JOIN {spec.table} l ON l.id = p.id",
        select_columns=select_columns,
        id_column="p.id",
        geom_column="l.geom",
        outer_joins="\n".join(joins),
        properties_sql=f"json_build_object({', '.join(props)})",
        tile_columns=tile_columns,
        tile_joins=PRIMARY_LEADER,
        filters=filters,
        property_schema=schema,
        area_links=links,
    )


def issues_collection() -> Collection:
    statuses = tuple(ISSUE_STATUSES)
    status_labels = " ".join(
        f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in ISSUE_STATUSES.items()
    )
    open_list = ", ".join(_literal(s) for s in OPEN_STATUSES)
    overdue = f"(t.status IN ({open_list}) AND t.deadline IS NOT NULL AND t.deadline < now())"
    props = json_object_text(
        [
            ("status", "t.status", JSON),
            ("status_label", f"CASE t.status {status_labels} END", JSON),
            ("category", "t.category", JSON),
            ("source", "t.source", JSON),
            ("severity", "t.severity", RAW),
            ("negative_list", "t.negative_list", RAW),
            ("reported_at", "t.reported_at", JSON),
            ("deadline", "t.deadline", JSON),
            ("closed_at", "t.closed_at", JSON),
            ("overdue", overdue, RAW),
            ("rework_count", "t.rework_count", RAW),
            ("leader_id", "t.leader_id", RAW),
            ("leader_name", "ld.name", JSON),
            ("leader_title", "ld.title", JSON),
            ("unit_id", "t.unit_id", RAW),
            ("unit_name", "un.name", JSON),
            ("grid_id", "t.grid_id", RAW),
            ("grid_code", "gp.code", JSON),
            ("place_id", "t.primary_place_id", RAW),
            ("place_layer", "pp.layer", JSON),
            ("place_code", "pp.code", JSON),
            ("place_name", "pp.name", JSON),
        ]
    )
    names = (  # alias, columns, table, key: the rows the properties take names from
        ("ld", "name, title", "leaders", "t.leader_id"),
        ("un", "name", "units", "t.unit_id"),
        ("gp", "code", "places", "t.grid_id"),
        ("pp", "layer, code, name", "places", "t.primary_place_id"),
    )
    joins = "\n".join(lookup_join(*n) for n in names)
    # An export reads every row: hash joins over the name tables are cheaper there (300,000
    # issues: 0.7 s against 1.0 s looked up one by one).
    export_joins = "\n".join(
        f"LEFT JOIN {table} {alias} ON {alias}.id = {key}" for alias, _, table, key in names
    )
    tile_columns = (
        ("status", "t.status"),
        ("category", "t.category"),
        ("severity", "t.severity"),
        ("leader_id", "t.leader_id"),
        ("overdue", overdue),
    )
    string = {"type": "string"}
    nullable_int = {"type": "integer", "nullable": True}
    nullable_str = {"type": "string", "nullable": True}
    schema = {
        "status": {"type": "string", "enum": list(statuses), "title": "状态"},
        "status_label": {**string, "title": "状态（中文）"},
        "category": {**string, "title": "类别"},
        "source": {**string, "title": "来源"},
        "severity": {"type": "integer", "enum": list(SEVERITIES), "title": "严重程度"},
        "negative_list": {"type": "boolean", "title": "负面清单"},
        "reported_at": {"type": "string", "format": "date-time", "title": "上报时间"},
        "deadline": {
            "type": "string",
            "format": "date-time",
            "nullable": True,
            "title": "整改时限",
        },
        "closed_at": {
            "type": "string",
            "format": "date-time",
            "nullable": True,
            "title": "销号时间",
        },
        "overdue": {"type": "boolean", "title": "是否逾期"},
        "rework_count": {"type": "integer", "title": "返工次数"},
        "leader_id": {**nullable_int, "title": "责任领导编号"},
        "leader_name": {**nullable_str, "title": "责任领导"},
        "leader_title": {**nullable_str, "title": "领导职务"},
        "unit_id": {**nullable_int, "title": "责任单位编号"},
        "unit_name": {**nullable_str, "title": "责任单位"},
        "grid_id": {**nullable_int, "title": "网格编号"},
        "grid_code": {**nullable_str, "title": "网格编码"},
        "place_id": {**nullable_int, "title": "归属要素编号"},
        "place_layer": {**nullable_str, "title": "归属图层"},
        "place_code": {**nullable_str, "title": "归属要素编码"},
        "place_name": {**nullable_str, "title": "归属要素"},
    }

    filters: dict[str, Filter] = {}

    def add(f: Filter) -> None:
        filters[f.name] = f

    status_parse = choice_list(statuses, {"open": OPEN_STATUSES})
    add(
        Filter(
            "status",
            "状态，逗号分隔；open = 全部未销号状态",
            choice_list_schema(statuses, {"open": OPEN_STATUSES}, example="open"),
            status_parse,
            lambda sql, v: sql.add(f"i.status = ANY({sql.bind(v)})"),
            countable=True,
        )
    )
    add(
        Filter(
            "category",
            "问题类别，逗号分隔（在用的与已停用的；见 /api/vocabularies）",
            name_list_schema(),
            name_list,
            lambda sql, v: sql.add(f"i.category = ANY({sql.bind(v)})"),
        )
    )
    add(
        Filter(
            "source",
            "问题来源，逗号分隔（在用的与已停用的；见 /api/vocabularies）",
            name_list_schema(),
            name_list,
            lambda sql, v: sql.add(f"i.source = ANY({sql.bind(v)})"),
        )
    )
    add(
        Filter(
            "severity",
            "严重程度 1–3",
            {"type": "integer", "minimum": min(SEVERITIES), "maximum": max(SEVERITIES)},
            int_parser(min(SEVERITIES), max(SEVERITIES)),
            lambda sql, v: sql.add(f"i.severity = {sql.bind(v)}"),
        )
    )
    for name, column, title in (
        ("leader_id", "i.leader_id", "责任领导编号"),
        ("unit_id", "i.unit_id", "责任单位编号"),
        ("place_id", "i.primary_place_id", "归属要素编号"),
        ("grid_id", "i.grid_id", "所在网格编号"),
    ):
        add(
            Filter(
                name,
                title,
                ID_SCHEMA,
                parse_id,
                lambda sql, v, column=column: sql.add(f"{column} = {sql.bind(v)}"),
            )
        )

    add(
        Filter(
            "grid_code",
            "所在网格编码",
            TEXT_SCHEMA,
            parse_text,
            lambda sql, v: sql.add(
                f"i.grid_id IN (SELECT id FROM places WHERE code = {sql.bind(v)})"
            ),
        )
    )

    def overdue_apply(sql: Sql, value: bool) -> None:
        cond = f"(i.status IN ({open_list}) AND i.deadline IS NOT NULL AND i.deadline < now())"
        sql.add(cond if value else f"NOT {cond}")

    add(Filter("overdue", "是否逾期", {"type": "boolean"}, parse_bool, overdue_apply))
    add(
        Filter(
            "negative_list",
            "是否负面清单",
            {"type": "boolean"},
            parse_bool,
            lambda sql, v: sql.add(f"i.negative_list = {sql.bind(v)}"),
        )
    )
    add(
        Filter(
            "q",
            "问题描述包含的文字",
            TEXT_SCHEMA,
            parse_text,
            lambda sql, v: sql.add(f"i.description ILIKE {sql.bind(like_pattern(v))}"),
        )
    )

    return Collection(
        id=ISSUES,
        title="问题",
        description="暗访督查、测评、12345 热线、随手拍等发现的问题及其整改状态（只读）",
        geometry_types=("Point",),
        spec=None,
        base_from="issues i",
        select_columns="i.*",
        id_column="i.id",
        geom_column="i.geom",
        outer_joins=joins,
        export_joins=export_joins,
        properties_sql=props,
        tile_columns=tile_columns,
        tile_joins="",
        filters=filters,
        temporal_column="i.reported_at",
        temporal_property="reported_at",
        property_schema=schema,
        points_only=True,
    )


def build_catalogue(registry: LayerRegistry) -> Catalogue:
    return Catalogue([*(layer_collection(spec) for spec in registry), issues_collection()])


def is_integer_column(spec: LayerSpec, name: str) -> bool:
    column = spec.model.__table__.c.get(name)
    return column is not None and isinstance(column.type, Integer)
