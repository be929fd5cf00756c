"""Sites in the generic machinery: the `site` layer's claims, and one OGC collection per kind.

All sites are one layer of the registry (`layers/site.py`: table `sites`, places.layer `site`),
so 包保 assignments, 我的包保, coverage, the hierarchy audit and every per-layer grouping treat
them like grids or markets without knowing about kinds. What differs per kind is read from
the `site_kinds` table *at request time*:

- attribution: a site claims points within its kind's radius, at its kind's precedence
  (`site_claims_sql`, joined with site_kinds in SQL: a kind changed over the API takes effect
  on the next report);
- the catalogue: each active kind is a collection `site-<code>` (items, attribute filters,
  tiles, export) next to the all-sites collection `sites`; `SiteCatalogue` wraps the start-up
  catalogue and asks a loader for the current kinds on every lookup (one small query; the
  Collection objects are rebuilt only when a kind's row changed).

No Flask here: the loader is given by the API edge.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.catalogue.catalogue import (
    ID_SCHEMA,
    INT_SCHEMA,
    LEADERS_JSON,
    PRIMARY_LEADER,
    SPACE_CHARS,
    TEXT_SCHEMA,
    Catalogue,
    Collection,
    Filter,
    Sql,
    choice_list,
    choice_list_schema,
    layer_collection,
    like_pattern,
    parse_id,
    parse_int,
    parse_text,
)
from geoservice.registry import LayerSpec

SITE_LAYER = "site"
KIND_PREFIX = "site-"


class SiteLayerSpec(LayerSpec):
    """The `site` layer: its claims come from the kinds table (radius, precedence), not from
    a fixed declaration."""

    def claims_sql(self, point: str, scale: tuple[str, str] | None = None) -> str:
        return site_claims_sql(point, scale)


def site_claims_sql(point: str, scale: tuple[str, str] | None = None) -> str:
    """Sites of active kinds claiming `point`: within the kind's claim radius (0 m inside a
    polygon), at the kind's precedence. Same columns as the registry's layer claims."""
    from geoservice.issues.attribution import box_sql, distance_sql

    widest = "(SELECT COALESCE(max(claim_radius_m), 0) FROM site_kinds WHERE NOT retired)"
    return f"""SELECT * FROM (
  SELECT 'site'::text AS layer, k.precedence AS precedence, l.id,
    {distance_sql("l.geom", point, scale)} AS distance_m,
    'within ' || k.claim_radius_m || ' m' AS rule, k.claim_radius_m AS tolerance_m
  FROM sites l JOIN site_kinds k ON k.id = l.kind_id AND NOT k.retired
  WHERE {box_sql("l.geom", point, widest, scale)}
) c WHERE c.distance_m <= c.tolerance_m"""


# --- one collection per kind ------------------------------------------------------------------


@dataclass(frozen=True)
class KindRow:
    """What a kind's collection is built from (a row of site_kinds)."""

    id: int
    code: str
    name: str
    geometry_type: str
    attributes: tuple[dict[str, Any], ...]
    retired: bool
    updated_at: datetime | None = None

    @property
    def collection_id(self) -> str:
        return KIND_PREFIX + self.code

    @property
    def signature(self) -> str:
        return json.dumps(
            [self.id, self.code, self.name, self.geometry_type, list(self.attributes)],
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )


