"""条块 routing: a matrix of category × area (and/or layer) → responsible unit.

Some problems belong to a line department whatever the place: 占道经营 → 城管局, 公益广告 →
宣传部, 工地扬尘 → 住建局. A rule (`routing_rules`) names the category, optionally an admin area
(the grid's community or street) and/or a layer (of the primary place), the unit, its role
(牵头 lead / 配合 assist), whether the place's 包保 leader is co-responsible or only informed,
and the dates it applies (effective-dated: a rule applies to issues reported in
[valid_from, valid_to)).

At report time, after the place attribution (geoservice.issues.attribution), the most specific lead
rule valid then wins (area and layer > area > layer > category only; then the latest
valid_from, then the lowest id): the issue goes to that unit — to its head (单位负责人) if it
has one, else to the 待派遣 queue with the unit set — and the place's 包保 leader is recorded as
informed (知悉) or co-responsible (共同负责: may act on the issue like its holder). 配合 units of
matching assist rules are listed. Rankings count the issue for its holder (the lead unit's).

The matching itself is SQL, part of the attribution statement
(geoservice.issues.attribution._routing_sql): a report and a bulk re-attribution decide alike in
one round trip. This module keeps the rules' management and the sentence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from geoservice.input_values import shown, text_value, within_service_years
from geoservice.models import AdminArea, Leader, RoutingRule, Unit, User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import InvalidInput, NotFound

ROLES = {"lead": "牵头", "assist": "配合"}


def _is_id(value: object) -> bool:
    """A row id as JSON gives it: an integer in the id range (not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**31 - 1


def sentence(session: Session, routing: dict[str, Any]) -> str:
    """The routing part of an issue's rule sentence."""
    ids = [routing["unit_id"], *routing.get("assist_unit_ids", [])]
    names = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids))).all())
    text_ = f"；按条块分工，「{routing['category']}」问题由{names.get(routing['unit_id'])}牵头办理"
    helpers = [names.get(u) for u in routing.get("assist_unit_ids", [])]
    if helpers:
        text_ += f"，{'、'.join(h for h in helpers if h)}配合"
    place_leader = routing.get("place_leader_id")
    if place_leader:
        name = session.scalar(select(Leader.name).where(Leader.id == place_leader))
        text_ += f"；地点包保领导{name}{'共同负责' if routing.get('co_responsible') else '知悉'}"
    return text_


def co_responsible_leader(issue: Any) -> int | None:
    routing = (issue.attribution or {}).get("routing") or {}
    return routing.get("place_leader_id") if routing.get("co_responsible") else None


# --- managing the rules (admin pages and API) -------------------------------------------------


def rule_json(rule: RoutingRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "category": rule.category,
        "area_id": rule.area_id,
        "layer": rule.layer,
        "unit_id": rule.unit_id,
        "role": rule.role,
        "role_label": ROLES[rule.role],
        "co_responsible": rule.co_responsible,
        "note": rule.note,
        "valid_from": rule.valid_from.isoformat(),
        "valid_to": rule.valid_to.isoformat() if rule.valid_to else None,
        "created_by_id": rule.created_by_id,
    }


def list_rules(session: Session, at: datetime | None = None) -> list[dict[str, Any]]:
    stmt = select(RoutingRule).order_by(RoutingRule.category, RoutingRule.id)
    if at is not None:
        stmt = stmt.where(
            RoutingRule.valid_from <= at,
            or_(RoutingRule.valid_to.is_(None), RoutingRule.valid_to > at),
        )
    return [rule_json(r) for r in session.scalars(stmt)]


