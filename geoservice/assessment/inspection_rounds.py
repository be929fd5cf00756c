"""A completed 暗访 of 点位 recorded as an assessment round of kind `inspection` (issue 16), so
its results show in /assessment exactly like a 模拟测评 round's: per-site 合格/不合格 against
the standards, scores by street, unit, kind and 点长, the failures with their issues.

geoservice.fieldwork.inspections calls `record` when a plan is completed — never before, so a
plan stays secret until it is done. The issues were raised by the inspection (one per failed
site, source 暗访督查); the round's failed results point at them, none is raised here.

Per site: the checklist's entries (standards of the round's version that apply to the site's
kind). A result recorded without a checklist: 合格 → every applicable standard 合格 (noted
「整体合格（未逐条检查）」); 不合格 → the applicable standards of the result's problem
category 不合格, no result for the others (the site is then not 达标, and unscored if none
matches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.assessment.models import AssessmentResult, AssessmentRound, RoundSite
from geoservice.models import Photo

KIND_TITLES = {"mock": "模拟测评", "inspection": "暗访"}
WHOLE_PASS_NOTE = "整体合格（未逐条检查）"


@dataclass(frozen=True)
class InspectedSite:
    """One sampled site's result as the inspection recorded it."""

    site_id: int
    outcome: str  # pass | fail
    recorded_at: datetime
    recorded_by_id: int | None
    category: str | None = None
    note: str = ""
    # [{"standard_id", "outcome": pass|fail, "note"}]
    checklist: list[dict[str, Any]] = field(default_factory=list)
    issue_id: int | None = None
    checkin: Any = None  # a geometry element (WKB) or None
    distance_m: float | None = None
    far: bool = False


def _version(session: Session, places: list[InspectedSite]) -> int | None:
    """The standards version of the checklists, else the newest one applying to the sites."""
    ids = [c["standard_id"] for p in places for c in p.checklist]
    if ids:
        found = session.execute(
            text("SELECT version_id FROM standards WHERE id = ANY(:ids) ORDER BY id LIMIT 1"),
            {"ids": ids},
        ).scalar()
        if found is not None:
            return int(found)
    found = session.execute(
        text("""SELECT max(sd.version_id) FROM standards sd
JOIN standard_kinds sk ON sk.standard_id = sd.id
JOIN sites s ON s.kind_id = sk.kind_id WHERE s.id = ANY(:sites)"""),
        {"sites": [p.site_id for p in places]},
    ).scalar()
    return int(found) if found is not None else None


def _applicable(session: Session, version_id: int, site_ids: list[int]) -> dict[int, list[Any]]:
    rows = session.execute(
        text("""SELECT s.id AS site_id, sd.id, sd.code, sd.category, sd.negative_list FROM sites s
JOIN standard_kinds sk ON sk.kind_id = s.kind_id
JOIN standards sd ON sd.id = sk.standard_id AND sd.version_id = :v
WHERE s.id = ANY(:sites) ORDER BY s.id, sd.position, sd.code"""),
        {"v": version_id, "sites": site_ids},
    ).all()
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(r.site_id, []).append(r)
    return out


def _entries(place: InspectedSite, applicable: list[Any]) -> list[tuple[int, str, str]]:
    """(standard_id, outcome, note) of one site, limited to the applicable standards. A
    checklist of another 测评体系 version (the newest for its kind, while the round takes one
    version) is matched by standard code; one that matches nothing counts as the whole-site
    result below, so a failure the inspector recorded is never dropped."""
    ids = {a.id for a in applicable}
    by_code = {a.code: a.id for a in applicable}
    if place.checklist:
        matched = []
        for c in place.checklist:
            sid = int(c["standard_id"])
            sid = sid if sid in ids else by_code.get(c.get("code"))
            if sid is not None and c["outcome"] in ("pass", "fail"):
                matched.append((sid, c["outcome"], c.get("note") or ""))
        if matched:
            return matched
    if place.outcome == "pass":
        return [(a.id, "pass", WHOLE_PASS_NOTE) for a in applicable]
    # A whole-site 不合格 fails the standards of its category, but never a 负面清单 (veto) one
    # on that guess alone: a veto is counted only when the inspector checked it.
    return [
        (a.id, "fail", place.note)
        for a in applicable
        if a.category == place.category and not a.negative_list
    ]


def record(
    session: Session,
    plan_id: int,
    name: str,
    planned_for: date,
    seed: int,
    created_by_id: int | None,
    places: list[InspectedSite],
    tz: Any,
) -> AssessmentRound | None:
    """The round of a completed inspection (None when no sampled place is a site with
    standards). The caller commits."""
    known = set(
        session.execute(
            text("SELECT id FROM sites WHERE id = ANY(:ids)"), {"ids": [p.site_id for p in places]}
        ).scalars()
    )
    places = [p for p in places if p.site_id in known]
    version_id = _version(session, places) if places else None
    if version_id is None:
        return None
    days = [planned_for, *(p.recorded_at.astimezone(tz).date() for p in places)]
    title = f"暗访：{name}"[:90]
    round_name = f"{title}（#{plan_id}）"
    found = AssessmentRound(
        name=round_name,
        starts_on=min(days),
        ends_on=max(days),
        version_id=version_id,
        sample_per_kind=None,
        seed=seed,
        created_by_id=created_by_id,
        kind="inspection",
        inspection_plan_id=plan_id,
    )
    session.add(found)
    session.flush()
    session.execute(
        RoundSite.__table__.insert(),
        [
            {"round_id": found.id, "site_id": p.site_id, "inspector_id": p.recorded_by_id}
            for p in places
        ],
    )
    applicable = _applicable(session, version_id, [p.site_id for p in places])
    issue_ids = [p.issue_id for p in places if p.issue_id is not None]
    first_photo = dict(
        session.execute(
            select(Photo.issue_id, Photo.id)
            .where(Photo.issue_id.in_(issue_ids or [-1]))
            .order_by(Photo.issue_id, Photo.id.desc())
        ).all()
    )  # the dict keeps the last row per issue: ordered by id descending, the first photo
    results = []
    for p in places:
        for standard_id, outcome, note in _entries(p, applicable.get(p.site_id, [])):
            photo_id = first_photo.get(p.issue_id) if outcome == "fail" else None
            if outcome == "fail" and photo_id is None:
                continue  # a failure is recorded with its photo (a plan's failures have one)
            results.append(
                AssessmentResult(
                    round_id=found.id,
                    site_id=p.site_id,
                    standard_id=standard_id,
                    outcome=outcome,
                    note=(note or "")[:2000],
                    photo_id=photo_id,
                    issue_id=p.issue_id if outcome == "fail" else None,
                    checkin=p.checkin,
                    distance_m=p.distance_m,
                    far=p.far,
                    recorded_by_id=p.recorded_by_id,
                    recorded_at=p.recorded_at,
                )
            )
    session.add_all(results)
    session.flush()
    return found
