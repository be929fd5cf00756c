"""Mock-evaluation rounds (模拟测评): creating a round with a reproducible sample, assigning
inspectors, recording results (immutable; every 不合格 raises an issue through the normal
report path) and corrections by a planner."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geoservice.assessment.models import (
    OUTCOMES,
    AssessmentResult,
    AssessmentRound,
    RoundSite,
    Site,
    Standard,
    StandardKind,
    StandardVersion,
)
from geoservice.assessment.standards import get_version
from geoservice.input_values import shown, text_value, whole_number
from geoservice.issues import issues as issue_service
from geoservice.issues.photos import PreparedPhoto, add_photos
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Issue, IssueEvent, Photo, User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, Forbidden, InvalidInput, NotFound

SOURCE = "模拟测评"
OUTCOME_ALIASES = {
    "pass": "pass", "合格": "pass", "fail": "fail", "不合格": "fail", "na": "na",
    "不适用": "na",
}  # fmt: skip
DEFAULT_CHECKIN_RADIUS_M = 100.0


def get_round(session: Session, round_id: int) -> AssessmentRound:
    found = session.get(AssessmentRound, round_id)
    if found is None:
        raise NotFound(f"没有编号为 {round_id} 的测评轮次", field="round_id")
    return found


def _not_an_inspection(found: AssessmentRound) -> None:
    """A 暗访 round holds what the inspection recorded: nothing is entered or assigned here."""
    if found.kind == "inspection":
        raise Conflict(
            "该轮次是暗访的结果（暗访完成时生成），不能在此录入结果或分配测评员",
            {"inspection_id": found.inspection_plan_id},
            "round_id",
        )


# --- sampling --------------------------------------------------------------------------------


def sample_sites(session: Session, per_kind: int | None, seed: int | None) -> list[int]:
    """Sites of active kinds: all, or `per_kind` per kind per street drawn with `seed`. The
    draw depends only on the seed and the sites (ordered by id within each group, groups by
    kind and street), never on the database's row order."""
    rows = session.execute(
        text(
            """SELECT s.id, s.kind_id, COALESCE(c.parent_id, 0) AS street_id
FROM sites s JOIN site_kinds k ON k.id = s.kind_id AND NOT k.retired
LEFT JOIN admin_areas c ON c.id = s.community_area_id
ORDER BY s.kind_id, street_id, s.id"""
        )
    ).all()
    if per_kind is None:
        return [r.id for r in rows]
    groups: dict[tuple[int, int], list[int]] = {}
    for r in rows:
        groups.setdefault((r.kind_id, r.street_id), []).append(r.id)
    rng = random.Random(seed)
    chosen: list[int] = []
    for key in sorted(groups):
        ids = groups[key]
        chosen.extend(sorted(rng.sample(ids, per_kind)) if len(ids) > per_kind else ids)
    return sorted(chosen)


# --- creating a round ------------------------------------------------------------------------


# What a planner calls the fields of a round (the forms show these messages too).
FIELD_TITLES = {
    "starts_on": "开始日期",
    "ends_on": "结束日期",
    "version_id": "测评体系",
    "sample_per_kind": "每类抽取点位数",
    "seed": "抽样种子",
    "site_ids": "点位编号",
    "inspector_id": "测评员",
}


def _title(field: str) -> str:
    title = FIELD_TITLES.get(field)
    return f"{title}（{field}）" if title else field


