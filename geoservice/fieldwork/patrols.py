"""Patrols (巡查): schedules, tasks per period for whoever holds the role then, visits with
check-in, checklist, photos and issues raised on the spot, 巡查到位率 and overdue tasks.

Rules:
- A schedule says "role R walks every place of layer L (sites: of kind K) N times per
  day / ISO week / month". Tasks are generated per period: one per place and slot, for the
  leader holding the role at the start of the period (primary first, then the earliest);
  a place nobody held at the start goes to whoever took it up first during the period.
  Responsibility is historical: a reassignment mid-period leaves the running period's task
  with its holder and gives the new holder the next period's.
- A visit completes one task of the caller's (another's task: 404 like an unknown one); it
  is accepted with its check-in far from the place (flagged `far`), and found-nothing visits
  count. An idempotency key per user makes retries safe: same key and content → the first
  visit, same key and other content → 409.
- 到位率 = done / due over the tasks due in [from, to): due are the tasks whose period has
  ended, plus tasks already done early; a task is overdue when its period ended undone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.fieldwork import evidence
from geoservice.fieldwork.common import (
    as_int,
    as_text,
    as_time,
    content_hash,
    iso,
    no_nulls,
    period_bounds,
)
from geoservice.fieldwork.models import (
    OUTCOMES,
    PERIODS,
    FieldPhoto,
    PatrolSchedule,
    PatrolTask,
    PatrolVisit,
    PatrolVisitIssue,
)
from geoservice.fieldwork.places import (
    KIND_FILTER,
    applicable_standards,
    distance_m,
    kind_exists,
    place_info,
    sites_available,
    street_sql,
)
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues import issues as issue_service
from geoservice.issues.photos import PreparedPhoto, Upload
from geoservice.issues.workflow import IssueSettings
from geoservice.models import User
from geoservice.placegeom import place_geometries_sql
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, Forbidden, InvalidInput, NotFound

CLOCK_SKEW = timedelta(minutes=10)
MAX_NOTE = 2000
MAX_KEY = 64

# --- schedules --------------------------------------------------------


def _schedule_fields(
    session: Session,
    registry: LayerRegistry,
    roles: Sequence[str],
    payload: Mapping[str, Any],
    partial: bool = False,
) -> dict[str, Any]:
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
            if out.get("layer", payload.get("layer")) != "site" or not sites_available(
                session, registry
            ):
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
        period = str(payload.get("period") or "").strip()
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


def _default_name(fields: Mapping[str, Any], registry: LayerRegistry) -> str:
    title = registry.get(fields["layer"]).title
    kind = f"（{fields['site_kind']}）" if fields.get("site_kind") else ""
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
    fields["name"] = fields["name"] or _default_name(fields, registry)
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
    """Changes apply to tasks generated from now on; generated tasks stay as they are."""
    schedule = get_schedule(session, schedule_id)
    fields = _schedule_fields(session, registry, roles, payload, partial=True)
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
       l.name AS leader_name, u.name AS unit_name, s.name AS schedule_name, s.times
FROM patrol_tasks t
JOIN patrol_schedules s ON s.id = t.schedule_id
JOIN leaders l ON l.id = t.leader_id
LEFT JOIN units u ON u.id = l.unit_id
LEFT JOIN patrol_visits v ON v.task_id = t.id
"""


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
    """The leader's tasks whose period contains `day` (generating that period's tasks first)."""
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


# --- visits --------------------------------------------------------


@dataclass
class VisitResult:
    visit: PatrolVisit
    created: bool  # False: the first visit of a repeated idempotency key


