"""Checking features before they are written to a layer (API writes and file imports alike).

Each check produces a `Problem` with a Chinese message a planner understands, the property
or part at fault (`field`) and details. Structure and properties are checked in Python;
geometry validity (ST_IsValidDetail), repair (ST_MakeValid) and code uniqueness in PostGIS,
one statement per batch.

The "far outside the service area" check uses `geoservice.areas.service_area.bounds` (the one
definition of the service area).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import shapely
from geoalchemy2 import Geometry
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA
from sqlalchemy.orm import Session

from geoservice.input_values import shown
from geoservice.registry import GEOJSON_TYPES, LOCAL_CODE, LayerSpec

if TYPE_CHECKING:  # callers hand over the service area (geoservice.areas sits above)
    from geoservice.areas.service_area import ServiceArea

DEFAULT = object()  # the column's default value (SQL DEFAULT)
READ_ONLY = ("leaders", "updated_at")  # in our output; ignored on input
CODE_MAX = 64
NAME_MAX = 200

REASONS = {
    "Self-intersection": "自相交",
    "Ring Self-intersection": "环自相交",
    "Too few points in geometry component": "点数过少",
    "Hole lies outside shell": "内环位于外环之外",
    "Nested holes": "内环相互嵌套",
    "Interior is disconnected": "面内部不连通",
    "Nested shells": "外环相互嵌套",
    "Duplicate Rings": "环重复",
    "Invalid Coordinate": "坐标无效",
    "Ring is not closed": "环未闭合",
}


@dataclass
class Problem:
    message: str
    field: str | None = None
    detail: Any = None
    status: int = 422

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.detail is not None:
            out["detail"] = self.detail
        return out


class Invalid(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class Candidate:
    """A feature to check: its position (0-based), geometry (EPSG:4326) and properties."""

    index: int
    geometry: BaseGeometry | None
    properties: dict[str, Any]
    label: str = ""  # how reports name it, e.g. "第 3 个要素"


@dataclass
class Checked:
    index: int
    code: str
    name: str
    values: dict[str, Any]  # layer-table columns (DEFAULT for the column default)
    ewkb: bytes | None  # final geometry; None = keep the stored one
    notices: list[str] = field(default_factory=list)


@dataclass
class Rejected:
    index: int
    label: str
    problems: list[Problem]

    def as_dict(self) -> dict[str, Any]:
        first = self.problems[0]
        return {
            "index": self.index,
            "feature": self.label,
            "error": first.message,
            "field": first.field,
            "detail": first.detail,
            "problems": [p.as_dict() for p in self.problems],
        }


# ---- geometry structure ----------------------------------------------------------------------


def _check_position(pos: Any, where: str) -> None:
    if not isinstance(pos, list | tuple) or not 2 <= len(pos) <= 3:
        raise Invalid(Problem(f"坐标格式错误：{where} 应为 [经度, 纬度]", "geometry.coordinates"))
    for v in pos:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise Invalid(
                Problem(f"坐标格式错误：{where} 含非数字 {shown(v)}", "geometry.coordinates")
            )


def _walk(coords: Any, depth: int, where: str) -> None:
    if depth == 0:
        _check_position(coords, where)
        return
    if not isinstance(coords, list | tuple):
        raise Invalid(Problem(f"坐标格式错误：{where} 应为数组", "geometry.coordinates"))
    for i, item in enumerate(coords):
        _walk(item, depth - 1, f"{where}[{i}]")


def _flat(coords: Any, depth: int) -> Any:
    return list(coords[:2]) if depth == 0 else [_flat(c, depth - 1) for c in coords]


DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


def parse_geometry(obj: Any) -> BaseGeometry:
    """A GeoJSON geometry object → shapely geometry, or Invalid with a clear message."""
    if not isinstance(obj, dict):
        raise Invalid(Problem("缺少几何（geometry 应为 GeoJSON 几何对象）", "geometry"))
    kind = obj.get("type")
    if kind == "GeometryCollection":
        raise Invalid(Problem("不支持 GeometryCollection，请拆分为单一类型的几何", "geometry.type"))
    if kind not in GEOJSON_TYPES:
        raise Invalid(
            Problem(f"未知的几何类型 {kind!r}", "geometry.type", {"allowed": list(GEOJSON_TYPES)})
        )
    coords = obj.get("coordinates")
    if coords is None:
        raise Invalid(Problem("几何缺少 coordinates", "geometry.coordinates"))
    _walk(coords, DEPTH[kind], "coordinates")
    if kind in ("Polygon", "MultiPolygon"):
        polygons = [coords] if kind == "Polygon" else coords
        for p, rings in enumerate(polygons):
            for r, ring in enumerate(rings):
                if len(ring) < 4:
                    raise Invalid(
                        Problem(
                            f"多边形的环至少需要 4 个坐标（首尾相同），"
                            f"第 {p + 1} 个面第 {r + 1} 个环只有 {len(ring)} 个",
                            "geometry.coordinates",
                        )
                    )
                if list(ring[0][:2]) != list(ring[-1][:2]):
                    raise Invalid(
                        Problem(
                            f"多边形的环未闭合：第 {p + 1} 个面第 {r + 1} 个环首尾坐标不同",
                            "geometry.coordinates",
                            {"first": ring[0], "last": ring[-1]},
                        )
                    )
    if kind in ("LineString", "MultiLineString"):
        lines = [coords] if kind == "LineString" else coords
        for i, line in enumerate(lines):
            if len(line) < 2:
                raise Invalid(
                    Problem(f"线至少需要 2 个坐标（第 {i + 1} 条线）", "geometry.coordinates")
                )
    try:  # heights dropped first: positions of 2 and 3 numbers may be mixed (RFC 7946)
        geom = shape({"type": kind, "coordinates": _flat(coords, DEPTH[kind])})
    except Exception as exc:  # shapely's messages for malformed input vary
        raise Invalid(Problem(f"几何无法解析：{exc}", "geometry")) from None
    if geom.is_empty:
        raise Invalid(Problem("几何为空", "geometry"))
    return shapely.force_2d(geom)


# ---- where the coordinates are ---------------------------------------------------------------


def _inside(bounds, area: tuple[float, float, float, float]) -> bool:
    return (
        bounds[0] >= area[0]
        and bounds[1] >= area[1]
        and bounds[2] <= area[2]
        and bounds[3] <= area[3]
    )


def _in_range(bounds) -> bool:
    minx, miny, maxx, maxy = bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def check_location(geom: BaseGeometry, area: ServiceArea | None) -> Problem | None:
    bounds = geom.bounds
    swapped = (bounds[1], bounds[0], bounds[3], bounds[2])
    hint = "坐标顺序应为 [经度, 纬度]（RFC 7946）"
    if not _in_range(bounds):
        if _in_range(swapped) and (area is None or _inside(swapped, area.bounds)):
            return Problem(
                f"坐标疑似经纬度顺序颠倒：{hint}",
                "geometry.coordinates",
                {"bounds": list(bounds)},
            )
        return Problem(
            "坐标超出范围：经度应在 −180…180，纬度应在 −90…90"
            "（是否使用了投影坐标？请换算为 WGS-84/CGCS2000 经纬度）",
            "geometry.coordinates",
            {"bounds": list(bounds)},
        )
    if area is None or _inside(bounds, area.bounds):
        return None
    if _inside(swapped, area.bounds):
        return Problem(
            f"坐标疑似经纬度顺序颠倒：{hint}", "geometry.coordinates", {"bounds": list(bounds)}
        )
    return Problem(
        f"坐标远离服务范围（{area.source}外扩 {area.margin_m / 1000:g} 公里）：请检查坐标系与坐标",
        "geometry.coordinates",
        {"bounds": list(bounds), "service_area": list(area.bounds)},
    )


# ---- properties ------------------------------------------------------------------------------


def _type_ok(kind: type, value: Any) -> Any:
    """The value converted to the attribute's type, or raises ValueError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("应为 true 或 false")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError("应为整数")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("应为整数")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("应为数字")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("应为文字")
    return value


