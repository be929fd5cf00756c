"""暗访 (unannounced inspections): 不发通知、不打招呼、不听汇报、不用陪同.

A supervisor draws a random sample of places (layer, site kind, street, count) for a date with
a seed: the same seed and the same places give the same sample. The plan is secret until it
is done: only admins, planners and the inspectors who made it or were given it see it, and
never an account whose leader answers for one of the sampled places (404, as if it did not
exist). Results are recorded per place (合格/不合格 with a photo, check-in flagged when far);
completing the plan raises an issue for every failure, the same way as a report, so nothing
reaches a responsible leader before the plan is done; a plan of 点位 is then also recorded as
an assessment round of kind 暗访 (geoservice.assessment.inspection_rounds), shown in
/assessment like a 模拟测评 round.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.assessment import inspection_rounds
from geoservice.fieldwork import evidence
from geoservice.fieldwork.common import as_date, as_int, as_text, iso, no_nulls
from geoservice.fieldwork.models import (
    INSPECTION_OUTCOMES,
    FieldPhoto,
    InspectionPlace,
    InspectionPlan,
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
from geoservice.input_values import text_value
from geoservice.issues import issues as issue_service
from geoservice.issues.photos import PreparedPhoto
from geoservice.issues.workflow import IssueSettings
from geoservice.models import AdminArea, User
from geoservice.placegeom import place_geometries_sql
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, Forbidden, InvalidInput, NotFound

MAX_SAMPLE = 500
STAFF_ROLES = ("admin", "planner")


def candidates(
    session: Session,
    registry: LayerRegistry,
    layer: str,
    site_kind: str | None,
    street_id: int | None,
    within: tuple[str, dict[str, Any]] | None = None,
) -> list[int]:
    """Ids of the places a plan may sample, ascending; `within`: an SQL condition on `p.id`
    (the supervisor's scope)."""
    where = ["p.layer = :layer"]
    params: dict[str, Any] = {}
    if within:
        where.append(within[0])
        params.update(within[1])
    if site_kind:
        where.append(KIND_FILTER.format(place="p.id", kind=":kind"))
    if street_id is not None:
        where.append(f"{street_sql('g.geom')} = :street")
    rows = session.execute(
        text(
            f"SELECT p.id FROM places p JOIN ({place_geometries_sql(registry)}) g ON g.id = p.id"
            f" WHERE {' AND '.join(where)} ORDER BY p.id"
        ),
        {"layer": layer, "kind": site_kind, "street": street_id, **params},
    ).scalars()
    return list(rows)


def draw(ids: Sequence[int], count: int, seed: int) -> list[int]:
    """A reproducible sample: depends only on the seed and the candidate ids."""
    ordered = sorted(ids)
    if len(ordered) <= count:
        return ordered
    return random.Random(seed).sample(ordered, count)


def _street(session: Session, value: Any) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    row = session.scalar(
        select(AdminArea).where(
            AdminArea.level == "street",
            (AdminArea.code == text) | (AdminArea.name == text),
        )
    )
    if row is None and text.isdigit():
        row = session.get(AdminArea, int(text))
        if row is not None and row.level != "street":
            row = None
    if row is None:
        raise InvalidInput(f"没有名为或编码为「{text}」的街道", field="street")
    return row.id


def create_plan(
    session: Session,
    registry: LayerRegistry,
    payload: Mapping[str, Any],
    by: User,
) -> InspectionPlan:
    no_nulls(payload, ("layer", "date", "count", "seed", "street", "site_kind", "name",
                       "inspector_id"))  # fmt: skip
    layer = as_text(payload.get("layer"), "layer", "图层", 32)
    if layer not in registry:
        raise InvalidInput(f"没有名为「{layer}」的图层", {"layers": registry.names}, "layer")
    kind = as_text(payload.get("site_kind"), "site_kind", "点位类别", 32, required=False) or None
    if kind and (layer != "site" or not sites_available(session, registry)):
        raise InvalidInput("点位类别只用于点位图层（site）", field="site_kind")
    if kind and not kind_exists(session, kind):
        raise InvalidInput(f"没有代码为「{kind}」的点位类别", field="site_kind")
    planned_for = as_date(payload.get("date") or payload.get("planned_for"), "date", "暗访日期")
    count = as_int(payload.get("count"), "count", "抽取数量", 1, MAX_SAMPLE)
    seed_raw = payload.get("seed")
    seed = (
        secrets.randbits(31) if seed_raw in (None, "") else as_int(seed_raw, "seed", "随机种子", 0)
    )
    street_id = _street(session, payload.get("street"))
    inspector_id = None
    if payload.get("inspector_id") not in (None, ""):
        inspector_id = as_int(
            payload.get("inspector_id"), "inspector_id", "暗访人员编号", 1, 2**31 - 1
        )
        inspector = session.get(User, inspector_id)
        if (
            inspector is None
            or not inspector.active
            or inspector.role
            not in (
                "inspector",
                "planner",
                "admin",
            )
        ):
            raise InvalidInput("暗访人员须为有效的督查员或创文办账号", field="inspector_id")
    from geoservice.fieldwork.access import place_ref

    ids = candidates(session, registry, layer, kind, street_id, place_ref(by, registry, "p.id"))
    if not ids:
        raise InvalidInput("按所给条件没有可抽取的地点", field="count")
    sample = draw(ids, count, seed)
    name = as_text(payload.get("name"), "name", "名称", 100, required=False)
    plan = InspectionPlan(
        name=name or f"{planned_for.isoformat()} 暗访（{registry.get(layer).title}）",
        planned_for=planned_for,
        layer=layer,
        site_kind=kind,
        street_id=street_id,
        sample_size=len(sample),
        seed=seed,
        created_by_id=by.id,
        inspector_id=inspector_id,
    )
    session.add(plan)
    session.flush()
    session.add_all(
        InspectionPlace(plan_id=plan.id, place_id=pid, position=i + 1)
        for i, pid in enumerate(sample)
    )
    session.flush()
    return plan


# --- secrecy --------------------------------------------------------


def _answers_for_sampled(session: Session, account: User, plan_id: int) -> bool:
    """Does the account's leader — or, for a unit head, a leader of the unit — answer now (any
    role) for a place of the plan?"""
    if account.leader_id is None:
        return False
    from geoservice.models import Leader
    from geoservice.responsibility.responsibility import leaders_in_view

    leader = session.get(Leader, account.leader_id)
    leader_ids = leaders_in_view(session, leader) if leader else [account.leader_id]
    return bool(
        session.execute(
            text("""
SELECT 1 FROM inspection_places ip JOIN assignments a ON a.place_id = ip.place_id
WHERE ip.plan_id = :plan AND a.leader_id = ANY(:leaders)
  AND a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now()) LIMIT 1"""),
            {"plan": plan_id, "leaders": leader_ids},
        ).first()
    )


def may_see(session: Session, account: User | None, plan: InspectionPlan) -> bool:
    if account is None or not account.active:
        return False
    if plan.status == "done":
        return account.role != "integration"
    if _answers_for_sampled(session, account, plan.id):
        return False
    return may_run(account, plan)


def may_run(account: User, plan: InspectionPlan) -> bool:
    """Who records results and completes the plan: admins, planners bound to no area, and
    the accounts that made it or were given it."""
    if account.id in (plan.created_by_id, plan.inspector_id):
        return account.role in (*STAFF_ROLES, "inspector")
    if account.role in STAFF_ROLES:
        return account.role == "admin" or account.area_id is None
    return False


def evidence_scope(
    session: Session, account: User | None, within: tuple[str, dict[str, Any]] | None,
    alias: str = "c",
) -> tuple[str, dict[str, Any]] | None:  # fmt: skip
    """`within` (a condition on `photo_checks <alias>`: the account's area) and, whatever the
    area, no photo of a 暗访 the account may not see yet: the 存疑 lists would otherwise tell
    the inspected 点长, leaders and unit heads that their place was sampled (保密)."""
    open_plans = session.scalars(
        select(InspectionPlan).where(InspectionPlan.status != "done")
    ).all()
    hidden = [p.id for p in open_plans if not may_see(session, account, p)]
    if not hidden:
        return within
    sql = (
        f"NOT EXISTS (SELECT 1 FROM field_photos hidden_f WHERE hidden_f.id = "
        f"{alias}.field_photo_id AND hidden_f.plan_id = ANY(:hidden_plans))"
    )
    if within is None:
        return sql, {"hidden_plans": hidden}
    return f"({within[0]}) AND {sql}", {**within[1], "hidden_plans": hidden}


def visible_plan(session: Session, account: User | None, plan_id: int) -> InspectionPlan:
    plan = session.get(InspectionPlan, plan_id)
    if plan is None or not may_see(session, account, plan):
        raise NotFound(f"没有编号为 {plan_id} 的暗访计划", field="id")
    return plan


def visible_plans(session: Session, account: User | None) -> list[InspectionPlan]:
    plans = session.scalars(
        select(InspectionPlan).order_by(InspectionPlan.planned_for.desc(), InspectionPlan.id)
    ).all()
    return [p for p in plans if may_see(session, account, p)]


# --- results --------------------------------------------------------


def record_result(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    issue_settings: IssueSettings,
    plan: InspectionPlan,
    account: User,
    fields: Mapping[str, Any],
    prepared: Sequence[PreparedPhoto],
    now: datetime | None = None,
) -> InspectionPlace:
    now = now or datetime.now(UTC)
    if not may_run(account, plan):
        raise Forbidden("只有创建或承担该暗访的督查员、创文办可以记录结果")
    if plan.status == "done":
        raise Conflict("该暗访已完成，不能再修改结果", field="status")
    place_id = as_int(fields.get("place_id"), "place_id", "地点编号")
    row = session.get(InspectionPlace, (plan.id, place_id))
    if row is None:
        raise NotFound(f"地点 {place_id} 不在该暗访的抽样中", field="place_id")
    checklist, failed = _checklist(session, place_id, fields.get("checklist"))
    word = text_value(fields.get("outcome"), "outcome", "暗访结果").strip()
    outcome = {"pass": "pass", "合格": "pass", "fail": "fail", "不合格": "fail"}.get(word)
    if checklist and (not word or failed):  # 任一不合格即整体不合格 (a 合格 beside it too)
        outcome = "fail" if failed else "pass"
    if outcome is None:
        raise InvalidInput(
            "结果只能是 pass（合格）或 fail（不合格）", INSPECTION_OUTCOMES, "outcome"
        )
    category = None
    if outcome == "fail":
        default = failed[0]["category"] if failed else None
        category = as_text(fields.get("category") or default, "category", "问题类别", 32)
        issue_settings.check_category(category)
        if not prepared and not session.scalar(
            select(FieldPhoto.id).where(
                FieldPhoto.plan_id == plan.id, FieldPhoto.place_id == place_id
            )
        ):
            raise InvalidInput("不合格须附至少 1 张照片", field="photos")
    note = as_text(fields.get("note"), "note", "说明", 2000, required=False)
    row.checkin, row.distance_m, row.far = None, None, False
    if fields.get("lon") not in (None, "") or fields.get("lat") not in (None, ""):
        spot = issue_service.locate(fields.get("lon"), fields.get("lat"), fields.get("coord_sys"))
        row.checkin = from_shape(Point(spot.lon, spot.lat), srid=4326)
        row.distance_m = distance_m(session, registry, place_id, spot.lon, spot.lat)
        row.far = row.distance_m is not None and row.distance_m > settings.checkin_radius_m
    row.outcome, row.category, row.note = outcome, category, note
    row.checklist = checklist
    row.negative_list = any(f["negative_list"] for f in failed)
    row.recorded_by_id, row.recorded_at = account.id, now
    photos = evidence.add_field_photos(
        session,
        issue_settings.store,
        prepared,
        [None] * len(prepared),
        plan_id=plan.id,
        place_id=place_id,
    )
    session.flush()
    for photo in photos:
        evidence.check_field_photo(session, registry, settings, issue_settings.store, photo)
    return row


_RESULT_WORDS = {"pass": "pass", "合格": "pass", "ok": "pass", "fail": "fail", "不合格": "fail",
                 "problem": "fail"}  # fmt: skip


def _checklist(
    session: Session, place_id: int, raw: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(checklist, failed standards) for a site with standards (issue 15); ([], []) without."""
    if raw in (None, "", []):
        return [], []
    if isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidInput("checklist 必须是 JSON 数组", field="checklist") from None
    if not isinstance(raw, list):
        raise InvalidInput("checklist 必须是数组", field="checklist")
    standards = {s["id"]: s for s in applicable_standards(session, place_id)}
    out, failed = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"checklist 第 {index + 1} 项必须是对象", field="checklist")
        sid = as_int(item.get("standard_id"), "checklist", "标准编号", 1, 2**31 - 1)
        if sid not in standards:
            raise InvalidInput(
                f"标准 {sid} 不适用于该地点", {"applicable": sorted(standards)}, "checklist"
            )
        if any(entry["standard_id"] == sid for entry in out):  # one result per standard
            raise InvalidInput(
                f"checklist 第 {index + 1} 项：标准 {standards[sid]['code']} 重复出现",
                field="checklist",
            )
        word = _RESULT_WORDS.get(str(item.get("outcome") or "").strip())
        if word is None:
            raise InvalidInput("每项结果只能是 合格 或 不合格", field="checklist")
        note = as_text(item.get("note"), "checklist", "说明", 500, required=False)
        out.append({"standard_id": sid, "code": standards[sid]["code"], "outcome": word,
                    "note": note})  # fmt: skip
        if word == "fail":
            failed.append(standards[sid])
    return out, failed


def _prepared_from_store(issue_settings: IssueSettings, photo: FieldPhoto) -> PreparedPhoto:
    store = issue_settings.store
    return PreparedPhoto(
        data=store.path(photo.sha256, photo.content_type).read_bytes(),
        sha256=photo.sha256,
        content_type=photo.content_type,
        width=photo.width or 0,
        height=photo.height or 0,
        thumb=store.thumb_path(photo.sha256).read_bytes(),
        taken_at=photo.taken_at,
        exif_lon=photo.exif_lon,
        exif_lat=photo.exif_lat,
        exif=photo.exif or {},
    )


def _description(plan: InspectionPlan, row: InspectionPlace) -> str:
    failed = [f"{c['code']}{('：' + c['note']) if c.get('note') else ''}"
              for c in row.checklist if c["outcome"] == "fail"]  # fmt: skip
    parts = [f"暗访（{plan.name}）"]
    if failed:
        parts.append("不合格标准 " + "；".join(failed))
    if row.note:
        parts.append(row.note)
    return "：".join(parts)[:2000]


def complete_plan(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    issue_settings: IssueSettings,
    plan: InspectionPlan,
    account: User,
    now: datetime | None = None,
) -> list[int]:
    """Marks the plan done and raises an issue (source 暗访督查) for every failure; every
    sampled place needs a result first. Returns the new issue ids."""
    now = now or datetime.now(UTC)
    if not may_run(account, plan):
        raise Forbidden("只有创建或承担该暗访的督查员、创文办可以完成暗访")
    if plan.status == "done":
        raise Conflict("该暗访已完成", field="status")
    rows = session.scalars(
        select(InspectionPlace)
        .where(InspectionPlace.plan_id == plan.id)
        .order_by(InspectionPlace.position)
    ).all()
    missing = [r.place_id for r in rows if r.outcome is None]
    if missing:
        raise Conflict(f"还有 {len(missing)} 个地点没有暗访结果", {"place_ids": missing}, "results")
    info = place_info(session, registry, [r.place_id for r in rows])
    created = []
    for r in rows:
        if r.outcome != "fail":
            continue
        if r.checkin is not None:
            point = to_shape(r.checkin)
            lon, lat = point.x, point.y
        else:
            lon, lat = info[r.place_id]["lon"], info[r.place_id]["lat"]
        photos = session.scalars(
            select(FieldPhoto)
            .where(FieldPhoto.plan_id == plan.id, FieldPhoto.place_id == r.place_id)
            .order_by(FieldPhoto.id)
        ).all()
        report = issue_service.validate_report(
            {
                "lon": lon,
                "lat": lat,
                "category": r.category,
                "source": settings.inspection_source,
                "description": _description(plan, r),
                "negative_list": r.negative_list,
                "reported_at": r.recorded_at,
            },
            issue_settings,
            now,
        )
        issue = issue_service.create_issue(
            session,
            registry,
            issue_settings,
            report,
            session.get(User, r.recorded_by_id) if r.recorded_by_id else account,
            [
                _prepared_from_store(issue_settings, p)
                for p in photos[: issue_settings.photo_limits.max_count]
            ],
            now,
        )
        r.issue_id = issue.id
        created.append(issue.id)
    plan.status, plan.completed_at = "done", now
    session.flush()
    if plan.layer == "site" and sites_available(session, registry):
        # Shown in /assessment like a 模拟测评 round's results (created only now: secret until
        # done); its failures point at the issues just raised.
        inspection_rounds.record(
            session,
            plan.id,
            plan.name,
            plan.planned_for,
            plan.seed,
            plan.created_by_id,
            [
                inspection_rounds.InspectedSite(
                    site_id=r.place_id,
                    outcome=r.outcome or "pass",
                    recorded_at=r.recorded_at or now,
                    recorded_by_id=r.recorded_by_id,
                    category=r.category,
                    note=r.note,
                    checklist=list(r.checklist or []),
                    issue_id=r.issue_id,
                    checkin=r.checkin,
                    distance_m=r.distance_m,
                    far=r.far,
                )
                for r in rows
            ],
            settings.tz,
        )
    return created


def plan_json(
    session: Session, registry: LayerRegistry, plan: InspectionPlan, account: User | None
) -> dict[str, Any]:
    rows = session.scalars(
        select(InspectionPlace)
        .where(InspectionPlace.plan_id == plan.id)
        .order_by(InspectionPlace.position)
    ).all()
    if account is None or not may_run(account, plan):
        from geoservice.accounts import scope

        rows = [r for r in rows if scope.visible_place(session, account, registry, r.place_id)]
    info = place_info(session, registry, [r.place_id for r in rows])
    street = session.get(AdminArea, plan.street_id) if plan.street_id else None
    return {
        "id": plan.id,
        "name": plan.name,
        "date": plan.planned_for.isoformat(),
        "layer": plan.layer,
        "site_kind": plan.site_kind,
        "street": street.name if street else None,
        "sample_size": plan.sample_size,
        "seed": plan.seed,
        "status": plan.status,
        "status_title": "已完成" if plan.status == "done" else "待暗访",
        "created_by_id": plan.created_by_id,
        "inspector_id": plan.inspector_id,
        "created_at": iso(plan.created_at),
        "completed_at": iso(plan.completed_at),
        "may_record": bool(account and plan.status != "done" and may_run(account, plan)),
        "places": [
            {
                "position": r.position,
                "place": {
                    k: info.get(r.place_id, {}).get(k)
                    for k in ("id", "layer", "layer_title", "code", "name", "lon", "lat", "street")
                },
                "outcome": r.outcome,
                "outcome_title": INSPECTION_OUTCOMES.get(r.outcome or ""),
                "category": r.category,
                "note": r.note,
                "checklist": r.checklist,
                "negative_list": r.negative_list,
                "far": r.far,
                "distance_m": round(r.distance_m, 1) if r.distance_m is not None else None,
                "recorded_at": iso(r.recorded_at),
                "issue_id": r.issue_id,
            }
            for r in rows
        ],
    }