def _checklist(
    session: Session, place_id: int, raw: Any, outcome_raw: Any
) -> tuple[str, list[dict[str, Any]]]:
    """(outcome, checklist). With applicable standards (sites, issue 15) the checklist names
    them; otherwise a simple 正常/有问题 outcome."""
    standards = {s["id"]: s for s in applicable_standards(session, place_id)}
    items: list[dict[str, Any]] = []
    if isinstance(raw, str) and raw.strip():  # multipart: the checklist as JSON text
        import json

        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidInput("checklist 必须是 JSON 数组", field="checklist") from None
    if raw not in (None, "", []):
        if not isinstance(raw, list):
            raise InvalidInput("checklist 必须是数组", field="checklist")
        for index, item in enumerate(raw):
            if not isinstance(item, Mapping):
                raise InvalidInput(f"checklist 第 {index + 1} 项必须是对象", field="checklist")
            result = _outcome(item.get("outcome"), "checklist")
            entry: dict[str, Any] = {"outcome": result}
            if item.get("standard_id") not in (None, ""):
                sid = as_int(item.get("standard_id"), "checklist", "标准编号", 1, 2**31 - 1)
                if sid not in standards:
                    raise InvalidInput(
                        f"标准 {sid} 不适用于该点位", {"applicable": sorted(standards)}, "checklist"
                    )
                entry |= {"standard_id": sid, "code": standards[sid]["code"]}
            else:
                entry["item"] = as_text(item.get("item"), "checklist", "检查项", 200)
            note = as_text(item.get("note"), "checklist", "检查项说明", 500, required=False)
            if note:
                entry["note"] = note
            items.append(entry)
    if outcome_raw not in (None, ""):
        outcome = _outcome(outcome_raw, "outcome")
    elif items:
        outcome = "problem" if any(i["outcome"] == "problem" for i in items) else "ok"
    else:
        raise InvalidInput("缺少巡查结果 outcome（正常 ok / 有问题 problem）", field="outcome")
    return outcome, items


_OUTCOME_WORDS = {"ok": "ok", "正常": "ok", "problem": "problem", "有问题": "problem"}


def _outcome(value: Any, field: str) -> str:
    word = _OUTCOME_WORDS.get(str(value or "").strip())
    if word is None:
        raise InvalidInput("结果只能是 ok（正常）或 problem（有问题）", OUTCOMES, field)
    return word


def _captures(raw: Any, count: int) -> list[str | None]:
    if raw in (None, "", []):
        return [None] * count
    if isinstance(raw, str):
        raw = [c.strip() for c in raw.split(",")]
    if not isinstance(raw, list) or len(raw) != count:
        raise InvalidInput("captures 须与照片一一对应（camera 或 gallery）", field="captures")
    out = []
    for value in raw:
        if value in (None, ""):
            out.append(None)
        elif value in ("camera", "gallery"):
            out.append(value)
        else:
            raise InvalidInput("captures 每项只能是 camera 或 gallery", field="captures")
    return out


def visit_fingerprint(fields: Mapping[str, Any], uploads: Sequence[Upload]) -> str:
    import hashlib

    keep = {k: v for k, v in fields.items() if k not in ("idempotency_key", "photos")}
    return content_hash(keep, [hashlib.sha256(u.data).hexdigest() for u in uploads])


def find_by_key(session: Session, user_id: int, key: str) -> PatrolVisit | None:
    return session.scalar(
        select(PatrolVisit).where(
            PatrolVisit.user_id == user_id, PatrolVisit.idempotency_key == key
        )
    )


def replay(session: Session, user_id: int, key: str | None, fingerprint: str) -> PatrolVisit | None:
    """The visit already stored under this key (same content), None if the key is new; 409 if
    the key was used for other content."""
    if not key:
        return None
    first = find_by_key(session, user_id, key)
    if first is None:
        return None
    if first.content_sha256 != fingerprint:
        raise Conflict(
            "该幂等键（idempotency_key）已用于另一条不同内容的巡查记录",
            {"visit_id": first.id},
            "idempotency_key",
        )
    return first


_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def idempotency_key(value: Any) -> str | None:
    if value in (None, ""):
        return None
    key = str(value).strip()
    if not _KEY.match(key):
        raise InvalidInput(
            f"幂等键须为 1…{MAX_KEY} 个字母、数字或 . _ : -（例如 UUID）", field="idempotency_key"
        )
    return key


def check_task(session: Session, account: User, raw_task_id: Any) -> PatrolTask:
    """The caller's task, not yet visited: 404 for another's (or unknown), 409 when done.
    Checked before any photo is decoded."""
    task_id = as_int(raw_task_id, "task_id", "巡查任务编号")
    task = session.get(PatrolTask, task_id)
    if task is None or account.leader_id is None or task.leader_id != account.leader_id:
        raise NotFound(f"没有编号为 {task_id} 的巡查任务（或不是您的任务）", field="task_id")
    done = session.scalar(select(PatrolVisit.id).where(PatrolVisit.task_id == task.id))
    if done is not None:
        raise Conflict("该巡查任务已有巡查记录", {"visit_id": done}, "task_id")
    return task