def writable_properties(spec: LayerSpec) -> list[str]:
    names = ["code", "name", *(a.name for a in spec.attributes)]
    names += [f"{link.prefix}_code" for link in spec.area_links()]
    return names


def check_properties(
    spec: LayerSpec,
    props: Mapping[str, Any],
    area_ids: Mapping[str, int],
    local_codes: bool = False,
) -> tuple[dict[str, Any], list[Problem]]:
    """Full set of properties → (code, name and layer columns, problems).

    `local_codes`: accept a local code scheme (geoservice.registry.LOCAL_CODE) instead of the
    layer's standard code format (e.g. 杭州's grid codes TS-3-3)."""
    problems: list[Problem] = []
    out: dict[str, Any] = {}
    allowed = writable_properties(spec)
    links = {f"{link.prefix}_code": link for link in spec.area_links()}
    read_only = set(READ_ONLY) | {f"{link.prefix}_name" for link in spec.area_links()}
    unknown = [k for k in props if k not in allowed and k not in read_only]
    if unknown:
        problems.append(
            Problem(
                f"未知属性：{'、'.join(unknown)}（{spec.title}可用属性：{'、'.join(allowed)}）",
                f"properties.{unknown[0]}",
                {"unknown": unknown, "allowed": allowed},
            )
        )
    for key, limit, title in (("code", CODE_MAX, "编码"), ("name", NAME_MAX, "名称")):
        value = props.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and key == "code":
            value = str(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(Problem(f"缺少必填属性：{key}（{title}）", f"properties.{key}"))
        elif not isinstance(value, str):
            problems.append(Problem(f"属性 {key}（{title}）应为文字", f"properties.{key}"))
        elif len(value.strip()) > limit:
            problems.append(
                Problem(f"属性 {key}（{title}）过长：最多 {limit} 字", f"properties.{key}")
            )
        else:
            out[key] = value.strip()
    if "code" in out and local_codes and spec.code_pattern is not None:
        if not spec.code_is_valid(out["code"]) and not LOCAL_CODE.fullmatch(out["code"]):
            problems.append(
                Problem(
                    f"编码 {out['code']!r} 既不是标准编码（{spec.code_hint or spec.code_pattern}）"
                    "也不符合本地编码格式（1–15 位字母、数字，可用 - _ . 分隔）",
                    "properties.code",
                )
            )
    elif "code" in out and not spec.code_is_valid(out["code"]):
        hint = (
            "；本地编码请用 local_codes=true（命令行 --local-codes）"
            if not out["code"].isdigit()
            else ""
        )
        problems.append(
            Problem(
                f"编码 {out['code']!r} 格式不对：{spec.code_hint or spec.code_pattern}{hint}",
                "properties.code",
            )
        )
    columns = spec.model.__table__.c
    for attr in spec.attributes:
        value = props.get(attr.name)
        fieldname = f"properties.{attr.name}"
        column = columns[attr.name]
        if value is None or (isinstance(value, str) and not value.strip() and attr.type is str):
            if attr.required:
                problems.append(Problem(f"缺少必填属性：{attr.name}（{attr.title}）", fieldname))
            elif not column.nullable:
                out[attr.name] = DEFAULT
            else:
                out[attr.name] = None
            continue
        try:
            value = _type_ok(attr.type, value)
        except ValueError as exc:
            problems.append(
                Problem(f"属性 {attr.name}（{attr.title}）{exc}，收到 {shown(value)}", fieldname)
            )
            continue
        if attr.type is str:
            value = value.strip()
        if attr.choices is not None and value not in attr.choices:
            problems.append(
                Problem(
                    f"属性 {attr.name}（{attr.title}）取值 {shown(value)} 不在可选范围："
                    f"{'、'.join(map(str, attr.choices))}",
                    fieldname,
                    {"allowed": list(attr.choices)},
                )
            )
            continue
        limit = attr.max_length or spec.column_max_length(attr.name)
        if isinstance(value, str) and limit and len(value) > limit:
            problems.append(
                Problem(f"属性 {attr.name}（{attr.title}）过长：最多 {limit} 字", fieldname)
            )
            continue
        out[attr.name] = value
    for key, link in links.items():
        value = props.get(key)
        if value is None or value == "":
            out[link.column] = None
            continue
        value = str(value).strip()
        if value not in area_ids:
            problems.append(Problem(f"行政区划代码 {shown(value)} 不存在", f"properties.{key}"))
            continue
        out[link.column] = area_ids[value]
    return out, problems


def area_ids(session: Session, spec: LayerSpec, candidates: list[Candidate]) -> dict[str, int]:
    keys = [f"{link.prefix}_code" for link in spec.area_links()]
    codes = {str(c.properties[k]).strip() for c in candidates for k in keys if c.properties.get(k)}
    if not codes:
        return {}
    rows = session.execute(
        text("SELECT code, id FROM admin_areas WHERE code IN :codes").bindparams(
            bindparam("codes", expanding=True)
        ),
        {"codes": sorted(codes)},
    )
    return dict(rows.all())


# ---- geometry in PostGIS ---------------------------------------------------------------------


@dataclass(frozen=True)
class GeometryRule:
    """What `check_geometries` needs of a target that is not a layer (e.g. admin areas)."""

    title: str
    geometry_types: tuple[str, ...]
    column_type: str = "MULTIPOLYGON"

    @property
    def geometry_column(self) -> Geometry:
        return Geometry(self.column_type, srid=4326)


def _target_sql(spec: LayerSpec | GeometryRule, column: str) -> str:
    column_type = spec.geometry_column.geometry_type.upper()
    return f"ST_Multi({column})" if column_type.startswith("MULTI") else column


def check_geometries(
    session: Session, spec: LayerSpec | GeometryRule, geoms: list[BaseGeometry], repair: bool
) -> list[tuple[bytes | None, Problem | None, str | None]]:
    """Validity of each geometry: (final EWKB, problem, notice), one statement for the batch."""
    if not geoms:
        return []
    repaired = (
        "CASE WHEN ST_IsValid(g) THEN g "
        "ELSE ST_CollectionExtract(ST_MakeValid(g), ST_Dimension(g) + 1) END"
        if repair
        else "g"
    )
    statement = text(f"""
SELECT ord, ST_IsValid(g), d.reason, ST_X(d.location), ST_Y(d.location),
       ST_AsEWKB(f.final), ST_IsEmpty(f.final), ST_IsValid(f.final), GeometryType(f.final)
FROM unnest(:wkbs) WITH ORDINALITY AS u(wkb, ord)
CROSS JOIN LATERAL (SELECT ST_GeomFromWKB(u.wkb, 4326) AS g) s
CROSS JOIN LATERAL ST_IsValidDetail(s.g) d
CROSS JOIN LATERAL (SELECT {_target_sql(spec, repaired)} AS final) f
ORDER BY ord""").bindparams(bindparam("wkbs", type_=ARRAY(BYTEA)))
    rows = session.execute(statement, {"wkbs": [shapely.to_wkb(g) for g in geoms]}).all()
    accepted = {t.upper() for t in spec.geometry_types}
    accepted |= {f"MULTI{t}" for t in accepted if not t.startswith("MULTI")}
    out: list[tuple[bytes | None, Problem | None, str | None]] = []
    for _ord, valid, reason, x, y, ewkb, empty, final_valid, final_type in rows:
        reason_zh = REASONS.get((reason or "").split("[")[0].strip(), reason)
        where = {
            "reason": reason,
            "location": [round(x, 7), round(y, 7)] if x is not None else None,
        }
        if valid:
            out.append((bytes(ewkb), None, None))
        elif not repair:
            place = f"，位置：经度 {x:.7f}，纬度 {y:.7f}" if x is not None else ""
            out.append(
                (
                    None,
                    Problem(
                        f"几何图形无效：{reason_zh}{place}。"
                        "请修正后重新提交，或加参数 repair=true 自动修复",
                        "geometry",
                        where,
                    ),
                    None,
                )
            )
        elif empty or not final_valid or final_type.upper() not in accepted:
            out.append(
                (
                    None,
                    Problem(
                        f"几何图形无效（{reason_zh}），自动修复后不再是有效的{spec.title}几何",
                        "geometry",
                        where,
                    ),
                    None,
                )
            )
        else:
            out.append(
                (bytes(ewkb), None, f"几何图形无效（{reason_zh}），已用 ST_MakeValid 自动修复")
            )
    return out


def check_geometry_type(spec: LayerSpec | GeometryRule, geom: BaseGeometry) -> Problem | None:
    if geom.geom_type not in spec.geometry_types:
        return Problem(
            f"几何类型 {geom.geom_type} 不适用于{spec.title}："
            f"应为 {'、'.join(spec.geometry_types)}",
            "geometry.type",
            {"allowed": list(spec.geometry_types), "received": geom.geom_type},
        )
    return None


# ---- codes -----------------------------------------------------------------------------------


def existing_codes(
    session: Session, spec: LayerSpec, codes: list[str], exclude_id: int | None = None
) -> dict[str, int]:
    if not codes:
        return {}
    rows = session.execute(
        text(
            "SELECT code, id FROM places WHERE layer = :layer AND code IN :codes"
            " AND (CAST(:exclude AS bigint) IS NULL OR id <> :exclude)"
        ).bindparams(bindparam("codes", expanding=True)),
        {"layer": spec.name, "codes": sorted(set(codes)), "exclude": exclude_id},
    )
    return dict(rows.all())


# ---- all together ----------------------------------------------------------------------------


def validate(
    session: Session,
    spec: LayerSpec,
    candidates: list[Candidate],
    *,
    repair: bool = False,
    area: ServiceArea | None = None,
    exclude_id: int | None = None,
    local_codes: bool = False,
) -> tuple[list[Checked], list[Rejected]]:
    """Checks every candidate; returns the good ones and the rejected ones with reasons."""
    ids = area_ids(session, spec, candidates)
    problems: dict[int, list[Problem]] = {c.index: [] for c in candidates}
    values: dict[int, dict[str, Any]] = {}
    for c in candidates:
        vals, found = check_properties(spec, c.properties, ids, local_codes)
        values[c.index] = vals
        problems[c.index].extend(found)
        if c.geometry is not None:
            for check in (check_geometry_type(spec, c.geometry), check_location(c.geometry, area)):
                if check is not None:
                    problems[c.index].append(check)
    to_check = [
        c for c in candidates if c.geometry is not None and not _geometry_problem(problems[c.index])
    ]
    results = dict(
        zip(
            [c.index for c in to_check],
            check_geometries(session, spec, [c.geometry for c in to_check], repair),
            strict=True,
        )
    )
    # Codes: unique within the batch and in the layer.
    seen: dict[str, int] = {}
    codes = [values[c.index]["code"] for c in candidates if "code" in values[c.index]]
    taken = existing_codes(session, spec, codes, exclude_id)
    for position, c in enumerate(candidates):
        code = values[c.index].get("code")
        if code is None:
            continue
        if code in taken:
            problems[c.index].append(
                Problem(
                    f"编码 {code!r} 已被{spec.title}要素 {taken[code]} 使用",
                    "properties.code",
                    {"code": code, "feature_id": taken[code]},
                    status=409,
                )
            )
        elif code in seen:
            problems[c.index].append(
                Problem(
                    f"编码 {code!r} 在本批数据中重复"
                    f"（与{candidates[seen[code]].label or '前一要素'}相同）",
                    "properties.code",
                    {"code": code},
                    status=409,
                )
            )
        else:
            seen[code] = position
    checked: list[Checked] = []
    rejected: list[Rejected] = []
    for c in candidates:
        notice = None
        ewkb = None
        if c.index in results:
            ewkb, problem, notice = results[c.index]
            if problem is not None:
                problems[c.index].append(problem)
        if problems[c.index]:
            rejected.append(Rejected(c.index, c.label, problems[c.index]))
            continue
        vals = dict(values[c.index])
        checked.append(
            Checked(
                index=c.index,
                code=vals.pop("code"),
                name=vals.pop("name"),
                values=vals,
                ewkb=ewkb,
                notices=[notice] if notice else [],
            )
        )
    return checked, rejected


def _geometry_problem(problems: list[Problem]) -> bool:
    return any(p.field is not None and p.field.startswith("geometry") for p in problems)