def _date(value: Any, field: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise InvalidInput(
            f"{_title(field)}应为日期 YYYY-MM-DD，收到 {shown(value)}", field=field
        ) from None


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    try:
        out = whole_number(value)
    except ValueError:
        raise InvalidInput(f"{_title(field)}应为整数，收到 {shown(value)}", field=field) from None
    if not lo <= out <= hi:
        raise InvalidInput(f"{_title(field)}应在 {lo} 到 {hi} 之间", field=field)
    return out


def create_round(
    session: Session, payload: Mapping[str, Any], by: User | None = None
) -> AssessmentRound:
    """A round: name, starts_on, ends_on, version_id, and the sites — `sample_per_kind` (N per
    kind per street, with `seed`; default seed 1) or all; `site_ids` picks them by hand."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("请求体必须是 JSON 对象")
    name = text_value(payload.get("name"), "name", "名称").strip()
    if not name:
        raise InvalidInput("缺少轮次名称", field="name")
    if len(name) > 100:
        raise InvalidInput("轮次名称过长（最多 100 字）", field="name")
    if session.scalar(select(AssessmentRound.id).where(AssessmentRound.name == name)):
        raise Conflict(f"轮次「{name}」已存在", field="name")
    starts_on = _date(payload.get("starts_on"), "starts_on")
    ends_on = _date(payload.get("ends_on"), "ends_on")
    if ends_on < starts_on:
        raise InvalidInput("结束日期不能早于开始日期", field="ends_on")
    if payload.get("version_id") in (None, ""):
        raise InvalidInput("缺少测评体系版本", field="version_id")
    version = get_version(session, _int(payload.get("version_id"), "version_id", 1, 2**31 - 1))
    per_kind = payload.get("sample_per_kind")
    per_kind = None if per_kind in (None, "", 0) else _int(per_kind, "sample_per_kind", 1, 100000)
    seed = payload.get("seed")
    seed = (1 if per_kind else None) if seed in (None, "") else _int(seed, "seed", 0, 2**62)
    radius = payload.get("checkin_radius_m", DEFAULT_CHECKIN_RADIUS_M)
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 1 <= radius <= 10000:
        raise InvalidInput("签到距离应为 1–10000 米", field="checkin_radius_m")
    if payload.get("site_ids") is not None:
        ids = payload["site_ids"]
        if not isinstance(ids, list) or not ids:
            raise InvalidInput("site_ids 应为点位编号数组", field="site_ids")
        site_ids = sorted({_int(i, "site_ids", 1, 2**62) for i in ids})
        known = set(session.scalars(select(Site.id).where(Site.id.in_(site_ids))))
        missing = [i for i in site_ids if i not in known]
        if missing:
            raise InvalidInput(f"没有编号为 {missing[0]} 的点位", {"missing": missing}, "site_ids")
    else:
        site_ids = sample_sites(session, per_kind, seed)
    if not site_ids:
        raise InvalidInput("没有可测评的点位", field="site_ids")
    inspector_id = payload.get("inspector_id")
    inspector_id = _inspector(session, inspector_id).id if inspector_id not in (None, "") else None
    found = AssessmentRound(
        name=name,
        starts_on=starts_on,
        ends_on=ends_on,
        version_id=version.id,
        sample_per_kind=per_kind,
        seed=seed,
        checkin_radius_m=float(radius),
        created_by_id=by.id if by else None,
    )
    session.add(found)
    session.flush()
    session.execute(
        RoundSite.__table__.insert(),
        [{"round_id": found.id, "site_id": s, "inspector_id": inspector_id} for s in site_ids],
    )
    session.flush()
    return found


def _inspector(session: Session, user_id: Any) -> User:
    user = session.get(User, _int(user_id, "inspector_id", 1, 2**31 - 1))
    if user is None or not user.active:
        raise InvalidInput(f"没有编号为 {user_id} 的在用账号", field="inspector_id")
    return user


def assign_inspectors(
    session: Session, round_id: int, inspector_id: Any, site_ids: Sequence[Any]
) -> int:
    """Assigns an inspector (an account) to sites of the round; returns how many."""
    found = get_round(session, round_id)
    _not_an_inspection(found)
    user = _inspector(session, inspector_id)
    if not isinstance(site_ids, list) or not site_ids:
        raise InvalidInput("site_ids 应为点位编号数组", field="site_ids")
    ids = [_int(i, "site_ids", 1, 2**62) for i in site_ids]
    present = set(
        session.scalars(
            select(RoundSite.site_id).where(
                RoundSite.round_id == found.id, RoundSite.site_id.in_(ids)
            )
        )
    )
    missing = [i for i in ids if i not in present]
    if missing:
        raise InvalidInput(f"点位 {missing[0]} 不在本轮测评中", {"missing": missing}, "site_ids")
    session.execute(
        RoundSite.__table__.update()
        .where(RoundSite.round_id == found.id, RoundSite.site_id.in_(ids))
        .values(inspector_id=user.id)
    )
    return len(ids)


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One standard's result as submitted (photos already validated)."""

    standard_id: Any
    outcome: Any
    note: Any = ""
    photo: PreparedPhoto | None = None


def _outcome(value: Any, field: str) -> str:
    outcome = OUTCOME_ALIASES.get(str(value or "").strip())
    if outcome is None:
        raise InvalidInput("结果只能是 合格（pass）、不合格（fail）或 不适用（na）", field=field)
    return outcome


def _checkin(lon: Any, lat: Any) -> tuple[float, float] | None:
    if lon in (None, "") and lat in (None, ""):
        return None
    from geoservice.assessment.sites import _lonlat

    return _lonlat(lon, lat)


def _round_site(session: Session, found: AssessmentRound, site_id: Any) -> RoundSite:
    sid = _int(site_id, "site_id", 1, 2**62) if site_id not in (None, "") else None
    if sid is None:
        raise InvalidInput("缺少点位编号", field="site_id")
    rs = session.get(RoundSite, (found.id, sid))
    if rs is None:
        raise InvalidInput(f"点位 {sid} 不在本轮测评「{found.name}」中", field="site_id")
    return rs


def _distance_m(session: Session, site_id: int, lon: float, lat: float) -> float:
    return float(
        session.scalar(
            text(
                "SELECT ST_Distance(geom::geography,"
                " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) FROM sites WHERE id = :id"
            ),
            {"id": site_id, "lon": lon, "lat": lat},
        )
    )


def site_anchor(session: Session, site_id: int) -> tuple[float, float]:
    row = session.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
            " FROM sites WHERE id = :id"
        ),
        {"id": site_id},
    ).one()
    return float(row[0]), float(row[1])


