"""包保 responsibility: units, leaders and assignments with history (plain functions, no Flask).

An assignment holds a leader responsible for one place (a feature of any layer) in a role
over the half-open period [valid_from, valid_to). Reassigning closes the old row and opens a
new one; nothing is overwritten. An assignment is *active* while valid_to is NULL; start and
end instants are never in the future, so "active" and "in force now" mean the same thing.

`responsible_at` answers "who was responsible for place X at instant T" — the one query that
attribution and rankings build on (`in_force_at` is the same condition as an SQL clause).

Every write is recorded in the audit log (`by`: the acting account; None = the command line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import has_app_context
from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session, contains_eager, selectinload

from geoservice import service_errors
from geoservice.accounts import audit
from geoservice.input_values import shown, whole_number
from geoservice.models import Assignment, Issue, Leader, Place, Unit, User
from geoservice.registry import layers
from geoservice.responsibility import values
from geoservice.responsibility.values import Invalid, clean_text, not_future, now
from geoservice.service_errors import Conflict, NotFound

# The value checks, as callers know them (resp.normalise_phone, resp.parse_instant …).
day_start = values.day_start
normalise_choice = values.normalise_choice
normalise_note = values.normalise_note
normalise_person_name = values.normalise_person_name
normalise_phone = values.normalise_phone
normalise_title = values.normalise_title
normalise_unit_name = values.normalise_unit_name
parse_instant = values.parse_instant
ServiceError = service_errors.ServiceError  # callers catch resp.ServiceError


# ---------------------------------------------------------------------------------------------
# Errors are ServiceErrors (geoservice.errors answers them: status, Chinese message, detail,
# field); `Invalid` (400) and the value checks live in geoservice.responsibility.values.


def _audit(
    session: Session,
    by: User | None,
    action: str,
    obj: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    entity = {Unit: "unit", Leader: "leader", Assignment: "assignment"}[type(obj)]
    audit.record(session, by, action, entity, obj.id, before, after, actor=None if by else "cli")


# ---------------------------------------------------------------------------------------------
# Units.


def get_unit(session: Session, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"没有编号为 {unit_id} 的单位", field="unit_id")
    return unit


def unit_by_name(session: Session, name: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.name == name))


def create_unit(session: Session, name: Any, is_lead: bool = False, by: User | None = None) -> Unit:
    name = normalise_unit_name(name)
    if unit_by_name(session, name) is not None:
        raise Conflict(f"单位“{name}”已存在", field="name")
    unit = Unit(name=name, is_lead=bool(is_lead), active=True)
    session.add(unit)
    session.flush()
    _audit(session, by, "unit.create", unit, after=audit.snapshot(unit))
    return unit


def update_unit(
    session: Session, unit_id: int, changes: dict[str, Any], by: User | None = None
) -> Unit:
    unit = get_unit(session, unit_id)
    before = audit.snapshot(unit)
    if "name" in changes:
        name = normalise_unit_name(changes["name"])
        other = unit_by_name(session, name)
        if other is not None and other.id != unit.id:
            raise Conflict(f"单位“{name}”已存在", field="name")
        unit.name = name
    for key in ("is_lead", "active"):
        if key in changes:
            setattr(unit, key, as_bool(changes[key], key))
    session.flush()
    old, new = audit.diff(before, audit.snapshot(unit))
    if new:
        _audit(session, by, "unit.update", unit, old, new)
    return unit


def delete_unit(session: Session, unit_id: int, by: User | None = None) -> None:
    """Only a unit nothing refers to can be deleted; otherwise deactivate it."""
    unit = get_unit(session, unit_id)
    leaders = session.scalars(select(Leader.name).where(Leader.unit_id == unit.id)).all()
    issues = session.scalar(select(func.count()).where(Issue.unit_id == unit.id))
    if leaders or issues:
        raise Conflict(
            f"单位“{unit.name}”仍有包保领导或问题记录，不能删除，可改为停用",
            detail={"leaders": list(leaders), "issues": issues},
        )
    _audit(session, by, "unit.delete", unit, before=audit.snapshot(unit))
    session.delete(unit)
    session.flush()


def unit_rows(session: Session) -> list[dict[str, Any]]:
    counts = (
        select(Leader.unit_id, func.count().label("n"))
        .where(Leader.active)
        .group_by(Leader.unit_id)
        .subquery()
    )
    rows = session.execute(
        select(Unit, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.unit_id == Unit.id)
        .order_by(Unit.is_lead.desc(), Unit.name)
    ).all()
    return [unit_dict(unit) | {"leader_count": n} for unit, n in rows]


def unit_dict(unit: Unit) -> dict[str, Any]:
    return {"id": unit.id, "name": unit.name, "is_lead": unit.is_lead, "active": unit.active}


# ---------------------------------------------------------------------------------------------
# Leaders.


def get_leader(session: Session, leader_id: int) -> Leader:
    leader = session.get(Leader, leader_id)
    if leader is None:
        raise NotFound(f"没有编号为 {leader_id} 的包保领导", field="leader_id")
    return leader


def validate_leader_fields(
    session: Session, data: dict[str, Any], levels: Sequence[str], partial: bool = False
) -> dict[str, Any]:
    """Checks and normalises the leader fields present in `data`; raises Invalid/NotFound."""
    out: dict[str, Any] = {}
    if not partial or "name" in data:
        out["name"] = normalise_person_name(data.get("name"))
    if "title" in data:
        out["title"] = normalise_title(data.get("title"))
    if "phone" in data:
        out["phone"] = normalise_phone(data.get("phone"))
    if not partial or "level" in data:
        out["level"] = normalise_choice(data.get("level"), levels, "层级", "level")
    if "unit_id" in data:
        unit_id = data.get("unit_id")
        if unit_id in (None, ""):
            out["unit_id"] = None
        else:
            out["unit_id"] = get_unit(session, as_int(unit_id, "unit_id")).id
    for key in ("is_unit_head", "active"):
        if key in data:
            out[key] = as_bool(data[key], key)
    return out


def create_leader(
    session: Session, data: dict[str, Any], levels: Sequence[str], by: User | None = None
) -> Leader:
    values = validate_leader_fields(session, data, levels)
    values.setdefault("title", "")
    values.pop("active", None)
    leader = Leader(**values, active=True)
    session.add(leader)
    session.flush()
    _audit(session, by, "leader.create", leader, after=audit.snapshot(leader))
    return leader


def update_leader(
    session: Session,
    leader_id: int,
    data: dict[str, Any],
    levels: Sequence[str],
    by: User | None = None,
) -> Leader:
    """Edits a leader's fields. Setting active to false goes through `deactivate_leader`."""
    leader = get_leader(session, leader_id)
    before = audit.snapshot(leader)
    if leader.level not in levels:  # a retired level stays valid on the leaders who have it
        levels = [*levels, leader.level]
    values = validate_leader_fields(session, data, levels, partial=True)
    active = values.pop("active", None)
    for key, value in values.items():
        setattr(leader, key, value)
    session.flush()
    old, new = audit.diff(before, audit.snapshot(leader))
    if new:
        _audit(session, by, "leader.update", leader, old, new)
    if active is False and leader.active:
        deactivate_leader(session, leader.id, by=by)
    elif active is True and not leader.active:
        leader.active = True
        session.flush()
        _audit(session, by, "leader.activate", leader, {"active": False}, {"active": True})
    return leader