def load_kinds(session: Session, include_retired: bool = False) -> list[KindRow]:
    rows = session.execute(
        text(
            "SELECT id, code, name, geometry_type, attributes, retired, updated_at"
            " FROM site_kinds" + ("" if include_retired else " WHERE NOT retired") + " ORDER BY id"
        )
    )
    return [
        KindRow(
            r.id,
            r.code,
            r.name,
            r.geometry_type,
            tuple(r.attributes or ()),
            r.retired,
            r.updated_at,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class SiteCollection(Collection):
    """A collection of sites. Not writable through the generic layer writes (a site needs a kind
    and its attributes checked): POST of Features is answered by geoservice.api.assessment
    (`accepts_sites`), other writes go to /api/assessment/sites/{id}."""

    kind_code: str | None = None  # None: the all-sites collection (kind given per feature)
    accepts_sites: bool = True
    write_hint: str = (
        "点位的修改和删除请使用 /api/assessment/sites/{id}，批量导入用 /api/assessment/sites/import"
    )

    @property
    def writable(self) -> bool:
        return False


_JSON_TYPE = {"text": "string", "choice": "string", "integer": "integer", "date": "string"}


def _attr_schema(attr: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _JSON_TYPE.get(attr.get("type"), "string")}
    schema["title"] = attr.get("title") or attr["name"]
    if attr.get("type") == "choice" and attr.get("choices"):
        schema["enum"] = list(attr["choices"])
    if attr.get("type") == "date":
        schema["format"] = "date"
    schema["nullable"] = not attr.get("required")
    return schema


def _attr_filter(attr: dict[str, Any]) -> Filter:
    name = attr["name"]
    title = attr.get("title") or name
    key = "'" + name.replace("'", "''") + "'"
    if attr.get("type") == "choice" and attr.get("choices"):
        parse = choice_list(tuple(str(c) for c in attr["choices"]))
        return Filter(
            name,
            f"{title}（{'、'.join(map(str, attr['choices']))}，可用逗号分隔）",
            choice_list_schema(tuple(str(c) for c in attr["choices"])),
            parse,
            lambda sql, v: sql.add(f"l.attributes->>{key} = ANY({sql.bind(v)})"),
        )
    if attr.get("type") == "integer":
        return Filter(
            name,
            f"{title}（等于）",
            INT_SCHEMA,
            parse_int,
            lambda sql, v: sql.add(f"(l.attributes->>{key}) = {sql.bind(str(v))}"),
        )
    return Filter(
        name,
        f"{title}（等于）",
        TEXT_SCHEMA,
        parse_text,
        lambda sql, v: sql.add(f"l.attributes->>{key} = {sql.bind(v)}"),
    )


SITE_COLUMNS = (
    "p.id, p.code, p.name, p.created_at, p.updated_at, l.geom, l.kind_id, l.address,"
    " l.community_area_id, l.attributes"
)
AREA_JOINS = (
    "LEFT JOIN admin_areas area_community ON area_community.id = t.community_area_id\n"
    "LEFT JOIN admin_areas area_street ON area_street.id = area_community.parent_id\n"
    "LEFT JOIN site_kinds sk ON sk.id = t.kind_id"
)


def _common_filters() -> dict[str, Filter]:
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

    add(
        Filter(
            "address",
            "地址（等于）",
            TEXT_SCHEMA,
            parse_text,
            lambda sql, v: sql.add(f"l.address = {sql.bind(v)}"),
        )
    )

    def leader_apply(sql: Sql, value: int) -> None:
        sql.add(
            "EXISTS (SELECT 1 FROM assignments a WHERE a.place_id = p.id"
            f" AND a.leader_id = {sql.bind(value)} AND a.valid_from <= now()"
            " AND (a.valid_to IS NULL OR a.valid_to > now()))"
        )

    add(Filter("leader_id", "现任包保领导（点长）编号", ID_SCHEMA, parse_id, leader_apply))
    add(
        Filter(
            "community_code",
            "所属社区代码（等于）",
            TEXT_SCHEMA,
            parse_text,
            lambda sql, v: sql.add(
                f"l.community_area_id IN (SELECT id FROM admin_areas WHERE code = {sql.bind(v)})"
            ),
        )
    )
    add(
        Filter(
            "street_code",
            "所属街道代码（等于）",
            TEXT_SCHEMA,
            parse_text,
            lambda sql, v: sql.add(
                "l.community_area_id IN (SELECT c.id FROM admin_areas c JOIN admin_areas s"
                f" ON s.id = c.parent_id WHERE s.code = {sql.bind(v)})"
            ),
        )
    )
    return filters


BASE_SCHEMA: dict[str, Any] = {
    "code": {"type": "string", "title": "编码"},
    "name": {"type": "string", "title": "名称"},
    "kind": {"type": "string", "title": "点位类别代码", "readOnly": True},
    "kind_name": {"type": "string", "title": "点位类别", "readOnly": True},
    "address": {"type": "string", "nullable": True, "title": "地址"},
    "community_code": {"type": "string", "nullable": True, "title": "社区代码"},
    "community_name": {"type": "string", "nullable": True, "readOnly": True, "title": "所属社区"},
    "street_name": {"type": "string", "nullable": True, "readOnly": True, "title": "所属街道"},
    "attributes": {"type": "object", "title": "类别属性"},
    "leaders": {"type": "array", "readOnly": True, "title": "包保领导（点长）"},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
}


def _properties(extra: Sequence[str] = ()) -> str:
    props = [
        "'code', t.code",
        "'name', t.name",
        "'kind', sk.code",
        "'kind_name', sk.name",
        "'address', t.address",
        "'community_code', area_community.code",
        "'community_name', area_community.name",
        "'street_name', area_street.name",
        "'attributes', t.attributes",
        *extra,
        "'leaders', COALESCE(lead.leaders, '[]'::json)",
        "'updated_at', t.updated_at",
    ]
    return f"json_build_object({', '.join(props)})"


def all_sites_collection(spec: LayerSpec) -> SiteCollection:
    """The `sites` collection (every kind), richer than the generic layer collection."""
    generic = layer_collection(spec)
    return SiteCollection(
        id=spec.collection,
        title=spec.title,
        description="全部点位（各类别）。按类别的集合为 site-<类别代码>。",
        geometry_types=("Point", "Polygon", "MultiPolygon"),
        spec=spec,
        base_from=f"places p JOIN {spec.table} l ON l.id = p.id",
        select_columns=SITE_COLUMNS,
        id_column="p.id",
        geom_column="l.geom",
        outer_joins=AREA_JOINS + "\n" + LEADERS_JSON,
        properties_sql=_properties(),
        tile_columns=(
            ("code", "t.code"),
            ("name", "t.name"),
            ("kind", "(SELECT code FROM site_kinds WHERE id = t.kind_id)"),
            ("leader_id", "primary_lead.leader_id"),
            ("leader", "primary_lead.leader_name"),
        ),
        tile_joins=PRIMARY_LEADER,
        filters={**_common_filters(), **_kind_filter()},
        property_schema=dict(BASE_SCHEMA),
        area_links=generic.area_links,
    )


# Codes separated by commas (at most 200 characters, no NUL), at least one not blank.
KIND_LIST_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": rf"^[^\x00]*[^{SPACE_CHARS},\x00][^\x00]*$",
}


def _kind_list(raw: str) -> list[str]:
    parse_text(raw)  # 1–200 characters, not only spaces
    codes = [p.strip() for p in raw.split(",") if p.strip()]
    if not codes:
        raise ValueError("不能为空")
    return codes


def _kind_filter() -> dict[str, Filter]:
    return {
        "kind": Filter(
            "kind",
            "点位类别代码，逗号分隔",
            KIND_LIST_SCHEMA,
            _kind_list,
            lambda sql, v: sql.add(
                f"l.kind_id IN (SELECT id FROM site_kinds WHERE code = ANY({sql.bind(v)}))"
            ),
        )
    }


def kind_collection(spec: LayerSpec, kind: KindRow) -> SiteCollection:
    """The collection `site-<code>` of one kind: its attributes as properties and filters."""
    attrs = [a for a in kind.attributes if isinstance(a, dict) and a.get("name")]
    schema = dict(BASE_SCHEMA)
    extra = []
    filters = _common_filters()
    for attr in attrs:
        key = "'" + str(attr["name"]).replace("'", "''") + "'"
        if attr["name"] in schema:
            continue
        extra.append(f"{key}, t.attributes->{key}")
        schema[attr["name"]] = _attr_schema(attr)
        filters[attr["name"]] = _attr_filter(attr)
    geometry_types = ("Point",) if kind.geometry_type == "point" else ("Polygon", "MultiPolygon")
    return SiteCollection(
        id=kind.collection_id,
        title=kind.name,
        description=f"点位类别「{kind.name}」（{'点' if kind.geometry_type == 'point' else '面'}）",
        geometry_types=geometry_types,
        spec=spec,
        base_from=f"places p JOIN {spec.table} l ON l.id = p.id AND l.kind_id = {int(kind.id)}",
        select_columns=SITE_COLUMNS,
        id_column="p.id",
        geom_column="l.geom",
        outer_joins=AREA_JOINS + "\n" + LEADERS_JSON,
        properties_sql=_properties(extra),
        tile_columns=(
            ("code", "t.code"),
            ("name", "t.name"),
            *(
                (str(a["name"]), f"t.attributes->>'{str(a['name']).replace(chr(39), '')}'")
                for a in attrs
                if str(a["name"]).isidentifier()
            ),
            ("leader_id", "primary_lead.leader_id"),
            ("leader", "primary_lead.leader_name"),
        ),
        tile_joins=PRIMARY_LEADER,
        filters=filters,
        property_schema=schema,
        points_only=kind.geometry_type == "point",
        kind_code=kind.code,
    )


class SiteCatalogue(Catalogue):
    """The start-up catalogue with the `sites` collection made richer and one collection per
    active kind, resolved on each use from `loader()` (the current kinds)."""

    def __init__(
        self, base: Catalogue, spec: LayerSpec | None, loader: Callable[[], list[KindRow]]
    ) -> None:
        self._base = base
        self._spec = spec
        self._loader = loader
        self._lock = threading.Lock()
        self._built: dict[str, tuple[str, SiteCollection]] = {}
        self._all_sites = all_sites_collection(spec) if spec is not None else None

    def _kinds(self) -> list[Collection]:
        if self._spec is None:
            return []
        kinds = self._loader()
        out: list[Collection] = []
        with self._lock:
            for kind in kinds:
                cached = self._built.get(kind.collection_id)
                if cached is None or cached[0] != kind.signature:
                    cached = (kind.signature, kind_collection(self._spec, kind))
                    self._built[kind.collection_id] = cached
                out.append(cached[1])
        return out

    def _list(self) -> list[Collection]:
        out: list[Collection] = []
        for c in self._base:
            if self._all_sites is not None and c.id == self._all_sites.id:
                out.append(self._all_sites)
                out.extend(self._kinds())
            else:
                out.append(c)
        return out

    def __iter__(self) -> Iterator[Collection]:
        return iter(self._list())

    def get(self, collection_id: str) -> Collection | None:
        if self._all_sites is not None and collection_id == self._all_sites.id:
            return self._all_sites
        if collection_id.startswith(KIND_PREFIX):
            return next((c for c in self._kinds() if c.id == collection_id), None)
        return self._base.get(collection_id)

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self._list()]
