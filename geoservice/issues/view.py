"""The view of one issue (everything its page and GET /api/issues/{id} show, phones only for
accounts that may read them) and the summary rows of the issue lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.accounts.permissions import role_allows
from geoservice.issues import attribution, extensions
from geoservice.issues.issues import (
    NEW_ISSUE_CANDIDATES,
    NEW_ISSUE_ROWS,
    _iso,
    _local,
    duplicate_candidates,
)
from geoservice.issues.workflow import (
    Allows,
    IssueSettings,
    allowed_for,
    is_overdue,
    status_label,
)
from geoservice.models import Issue, IssueEvent, Photo, User
from geoservice.registry import LayerRegistry
from geoservice.vocab import ISSUE_STATUSES, OPEN_STATUSES, SEVERITIES


def photo_json(photo: Photo, url_for_photo) -> dict[str, Any]:
    return {
        "id": photo.id,
        "kind": photo.kind,
        "event_id": photo.event_id,
        "content_type": photo.content_type,
        "size_bytes": photo.size_bytes,
        "width": photo.width,
        "height": photo.height,
        "taken_at": _iso(photo.taken_at),
        "exif_lon": photo.exif_lon,
        "exif_lat": photo.exif_lat,
        "url": url_for_photo(photo.id, False),
        "thumb_url": url_for_photo(photo.id, True),
    }


def _may_read_phones(account: User | None, allows: Allows | None) -> bool:
    """Leaders' phones are roster data: only for `assignments.read` (role and token scopes)."""
    if allows is not None:
        return allows("assignments.read")
    return account is not None and role_allows(account.role, "assignments.read")


def issue_view(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    issue: Issue,
    account: User | None,
    url_for_photo,
    now: datetime | None = None,
    with_duplicates: bool = True,
    allows: Allows | None = None,
    new: bool = False,
) -> dict[str, Any]:
    """The issue as a GeoJSON Feature whose properties hold everything a page shows: the
    attribution with its rule, timeline, photos, deadline/overdue and the caller's moves.
    `new`: the issue was reported in this transaction (nothing can be merged into it yet)."""
    now = now or datetime.now(UTC)
    point = to_shape(issue.geom)
    lon, lat = point.x, point.y
    # Just reported in this session: its rows (events, relapse event included, and photos)
    # are known.
    known = session.info.get(NEW_ISSUE_ROWS, {}).get(issue.id) if new else None
    if known is not None:
        events, photos = list(known[0]), list(known[1])
        actors: dict[int, str] = {}
    else:
        rows = session.execute(
            select(IssueEvent, User.display_name, User.username)
            .outerjoin(User, User.id == IssueEvent.actor_id)
            .where(IssueEvent.issue_id == issue.id)
            .order_by(IssueEvent.at, IssueEvent.id)
        ).all()
        events = [row[0] for row in rows]
        actors = {e.actor_id: display or username for e, display, username in rows if e.actor_id}
        photos = session.scalars(
            select(Photo).where(Photo.issue_id == issue.id).order_by(Photo.id)
        ).all()
    for actor_id in {issue.reported_by_id, *(e.actor_id for e in events)} - {None, *actors}:
        person = session.get(User, actor_id)  # the identity map for the reporter: no query
        if person is not None:
            actors[person.id] = person.display_name or person.username
    photos_by_event: dict[int | None, list[int]] = {}
    for p in photos:
        photos_by_event.setdefault(p.event_id, []).append(p.id)
    timeline = [
        {
            "id": e.id,
            "at": _iso(e.at),
            "at_local": _local(e.at, settings),
            "actor": {"id": e.actor_id, "name": actors.get(e.actor_id)} if e.actor_id else None,
            "from": e.from_status,
            "to": e.to_status,
            "from_label": status_label(e.from_status) if e.from_status else None,
            "to_label": status_label(e.to_status),
            "action": (e.data or {}).get("action"),
            "note": e.note,
            "data": e.data,
            "photo_ids": photos_by_event.get(e.id, []),
        }
        for e in events
    ]
    overdue = is_overdue(issue, now)
    duplicates_of_this = (
        []
        if new
        else session.scalars(
            select(Issue.id).where(Issue.duplicate_of_id == issue.id).order_by(Issue.id)
        ).all()
    )
    properties: dict[str, Any] = {
        "id": issue.id,
        "category": issue.category,
        "source": issue.source,
        "description": issue.description,
        "severity": issue.severity,
        "severity_label": SEVERITIES.get(issue.severity),
        "negative_list": issue.negative_list,
        "status": issue.status,
        "status_label": ISSUE_STATUSES.get(issue.status),
        "reported_at": _iso(issue.reported_at),
        "reported_at_local": _local(issue.reported_at, settings),
        "reported_by": (
            {"id": issue.reported_by_id, "name": actors.get(issue.reported_by_id)}
            if issue.reported_by_id
            else None
        ),
        "deadline": _iso(issue.deadline),
        "deadline_local": _local(issue.deadline, settings),
        "overdue": overdue,
        "overdue_hours": (
            round((now - issue.deadline).total_seconds() / 3600, 1) if overdue else None
        ),
        "closed_at": _iso(issue.closed_at),
        "rework_count": issue.rework_count,
        "relapse_of_id": issue.relapse_of_id,
        "duplicate_of_id": issue.duplicate_of_id,
        "duplicates": list(duplicates_of_this),
        "primary_place_id": issue.primary_place_id,
        "grid_id": issue.grid_id,
        "leader_id": issue.leader_id,
        "unit_id": issue.unit_id,
        "attribution": attribution.describe(
            session,
            registry,
            issue.attribution,
            issue.leader_id,
            issue.unit_id,
            _local(issue.reported_at, settings),
        ),
        "photos": [photo_json(p, url_for_photo) for p in photos],
        "timeline": timeline,
        "allowed_transitions": [t.as_json() for t in allowed_for(session, account, issue, allows)],
        # 延期 history and pending request; 立案/交办 time limits when configured.
        "extensions": extensions.extension_view_of(events),
        "sla": extensions.sla_flags(session, settings, issue, now),
    }
    if not _may_read_phones(account, allows):
        attribution.without_phones(properties["attribution"])
    if with_duplicates and issue.status in OPEN_STATUSES and issue.duplicate_of_id is None:
        # A report's own check found them already (create_issue(with_candidates=True)).
        found = session.info.get(NEW_ISSUE_CANDIDATES, {}).get(issue.id) if new else None
        properties["duplicate_candidates"] = (
            found
            if found is not None
            else duplicate_candidates(session, settings, issue.id, account=account)
        )
    return {
        "type": "Feature",
        "id": issue.id,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def issue_summary(issue: Issue, settings: IssueSettings, now: datetime) -> dict[str, Any]:
    """One row of a list (queues, overdue)."""
    return {
        "id": issue.id,
        "category": issue.category,
        "source": issue.source,
        "description": issue.description,
        "status": issue.status,
        "status_label": status_label(issue.status),
        "reported_at": _iso(issue.reported_at),
        "reported_at_local": _local(issue.reported_at, settings),
        "deadline": _iso(issue.deadline),
        "overdue": is_overdue(issue, now),
        "leader_id": issue.leader_id,
        "unit_id": issue.unit_id,
        "primary_place_id": issue.primary_place_id,
        "grid_id": issue.grid_id,
        "reason": (
            "no_place"
            if issue.primary_place_id is None
            else ("no_leader" if issue.leader_id is None else None)
        ),
    }