def may_record(session: Session, account: User, rs: RoundSite) -> bool:
    return account.role in ("admin", "planner") or rs.inspector_id == account.id


def submit_results(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    round_id: int,
    site_id: Any,
    entries: Sequence[Entry],
    account: User,
    lon: Any = None,
    lat: Any = None,
    now: datetime | None = None,
) -> list[AssessmentResult]:
    """Records the results of one site: every entry is checked before anything is written (the
    caller rolls back on error). A 不合格 needs a photo and raises an issue (source 模拟测评,
    the standard's category and negative-list flag, the site as primary place, its 点长 at
    that time as leader). A check-in farther than the round's distance is kept and flagged."""
    now = now or datetime.now(UTC)
    found = get_round(session, round_id)
    _not_an_inspection(found)
    rs = _round_site(session, found, site_id)
    if not may_record(session, account, rs):
        raise Forbidden("该点位未分配给你，不能录入结果", field="site_id")
    if not entries:
        raise InvalidInput("没有任何结果", field="results")
    site = session.get(Site, rs.site_id)
    position = _checkin(lon, lat)
    checked: list[tuple[Standard, str, str, PreparedPhoto | None]] = []
    seen: set[int] = set()
    for i, entry in enumerate(entries):
        where = f"results[{i}]"
        if entry.standard_id in (None, ""):
            raise InvalidInput("缺少测评标准编号", field=f"{where}.standard_id")
        sid = _int(entry.standard_id, f"{where}.standard_id", 1, 2**31 - 1)
        standard = session.get(Standard, sid)
        if standard is None or standard.version_id != found.version_id:
            raise InvalidInput(f"标准 {sid} 不属于本轮使用的测评体系", field=f"{where}.standard_id")
        applies = session.get(StandardKind, (standard.id, site.kind_id))
        if applies is None:
            raise InvalidInput(
                f"标准 {standard.code} 不适用于该点位的类别", field=f"{where}.standard_id"
            )
        if sid in seen:
            raise InvalidInput(
                f"标准 {standard.code} 在本次提交中重复", field=f"{where}.standard_id"
            )
        seen.add(sid)
        already = session.scalar(
            select(AssessmentResult.id).where(
                AssessmentResult.round_id == found.id,
                AssessmentResult.site_id == site.id,
                AssessmentResult.standard_id == sid,
            )
        )
        if already is not None:
            raise Conflict(
                f"该点位的标准 {standard.code} 已提交过结果，不能重复提交；如需更正请由创文办更正",
                {"result_id": already},
                f"{where}.standard_id",
            )
        outcome = _outcome(entry.outcome, f"{where}.outcome")
        note = entry.note if isinstance(entry.note, str) else ("" if entry.note is None else None)
        if note is None or len(note) > 2000:
            raise InvalidInput("备注应为不超过 2000 字的文字", field=f"{where}.note")
        if outcome == "fail" and entry.photo is None:
            raise InvalidInput(f"标准 {standard.code} 为不合格，必须附照片", field=f"{where}.photo")
        checked.append((standard, outcome, note.strip(), entry.photo))
    distance = far = None
    if position is not None:
        distance = _distance_m(session, site.id, *position)
        far = distance > found.checkin_radius_m
    return [
        _record(
            session, registry, settings, found, site, standard, outcome, note, photo, account,
            now, position, distance, bool(far),
        )
        for standard, outcome, note, photo in checked
    ]  # fmt: skip


