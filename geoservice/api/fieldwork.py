"""Field work JSON API under /api/fieldwork (blueprint `bp`): patrol schedules, tasks, visits,
巡查到位率, 暗访 plans, photo evidence (存疑) and watermarked display copies.

Parse → call a geoservice.fieldwork service → render; the services hold the rules.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_file, url_for
from sqlalchemy.exc import IntegrityError

from geoservice.accounts import audit, scope
from geoservice.accounts.auth import can, current_account, permission_required, require
from geoservice.api.issues import parse_body
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.edge.json_input import json_object
from geoservice.edge.params import single_args
from geoservice.edge.vocabularies import in_force as vocab_in_force
from geoservice.errors import ApiError
from geoservice.fieldwork import (
    access,
    evidence,
    inspections,
    patrol_coverage,
    patrol_visits,
    patrols,
)
from geoservice.fieldwork.common import as_date
from geoservice.fieldwork.models import FieldPhoto, PatrolVisit
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues.photos import prepare_all
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Issue, Photo
from geoservice.registry import layers
from geoservice.service_errors import Conflict

bp = Blueprint("fieldwork_api", __name__)

PLAN = "patrols.plan"
VISIT = "patrols.visit"
INSPECT = "inspections.run"
EVIDENCE = "evidence.read"
RATES = "rankings.read"


def field_settings() -> FieldSettings:
    return FieldSettings.from_config(current_app.config)


def issue_settings() -> IssueSettings:
    return issue_settings_in_force()


def roles() -> list[str]:
    return list(vocab_in_force().roles)


def _json() -> dict[str, Any]:
    return json_object()


def _today() -> date:
    return datetime.now(field_settings().tz).date()


INT_MAX, BIGINT_MAX = 2**31 - 1, 2**63 - 1


def _known(value: int, maximum: int, what: str, field: str) -> int:
    """An id from the path: beyond its column's range it cannot exist (404, not a 500)."""
    if value > maximum:
        raise ApiError(404, f"没有编号为 {value} 的{what}", field=field)
    return value


def _day(values) -> date:
    """`date` (YYYY-MM-DD) when given; an empty or non-text value is refused."""
    value = values.get("date")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "date 须为 YYYY-MM-DD", field="date")
    return as_date(value, "date")


def photo_url(photo_id: int, variant: str) -> str:
    return url_for("fieldwork_api.field_photo", photo_id=photo_id, variant=variant)


# --- schedules --------------------------------------------------------


@bp.get("/schedules")
@permission_required(PLAN)
def list_schedules():
    single_args(())
    registry = layers()
    return jsonify(
        {
            "schedules": [
                patrols.schedule_json(s, registry) for s in patrols.list_schedules(get_session())
            ]
        }
    )


@bp.post("/schedules")
@permission_required(PLAN)
def create_schedule():
    access.require_whole_deployment(current_account())
    session, registry = get_session(), layers()
    schedule = patrols.create_schedule(session, registry, roles(), _json(), current_account())
    body = patrols.schedule_json(schedule, registry)
    audit.record(session, current_account(), "patrol_schedule.create", "patrol_schedule",
                 schedule.id, after=body)  # fmt: skip
    session.commit()
    return jsonify(body), 201


@bp.patch("/schedules/<int:schedule_id>")
@permission_required(PLAN)
def update_schedule(schedule_id: int):
    _known(schedule_id, INT_MAX, "巡查计划", "id")
    access.require_whole_deployment(current_account())
    session, registry = get_session(), layers()
    before = patrols.schedule_json(patrols.get_schedule(session, schedule_id), registry)
    schedule = patrols.update_schedule(session, registry, roles(), schedule_id, _json())
    body = patrols.schedule_json(schedule, registry)
    audit.record(session, current_account(), "patrol_schedule.update", "patrol_schedule",
                 schedule_id, before=before, after=body)  # fmt: skip
    session.commit()
    return jsonify(body)


@bp.post("/tasks/generate")
@permission_required(PLAN)
def generate_tasks():
    """{"date": "YYYY-MM-DD"}: the tasks of every schedule for the period holding that date."""
    access.require_whole_deployment(current_account())
    body = _json()
    day = _day(body) if "date" in body else _today()
    session = get_session()
    created = patrols.generate_tasks(session, layers(), field_settings(), day)
    session.commit()
    return jsonify({"date": day.isoformat(), "created": created})