def active_assignments_of(session: Session, leader_id: int) -> list[Assignment]:
    return list(
        session.scalars(
            select(Assignment)
            .join(Place, Place.id == Assignment.place_id)
            .where(Assignment.leader_id == leader_id, Assignment.valid_to.is_(None))
            .order_by(Place.layer, Place.code, Assignment.role)
        )
    )


def delete_leader(session: Session, leader_id: int, by: User | None = None) -> None:
    """Refused (409, listing them) while the leader holds active assignments; a leader with any
    history (past assignments, issues, an account) is kept for the record — deactivate instead."""
    leader = get_leader(session, leader_id)
    active = active_assignments_of(session, leader.id)
    if active:
        raise Conflict(
            f"{leader.name} 仍有 {len(active)} 项在岗包保责任，不能删除；请先调整责任或停用该领导",
            detail={"active_assignments": [assignment_dict(a) for a in active]},
        )
    history = session.scalar(select(func.count()).where(Assignment.leader_id == leader.id))
    issues = session.scalar(select(func.count()).where(Issue.leader_id == leader.id))
    accounts = session.scalars(select(User.username).where(User.leader_id == leader.id)).all()
    if history or issues or accounts:
        raise Conflict(
            f"{leader.name} 有历史包保记录、问题记录或登录账号，不能删除，可改为停用",
            detail={"past_assignments": history, "issues": issues, "accounts": list(accounts)},
        )
    _audit(session, by, "leader.delete", leader, before=audit.snapshot(leader))
    session.delete(leader)
    session.flush()


