"""What the public may see, and the planner's switches for it.

- the public map/list: screened issues (立案 and later, not 不予立案, not merged duplicates)
  with category, status, day, the responsible unit's name once dispatched, and the "me too"
  count — never a description, a leader, a phone or a photo; positions rounded where a planner
  marked the issue sensitive;
- the 曝光台: issues a planner published, with only the photos a planner approved;
- the planner's side: the reporter's phone and ticket, sensitive/published, photo approvals,
  the 回访 answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geoservice.citizens.models import (
    FEEDBACK_ANSWERS,
    CitizenFeedback,
    CitizenReport,
    IssuePublic,
    PhotoApproval,
)
from geoservice.citizens.settings import CitizenSettings
from geoservice.input_values import shown
from geoservice.issues.workflow import IssueSettings, status_label
from geoservice.models import Issue, Photo
from geoservice.service_errors import Conflict, InvalidInput, NotFound
from geoservice.ttlcache import TtlCache

# The public answers, kept per worker for PUBLIC_CACHE_SECONDS; a planner's switch empties it.
CACHE = TtlCache()

# Screened issues the public sees (a report waiting for screening or refused is not shown).
PUBLIC_STATUSES: tuple[str, ...] = ("accepted", "dispatched", "in_progress", "fixed", "closed")
# From 交办 on, the responsible unit's name is public (never a leader's).
UNIT_STATUSES: tuple[str, ...] = ("dispatched", "in_progress", "fixed", "closed")
EXACT_DECIMALS = 5  # ≈1 m: no more precision than a phone's GPS gives anyway


def public_issues(
    session: Session,
    issue_settings: IssueSettings,
    settings: CitizenSettings,
    status: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the public map/list, newest first, with counts per
    status."""
    now = now or datetime.now(UTC)
    if status is not None and status not in PUBLIC_STATUSES:
        raise InvalidInput(
            f"未知状态 {shown(status)}", {"statuses": list(PUBLIC_STATUSES)}, field="status"
        )
    statuses = [status] if status else list(PUBLIC_STATUSES)
    params = {
        "statuses": statuses,
        "all": list(PUBLIC_STATUSES),
        "since": now - timedelta(days=settings.public_days),
        "max": settings.public_max,
    }
    rows = session.execute(
        text(
            """
SELECT i.id, i.category, i.status, i.reported_at, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
       u.name AS unit, coalesce(p.sensitive, false) AS sensitive,
       coalesce(p.metoo_count, 0) AS metoo
FROM issues i
LEFT JOIN issue_public p ON p.issue_id = i.id
LEFT JOIN units u ON u.id = i.unit_id
WHERE i.status = ANY(:statuses) AND i.duplicate_of_id IS NULL AND i.reported_at >= :since
ORDER BY i.reported_at DESC, i.id DESC
LIMIT :max"""
        ),
        params,
    ).all()
    counts = dict(
        session.execute(
            text(
                "SELECT status, count(*) FROM issues WHERE status = ANY(:all)"
                " AND duplicate_of_id IS NULL AND reported_at >= :since GROUP BY status"
            ),
            params,
        ).all()
    )
    tz = issue_settings.tz
    features = []
    for r in rows:
        places = settings.sensitive_decimals if r.sensitive else EXACT_DECIMALS
        features.append(
            {
                "type": "Feature",
                "id": r.id,
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(r.lon, places), round(r.lat, places)],
                },
                "properties": {
                    "id": r.id,
                    "category": r.category,
                    "status": r.status,
                    "status_label": status_label(r.status),
                    "reported_on": r.reported_at.astimezone(tz).strftime("%Y-%m-%d"),
                    "unit": r.unit if r.status in UNIT_STATUSES else None,
                    "metoo": int(r.metoo),
                    "approximate": bool(r.sensitive),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "counts": {s: int(counts.get(s, 0)) for s in PUBLIC_STATUSES},
        "labels": {s: status_label(s) for s in PUBLIC_STATUSES},
        "generated_at": now.isoformat(),
    }