@bp.get("/tasks/mine")
@permission_required(VISIT)
def my_tasks():
    args = single_args(("date",))
    account = current_account()
    if account.leader_id is None:
        raise ApiError(404, "该账号未关联包保责任人，没有巡查任务", field="leader_id")
    day = _day(args) if "date" in args else _today()
    session = get_session()
    tasks = patrols.tasks_of_leader(
        session, layers(), field_settings(), account.leader_id, day, datetime.now(UTC)
    )
    session.commit()  # tasks generated for the period are kept
    # `account`: whose list this is (a phone's service worker may replay it to another).
    return jsonify(
        {"date": day.isoformat(), "tasks": tasks, "count": len(tasks), "account": account.id}
    )


@bp.get("/tasks/overdue")
@permission_required(PLAN)
def overdue_tasks():
    single_args(())
    within = access.place_ref(current_account(), layers(), "t.place_id")
    session, now = get_session(), datetime.now(UTC)
    rows = patrol_coverage.overdue_tasks(session, layers(), now, within=within)
    total = patrol_coverage.count_overdue(session, now, within=within)
    return jsonify({"tasks": rows, "count": len(rows), "numberMatched": total})


@bp.get("/unvisited")
@permission_required(PLAN)
def unvisited():
    """GeoJSON: places with a task still open in the periods holding `date` (default today)."""
    args = single_args(("date",))
    day = _day(args) if "date" in args else _today()
    within = access.place_ref(current_account(), layers(), "t.place_id")
    body = patrol_coverage.unvisited(
        get_session(), layers(), field_settings(), day, datetime.now(UTC), within
    )
    return jsonify(body)


# --- visits --------------------------------------------------------


@bp.post("/visits")
@permission_required(VISIT)
def create_visit():
    """A visit for one of the caller's tasks (JSON with base64 photos, or multipart).
    Idempotency: `idempotency_key` field or `Idempotency-Key` header."""
    account = current_account()
    fields, uploads = parse_body()
    if request.headers.get("Idempotency-Key") and not fields.get("idempotency_key"):
        fields["idempotency_key"] = request.headers["Idempotency-Key"]
    session, registry, cfg = get_session(), layers(), issue_settings()
    key = patrol_visits.idempotency_key(fields.get("idempotency_key"))
    fingerprint = patrol_visits.visit_fingerprint(fields, uploads)
    first = patrol_visits.replay(session, account.id, key, fingerprint)
    if first is not None:  # a retry: nothing decoded, nothing created
        return _visit_answer(first, 200, replay=True)
    try:
        # The caller's own task, not yet visited, before any photo is decoded.
        patrol_visits.check_task(session, account, fields.get("task_id"))
        prepared = prepare_all(uploads, cfg.photo_limits, cfg.tz)
        result = patrol_visits.record_visit(
            session, registry, field_settings(), cfg, account, fields, uploads, prepared,
            may_set_report_meta=can("issues.set_report_meta", "issues"),
        )  # fmt: skip
        session.commit()
    except Conflict as exc:
        # The task was visited meanwhile: by this very record, sent twice at once (the first
        # copy held the task's lock), the answer is the first one's.
        session.rollback()
        first = patrol_visits.replay(session, account.id, key, fingerprint) if key else None
        if exc.field != "task_id" or first is None:
            raise
        return _visit_answer(first, 200, replay=True)
    except IntegrityError:
        # The same key committed by a concurrent request: answer like a retry.
        session.rollback()
        first = patrol_visits.replay(session, account.id, key, fingerprint) if key else None
        if first is None:
            raise
        return _visit_answer(first, 200, replay=True)
    return _visit_answer(result.visit, 201, replay=False)


def _visit_answer(visit: PatrolVisit, status: int, replay: bool):
    body = patrol_visits.visit_json(get_session(), layers(), visit, photo_url)
    response = jsonify(body)
    response.status_code = status
    if replay:
        response.headers["Idempotent-Replay"] = "true"
    response.headers["Location"] = url_for("fieldwork_api.visit_detail", visit_id=visit.id)
    return response


@bp.get("/visits/mine")
@permission_required(VISIT)
def my_visits():
    single_args(())
    session = get_session()
    visits = patrol_visits.visits_of_user(session, current_account().id)
    return jsonify(
        {"visits": [patrol_visits.visit_json(session, layers(), v, photo_url) for v in visits]}
    )