def deactivate_leader(
    session: Session, leader_id: int, at: datetime | None = None, by: User | None = None
) -> list[Assignment]:
    """Marks the leader inactive and ends their active assignments at `at` (history kept)."""
    leader = get_leader(session, leader_id)
    ended = [
        end_assignment(session, a.id, at, note="领导停用", by=by)
        for a in active_assignments_of(session, leader.id)
    ]
    leader.active = False
    session.flush()
    _audit(
        session,
        by,
        "leader.deactivate",
        leader,
        {"active": True},
        {"active": False, "ended_assignments": [a.id for a in ended]},
    )
    return ended


def leader_dict(leader: Leader) -> dict[str, Any]:
    return {
        "id": leader.id,
        "name": leader.name,
        "title": leader.title,
        "unit_id": leader.unit_id,
        "unit": leader.unit.name if leader.unit else None,
        "phone": leader.phone,
        "level": leader.level,
        "is_unit_head": leader.is_unit_head,
        "active": leader.active,
    }


def leader_rows(
    session: Session,
    unit_id: int | None = None,
    active: bool | None = None,
    query: str | None = None,
    ids: Sequence[int] | None = None,
    place_where: ColumnElement[bool] | None = None,
) -> list[dict[str, Any]]:
    """`place_where`: a filter on Assignment.place_id (the caller's scope): the counts of
    assignments in force then cover only the places the caller sees."""
    counted = select(Assignment.leader_id, func.count().label("n")).where(
        Assignment.valid_to.is_(None)
    )
    if place_where is not None:
        counted = counted.where(place_where)
    counts = counted.group_by(Assignment.leader_id).subquery()
    stmt = (
        select(Leader, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.leader_id == Leader.id)
        .outerjoin(Unit, Unit.id == Leader.unit_id)
        .options(contains_eager(Leader.unit))  # not one statement per unit (a city: ~400)
        .order_by(Unit.name.nulls_last(), Leader.is_unit_head.desc(), Leader.name, Leader.id)
    )
    if unit_id is not None:
        stmt = stmt.where(Leader.unit_id == unit_id)
    if active is not None:
        stmt = stmt.where(Leader.active.is_(active))
    if query:
        stmt = stmt.where(
            or_(
                Leader.name.contains(query, autoescape=True),
                Unit.name.contains(query, autoescape=True),
            )
        )
    if ids is not None:
        stmt = stmt.where(Leader.id.in_(list(ids)))
    return [
        leader_dict(leader) | {"active_assignments": n} for leader, n in session.execute(stmt).all()
    ]


def leaders_in_view(session: Session, leader: Leader) -> list[int]:
    """The leaders whose places `leader` sees in 我的包保: their own, plus the unit's when they
    are the unit head."""
    if leader.is_unit_head and leader.unit_id is not None:
        return list(
            session.scalars(
                select(Leader.id).where(
                    Leader.unit_id == leader.unit_id, or_(Leader.active, Leader.id == leader.id)
                )
            )
        )
    return [leader.id]


# ---------------------------------------------------------------------------------------------
# Places.


def get_place(session: Session, place_id: int) -> Place:
    place = session.get(Place, place_id)
    if place is None:
        raise NotFound(f"没有编号为 {place_id} 的地点（要素）", field="place_id")
    return place