def _record(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    found: AssessmentRound,
    site: Site,
    standard: Standard,
    outcome: str,
    note: str,
    photo: PreparedPhoto | None,
    account: User,
    now: datetime,
    position: tuple[float, float] | None,
    distance: float | None,
    far: bool,
    corrects: AssessmentResult | None = None,
    reason: str | None = None,
) -> AssessmentResult:
    issue_id = photo_id = None
    if outcome == "fail" and corrects is not None and corrects.issue_id is not None:
        # A failure corrected into a failure is the same failure: its issue gets the new
        # photo and a note, no second issue (each correction raised one, all left open).
        issue_id = corrects.issue_id
        event = IssueEvent(
            issue_id=issue_id, at=now, actor_id=account.id,
            from_status=session.get(Issue, issue_id).status,
            to_status=session.get(Issue, issue_id).status,
            note=f"测评结果更正（仍不合格）：{reason or ''}".rstrip("："),
            data={"action": "assessment_correction", "result_id": corrects.id},
        )  # fmt: skip
        session.add(event)
        session.flush()
        added = add_photos(session, settings.store, issue_id, event.id, "before", [photo])
        photo_id = added[0].id if added else corrects.photo_id
    elif outcome == "fail":
        issue = raise_issue(session, registry, settings, found, site, standard, note, photo,
                            account, now)  # fmt: skip
        issue_id = issue.id
        photo_id = session.scalar(
            select(Photo.id).where(Photo.issue_id == issue.id).order_by(Photo.id).limit(1)
        )
    result = AssessmentResult(
        round_id=found.id,
        site_id=site.id,
        standard_id=standard.id,
        outcome=outcome,
        note=note,
        photo_id=photo_id,
        issue_id=issue_id,
        checkin=from_shape(Point(*position), srid=4326) if position else None,
        distance_m=distance,
        far=far,
        recorded_by_id=account.id,
        recorded_at=now,
        corrects_id=corrects.id if corrects else None,
        reason=reason,
    )
    session.add(result)
    session.flush()
    return result


def raise_issue(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    found: AssessmentRound,
    site: Site,
    standard: Standard,
    note: str,
    photo: PreparedPhoto | None,
    account: User,
    now: datetime,
) -> Issue:
    """An issue for a failed standard, through the normal report path (photos, relapse), then
    held to the site: the site is the primary place and its 点长 at `now` the leader."""
    lon, lat = site_anchor(session, site.id)
    description = f"模拟测评「{found.name}」{site.name}：{standard.code} {standard.text}"
    if note:
        description += f"（{note}）"
    report = issue_service.Report(
        lon=lon,
        lat=lat,
        category=standard.category,
        source=SOURCE,
        description=description[: issue_service.MAX_DESCRIPTION],
        severity=2 if standard.negative_list else 1,
        negative_list=standard.negative_list,
        reported_at=now,
    )
    issue = issue_service.create_issue(
        session, registry, settings, report, account, [photo] if photo else [], now=now
    )
    leader = session.execute(
        text(
            """SELECT a.leader_id, l.unit_id FROM assignments a JOIN leaders l ON l.id = a.leader_id
WHERE a.place_id = :site AND a.is_primary AND a.valid_from <= :at
  AND (a.valid_to IS NULL OR a.valid_to > :at)
ORDER BY a.valid_from DESC LIMIT 1"""
        ),
        {"site": site.id, "at": now},
    ).first()
    attribution = dict(issue.attribution or {})
    attribution["assessment"] = {"round_id": found.id, "site_id": site.id,
                                 "standard_id": standard.id}  # fmt: skip
    attribution["unassigned"] = leader is None
    places = [p for p in attribution.get("places", []) if p.get("place_id") != site.id]
    attribution["places"] = [
        {
            "layer": "site",
            "place_id": site.id,
            "distance_m": 0.0,
            "rule": "assessment",
            "leader_id": leader.leader_id if leader else None,
        },
        *places,
    ]
    issue.primary_place_id = site.id
    issue.leader_id = leader.leader_id if leader else None
    issue.unit_id = leader.unit_id if leader else None
    issue.attribution = attribution
    session.flush()
    return issue