def exposure(
    session: Session,
    issue_settings: IssueSettings,
    photo_url: Callable[[int, bool], str],
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The 曝光台: published issues, newest first, each with its approved photos only."""
    tz = issue_settings.tz
    rows = session.execute(
        text(
            """
SELECT i.id, i.category, i.status, i.reported_at, i.closed_at, u.name AS unit, p.published_at
FROM issue_public p JOIN issues i ON i.id = p.issue_id
LEFT JOIN units u ON u.id = i.unit_id
WHERE p.published AND i.status = ANY(:statuses)
ORDER BY p.published_at DESC NULLS LAST, i.id DESC
LIMIT :limit"""
        ),
        {"statuses": list(PUBLIC_STATUSES), "limit": limit},
    ).all()
    photos: dict[int, dict[str, list]] = {r.id: {"before": [], "after": []} for r in rows}
    if rows:
        for ph in session.execute(
            select(Photo.id, Photo.issue_id, Photo.kind)
            .join(PhotoApproval, PhotoApproval.photo_id == Photo.id)
            .where(Photo.issue_id.in_(list(photos)))
            .order_by(Photo.id)
        ):
            photos[ph.issue_id][ph.kind].append(
                {"id": ph.id, "url": photo_url(ph.id, False), "thumb_url": photo_url(ph.id, True)}
            )
    return [
        {
            "id": r.id,
            "category": r.category,
            "status": r.status,
            "status_label": status_label(r.status),
            "reported_on": r.reported_at.astimezone(tz).strftime("%Y-%m-%d"),
            "closed_on": r.closed_at.astimezone(tz).strftime("%Y-%m-%d") if r.closed_at else None,
            "unit": r.unit if r.status in UNIT_STATUSES else None,
            "photos": photos[r.id],
        }
        for r in rows
    ]


def public_photo(session: Session, photo_id: int) -> Photo | None:
    """A photo the public may load: approved, of an issue on the 曝光台. None otherwise."""
    return session.scalar(
        select(Photo)
        .join(PhotoApproval, PhotoApproval.photo_id == Photo.id)
        .join(IssuePublic, IssuePublic.issue_id == Photo.issue_id)
        .join(Issue, Issue.id == Photo.issue_id)
        .where(
            Photo.id == photo_id,
            IssuePublic.published.is_(True),
            Issue.status.in_(PUBLIC_STATUSES),
        )
    )


# --- the planner's side --------------------------------------------------------------------


def staff_view(session: Session, issue_settings: IssueSettings, issue_id: int) -> dict[str, Any]:
    """The citizen side of one issue for planners: ticket and phone, switches, photos with
    their approval, "me too" count and 回访 answers."""
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"没有编号为 {issue_id} 的问题", field="id")
    tz = issue_settings.tz
    report = session.get(CitizenReport, issue_id)
    public = session.get(IssuePublic, issue_id)
    approved = set(
        session.scalars(
            select(PhotoApproval.photo_id)
            .join(Photo, Photo.id == PhotoApproval.photo_id)
            .where(Photo.issue_id == issue_id)
        )
    )
    photos = session.execute(
        select(Photo.id, Photo.kind).where(Photo.issue_id == issue_id).order_by(Photo.id)
    ).all()
    feedback = session.scalars(
        select(CitizenFeedback)
        .where(CitizenFeedback.issue_id == issue_id)
        .order_by(CitizenFeedback.at, CitizenFeedback.id)
    ).all()
    return {
        "issue_id": issue_id,
        "ticket": report.ticket if report else None,
        "phone": report.phone if report else None,
        "sensitive": bool(public and public.sensitive),
        "published": bool(public and public.published),
        "metoo": public.metoo_count if public else 0,
        "photos": [{"id": p.id, "kind": p.kind, "approved": p.id in approved} for p in photos],
        "feedback": [
            {
                "id": f.id,
                "answer": f.answer,
                "answer_label": FEEDBACK_ANSWERS[f.answer],
                "comment": f.comment,
                "channel": f.channel,
                "at": f.at.astimezone(tz).isoformat(),
                "decision": f.decision,
                "decision_note": f.decision_note,
            }
            for f in feedback
        ],
    }


def set_public(
    session: Session,
    issue_id: int,
    actor_id: int | None,
    sensitive: bool | None = None,
    published: bool | None = None,
    approve: Iterable[int] = (),
    revoke: Iterable[int] = (),
    now: datetime | None = None,
) -> None:
    """A planner's switches: sensitive (rounded public position), published (曝光台), photos
    approved or withdrawn for the public. The caller commits."""
    now = now or datetime.now(UTC)
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"没有编号为 {issue_id} 的问题", field="id")
    approve, revoke = set(approve), set(revoke)
    own = set(session.scalars(select(Photo.id).where(Photo.issue_id == issue_id)))
    strangers = (approve | revoke) - own
    if strangers:
        raise InvalidInput(
            f"照片 {sorted(strangers)} 不属于问题 #{issue_id}", {"photos": sorted(own)}, "photos"
        )
    if published and issue.status not in PUBLIC_STATUSES:
        raise Conflict(
            f"问题当前状态为「{status_label(issue.status)}」，立案后才能曝光",
            {"status": issue.status},
            "published",
        )
    values: dict[str, Any] = {"updated_by_id": actor_id, "updated_at": now}
    if sensitive is not None:
        values["sensitive"] = sensitive
    if published is not None:
        values["published"] = published
        values["published_at"] = now if published else None
    session.execute(
        insert(IssuePublic)
        .values(issue_id=issue_id, **values)
        .on_conflict_do_update(index_elements=[IssuePublic.issue_id], set_=values)
    )
    for photo_id in approve:
        session.execute(
            insert(PhotoApproval)
            .values(photo_id=photo_id, approved_by_id=actor_id, approved_at=now)
            .on_conflict_do_nothing()
        )
    if revoke:
        session.execute(delete(PhotoApproval).where(PhotoApproval.photo_id.in_(revoke)))
    session.flush()
    CACHE.clear()