def find_place(
    session: Session, layer: str, code: str, visible: ColumnElement[bool] | None = None
) -> Place:
    """`visible`: a filter on Place.id (the caller's scope); a place outside it is not found,
    with the same answer as an unknown code."""
    seen = visible if visible is not None else true()
    place = session.scalar(select(Place).where(Place.layer == layer, Place.code == code, seen))
    if place is None:
        raise NotFound(f"图层中没有编码为“{code}”的要素", field="code")
    return place


def find_place_by_code_or_name(
    session: Session, layer: str, text: Any, visible: ColumnElement[bool] | None = None
) -> Place:
    """A feature of `layer` by its code, else by its name when exactly one has it (`visible`:
    as for find_place)."""
    value = clean_text(text)
    if not value:
        raise Invalid("请填写要素编码或名称", field="code")
    seen = visible if visible is not None else true()
    place = session.scalar(select(Place).where(Place.layer == layer, Place.code == value, seen))
    if place is not None:
        return place
    named = session.scalars(
        select(Place).where(Place.layer == layer, Place.name == value, seen).limit(11)
    ).all()
    if not named:
        raise NotFound(f"该图层中没有编码或名称为“{value}”的要素", field="code")
    if len(named) > 1:
        codes = "、".join(p.code for p in named[:10])
        raise Conflict(f"名称“{value}”对应多个要素（{codes}），请填写编码", field="code")
    return named[0]


def place_dict(place: Place, layer_titles: dict[str, str] | None = None) -> dict[str, Any]:
    """`layer_titles` saves the registry lookups when many places are listed."""
    if layer_titles is None:
        registry = layers() if has_app_context() else ()
        title = registry.get(place.layer).title if place.layer in registry else place.layer
    else:
        title = layer_titles.get(place.layer, place.layer)
    return {
        "id": place.id,
        "layer": place.layer,
        "layer_title": title,
        "code": place.code,
        "name": place.name,
    }


# ---------------------------------------------------------------------------------------------
# Assignments.


def in_force_at(at: datetime) -> ColumnElement[bool]:
    """SQL condition: the assignment was in force at instant `at` ([valid_from, valid_to))."""
    return and_(
        Assignment.valid_from <= at, or_(Assignment.valid_to.is_(None), Assignment.valid_to > at)
    )


def responsible_at(
    session: Session,
    place_id: int,
    at: datetime | None = None,
    primary_only: bool = False,
) -> list[Assignment]:
    """Who was responsible for place `place_id` at instant `at` (default: now).

    The primary leader comes first, then the others by role. With `primary_only`, at most one
    row (the database keeps one primary per place at any instant).
    """
    at = at or now()
    stmt = (
        select(Assignment)
        .where(Assignment.place_id == place_id, in_force_at(at))
        .order_by(Assignment.is_primary.desc(), Assignment.role, Assignment.valid_from)
    )
    if primary_only:
        stmt = stmt.where(Assignment.is_primary)
    return list(session.scalars(stmt))


def get_assignment(session: Session, assignment_id: int) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound(f"没有编号为 {assignment_id} 的包保记录", field="assignment_id")
    return assignment


@dataclass
class AssignResult:
    assignment: Assignment
    closed: list[Assignment] = field(default_factory=list)


def _overlapping(
    session: Session, place_id: int, start: datetime, *conditions: ColumnElement[bool]
) -> list[Assignment]:
    """Assignments on the place still in force at or after `start`."""
    return list(
        session.scalars(
            select(Assignment).where(
                Assignment.place_id == place_id,
                or_(Assignment.valid_to.is_(None), Assignment.valid_to > start),
                *conditions,
            )
        )
    )


