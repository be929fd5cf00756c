"""随手拍: a report filed without an account, its ticket and private link, the public view of
a ticket, nearby-duplicate suggestions and "me too".

The report goes through the staff report service (geoservice.issues: the same checks, service
area, attribution, relapse detection), with source 随手拍 and status `reported`, which a
planner screens first (立案 or 不予立案 with a reason the citizen sees on the ticket page).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geoservice.accounts import ratelimit
from geoservice.citizens.models import (
    FEEDBACK_ANSWERS,
    CitizenFeedback,
    CitizenReport,
    IssuePublic,
)
from geoservice.citizens.settings import CitizenSettings
from geoservice.issues import attribution
from geoservice.issues import issues as issue_service
from geoservice.issues.photos import PreparedPhoto
from geoservice.issues.workflow import IssueSettings, status_label
from geoservice.models import Issue, IssueEvent, Unit
from geoservice.registry import LayerRegistry
from geoservice.service_errors import InvalidInput, NotFound, ServiceError
from geoservice.vocab import OPEN_STATUSES

SOURCE = "随手拍"
TOKEN_BYTES = 24
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")


class TooMany(ServiceError):
    status = 429


# --- abuse: rate limits --------------------------------------------------------------------


def normalise_phone(raw: Any) -> str | None:
    """Digits of a mainland mobile (13800138000) or landline (0571-88888888) number; None when
    not given; 422 when it is not a phone number."""
    if raw in (None, ""):
        return None
    value = re.sub(r"[\s()\-]", "", str(raw))
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    if not (_MOBILE.match(value) or _LANDLINE.match(value)):
        raise InvalidInput("手机号格式不正确（例如 13800138000），也可以不填", field="phone")
    return value


def _phone_key(settings: CitizenSettings, phone: str) -> str:
    # The counter's key never holds the number itself.
    digest = hmac.new(settings.secret.encode(), phone.encode(), hashlib.sha256).hexdigest()
    return f"citizen:phone:{digest[:32]}"


def count_attempt(
    session: Session, settings: CitizenSettings, ip: str | None, phone: str | None
) -> None:
    """Counts one public write against the limits per IP (hour) and per phone (day); raises
    TooMany (429) past either. The caller commits even when this raises (the count stays)."""
    checks = [(f"citizen:ip:{ip or 'unknown'}", 3600, settings.per_ip_hour, "此网络")]
    if phone:
        checks.append((_phone_key(settings, phone), 86400, settings.per_phone_day, "此手机号"))
    for key, window, limit, who in checks:
        if limit <= 0:
            continue
        count, retry = ratelimit.hit(session, key, window)
        if count > limit:
            span = "1 小时" if window == 3600 else "24 小时"
            raise TooMany(
                f"{who}在{span}内提交次数已达上限（{limit} 次），请稍后再试",
                {"limit": limit, "window_s": window, "retry_after_s": retry},
                "phone" if window != 3600 else None,
            )


# --- filing a report -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filed:
    issue: Issue
    ticket: str
    token: str  # shown once, in the answer; only its hash is stored


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate(
    fields: Mapping[str, Any],
    issue_settings: IssueSettings,
    settings: CitizenSettings,
    now: datetime,
) -> tuple[issue_service.Report, str | None]:
    """The staff report checks with the citizen's fields (no severity, no negative list, no
    client time), plus a shorter description and an optional phone."""
    if fields.get("lon") in (None, "") and fields.get("lat") in (None, ""):
        raise InvalidInput("请先定位或在地图上点选问题位置", field="geometry")
    description = fields.get("description") or ""
    if not isinstance(description, str):
        raise InvalidInput("问题描述必须是文字", field="description")
    if len(description.strip()) > settings.description_max:
        raise InvalidInput(f"问题描述不能超过 {settings.description_max} 字", field="description")
    payload = {
        "lon": fields.get("lon"),
        "lat": fields.get("lat"),
        "coord_sys": fields.get("coord_sys"),
        "category": fields.get("category"),
        "description": description,
        "source": SOURCE,
    }
    report = issue_service.validate_report(payload, issue_settings, now)
    return report, normalise_phone(fields.get("phone"))


def ticket_number(issue: Issue, tz: Any) -> str:
    return f"SP{issue.reported_at.astimezone(tz):%Y%m%d}{issue.id:06d}"


def file_report(
    session: Session,
    registry: LayerRegistry,
    issue_settings: IssueSettings,
    report: issue_service.Report,
    phone: str | None,
    photos: Sequence[PreparedPhoto],
    now: datetime | None = None,
) -> Filed:
    """Stores the report (staff service: service area, photos, attribution, relapse) and its
    ticket. The caller commits."""
    now = now or datetime.now(UTC)
    issue = issue_service.create_issue(session, registry, issue_settings, report, None, photos, now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    ticket = ticket_number(issue, issue_settings.tz)
    session.add(
        CitizenReport(issue_id=issue.id, ticket=ticket, token_hash=token_hash(token), phone=phone)
    )
    session.flush()
    return Filed(issue, ticket, token)


def find_ticket(session: Session, token: str | None) -> CitizenReport | None:
    """The report behind a private link; None for anything unknown or malformed."""
    if not token or not _TOKEN_SHAPE.match(token):
        return None
    return session.scalar(
        select(CitizenReport).where(CitizenReport.token_hash == token_hash(token))
    )


# --- what the citizen sees -----------------------------------------------------------------


def _local(value: datetime | None, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def last_close_event(session: Session, issue_id: int) -> IssueEvent | None:
    return session.scalar(
        select(IssueEvent)
        .where(
            IssueEvent.issue_id == issue_id,
            IssueEvent.to_status == "closed",
            IssueEvent.from_status.is_distinct_from("closed"),
        )
        .order_by(IssueEvent.at.desc(), IssueEvent.id.desc())
        .limit(1)
    )


# Public wording of the steps a citizen follows (no names, no internal notes).
STEP_TEXT = {
    "reported": "已收到您的反映，等待受理",
    "accepted": "已立案",
    "rejected": "不予立案",
    "dispatched": "已交办责任单位",
    "in_progress": "责任单位整改中",
    "fixed": "已整改，等待复核",
    "closed": "已复核销号",
}


def ticket_view(
    session: Session, issue_settings: IssueSettings, row: CitizenReport
) -> dict[str, Any]:
    """The ticket page's content: status, the unit's name (never a leader's), the public
    steps, the reason of a 不予立案, and the 回访 state. Nothing else about the issue."""
    tz = issue_settings.tz
    issue = session.get(Issue, row.issue_id)
    assert issue is not None
    unit = None
    if issue.unit_id is not None and issue.status not in ("reported", "rejected"):
        unit = session.scalar(select(Unit.name).where(Unit.id == issue.unit_id))
    events = session.scalars(
        select(IssueEvent)
        .where(IssueEvent.issue_id == issue.id)
        .order_by(IssueEvent.at, IssueEvent.id)
    ).all()
    steps, reason = [], None
    for e in events:
        action = (e.data or {}).get("action")
        if e.from_status == e.to_status and action != "report":
            continue
        step: dict[str, Any] = {
            "at_local": _local(e.at, tz),
            "status": e.to_status,
            "text": STEP_TEXT.get(e.to_status, status_label(e.to_status)),
        }
        if action == "reopen":
            step["text"] = "群众不满意，已重新交办整改"
        if e.to_status == "rejected":
            reason = e.note or None
            step["reason"] = reason
        steps.append(step)
    feedback = None
    can_answer = False
    if issue.status == "closed":
        close = last_close_event(session, issue.id)
        answered = (
            session.scalar(
                select(CitizenFeedback).where(CitizenFeedback.close_event_id == close.id)
            )
            if close is not None
            else None
        )
        can_answer = close is not None and answered is None
        if answered is not None:
            feedback = {
                "answer": answered.answer,
                "answer_label": FEEDBACK_ANSWERS[answered.answer],
                "comment": answered.comment,
                "at_local": _local(answered.at, tz),
                "decision": answered.decision,
            }
    return {
        "ticket": row.ticket,
        "category": issue.category,
        "description": issue.description,
        "status": issue.status,
        "status_label": status_label(issue.status),
        "reported_at_local": _local(issue.reported_at, tz),
        "unit": unit,
        "rejected_reason": reason if issue.status == "rejected" else None,
        "steps": steps,
        "can_answer": can_answer,
        "feedback": feedback,
        "answers": FEEDBACK_ANSWERS,
    }


# --- duplicates before sending, and "me too" -----------------------------------------------

_POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
_SCALE = (":mx", ":my")


def _near_params(lon: float, lat: float) -> dict[str, float]:
    mx, my = attribution.metres_per_degree(lat)
    return {"lon": lon, "lat": lat, "mx": mx, "my": my}


def nearby(
    session: Session,
    issue_settings: IssueSettings,
    lon: float,
    lat: float,
    category: str,
    now: datetime | None = None,
    limit: int = 5,
) -> dict[str, Any]:
    """Open issues of the same category near a spot (WGS-84), reported within the duplicate
    window: "附近已有 N 条同类问题". Only what the public may see: number, status, distance;
    sensitive issues not at all."""
    now = now or datetime.now(UTC)
    issue_settings.check_category(category)
    rows = session.execute(
        text(
            f"""
WITH near AS MATERIALIZED (
  SELECT o.id, o.category, o.status, o.reported_at, o.duplicate_of_id,
         round({attribution.distance_sql("o.geom", _POINT, _SCALE)}::numeric) AS distance_m
  FROM issues o WHERE {attribution.within_sql("o.geom", _POINT, ":radius", _SCALE)}
)
SELECT n.id, n.status, n.reported_at, n.distance_m, coalesce(p.metoo_count, 0) AS metoo
FROM near n LEFT JOIN issue_public p ON p.issue_id = n.id
WHERE n.category = :category AND n.status = ANY(:open) AND n.duplicate_of_id IS NULL
  AND n.reported_at >= :since
  -- A sensitive issue is never listed: whether it is within the radius of a spot, asked
  -- from spot after spot, would give back the position its public map rounds away.
  AND NOT coalesce(p.sensitive, false)
ORDER BY n.distance_m, n.reported_at"""
        ),
        {
            **_near_params(lon, lat),
            "radius": issue_settings.duplicate_radius_m,
            "category": category,
            "open": list(OPEN_STATUSES),
            "since": now - timedelta(days=issue_settings.duplicate_window_days),
        },
    ).all()
    tz = issue_settings.tz
    return {
        "count": len(rows),
        "message": f"附近已有 {len(rows)} 条同类问题，是否为同一问题？" if rows else None,
        "issues": [
            {
                "id": r.id,
                "status_label": status_label(r.status),
                "reported_on": r.reported_at.astimezone(tz).strftime("%m月%d日"),
                "distance_m": int(r.distance_m),
                "metoo": int(r.metoo),
            }
            for r in rows[:limit]
        ],
    }


def me_too(
    session: Session,
    issue_settings: IssueSettings,
    issue_id: int,
    lon: float,
    lat: float,
    now: datetime | None = None,
) -> int:
    """ "我也遇到": one more voice on an open issue near the citizen's spot instead of a new
    report. Returns the new count. The caller commits."""
    now = now or datetime.now(UTC)
    issue = session.get(Issue, issue_id)
    near = issue is not None and session.scalar(
        text(
            f"SELECT {attribution.within_sql('o.geom', _POINT, ':radius', _SCALE)}"
            " FROM issues o WHERE o.id = :id"
        ),
        {**_near_params(lon, lat), "radius": issue_settings.duplicate_radius_m, "id": issue_id},
    )
    sensitive = session.scalar(
        select(IssuePublic.sensitive).where(IssuePublic.issue_id == issue_id)
    )
    if (
        issue is None
        or not near
        or sensitive  # as for nearby: answering "near" would locate it
        or issue.status not in OPEN_STATUSES
        or issue.duplicate_of_id is not None
    ):
        raise NotFound("附近没有这条未办结的问题", field="issue_id")
    count = session.scalar(
        insert(IssuePublic)
        .values(issue_id=issue_id, metoo_count=1)
        .on_conflict_do_update(
            index_elements=[IssuePublic.issue_id],
            set_={"metoo_count": IssuePublic.metoo_count + 1},
        )
        .returning(IssuePublic.metoo_count)
    )
    session.add(
        IssueEvent(
            issue_id=issue_id,
            at=now,
            from_status=issue.status,
            to_status=issue.status,
            note=f"群众附议（我也遇到）：累计 {count} 人",
            data={"action": "metoo", "count": count},
        )
    )
    session.flush()
    return int(count)


def issue_point(issue: Issue) -> tuple[float, float]:
    point = to_shape(issue.geom)
    return point.x, point.y
