"""Patrols (巡查): schedules and the tasks generated from them per period for whoever holds
the role then. Visits (check-in, checklist, photos, issues raised on the spot, idempotency):
patrol_visits.py; 巡查到位率, overdue tasks and unvisited places: patrol_coverage.py.

Rules:
- A schedule says "role R walks every place of layer L (sites: of kind K) N times per
  day / ISO week / month". Tasks are generated per period: one per place and slot, for the
  leader holding the role at the start of the period (primary first, then the earliest);
  a place nobody held at the start goes to whoever took it up first during the period.
  Responsibility is historical: a reassignment mid-period leaves the running period's task
  with its holder and gives the new holder the next period's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.fieldwork.common import as_int, as_text, iso, no_nulls, period_bounds
from geoservice.fieldwork.models import PERIODS, PatrolSchedule, PatrolTask
from geoservice.fieldwork.places import (
    KIND_FILTER,
    applicable_standards,
    kind_exists,
    place_info,
    sites_available,
)
from geoservice.fieldwork.settings import FieldSettings
from geoservice.input_values import text_value
from geoservice.models import User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, InvalidInput, NotFound

# --- schedules --------------------------------------------------------


def _schedule_fields(
    session: Session,
    registry: LayerRegistry,
    roles: Sequence[str],
    payload: Mapping[str, Any],
    partial: bool = False,
    current_layer: str | None = None,
) -> dict[str, Any]:
    """`current_layer`: a change's schedule's layer, which a site kind given alone is for."""
    no_nulls(payload, ("layer", "site_kind", "role", "period", "times", "name", "active"))
    out: dict[str, Any] = {}
    if not partial or "layer" in payload:
        layer = as_text(payload.get("layer"), "layer", "图层", 32)
        if layer not in registry:
            raise InvalidInput(f"没有名为「{layer}」的图层", {"layers": registry.names}, "layer")
        out["layer"] = layer
    if not partial or "site_kind" in payload:
        kind = as_text(payload.get("site_kind"), "site_kind", "点位类别", 32, required=False)
        out["site_kind"] = kind or None
        if kind:
            if out.get("layer", current_layer) != "site" or not sites_available(session, registry):
                raise InvalidInput("点位类别只用于点位图层（site）", field="site_kind")
            if not kind_exists(session, kind):
                raise InvalidInput(f"没有代码为「{kind}」的点位类别", field="site_kind")
    if not partial or "role" in payload:
        role = as_text(payload.get("role"), "role", "责任角色", 32)
        allowed = known_roles(registry, roles)
        if role not in allowed:
            raise InvalidInput(f"未知责任角色「{role}」", {"roles": allowed}, "role")
        out["role"] = role
    if not partial or "period" in payload:
        period = text_value(payload.get("period"), "period", "统计周期").strip()
        if period not in PERIODS:
            raise InvalidInput(
                "周期只能是 day（每天）、week（每周）或 month（每月）",
                {"periods": PERIODS},
                "period",
            )
        out["period"] = period
    if not partial or "times" in payload:
        out["times"] = as_int(payload.get("times", 1), "times", "每周期巡查次数", 1, 31)
    if not partial or "name" in payload:
        name = as_text(payload.get("name"), "name", "名称", 100, required=False)
        out["name"] = name
    if "active" in payload:
        active = payload["active"]
        if not isinstance(active, bool):
            raise InvalidInput("active 只能是 true 或 false", field="active")
        out["active"] = active
    return out


def known_roles(registry: LayerRegistry, roles: Sequence[str]) -> list[str]:
    """The 包保 roles a schedule may name: the configured vocabulary and every layer's roles."""
    out = list(dict.fromkeys(roles))
    for spec in registry:
        out += [r for r in spec.roles if r not in out]
    return out


def _default_name(session: Session, fields: Mapping[str, Any], registry: LayerRegistry) -> str:
    title = registry.get(fields["layer"]).title
    kind = ""
    if fields.get("site_kind"):  # by its name (学校周边), not its code
        name = session.scalar(
            text("SELECT name FROM site_kinds WHERE code = :c"), {"c": fields["site_kind"]}
        )
        kind = f"（{name or fields['site_kind']}）"
    return f"{fields['role']}{PERIODS[fields['period']]}{fields['times']}次巡查{title}{kind}"


def _clashing(session: Session, fields: Mapping[str, Any], exclude: int | None = None) -> None:
    stmt = select(PatrolSchedule.id).where(
        PatrolSchedule.active,
        PatrolSchedule.layer == fields["layer"],
        PatrolSchedule.role == fields["role"],
    )
    if fields.get("site_kind"):
        stmt = stmt.where(PatrolSchedule.site_kind == fields["site_kind"])
    else:
        stmt = stmt.where(PatrolSchedule.site_kind.is_(None))
    if exclude is not None:
        stmt = stmt.where(PatrolSchedule.id != exclude)
    other = session.scalar(stmt)
    if other is not None:
        raise Conflict(
            f"已有同一图层、类别和角色的巡查计划（编号 {other}），请修改它或先停用",
            {"schedule_id": other},
        )