def assign(
    session: Session,
    *,
    leader_id: int,
    place_id: int,
    role: Any,
    roles: Sequence[str],
    is_primary: bool = True,
    valid_from: datetime | None = None,
    note: Any = None,
    created_by_id: int | None = None,
    replace_primary: bool = False,
    by: User | None = None,
) -> AssignResult:
    """Makes `leader_id` responsible for `place_id` in `role` from `valid_from` (default now).

    A place has one primary leader at any instant: when it already has one, this is refused
    (409) unless `replace_primary`, which closes the current primary's assignment at
    `valid_from` (a reassignment: the old row keeps its history).
    """
    role = normalise_choice(role, roles, "包保角色", "role")
    note = normalise_note(note)
    leader = get_leader(session, leader_id)
    if not leader.active:
        raise Conflict(f"{leader.name} 已停用，不能再分配包保责任", field="leader_id")
    place = get_place(session, place_id)
    start = not_future(valid_from or now(), "生效时间", "valid_from")

    same = _overlapping(
        session,
        place.id,
        start,
        Assignment.leader_id == leader.id,
        Assignment.role == role,
    )
    if same:
        raise Conflict(
            f"{leader.name} 已是“{place.name}”的{role}",
            detail={"assignments": [assignment_dict(a) for a in same]},
        )
    closed: list[Assignment] = []
    if is_primary:
        primaries = _overlapping(session, place.id, start, Assignment.is_primary)
        current = [a for a in primaries if a.valid_to is None and a.valid_from < start]
        blocking = [a for a in primaries if a not in current or not replace_primary]
        if blocking:
            names = "、".join(a.leader.name for a in blocking)
            how = (
                # Replacing ends a primary who took office before the new one and is still in
                # office; these overlap the chosen time otherwise (later, or already ended).
                "其任期与所选生效时间重叠，不能直接替换；请改选生效时间，或在其包保记录上办理调整"
                if replace_primary
                else "如需更换，请勾选“替换现任主要负责人”，或在其包保记录上办理调整（交接）"
            )
            raise Conflict(
                f"“{place.name}”在该时间已有主要负责人（{names}）；{how}",
                detail={"assignments": [assignment_dict(a) for a in blocking]},
                field="is_primary",
            )
        for old in current:
            old.valid_to = start
            closed.append(old)
            _audit(session, by, "assignment.end", old, {"valid_to": None}, {"valid_to": start})
        session.flush()
    assignment = Assignment(
        leader_id=leader.id,
        place_id=place.id,
        role=role,
        is_primary=bool(is_primary),
        valid_from=start,
        note=note,
        created_by_id=created_by_id if created_by_id is not None else by and by.id,
    )
    session.add(assignment)
    session.flush()
    _audit(session, by, "assignment.create", assignment, after=audit.snapshot(assignment))
    return AssignResult(assignment, closed)


def reassign(
    session: Session,
    assignment_id: int,
    new_leader_id: int,
    at: datetime | None = None,
    note: Any = None,
    created_by_id: int | None = None,
    by: User | None = None,
) -> AssignResult:
    """Hands an active assignment to another leader: closes it at `at` and opens a new one with
    the same place, role and primary flag from `at`."""
    old = get_assignment(session, assignment_id)
    if old.valid_to is not None:
        raise Conflict("该包保记录已结束，不能再调整", field="assignment_id")
    new_leader = get_leader(session, new_leader_id)
    if new_leader.id == old.leader_id:
        raise Conflict(f"{new_leader.name} 已是该责任人，无需调整", field="leader_id")
    if not new_leader.active:
        raise Conflict(f"{new_leader.name} 已停用，不能再分配包保责任", field="leader_id")
    start = not_future(at or now(), "调整时间", "at")
    if start <= old.valid_from:
        raise Invalid("调整时间必须晚于原责任的开始时间", field="at")
    duplicate = _overlapping(
        session,
        old.place_id,
        start,
        Assignment.leader_id == new_leader.id,
        Assignment.role == old.role,
    )
    if duplicate:
        raise Conflict(f"{new_leader.name} 已担任该地点的{old.role}", field="leader_id")
    old.valid_to = start
    session.flush()
    new = Assignment(
        leader_id=new_leader.id,
        place_id=old.place_id,
        role=old.role,
        is_primary=old.is_primary,
        valid_from=start,
        note=normalise_note(note),
        created_by_id=created_by_id if created_by_id is not None else by and by.id,
    )
    session.add(new)
    session.flush()
    _audit(session, by, "assignment.end", old, {"valid_to": None}, {"valid_to": start})
    _audit(session, by, "assignment.create", new, after=audit.snapshot(new))
    return AssignResult(new, [old])