def _may_read_visit(visit: PatrolVisit) -> bool:
    """Its author, and planners or evidence readers who see its place (area scope)."""
    from geoservice.accounts.auth import can

    account = current_account()
    if visit.user_id == account.id:
        return True
    if not (can(PLAN) or can(EVIDENCE)):
        return False
    return scope.visible_place(get_session(), account, layers(), visit.place_id) is not None


@bp.get("/visits/<int:visit_id>")
def visit_detail(visit_id: int):
    require("layers.read")
    _known(visit_id, BIGINT_MAX, "巡查记录", "visit_id")
    single_args(())
    session = get_session()
    visit = session.get(PatrolVisit, visit_id)
    if visit is None or not _may_read_visit(visit):
        raise ApiError(404, f"没有编号为 {visit_id} 的巡查记录", field="visit_id")
    return jsonify(patrol_visits.visit_json(session, layers(), visit, photo_url))


@bp.post("/reports")
def create_report():
    """An issue reported from the field app, idempotent per record (`idempotency_key` field or
    `Idempotency-Key` header): the ordinary report's fields and photos."""
    from geoservice.api.issues import _check_report_meta, view
    from geoservice.fieldwork import reports
    from geoservice.issues import issues as issue_service

    account = require("issues.report", "issues")
    fields, uploads = parse_body()
    if request.headers.get("Idempotency-Key") and not fields.get("idempotency_key"):
        fields["idempotency_key"] = request.headers["Idempotency-Key"]
    session, cfg = get_session(), issue_settings()
    key, fingerprint = reports.parse(fields, uploads)
    first = reports.replay(session, account.id, key, fingerprint)
    if first is not None:  # a retry: nothing decoded, nothing created
        response = jsonify(view(session.get(Issue, first.issue_id)))
        response.headers["Idempotent-Replay"] = "true"
        return response
    report = reports.validate(fields, cfg, field_settings().patrol_source, datetime.now(UTC))
    _check_report_meta(report)
    prepared = prepare_all(
        uploads, cfg.photo_limits, cfg.tz, min_count=issue_service.min_photos_for(report, cfg)
    )
    try:
        result = reports.submit(
            session, layers(), cfg, account, report, key, fingerprint,
            fields.get("recorded_at"), prepared,
        )  # fmt: skip
        body = view(result.issue)
        session.commit()
    except IntegrityError:
        session.rollback()
        first = reports.replay(session, account.id, key, fingerprint)
        if first is None:
            raise
        response = jsonify(view(session.get(Issue, first.issue_id)))
        response.headers["Idempotent-Replay"] = "true"
        return response
    response = jsonify(body)
    response.status_code = 201
    return response


# --- 巡查到位率 --------------------------------------------------------


@bp.get("/rates")
@permission_required(RATES)
def patrol_rates():
    """巡查到位率 over the tasks due in a period, given like the rankings' (`period`, `from`,
    `to`; default: the last complete week)."""
    from geoservice.ranking.periods import PeriodError, parse_period

    args = single_args(("of", "period", "from", "week", "to"))
    for name, value in args.items():
        if not value.strip():
            raise ApiError(400, f"参数 {name} 不能为空", field=name)
    cfg = field_settings()
    try:
        period = parse_period(
            args.get("period"), args.get("from") or args.get("week"), args.get("to"), cfg.tz,
            _today(),
        )  # fmt: skip
    except PeriodError as exc:
        raise ApiError(400, exc.message, field=exc.field) from exc
    of = args.get("of", "leader")
    account = current_account()
    within = access.place_ref(account, layers(), "t.place_id")
    if account.role == "leader" and account.leader_id is not None:
        # A leader's own tasks — held then, wherever — not the tasks of the places held now
        # (a 到位率 of their own that differed from the rankings'), plus its area's.
        own = "t.leader_id = :rates_leader"
        mine = {"rates_leader": account.leader_id}
        within = (
            (own, mine)
            if account.area_id is None
            else (f"({within[0]} OR {own})", {**within[1], **mine})
        )
    rows = patrol_coverage.rates(
        get_session(), layers(), of, period.start, period.end, datetime.now(UTC), within
    )
    return jsonify({"of": of, "period": period.as_dict(), "rows": rows})


# --- 暗访 --------------------------------------------------------