def create_schedule(
    session: Session,
    registry: LayerRegistry,
    roles: Sequence[str],
    payload: Mapping[str, Any],
    by: User | None,
) -> PatrolSchedule:
    fields = _schedule_fields(session, registry, roles, payload)
    fields["name"] = fields["name"] or _default_name(session, fields, registry)
    if fields.get("active", True):
        _clashing(session, fields)
    schedule = PatrolSchedule(**fields, created_by_id=by.id if by else None)
    session.add(schedule)
    session.flush()
    return schedule


def get_schedule(session: Session, schedule_id: int) -> PatrolSchedule:
    found = session.get(PatrolSchedule, schedule_id)
    if found is None:
        raise NotFound(f"没有编号为 {schedule_id} 的巡查计划", field="id")
    return found


def update_schedule(
    session: Session,
    registry: LayerRegistry,
    roles: Sequence[str],
    schedule_id: int,
    payload: Mapping[str, Any],
) -> PatrolSchedule:
    """Changes apply to tasks generated from now on; generated tasks stay as they are (their
    number of slots is theirs: `task_rows`). What the schedule patrols — layer, site kind —
    is not changed once it has tasks (those would be another layer's): a new schedule is.
    A name left as made by default follows the changes."""
    schedule = get_schedule(session, schedule_id)
    fields = _schedule_fields(
        session, registry, roles, payload, partial=True, current_layer=schedule.layer
    )
    if fields.get("layer", "site") != "site":
        fields["site_kind"] = None  # a site kind belongs to the site layer only
    # What the tasks are — the layer, site kind, and the period their slots are counted in
    # (a day's task holds the week's slot key) — is not changed once there are tasks.
    moved = [
        k
        for k in ("layer", "site_kind", "period")
        if k in fields and fields[k] != getattr(schedule, k)
    ]
    if moved and session.scalar(
        select(PatrolTask.id).where(PatrolTask.schedule_id == schedule.id).limit(1)
    ):
        raise Conflict(
            "该巡查计划已生成任务，不能再改巡查的图层、点位类别或周期；请停用它并新建计划",
            field=moved[0],
        )
    before = {k: getattr(schedule, k) for k in ("layer", "site_kind", "role", "period", "times")}
    default_named = schedule.name == _default_name(session, before, registry)
    merged = {
        "layer": schedule.layer,
        "site_kind": schedule.site_kind,
        "role": schedule.role,
        **fields,
    }
    if merged.get("active", schedule.active):
        _clashing(session, merged, exclude=schedule.id)
    for key, value in fields.items():
        if key == "name" and not value:
            continue
        setattr(schedule, key, value)
    if default_named and not fields.get("name"):
        after = {k: getattr(schedule, k) for k in before}
        schedule.name = _default_name(session, after, registry)
    session.flush()
    return schedule


def schedule_json(s: PatrolSchedule, registry: LayerRegistry) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "layer": s.layer,
        "layer_title": registry.get(s.layer).title if s.layer in registry else s.layer,
        "site_kind": s.site_kind,
        "role": s.role,
        "period": s.period,
        "period_title": PERIODS[s.period],
        "times": s.times,
        "active": s.active,
        "created_at": iso(s.created_at),
    }


def list_schedules(session: Session) -> list[PatrolSchedule]:
    return list(session.scalars(select(PatrolSchedule).order_by(PatrolSchedule.id)))


# --- tasks --------------------------------------------------------


def generate_tasks(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    day: date,
    schedule_ids: Sequence[int] | None = None,
    leader_id: int | None = None,
) -> int:
    """Creates the tasks of every active schedule for the period containing `day` (idempotent:
    existing tasks are kept). Returns how many were created. With `leader_id`, only for the
    places that leader held in the schedule's role during the period (a phone opening its
    day's tasks does not regenerate the whole city's); the holder is chosen as always."""
    stmt = select(PatrolSchedule).where(PatrolSchedule.active)
    if schedule_ids is not None:
        stmt = stmt.where(PatrolSchedule.id.in_(list(schedule_ids) or [-1]))
    created = 0
    with_sites = None
    for schedule in session.scalars(stmt):
        if schedule.layer not in registry:
            continue
        start, end = period_bounds(schedule.period, day, settings.tz)
        kind_clause = ""
        if schedule.site_kind:
            if with_sites is None:
                with_sites = sites_available(session, registry)
            if not with_sites:
                continue
            kind_clause = "AND " + KIND_FILTER.format(place="p.id", kind=":kind")
        if leader_id is not None:
            kind_clause += (
                " AND a.place_id IN (SELECT m.place_id FROM assignments m WHERE m.leader_id ="
                " :leader AND m.role = :role AND m.valid_from < :end"
                " AND (m.valid_to IS NULL OR m.valid_to > :start))"
            )
        result = session.execute(
            text(f"""
INSERT INTO patrol_tasks (schedule_id, place_id, leader_id, assignment_id, role, period,
                          period_start, period_end, slot)
SELECT :sid, h.place_id, h.leader_id, h.id, :role, :period, :start, :end, slot
FROM (
  SELECT DISTINCT ON (a.place_id) a.id, a.place_id, a.leader_id
  FROM assignments a JOIN places p ON p.id = a.place_id
  WHERE p.layer = :layer AND a.role = :role {kind_clause}
    AND a.valid_from < :end AND (a.valid_to IS NULL OR a.valid_to > :start)
  ORDER BY a.place_id,
           (a.valid_from <= :start) DESC, a.is_primary DESC, a.valid_from, a.id
) h CROSS JOIN generate_series(1, :times) AS slot
ON CONFLICT ON CONSTRAINT uq_patrol_tasks_slot DO NOTHING"""),
            {
                "sid": schedule.id,
                "role": schedule.role,
                "period": schedule.period,
                "start": start,
                "end": end,
                "layer": schedule.layer,
                "kind": schedule.site_kind,
                "times": schedule.times,
                "leader": leader_id,
            },
        )
        created += result.rowcount or 0
    return created