def end_assignment(
    session: Session,
    assignment_id: int,
    at: datetime | None = None,
    note: Any = None,
    by: User | None = None,
) -> Assignment:
    """Ends an active assignment at `at` (default now); the row stays as history."""
    assignment = get_assignment(session, assignment_id)
    if assignment.valid_to is not None:
        raise Conflict("该包保记录已经结束", field="assignment_id")
    end = not_future(at or now(), "结束时间", "at")
    if end <= assignment.valid_from:
        raise Invalid("结束时间必须晚于开始时间", field="at")
    assignment.valid_to = end
    extra = normalise_note(note)
    if extra:
        assignment.note = f"{assignment.note}；{extra}" if assignment.note else extra
    session.flush()
    _audit(session, by, "assignment.end", assignment, {"valid_to": None}, {"valid_to": end})
    return assignment


def assignment_dict(a: Assignment, layer_titles: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": a.id,
        "leader_id": a.leader_id,
        "leader": a.leader.name,
        "unit": a.leader.unit.name if a.leader.unit else None,
        "place": place_dict(a.place, layer_titles),
        "role": a.role,
        "is_primary": a.is_primary,
        "valid_from": a.valid_from.isoformat(),
        "valid_to": a.valid_to.isoformat() if a.valid_to else None,
        "active": a.valid_to is None,
        "note": a.note,
    }


def _assignments_stmt(
    leader_ids: Sequence[int] | None,
    place_id: int | None,
    at: datetime | None,
    include_history: bool,
    place_where: Any = None,
):
    stmt = select(Assignment).join(Place, Place.id == Assignment.place_id)
    if place_where is not None:
        stmt = stmt.where(place_where)
    if leader_ids is not None:
        stmt = stmt.where(Assignment.leader_id.in_(list(leader_ids)))
    if place_id is not None:
        stmt = stmt.where(Assignment.place_id == place_id)
    if at is not None:
        stmt = stmt.where(in_force_at(at))
    elif not include_history:
        stmt = stmt.where(Assignment.valid_to.is_(None))
    return stmt


def assignments(
    session: Session,
    *,
    leader_ids: Sequence[int] | None = None,
    place_id: int | None = None,
    at: datetime | None = None,
    include_history: bool = False,
    limit: int | None = None,
    offset: int = 0,
    place_where: Any = None,
) -> list[Assignment]:
    """Assignments filtered by leader(s)/place; active ones by default, those in force at `at`
    when given, or the whole history. `place_where`: a filter on `Assignment.place_id` (the
    caller's scope). Each comes with its place, leader and the leader's unit (loaded with it:
    a page of 1,000 was 2,000 more statements, 1.2 s)."""
    stmt = _assignments_stmt(leader_ids, place_id, at, include_history, place_where)
    stmt = stmt.options(
        contains_eager(Assignment.place), selectinload(Assignment.leader).selectinload(Leader.unit)
    ).order_by(
        Assignment.valid_to.is_not(None),
        Place.layer,
        Place.code,
        Assignment.is_primary.desc(),
        Assignment.valid_from.desc(),
        Assignment.id,
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return list(session.scalars(stmt))


def count_assignments(
    session: Session,
    *,
    leader_ids: Sequence[int] | None = None,
    place_id: int | None = None,
    at: datetime | None = None,
    include_history: bool = False,
    place_where: Any = None,
) -> int:
    """How many assignments `assignments` finds with the same filters (without paging)."""
    stmt = _assignments_stmt(leader_ids, place_id, at, include_history, place_where).subquery()
    return session.scalar(select(func.count()).select_from(stmt))


# ---------------------------------------------------------------------------------------------
# Small parsers shared by the API and the roster import.


def as_int(value: Any, field_name: str) -> int:
    if value is None:
        raise Invalid(f"缺少 {field_name}（整数编号）", field=field_name)
    try:
        return whole_number(value)
    except ValueError:
        raise Invalid(f"{shown(value)} 不是有效的编号（应为整数）", field=field_name) from None


TRUE_WORDS = {"true", "1", "yes", "y", "是", "√", "✓", "主要", "t", "on"}
FALSE_WORDS = {"false", "0", "no", "n", "否", "", "f", "off", "次要", "×"}


def as_bool(value: Any, field_name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = clean_text(value).lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise Invalid(f"“{value}”不是有效的是/否值", field=field_name)