@bp.get("/inspections")
def list_inspections():
    require("layers.read")
    single_args(())
    session, account = get_session(), current_account()
    plans = inspections.visible_plans(session, account)
    return jsonify(
        {"inspections": [inspections.plan_json(session, layers(), p, account) for p in plans]}
    )


@bp.post("/inspections")
@permission_required(INSPECT)
def create_inspection():
    session, account = get_session(), current_account()
    plan = inspections.create_plan(session, layers(), _json(), account)
    body = inspections.plan_json(session, layers(), plan, account)
    # Who planned what, without the sample (the audit log is no way round the secrecy).
    audit.record(session, account, "inspection_plan.create", "inspection_plan", plan.id,
                 after={"layer": plan.layer, "planned_for": body.get("planned_for"),
                        "places": len(body.get("places") or [])})  # fmt: skip
    session.commit()
    return jsonify(body), 201


@bp.get("/inspections/<int:plan_id>")
def inspection_detail(plan_id: int):
    require("layers.read")
    _known(plan_id, INT_MAX, "暗访计划", "id")
    single_args(())
    session, account = get_session(), current_account()
    plan = inspections.visible_plan(session, account, plan_id)
    return jsonify(inspections.plan_json(session, layers(), plan, account))


@bp.post("/inspections/<int:plan_id>/results")
@permission_required(INSPECT)
def inspection_result(plan_id: int):
    _known(plan_id, INT_MAX, "暗访计划", "id")
    session, account, cfg = get_session(), current_account(), issue_settings()
    plan = inspections.visible_plan(session, account, plan_id)
    fields, uploads = parse_body()
    prepared = prepare_all(uploads, cfg.photo_limits, cfg.tz)
    inspections.record_result(
        session, layers(), field_settings(), cfg, plan, account, fields, prepared
    )
    body = inspections.plan_json(session, layers(), plan, account)
    session.commit()
    return jsonify(body)


@bp.post("/inspections/<int:plan_id>/complete")
@permission_required(INSPECT)
def inspection_complete(plan_id: int):
    _known(plan_id, INT_MAX, "暗访计划", "id")
    session, account = get_session(), current_account()
    plan = inspections.visible_plan(session, account, plan_id)
    issue_ids = inspections.complete_plan(
        session, layers(), field_settings(), issue_settings(), plan, account
    )
    body = inspections.plan_json(session, layers(), plan, account) | {"issue_ids": issue_ids}
    audit.record(session, account, "inspection_plan.complete", "inspection_plan", plan.id,
                 after={"issue_ids": issue_ids})  # fmt: skip
    session.commit()
    return jsonify(body)


# --- evidence --------------------------------------------------------


def _scan() -> None:
    session = get_session()
    if evidence.scan_pending(session, layers(), field_settings(), issue_settings().store):
        session.commit()


@bp.get("/evidence/suspicious")
@permission_required(EVIDENCE)
def suspicious():
    args = single_args(("limit", "offset"))
    from geoservice.edge.params import parse_paging

    limit, offset = parse_paging(args, default=200, maximum=1000)
    _scan()
    within = inspections.evidence_scope(
        get_session(), current_account(), access.photo_checks(current_account(), layers())
    )
    total, rows = evidence.suspicious_rows(get_session(), within, limit=limit, offset=offset)
    return jsonify({"numberMatched": total, "numberReturned": len(rows), "photos": rows,
                    "flags": evidence.FLAGS})  # fmt: skip


@bp.get("/evidence/units")
@permission_required(EVIDENCE)
def evidence_units():
    single_args(())
    _scan()
    within = inspections.evidence_scope(
        get_session(), current_account(), access.photo_checks(current_account(), layers())
    )
    return jsonify({"units": evidence.counts_per_unit(get_session(), within)})


@bp.get("/evidence/issues/<int:issue_id>")
def issue_evidence(issue_id: int):
    """The checks of an issue's photos (for the verification screen)."""
    require("issues.read", "issues")
    _known(issue_id, BIGINT_MAX, "问题", "id")
    single_args(())
    session = get_session()
    if scope.visible_issue(session, current_account(), issue_id) is None:
        raise ApiError(404, f"没有编号为 {issue_id} 的问题", field="id")
    _scan()
    from sqlalchemy import select

    from geoservice.fieldwork.models import PhotoCheck

    photos = session.scalars(select(Photo).where(Photo.issue_id == issue_id).order_by(Photo.id))
    out = []
    for p in photos:
        check = session.scalar(select(PhotoCheck).where(PhotoCheck.photo_id == p.id))
        out.append(
            {
                "photo_id": p.id,
                "kind": p.kind,
                "taken_at": p.taken_at.isoformat() if p.taken_at else None,
                "display_url": url_for("fieldwork_api.issue_photo_display", photo_id=p.id),
                "check": evidence.check_json(check),
            }
        )
    return jsonify({"issue_id": issue_id, "photos": out})