def create_rule(
    session: Session,
    registry: LayerRegistry,
    categories: list[str],
    actor: User | None,
    fields: dict[str, Any],
    now: datetime | None = None,
) -> RoutingRule:
    now = now or datetime.now(UTC)
    category = fields.get("category")
    if not isinstance(category, str) or category not in categories:
        raise InvalidInput(
            f"未知的问题类别 {shown(category)}", {"categories": categories}, "category"
        )
    role = fields.get("role", "lead")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidInput("role 应为 lead（牵头）或 assist（配合）", field="role")
    unit_id = fields.get("unit_id")
    if not _is_id(unit_id) or session.get(Unit, unit_id) is None:
        raise InvalidInput("unit_id 应为已有责任单位的编号", field="unit_id")
    area_id = fields.get("area_id")
    if area_id is not None:
        area = session.get(AdminArea, area_id) if _is_id(area_id) else None
        if area is None or area.level not in ("community", "street"):  # what attribution reads
            raise InvalidInput("area_id 应为已有社区或街道的编号", field="area_id")
    layer = fields.get("layer")
    if layer is not None and (not isinstance(layer, str) or layer not in registry):
        raise InvalidInput(f"未知的图层 {shown(layer)}", {"layers": registry.names}, "layer")
    valid_from = _instant(fields.get("valid_from"), "valid_from") or now
    valid_to = _instant(fields.get("valid_to"), "valid_to")
    if valid_to is not None and valid_to <= valid_from:
        raise InvalidInput("valid_to 必须晚于 valid_from", field="valid_to")
    co = fields.get("co_responsible", False)
    if not isinstance(co, bool):
        raise InvalidInput("co_responsible 应为 true 或 false", field="co_responsible")
    rule = RoutingRule(
        category=category,
        area_id=area_id,
        layer=layer,
        unit_id=unit_id,
        role=role,
        co_responsible=co,
        note=text_value(fields.get("note"), "note", "备注")[:2000],
        valid_from=valid_from,
        valid_to=valid_to,
        created_by_id=actor.id if actor else None,
    )
    session.add(rule)
    session.flush()
    return rule


def end_rule(
    session: Session, rule_id: int, valid_to: datetime | None, now: datetime | None = None
) -> RoutingRule:
    """Stops a rule from `valid_to` (default now); issues reported before keep it."""
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(f"没有编号为 {rule_id} 的条块规则", field="id")
    end = valid_to or now or datetime.now(UTC)
    if end <= rule.valid_from:
        raise InvalidInput("结束时间必须晚于生效时间", field="valid_to")
    if rule.valid_to is not None and rule.valid_to <= end:
        raise InvalidInput("该规则在此之前已结束", field="valid_to")
    rule.valid_to = end
    session.flush()
    return rule


def _instant(raw: Any, name: str) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise InvalidInput(f"{name} 应为 ISO 8601 日期时间（带时区）", field=name) from None
    if value.tzinfo is None:
        raise InvalidInput(f"{name} 需带时区，如 +08:00", field=name)
    return within_service_years(value, name, name)


# --- area leaders (the community / street steps of the fallback chain) ------------------------


def area_assignment_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "area_id": row.area_id,
        "leader_id": row.leader_id,
        "role": row.role,
        "valid_from": row.valid_from.isoformat(),
        "valid_to": row.valid_to.isoformat() if row.valid_to else None,
    }


def list_area_assignments(session: Session) -> list[dict[str, Any]]:
    from geoservice.models import AreaAssignment

    rows = session.scalars(
        select(AreaAssignment).order_by(AreaAssignment.area_id, AreaAssignment.valid_from)
    ).all()
    return [area_assignment_json(r) for r in rows]


def assign_area(session: Session, fields: dict[str, Any], now: datetime | None = None) -> Any:
    """A leader for a 社区 or 街道 from `valid_from` (default now); the area's open assignment,
    if any, ends then (history kept)."""
    from geoservice.models import AreaAssignment

    now = now or datetime.now(UTC)
    area_id, leader_id = fields.get("area_id"), fields.get("leader_id")
    area = session.get(AdminArea, area_id) if _is_id(area_id) else None
    if area is None or area.level not in ("community", "street"):
        raise InvalidInput("area_id 应为已有社区或街道的编号", field="area_id")
    leader = session.get(Leader, leader_id) if _is_id(leader_id) else None
    if leader is None or not leader.active:
        raise InvalidInput("leader_id 应为在岗包保领导的编号", field="leader_id")
    start = _instant(fields.get("valid_from"), "valid_from") or now
    current = session.scalars(
        select(AreaAssignment).where(
            AreaAssignment.area_id == area.id, AreaAssignment.valid_to.is_(None)
        )
    ).all()
    for row in current:
        if row.valid_from >= start:
            raise InvalidInput("该区域已有更晚生效的包保领导", field="valid_from")
        row.valid_to = start
    row = AreaAssignment(
        area_id=area.id,
        leader_id=leader.id,
        role=text_value(fields.get("role"), "role", "角色", default="包保责任人")[:50],
        valid_from=start,
    )
    session.add(row)
    session.flush()
    return row
