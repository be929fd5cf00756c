"""Site kinds: created, changed and retired as data; their attribute definitions, and checking a
site's attribute values against them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geoservice.assessment.models import (
    ATTRIBUTE_TYPES,
    GEOMETRY_TYPES,
    Site,
    SiteKind,
    StandardKind,
)
from geoservice.input_values import shown
from geoservice.service_errors import Conflict, InvalidInput, NotFound

CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ATTR_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
RESERVED_ATTRS = {"code", "name", "kind", "kind_name", "address", "community_code",
                  "community_name", "street_name", "attributes", "leaders", "updated_at",
                  "lon", "lat", "q", "leader_id", "street_code"}  # fmt: skip
MAX_ATTRIBUTES = 30


def kind_json(kind: SiteKind, site_count: int | None = None) -> dict[str, Any]:
    out = {
        "id": kind.id,
        "code": kind.code,
        "name": kind.name,
        "colour": kind.colour,
        "icon": kind.icon,
        "geometry_type": kind.geometry_type,
        "attributes": list(kind.attributes or []),
        "claim_radius_m": kind.claim_radius_m,
        "precedence": kind.precedence,
        "retired": kind.retired,
        "collection": f"site-{kind.code}",
    }
    if site_count is not None:
        out["site_count"] = site_count
    return out


def list_kinds(session: Session, include_retired: bool = True) -> list[dict[str, Any]]:
    counts = dict(session.execute(select(Site.kind_id, func.count()).group_by(Site.kind_id)).all())
    query = select(SiteKind).order_by(SiteKind.retired, SiteKind.precedence.desc(), SiteKind.id)
    if not include_retired:
        query = query.where(SiteKind.retired.is_(False))
    return [kind_json(k, counts.get(k.id, 0)) for k in session.scalars(query)]


def get_kind(session: Session, kind_id: int) -> SiteKind:
    kind = session.get(SiteKind, kind_id)
    if kind is None:
        raise NotFound(f"没有编号为 {kind_id} 的点位类别", field="id")
    return kind


def kind_by_code(session: Session, code: Any, field: str = "kind") -> SiteKind:
    """The kind named by code or by name; 422 naming `field` if there is none."""
    value = str(code or "").strip()
    if not value:
        raise InvalidInput("缺少点位类别", field=field)
    kind = session.scalar(
        select(SiteKind).where((SiteKind.code == value) | (SiteKind.name == value))
    )
    if kind is None:
        known = session.scalars(select(SiteKind.name).order_by(SiteKind.id)).all()
        raise InvalidInput(f"未知点位类别「{value}」", {"kinds": known}, field)
    return kind


# --- attribute definitions ------------------------------------------------------------------


def check_attribute_definitions(raw: Any) -> list[dict[str, Any]]:
    """Normalises a kind's attribute definitions; 422 naming `attributes[i].<key>`."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise InvalidInput("attributes 必须是数组", field="attributes")
    if len(raw) > MAX_ATTRIBUTES:
        raise InvalidInput(f"属性最多 {MAX_ATTRIBUTES} 个", field="attributes")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"attributes[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput("每个属性必须是对象", field=where)
        name = str(item.get("name") or "").strip()
        if not ATTR_NAME.match(name):
            raise InvalidInput(
                "属性名须为小写字母开头的英文、数字或下划线（最多 32 个字符）",
                {"name": name},
                f"{where}.name",
            )
        if name in RESERVED_ATTRS:
            raise InvalidInput(f"属性名「{name}」是保留字", field=f"{where}.name")
        if name in seen:
            raise InvalidInput(f"属性名「{name}」重复", field=f"{where}.name")
        seen.add(name)
        title = item.get("title")
        if title is not None and not isinstance(title, str):
            raise InvalidInput("属性标题应为文字", field=f"{where}.title")
        title = (title or name).strip()[:50] or name
        kind = "text" if item.get("type") is None else item.get("type")
        if not isinstance(kind, str) or kind not in ATTRIBUTE_TYPES:
            raise InvalidInput(
                f"属性类型只能是 {'、'.join(f'{k}（{v}）' for k, v in ATTRIBUTE_TYPES.items())}",
                field=f"{where}.type",
            )
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise InvalidInput("required 必须是 true 或 false", field=f"{where}.required")
        definition: dict[str, Any] = {
            "name": name,
            "title": title,
            "type": kind,
            "required": required,
        }
        choices = item.get("choices")
        if (kind == "choice" or choices is not None) and (
            not isinstance(choices, list)
            or (kind == "choice" and not choices)
            or not all(isinstance(c, str) and c.strip() for c in choices)
        ):
            raise InvalidInput("选项类属性需要非空的选项列表（文字）", field=f"{where}.choices")
        if kind == "choice":
            definition["choices"] = [c.strip() for c in choices]
        out.append(definition)
    return out