def _display(sha256: str, content_type: str, at, name: str, code: str, lon, lat):
    cfg = issue_settings()
    if cfg.store is None:
        raise ApiError(404, "照片存储未配置")
    lines = evidence.watermark_lines(
        at.astimezone(field_settings().tz) if at else None, name, code, lon, lat
    )
    try:
        path = evidence.display_copy(
            cfg.store, sha256, content_type, lines, field_settings().watermark_font
        )
    except FileNotFoundError:
        raise ApiError(404, "照片文件不存在") from None
    return send_file(path, mimetype="image/jpeg", max_age=3600)


@bp.get("/issue-photos/<int:photo_id>/display")
def issue_photo_display(photo_id: int):
    """An issue photo with the server's watermark (time, place, coordinates)."""
    require("issues.read", "issues")
    _known(photo_id, BIGINT_MAX, "照片", "photo_id")
    single_args(())
    session = get_session()
    photo = session.get(Photo, photo_id)
    if photo is None or scope.visible_issue(session, current_account(), photo.issue_id) is None:
        raise ApiError(404, f"没有编号为 {photo_id} 的照片", field="photo_id")
    from geoalchemy2.shape import to_shape

    from geoservice.models import Issue, Place

    issue = session.get(Issue, photo.issue_id)
    place = session.get(Place, issue.primary_place_id) if issue.primary_place_id else None
    point = to_shape(issue.geom)
    return _display(
        photo.sha256,
        photo.content_type,
        photo.taken_at or photo.created_at,
        place.name if place else f"问题 {issue.id}",
        place.code if place else f"issue {issue.id}",
        point.x,
        point.y,
    )


@bp.get("/photos/<int:photo_id>/<variant>")
def field_photo(photo_id: int, variant: str):
    """A visit's (or 暗访's) photo: `display` (watermarked), `thumb` or `original`."""
    require("layers.read")
    _known(photo_id, BIGINT_MAX, "照片", "photo_id")
    single_args(())
    session = get_session()
    photo = session.get(FieldPhoto, photo_id)
    account = current_account()
    allowed = False
    if photo is not None:
        if photo.visit_id is not None:
            allowed = _may_read_visit(session.get(PatrolVisit, photo.visit_id))
        else:
            plan = session.get(inspections.InspectionPlan, photo.plan_id)
            allowed = plan is not None and inspections.may_see(session, account, plan)
            if allowed and plan.status == "done" and not inspections.may_run(account, plan):
                # Once done, a plan's results are shown within the caller's area only
                # (plan_json), and so are its photos.
                allowed = (
                    scope.visible_place(session, account, layers(), photo.place_id) is not None
                )
    if not allowed or variant not in ("display", "thumb", "original"):
        raise ApiError(404, f"没有编号为 {photo_id} 的照片", field="photo_id")
    store = issue_settings().store
    if variant == "original":
        return send_file(store.path(photo.sha256, photo.content_type), mimetype=photo.content_type)
    if variant == "thumb":
        return send_file(store.thumb_path(photo.sha256), mimetype="image/jpeg")
    from geoservice.fieldwork.places import place_info

    info = place_info(session, layers(), [photo.place_id]).get(photo.place_id, {})
    at = photo.taken_at or photo.created_at
    # Where the photo was taken: its own GPS, else the visit's check-in. Never the place's
    # coordinates, which made a photo taken kilometres away read as taken on the spot.
    lon = lat = None
    if photo.exif_lon is not None:
        lon, lat = photo.exif_lon, photo.exif_lat
    if photo.visit_id is not None:
        visit = session.get(PatrolVisit, photo.visit_id)
        at = photo.taken_at or visit.visited_at
        if lon is None and visit.checkin is not None:
            from geoalchemy2.shape import to_shape

            point = to_shape(visit.checkin)
            lon, lat = point.x, point.y
    return _display(
        photo.sha256, photo.content_type, at, info.get("name", ""), info.get("code", ""), lon, lat
    )