def correct_result(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    result_id: int,
    outcome: Any,
    reason: Any,
    account: User,
    note: Any = "",
    photo: PreparedPhoto | None = None,
    now: datetime | None = None,
) -> AssessmentResult:
    """A planner's correction: a new row pointing at the result in force, with a reason."""
    now = now or datetime.now(UTC)
    if account.role not in ("admin", "planner"):
        raise Forbidden("只有创文办可以更正测评结果", field="result_id")
    current = session.get(AssessmentResult, result_id)
    if current is None:
        raise NotFound(f"没有编号为 {result_id} 的测评结果", field="result_id")
    later = session.scalar(
        select(AssessmentResult.id).where(AssessmentResult.corrects_id == current.id)
    )
    if later is not None:
        raise Conflict(
            f"该结果已被更正（见结果 {later}），请更正最新的结果", {"result_id": later}, "result_id"
        )
    reason_text = str(reason or "").strip()
    if not reason_text:
        raise InvalidInput("更正必须说明理由", field="reason")
    new_outcome = _outcome(outcome, "outcome")
    note_text = str(note or "").strip()[:2000]
    if new_outcome == "fail" and photo is None:
        if current.outcome == "fail" and current.photo_id is not None:
            raise InvalidInput("不合格必须附照片（请重新上传）", field="photo")
        raise InvalidInput("不合格必须附照片", field="photo")
    found = get_round(session, current.round_id)
    site = session.get(Site, current.site_id)
    standard = session.get(Standard, current.standard_id)
    return _record(
        session, registry, settings, found, site, standard, new_outcome, note_text, photo,
        account, now, None, None, False, corrects=current, reason=reason_text[:2000],
    )  # fmt: skip


# --- reading ---------------------------------------------------------------------------------

IN_FORCE = "NOT EXISTS (SELECT 1 FROM assessment_results c WHERE c.corrects_id = r.id)"


def round_json(session: Session, found: AssessmentRound) -> dict[str, Any]:
    counts = session.execute(
        text(
            f"""SELECT (SELECT count(*) FROM round_sites WHERE round_id = :id) AS sites,
  (SELECT count(DISTINCT site_id) FROM assessment_results WHERE round_id = :id) AS visited,
  (SELECT count(*) FROM assessment_results r WHERE r.round_id = :id AND {IN_FORCE}) AS results,
  (SELECT count(*) FROM assessment_results r WHERE r.round_id = :id AND r.outcome = 'fail'
     AND {IN_FORCE}) AS failed"""
        ),
        {"id": found.id},
    ).one()
    version = session.get(StandardVersion, found.version_id)
    return {
        "id": found.id,
        "name": found.name,
        "starts_on": found.starts_on.isoformat(),
        "ends_on": found.ends_on.isoformat(),
        "version_id": found.version_id,
        "version": version.name if version else None,
        "sample_per_kind": found.sample_per_kind,
        "seed": found.seed,
        "checkin_radius_m": found.checkin_radius_m,
        "kind": found.kind,
        "kind_title": "暗访" if found.kind == "inspection" else "模拟测评",
        "inspection_id": found.inspection_plan_id,
        **dict(counts._mapping),
    }


