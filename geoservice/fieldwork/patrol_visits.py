"""Patrol visits (巡查打卡): check-in, checklist, photos and issues raised on the spot.

Rules:
- A visit completes one task of the caller's (another's task: 404 like an unknown one); it
  is accepted with its check-in far from the place (flagged `far`), and found-nothing visits
  count. An idempotency key per user makes retries safe: same key and content → the first
  visit, same key and other content → 409.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.fieldwork import evidence
from geoservice.fieldwork.common import as_int, as_text, as_time, content_hash, iso
from geoservice.fieldwork.models import (
    OUTCOMES,
    FieldPhoto,
    PatrolTask,
    PatrolVisit,
    PatrolVisitIssue,
)
from geoservice.fieldwork.patrols import PLACE_KEYS
from geoservice.fieldwork.places import applicable_standards, distance_m, place_info
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues import issues as issue_service
from geoservice.issues.photos import PreparedPhoto, Upload
from geoservice.issues.workflow import IssueSettings
from geoservice.models import User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, Forbidden, InvalidInput, NotFound

CLOCK_SKEW = timedelta(minutes=10)
MAX_NOTE = 2000
MAX_KEY = 64


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
                if any(i.get("standard_id") == sid for i in items):
                    raise InvalidInput(
                        f"checklist 第 {index + 1} 项：标准 {standards[sid]['code']} 重复出现",
                        field="checklist",
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
        if report_fields.get("lon") in (None, ""):
            # At the check-in; without one (no GPS fix) at the patrolled place itself: the
            # issue was raised there, and the visit is already flagged as not checked in.
            if checkin is not None:
                report_fields["lon"], report_fields["lat"] = spot.lon, spot.lat
            else:
                here = place_info(session, registry, [task.place_id])[task.place_id]
                report_fields["lon"], report_fields["lat"] = here["lon"], here["lat"]
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