def record_visit(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    issue_settings: IssueSettings,
    account: User,
    fields: Mapping[str, Any],
    uploads: Sequence[Upload],
    prepared: Sequence[PreparedPhoto],
    now: datetime | None = None,
    may_set_report_meta: bool = False,
) -> VisitResult:
    """Stores a visit for one of the caller's tasks (the caller commits). `uploads` are the
    raw files (for the idempotency fingerprint), `prepared` the same photos validated.
    Issues raised on the spot are reported at the visit's time; their severity and negative
    list flag need `may_set_report_meta` (issues.set_report_meta), as for any report."""
    now = now or datetime.now(UTC)
    key = idempotency_key(fields.get("idempotency_key"))
    fingerprint = visit_fingerprint(fields, uploads)
    first = replay(session, account.id, key, fingerprint)
    if first is not None:
        return VisitResult(first, created=False)
    task_id = as_int(fields.get("task_id"), "task_id", "巡查任务编号")
    task = session.get(PatrolTask, task_id, with_for_update=True)
    if task is None or account.leader_id is None or task.leader_id != account.leader_id:
        raise NotFound(f"没有编号为 {task_id} 的巡查任务（或不是您的任务）", field="task_id")
    done = session.scalar(select(PatrolVisit.id).where(PatrolVisit.task_id == task.id))
    if done is not None:
        raise Conflict("该巡查任务已有巡查记录", {"visit_id": done}, "task_id")
    visited_at = as_time(fields.get("visited_at") or now, "visited_at", "巡查时间")
    if visited_at > now + CLOCK_SKEW:
        raise InvalidInput("巡查时间不能晚于当前时间", field="visited_at")
    if not task.period_start <= visited_at < task.period_end:
        raise InvalidInput(
            "巡查时间不在该任务的周期内",
            {"period_start": iso(task.period_start), "period_end": iso(task.period_end)},
            "visited_at",
        )
    raised = _issue_payloads(fields.get("issues"), len(prepared))
    outcome_raw = fields.get("outcome")
    if outcome_raw in (None, "") and raised and not fields.get("checklist"):
        outcome_raw = "problem"
    outcome, checklist = _checklist(session, task.place_id, fields.get("checklist"), outcome_raw)
    note = as_text(fields.get("note"), "note", "巡查说明", MAX_NOTE, required=False)
    captures = _captures(fields.get("captures"), len(prepared))
    flags: list[str] = []
    checkin = distance = None
    if fields.get("lon") not in (None, "") or fields.get("lat") not in (None, ""):
        spot = issue_service.locate(fields.get("lon"), fields.get("lat"), fields.get("coord_sys"))
        checkin = from_shape(Point(spot.lon, spot.lat), srid=4326)
        distance = distance_m(session, registry, task.place_id, spot.lon, spot.lat)
        if distance is not None and distance > settings.checkin_radius_m:
            flags.append("far")
    else:
        flags.append("no_checkin")
    if now - visited_at > timedelta(hours=settings.late_upload_h):
        flags.append("late_upload")
    if outcome == "ok" and raised:
        outcome = "problem"
    # Every issue raised on the spot is checked before anything is written (nothing partial).
    reports = []
    for payload, indexes in raised:
        report_fields = {**payload, "source": settings.patrol_source}
        if report_fields.get("lon") in (None, "") and checkin is not None:
            report_fields["lon"], report_fields["lat"] = spot.lon, spot.lat
            report_fields.pop("coord_sys", None)
        report_fields["reported_at"] = visited_at
        report = issue_service.validate_report(report_fields, issue_settings, now)
        if not may_set_report_meta:
            if report.severity != issue_service.DEFAULT_SEVERITY:
                raise Forbidden("当前账号无权设定严重程度（severity）", field="issues")
            if report.negative_list:
                raise Forbidden("当前账号无权设定负面清单（negative_list）", field="issues")
        needed = issue_service.min_photos_for(report, issue_settings)
        if len(indexes) < needed:
            raise InvalidInput(f"现场上报的问题须附至少 {needed} 张照片", field="issues")
        issue_service.check_in_service_area(session, registry, report.lon, report.lat)
        reports.append((report, indexes))
    visit = PatrolVisit(
        task_id=task.id,
        place_id=task.place_id,
        leader_id=task.leader_id,
        user_id=account.id,
        visited_at=visited_at,
        received_at=now,
        checkin=checkin,
        distance_m=distance,
        far="far" in flags,
        outcome=outcome,
        checklist=checklist,
        note=note,
        flags=flags,
        idempotency_key=key,
        content_sha256=fingerprint,
    )
    session.add(visit)
    session.flush()
    photos = evidence.add_field_photos(
        session, issue_settings.store, prepared, captures, visit_id=visit.id, place_id=task.place_id
    )
    for report, indexes in reports:
        issue = issue_service.create_issue(
            session,
            registry,
            issue_settings,
            report,
            account,
            [prepared[i] for i in indexes],
            now,
        )
        session.add(PatrolVisitIssue(visit_id=visit.id, issue_id=issue.id))
    session.flush()
    for photo in photos:
        evidence.check_field_photo(session, registry, settings, issue_settings.store, photo)
    return VisitResult(visit, created=True)