def list_rounds(session: Session) -> list[dict[str, Any]]:
    rounds = session.scalars(
        select(AssessmentRound).order_by(AssessmentRound.starts_on.desc(), AssessmentRound.id)
    ).all()
    return [round_json(session, r) for r in rounds]


def round_sites(
    session: Session, round_id: int, inspector_id: int | None = None
) -> list[dict[str, Any]]:
    """The round's sites with their inspector and progress (applicable / recorded / failed)."""
    found = get_round(session, round_id)
    rows = session.execute(
        text(
            f"""SELECT p.id, p.code, p.name, k.code AS kind, k.name AS kind_name, k.colour,
  rs.inspector_id, u.display_name AS inspector, c.name AS community, st.name AS street,
  ST_X(ST_PointOnSurface(s.geom)) AS lon, ST_Y(ST_PointOnSurface(s.geom)) AS lat,
  (SELECT count(*) FROM standard_kinds sk JOIN standards sd ON sd.id = sk.standard_id
   WHERE sk.kind_id = s.kind_id AND sd.version_id = :version) AS applicable,
  (SELECT count(*) FROM assessment_results r WHERE r.round_id = :round AND r.site_id = s.id
   AND {IN_FORCE}) AS recorded,
  (SELECT count(*) FROM assessment_results r WHERE r.round_id = :round AND r.site_id = s.id
   AND r.outcome = 'fail' AND {IN_FORCE}) AS failed
FROM round_sites rs JOIN sites s ON s.id = rs.site_id JOIN places p ON p.id = s.id
JOIN site_kinds k ON k.id = s.kind_id
LEFT JOIN users u ON u.id = rs.inspector_id
LEFT JOIN admin_areas c ON c.id = s.community_area_id
LEFT JOIN admin_areas st ON st.id = c.parent_id
WHERE rs.round_id = :round AND (CAST(:inspector AS int) IS NULL OR rs.inspector_id = :inspector)
ORDER BY st.code NULLS LAST, k.id, p.code"""
        ),
        {"round": found.id, "version": found.version_id, "inspector": inspector_id},
    )
    return [dict(r._mapping) for r in rows]


def site_sheet(session: Session, round_id: int, site_id: int) -> dict[str, Any]:
    """One site of a round: its applicable standards and the results in force (for the
    recording page and the drill-down)."""
    found = get_round(session, round_id)
    rs = session.get(RoundSite, (found.id, site_id))
    if rs is None:
        raise NotFound(f"点位 {site_id} 不在本轮测评中", field="site_id")
    site = session.get(Site, site_id)
    from geoservice.assessment.sites import site_json
    from geoservice.assessment.standards import applicable

    results = {
        r.standard_id: r
        for r in session.scalars(
            select(AssessmentResult).where(
                AssessmentResult.round_id == found.id,
                AssessmentResult.site_id == site_id,
                text(IN_FORCE.replace("r.id", "assessment_results.id")),
            )
        )
    }
    standards = []
    for s in applicable(session, found.version_id, site.kind_id):
        r = results.get(s["id"])
        standards.append(
            {
                **{
                    k: s[k]
                    for k in (
                        "id",
                        "item",
                        "content",
                        "code",
                        "text",
                        "score",
                        "category",
                        "negative_list",
                    )
                },
                "result": None
                if r is None
                else {
                    "id": r.id,
                    "outcome": r.outcome,
                    "outcome_label": OUTCOMES[r.outcome],
                    "note": r.note,
                    "photo_id": r.photo_id,
                    "issue_id": r.issue_id,
                    "far": r.far,
                    "distance_m": r.distance_m,
                    "recorded_at": r.recorded_at.isoformat(),
                    "corrected": r.corrects_id is not None,
                    "reason": r.reason,
                },
            }
        )
    return {
        "round": round_json(session, found),
        "site": site_json(session, site_id),
        "inspector_id": rs.inspector_id,
        "standards": standards,
    }


def result_count_of_round(session: Session, round_id: int) -> int:
    return session.scalar(select(func.count()).where(AssessmentResult.round_id == round_id)) or 0