TASK_SELECT = """
SELECT t.id, t.schedule_id, t.place_id, t.leader_id, t.role, t.period, t.period_start,
       t.period_end, t.slot, v.id AS visit_id, v.visited_at, v.far, v.outcome,
       l.name AS leader_name, u.name AS unit_name, s.name AS schedule_name,
       -- the slots generated for the place in that period (a later change of the schedule's
       -- number of times does not rewrite them: "3 of 1")
       (SELECT max(o.slot) FROM patrol_tasks o WHERE o.schedule_id = t.schedule_id
          AND o.place_id = t.place_id AND o.period_start = t.period_start) AS times
FROM patrol_tasks t
JOIN patrol_schedules s ON s.id = t.schedule_id
JOIN leaders l ON l.id = t.leader_id
LEFT JOIN units u ON u.id = l.unit_id
LEFT JOIN patrol_visits v ON v.task_id = t.id
"""


def count_tasks(session: Session, where: str, params: Mapping[str, Any]) -> int:
    """How many tasks `task_rows` would list without its limit."""
    sql = f"SELECT count(*) FROM ({TASK_SELECT} WHERE {where}) AS listed"
    return session.execute(text(sql), dict(params)).scalar_one()


def task_rows(
    session: Session,
    registry: LayerRegistry,
    now: datetime,
    where: str,
    params: Mapping[str, Any],
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    rows = [
        dict(r)
        for r in session.execute(
            text(
                f"{TASK_SELECT} WHERE {where}"
                " ORDER BY t.period_end, t.place_id, t.slot LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": limit, "offset": offset},
        ).mappings()
    ]
    info = place_info(session, registry, sorted({r["place_id"] for r in rows}))
    out = []
    for r in rows:
        place = info.get(r["place_id"], {})
        done = r["visit_id"] is not None
        out.append(
            {
                "id": r["id"],
                "schedule_id": r["schedule_id"],
                "schedule": r["schedule_name"],
                "role": r["role"],
                "period": r["period"],
                "period_start": iso(r["period_start"]),
                "period_end": iso(r["period_end"]),
                "slot": r["slot"],
                "times": r["times"],
                "leader_id": r["leader_id"],
                "leader": r["leader_name"],
                "unit": r["unit_name"],
                "place": {k: place.get(k) for k in PLACE_KEYS},
                "geometry": place.get("geometry"),
                "done": done,
                "visit_id": r["visit_id"],
                "visited_at": iso(r["visited_at"]),
                "far": bool(r["far"]) if done else None,
                "outcome": r["outcome"],
                "overdue": not done and r["period_end"] <= now,
            }
        )
    return out


PLACE_KEYS = ("id", "layer", "layer_title", "code", "name", "lon", "lat", "street_id", "street")


def tasks_of_leader(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    leader_id: int,
    day: date,
    now: datetime,
) -> list[dict[str, Any]]:
    """The leader's tasks whose period contains `day`, generating that period's tasks first
    unless `day` is still to come: a future period's tasks are made when it starts, for
    whoever holds the place then (made early, they kept the holder of before a handover)."""
    if day <= now.astimezone(settings.tz).date():
        generate_tasks(session, registry, settings, day, leader_id=leader_id)
    start, end = period_bounds("day", day, settings.tz)
    rows = task_rows(
        session,
        registry,
        now,
        "t.leader_id = :leader AND t.period_start < :end AND t.period_end > :start",
        {"leader": leader_id, "start": start, "end": end},
    )
    standards = {
        pid: applicable_standards(session, pid) for pid in {r["place"]["id"] for r in rows}
    }
    for r in rows:
        r["standards"] = [
            {"id": s["id"], "code": s["code"], "text": s["text"]}
            for s in standards.get(r["place"]["id"], [])
        ]
    return rows


def get_task(session: Session, task_id: int) -> PatrolTask | None:
    return session.get(PatrolTask, task_id)