def check_attribute_values(
    definitions: list[dict[str, Any]], raw: Any, field_prefix: str = "attributes"
) -> dict[str, Any]:
    """A site's attribute values checked against its kind: unknown names, wrong types, missing
    required values and choices outside the list are refused (422 naming the attribute)."""
    if raw in (None, ""):
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("attributes 必须是对象", field=field_prefix)
    by_name = {d["name"]: d for d in definitions}
    unknown = [k for k in raw if k not in by_name]
    if unknown:
        raise InvalidInput(
            f"该类别没有属性「{unknown[0]}」",
            {"attributes": list(by_name)},
            f"{field_prefix}.{unknown[0]}",
        )
    out: dict[str, Any] = {}
    for d in definitions:
        name, title, kind = d["name"], d.get("title", d["name"]), d["type"]
        field = f"{field_prefix}.{name}"
        value = raw.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            if d.get("required"):
                raise InvalidInput(f"缺少必填属性「{title}」", field=field)
            continue
        if kind == "integer":
            if isinstance(value, bool) or not (
                isinstance(value, int)
                or (isinstance(value, float) and value.is_integer())
                or (isinstance(value, str) and re.fullmatch(r"-?\d{1,12}", value))
            ):
                raise InvalidInput(f"属性「{title}」应为整数，收到 {shown(value)}", field=field)
            value = int(value)
        elif kind == "date":
            if isinstance(value, date):
                value = value.isoformat()[:10]
            bad = InvalidInput(
                f"属性「{title}」应为日期（YYYY-MM-DD），收到 {shown(raw.get(name))}", field=field
            )
            if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise bad
            try:
                date.fromisoformat(value)
            except ValueError:
                raise bad from None
        elif kind == "choice":
            if not isinstance(value, str) or value not in d.get("choices", []):
                raise InvalidInput(
                    f"属性「{title}」的取值「{value}」不在选项中",
                    {"choices": d.get("choices", [])},
                    field,
                )
        else:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise InvalidInput(f"属性「{title}」应为文字", field=field)
            value = str(value)
            if len(value) > 200:
                raise InvalidInput(f"属性「{title}」过长（最多 200 字）", field=field)
        out[name] = value
    return out


# --- writing kinds --------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], key: str, title: str, max_len: int) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"缺少{title}", field=key)
    value = value.strip()
    if len(value) > max_len:
        raise InvalidInput(f"{title}过长（最多 {max_len} 字）", field=key)
    return value


def _number(payload: Mapping[str, Any], key: str, title: str, lo: float, hi: float) -> float:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{title}应为数字", field=key)
    if not lo <= value <= hi:
        raise InvalidInput(f"{title}应在 {lo:g} 到 {hi:g} 之间", field=key)
    return value