def _issue_payloads(raw: Any, photo_count: int) -> list[tuple[dict[str, Any], list[int]]]:
    """Issues raised on the spot: [{category, description, severity, lon, lat, photos: [i…]}];
    `photos` index the visit's photos (default: all of them)."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidInput("issues 必须是 JSON 数组", field="issues") from None
    if not isinstance(raw, list):
        raise InvalidInput("issues 必须是数组", field="issues")
    if len(raw) > 20:
        raise InvalidInput("一次巡查最多上报 20 个问题", field="issues")
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"issues 第 {index + 1} 项必须是对象", field="issues")
        indexes = item.get("photos")
        if indexes is None:
            indexes = list(range(photo_count))
        if not isinstance(indexes, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < photo_count for i in indexes
        ):
            raise InvalidInput(
                f"issues 第 {index + 1} 项的 photos 须为本次照片的序号（从 0 起）", field="issues"
            )
        # The source is the patrol's and the time the visit's; nothing else may say otherwise.
        payload = {k: v for k, v in item.items() if k not in ("photos", "source", "reported_at")}
        out.append((payload, indexes))
    return out


def visit_json(
    session: Session, registry: LayerRegistry, visit: PatrolVisit, photo_url=None
) -> dict[str, Any]:
    place = place_info(session, registry, [visit.place_id]).get(visit.place_id, {})
    issue_ids = list(
        session.scalars(
            select(PatrolVisitIssue.issue_id).where(PatrolVisitIssue.visit_id == visit.id)
        )
    )
    photos = session.scalars(
        select(FieldPhoto).where(FieldPhoto.visit_id == visit.id).order_by(FieldPhoto.id)
    ).all()
    checkin = None
    if visit.checkin is not None:
        from geoalchemy2.shape import to_shape

        point = to_shape(visit.checkin)
        checkin = {"lon": point.x, "lat": point.y}
    return {
        "id": visit.id,
        "task_id": visit.task_id,
        "place": {k: place.get(k) for k in PLACE_KEYS},
        "leader_id": visit.leader_id,
        "user_id": visit.user_id,
        "visited_at": iso(visit.visited_at),
        "received_at": iso(visit.received_at),
        "checkin": checkin,
        "distance_m": round(visit.distance_m, 1) if visit.distance_m is not None else None,
        "far": visit.far,
        "outcome": visit.outcome,
        "outcome_title": OUTCOMES[visit.outcome],
        "checklist": visit.checklist,
        "note": visit.note,
        "flags": visit.flags,
        "issue_ids": issue_ids,
        "idempotency_key": visit.idempotency_key,
        "photos": [evidence.field_photo_json(session, p, photo_url) for p in photos],
    }


def visits_of_user(session: Session, user_id: int, limit: int = 50) -> list[PatrolVisit]:
    return list(
        session.scalars(
            select(PatrolVisit)
            .where(PatrolVisit.user_id == user_id)
            .order_by(PatrolVisit.visited_at.desc(), PatrolVisit.id.desc())
            .limit(limit)
        )
    )


# --- 巡查到位率 and overdue --------------------------------------------------------

GROUPINGS = {"leader": "责任人", "unit": "责任单位", "street": "街道"}


def rates(
    session: Session,
    registry: LayerRegistry,
    of: str,
    start: datetime,
    end: datetime,
    now: datetime,
    within: tuple[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """巡查到位率 per leader, unit or street over the tasks due in [start, end); `within`: an
    SQL condition on `t.place_id` (the account's scope)."""
    if of not in GROUPINGS:
        raise InvalidInput(
            f"分组只能是 {', '.join(f'{k}（{v}）' for k, v in GROUPINGS.items())}",
            field="of",
        )
    key = {
        "leader": "l.id AS key, l.name AS name, u.name AS detail",
        "unit": "u.id AS key, coalesce(u.name, '（无单位）') AS name, NULL AS detail",
        "street": "st.id AS key, coalesce(st.name, '（辖区外）') AS name, NULL AS detail",
    }[of]
    group = {"leader": "l.id, l.name, u.name", "unit": "u.id, u.name", "street": "st.id, st.name"}[
        of
    ]
    extra, params = (f"AND {within[0]}", within[1]) if within else ("", {})
    street_join = ""
    if of == "street":
        street_join = (
            f"JOIN ({place_geometries_sql(registry)}) g ON g.id = t.place_id "
            f"LEFT JOIN admin_areas st ON st.id = {street_sql('g.geom')}"
        )
    rows = session.execute(
        text(f"""
SELECT {key},
       count(*) FILTER (WHERE v.id IS NOT NULL) AS done,
       count(*) FILTER (WHERE v.id IS NOT NULL OR t.period_end <= :now) AS due,
       count(*) FILTER (WHERE v.id IS NULL AND t.period_end <= :now) AS missed,
       count(*) FILTER (WHERE v.far) AS far,
       count(*) AS tasks
FROM patrol_tasks t
JOIN leaders l ON l.id = t.leader_id
LEFT JOIN units u ON u.id = l.unit_id
LEFT JOIN patrol_visits v ON v.task_id = t.id
{street_join}
WHERE t.period_end > :start AND t.period_end <= :end {extra}
GROUP BY {group}"""),
        {"start": start, "end": end, "now": now, **params},
    ).mappings()
    out = []
    for r in rows:
        due = r["due"]
        out.append(
            {
                "key": r["key"],
                "name": r["name"],
                "detail": r["detail"],
                "done": r["done"],
                "due": due,
                "missed": r["missed"],
                "far": r["far"],
                "tasks": r["tasks"],
                "rate": round(r["done"] / due, 4) if due else None,
            }
        )
    out.sort(key=lambda r: (r["rate"] is None, -(r["rate"] or 0), r["name"]))
    return out


def overdue_tasks(
    session: Session,
    registry: LayerRegistry,
    now: datetime,
    leader_ids: Sequence[int] | None = None,
    limit: int = 500,
    within: tuple[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Tasks whose period ended without a visit (oldest first within the limit)."""
    where = "v.id IS NULL AND t.period_end <= :now"
    params: dict[str, Any] = {"now": now}
    if within:
        where += f" AND {within[0]}"
        params.update(within[1])
    if leader_ids is not None:
        where += " AND t.leader_id = ANY(:leaders)"
        params["leaders"] = list(leader_ids)
    return task_rows(session, registry, now, where, params, limit)


def unvisited(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    day: date,
    now: datetime,
    within: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A FeatureCollection of the places with an open task in a period holding `day` (the map
    of places not visited this period), one feature per place with its open tasks."""
    start, end = period_bounds("day", day, settings.tz)
    where = "v.id IS NULL AND t.period_start < :end AND t.period_end > :start"
    params: dict[str, Any] = {"start": start, "end": end}
    if within:
        where += f" AND {within[0]}"
        params.update(within[1])
    rows = task_rows(session, registry, now, where, params, limit=10000)
    places: dict[int, dict[str, Any]] = {}
    for r in rows:
        pid = r["place"]["id"]
        feature = places.setdefault(
            pid,
            {
                "type": "Feature",
                "id": pid,
                "geometry": r["geometry"],
                "properties": {**r["place"], "leaders": [], "open_tasks": 0, "overdue": False},
            },
        )
        props = feature["properties"]
        props["open_tasks"] += 1
        props["overdue"] = props["overdue"] or r["overdue"]
        if r["leader"] not in props["leaders"]:
            props["leaders"].append(r["leader"])
    return {"type": "FeatureCollection", "features": list(places.values())}