def _apply(session: Session, kind: SiteKind, payload: Mapping[str, Any], creating: bool) -> None:
    if creating or "code" in payload:
        code = _text(payload, "code", "类别代码", 32)
        if not CODE.match(code):
            raise InvalidInput(
                "类别代码须为小写字母开头的英文、数字或下划线（最多 32 个字符）", field="code"
            )
        if code != kind.code:
            if not creating and session.scalar(
                select(Site.id).where(Site.kind_id == kind.id).limit(1)
            ):
                raise Conflict("已有点位使用该类别，不能修改类别代码", field="code")
            if session.scalar(select(SiteKind.id).where(SiteKind.code == code)) is not None:
                raise Conflict(f"类别代码「{code}」已存在", field="code")
        kind.code = code
    if creating or "name" in payload:
        name = _text(payload, "name", "类别名称", 50)
        clash = session.scalar(select(SiteKind.id).where(SiteKind.name == name))
        if clash is not None and clash != kind.id:
            raise Conflict(f"类别名称「{name}」已存在", field="name")
        kind.name = name
    if "colour" in payload or creating:
        colour = payload.get("colour")
        colour = "#1565c0" if colour in (None, "") else colour
        if not isinstance(colour, str) or not COLOUR.fullmatch(colour):
            raise InvalidInput("颜色应为 #RRGGBB", field="colour")
        kind.colour = colour.lower()
    if "icon" in payload:
        icon = "" if payload.get("icon") is None else payload.get("icon")
        if not isinstance(icon, str) or not re.fullmatch(r"[a-z0-9-]{0,32}", icon):
            raise InvalidInput("图标名只能含小写字母、数字和连字符", field="icon")
        kind.icon = icon
    if creating or "geometry_type" in payload:
        geometry_type = payload.get("geometry_type")
        geometry_type = "point" if geometry_type is None else geometry_type
        if not isinstance(geometry_type, str) or geometry_type not in GEOMETRY_TYPES:
            raise InvalidInput("几何类型只能是 point（点）或 polygon（面）", field="geometry_type")
        in_use = not creating and session.scalar(
            select(Site.id).where(Site.kind_id == kind.id).limit(1)
        )
        if in_use and geometry_type != kind.geometry_type:
            raise Conflict("已有点位使用该类别，不能修改几何类型", field="geometry_type")
        kind.geometry_type = geometry_type
    if "attributes" in payload or creating:
        kind.attributes = check_attribute_definitions(payload.get("attributes"))
    if "claim_radius_m" in payload or creating:
        kind.claim_radius_m = float(
            _number(payload, "claim_radius_m", "认领半径（米）", 1, 1000)
            if "claim_radius_m" in payload
            else 30.0
        )
    if "precedence" in payload:
        value = _number(payload, "precedence", "优先级", 0, 1000)
        if not float(value).is_integer():
            raise InvalidInput("优先级应为整数", field="precedence")
        kind.precedence = int(value)
    elif creating:
        kind.precedence = 50
    if "retired" in payload:
        if not isinstance(payload["retired"], bool):
            raise InvalidInput("retired 必须是 true 或 false", field="retired")
        kind.retired = payload["retired"]


def create_kind(session: Session, payload: Mapping[str, Any]) -> SiteKind:
    if not isinstance(payload, Mapping):
        raise InvalidInput("请求体必须是 JSON 对象")
    kind = SiteKind(retired=False)
    _apply(session, kind, payload, creating=True)
    session.add(kind)
    session.flush()
    return kind


def update_kind(session: Session, kind_id: int, payload: Mapping[str, Any]) -> SiteKind:
    if not isinstance(payload, Mapping):
        raise InvalidInput("请求体必须是 JSON 对象")
    kind = get_kind(session, kind_id)
    _apply(session, kind, payload, creating=False)
    kind.updated_at = func.now()
    session.flush()
    session.refresh(kind)
    return kind


def delete_kind(session: Session, kind_id: int) -> None:
    """Deletes an unused kind; a kind with sites or standards is refused (retire it instead)."""
    kind = get_kind(session, kind_id)
    sites = session.scalar(select(func.count()).where(Site.kind_id == kind.id)) or 0
    standards = session.scalar(select(func.count()).where(StandardKind.kind_id == kind.id)) or 0
    if sites or standards:
        raise Conflict(
            f"类别「{kind.name}」已被 {sites} 个点位、{standards} 条测评标准使用，不能删除；"
            "可将其停用（retired）",
            {"sites": sites, "standards": standards},
            "id",
        )
    session.delete(kind)
    session.flush()
