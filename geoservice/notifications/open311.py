"""Open311 GeoReport v2 over our issues: services (our categories), service requests (our
issues) with their Open311 status and notes, and tickets from other systems (the same ticket
twice is one issue). Plain functions on a session; the edge is geoservice.api.open311.

Status mapping (Open311 knows `open` and `closed`; `status_notes` says where it stands):

| ours | status | status_notes |
|---|---|---|
| reported 已上报 | open | 已受理，待立案 |
| accepted 已立案 | open | 已立案，待交办 |
| dispatched 已交办 | open | 已交办〈单位〉，整改期限〈期限〉 |
| in_progress 整改中 | open | 整改中 |
| fixed 已反馈待复核 | open | 已整改，待复核：〈整改说明〉 |
| closed 已销号 | closed | 已整改销号：〈复核意见〉 |
| rejected 不予立案 | closed | 不予立案：〈理由〉 |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.input_values import shown
from geoservice.issues import issues as issue_service
from geoservice.issues.workflow import DISPATCH, IssueSettings, lock_issue, transition
from geoservice.models import Issue, IssueEvent, Leader, Place, Unit, User
from geoservice.notifications.models import ExternalTicket
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, InvalidInput, NotFound

CLOSED = ("closed", "rejected")
MAX_RESULTS = 1000  # the spec's suggested ceiling for one GET requests
DEFAULT_WINDOW = timedelta(days=90)  # the spec: without dates, the last 90 days
MAX_EXTERNAL_ID = 100


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED else "open"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def status_notes(status: str, unit: str | None, deadline: datetime | None, note: str | None) -> str:
    note = (note or "").strip()
    if status == "reported":
        return "已受理，待立案"
    if status == "accepted":
        return "已立案，待交办"
    if status == "dispatched":
        text_ = f"已交办{unit or '责任单位'}"
        return text_ + (f"，整改期限 {_iso(deadline)}" if deadline else "")
    if status == "in_progress":
        return "整改中" + (f"：{note}" if note else "")
    if status == "fixed":
        return "已整改，待复核" + (f"：{note}" if note else "")
    if status == "closed":
        return "已整改销号" + (f"：{note}" if note else "")
    if status == "rejected":
        return "不予立案" + (f"：{note}" if note else "")
    return status


def callback_payload(
    conn: Connection, issue_id: int, external_id: str, event: IssueEvent
) -> dict[str, Any]:
    """The 回单 pushed to an integration's callback when its ticket's issue changes."""
    row = conn.execute(
        text(
            "SELECT i.id, i.status, i.deadline, i.category, i.updated_at, u.name AS unit"
            " FROM issues i LEFT JOIN units u ON u.id = i.unit_id WHERE i.id = :id"
        ),
        {"id": issue_id},
    ).one()
    status = event.to_status or row.status
    return {
        "service_request_id": str(row.id),
        "external_id": external_id,
        "status": open311_status(status),
        "status_notes": status_notes(status, row.unit, row.deadline, event.note),
        "our_status": status,
        "service_code": row.category,
        "updated_datetime": _iso(event.at or row.updated_at),
        "event_id": event.id,
    }


# --- services (categories) -----------------------------------------------------------------


def services(categories: Mapping[str, float]) -> list[dict[str, Any]]:
    return [
        {
            "service_code": name,
            "service_name": name,
            "description": f"{name}（限时整改 {hours:g} 小时）",
            "metadata": False,
            "type": "realtime",
            "keywords": "",
            "group": "创文问题",
        }
        for name, hours in categories.items()
    ]


# --- requests (issues) ---------------------------------------------------------------------


def _request_query() -> Select:
    last_note = (
        select(IssueEvent.note)
        .where(
            IssueEvent.issue_id == Issue.id,
            IssueEvent.to_status == Issue.status,
            # the move into it (a 热线补充 or 回访 note on the issue is no reason for its state)
            IssueEvent.from_status.is_distinct_from(IssueEvent.to_status),
        )
        .order_by(IssueEvent.at.desc(), IssueEvent.id.desc())
        .limit(1)
        .correlate(Issue)
        .scalar_subquery()
        .label("last_note")
    )
    return select(
        Issue.id,
        Issue.status,
        Issue.category,
        Issue.description,
        Issue.reported_at,
        Issue.updated_at,
        Issue.deadline,
        func.ST_X(Issue.geom).label("lon"),
        func.ST_Y(Issue.geom).label("lat"),
        Unit.name.label("unit"),
        Leader.name.label("leader"),
        Place.name.label("place"),
        last_note,
        select(ExternalTicket.external_id)
        .where(ExternalTicket.issue_id == Issue.id)
        .limit(1)
        .scalar_subquery()
        .label("external_id"),
        select(ExternalTicket.address)
        .where(ExternalTicket.issue_id == Issue.id)
        .limit(1)
        .scalar_subquery()
        .label("ticket_address"),
    ).select_from(
        Issue.__table__.outerjoin(Unit, Unit.id == Issue.unit_id)
        .outerjoin(Leader, Leader.id == Issue.leader_id)
        .outerjoin(Place, Place.id == Issue.primary_place_id)
    )


def _as_request(row: Any) -> dict[str, Any]:
    return {
        "service_request_id": str(row.id),
        "status": open311_status(row.status),
        "status_notes": status_notes(row.status, row.unit, row.deadline, row.last_note),
        "service_name": row.category,
        "service_code": row.category,
        "description": row.description or "",
        "agency_responsible": row.unit or row.leader or "",
        "service_notice": "",
        "requested_datetime": _iso(row.reported_at),
        "updated_datetime": _iso(row.updated_at),
        "expected_datetime": _iso(row.deadline),
        "address": row.ticket_address or row.place or "",
        "address_id": "",
        "zipcode": "",
        "lat": round(row.lat, 7),
        "long": round(row.lon, 7),
        "media_url": "",
        "external_id": row.external_id,
    }


@dataclass(frozen=True)
class RequestFilter:
    ids: tuple[int, ...] = ()
    service_code: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None  # open | closed


def _parse_time(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field} 不是 W3C 时间格式（例：2026-11-20T08:00:00+08:00）：{shown(value)}",
            field=field,
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} 须带时区（例：+08:00 或 Z）", field=field)
    return moment


def parse_filter(args: Mapping[str, str], categories: Mapping[str, float]) -> RequestFilter:
    ids: list[int] = []
    raw_ids = (args.get("service_request_id") or "").strip()
    if raw_ids:
        for part in raw_ids.split(","):
            part = part.strip()
            if not part.isdigit() or len(part) > 18:
                raise InvalidInput(
                    f"service_request_id 须是以逗号分隔的编号：{part!r}",
                    field="service_request_id",
                )
            ids.append(int(part))
        if len(ids) > MAX_RESULTS:
            raise InvalidInput(f"一次最多查询 {MAX_RESULTS} 个编号", field="service_request_id")
    code = (args.get("service_code") or "").strip() or None
    if code is not None and code not in categories:
        raise InvalidInput(
            f"未知的 service_code「{code}」", {"service_codes": list(categories)}, "service_code"
        )
    status = (args.get("status") or "").strip().lower() or None
    if status is not None and status not in ("open", "closed"):
        raise InvalidInput("status 只能是 open 或 closed", field="status")
    start = _parse_time(args["start_date"], "start_date") if args.get("start_date") else None
    end = _parse_time(args["end_date"], "end_date") if args.get("end_date") else None
    if start and end and end < start:
        raise InvalidInput("end_date 早于 start_date", field="end_date")
    return RequestFilter(tuple(ids), code, start, end, status)


def find_requests(
    session: Session, account: User, flt: RequestFilter, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Service requests the account may see, newest first, at most MAX_RESULTS."""
    query = _request_query().where(scope.issue_filter(account))
    if flt.ids:  # GeoReport v2: service_request_id "overrides all other arguments"
        query = query.where(Issue.id.in_(flt.ids))
    else:
        now = now or datetime.now(UTC)
        start = flt.start or ((flt.end or now) - DEFAULT_WINDOW)
        query = query.where(Issue.reported_at >= start)
        if flt.end:
            query = query.where(Issue.reported_at <= flt.end)
        if flt.service_code:
            query = query.where(Issue.category == flt.service_code)
        if flt.status == "closed":
            query = query.where(Issue.status.in_(CLOSED))
        elif flt.status == "open":
            query = query.where(Issue.status.not_in(CLOSED))
    rows = session.execute(
        query.order_by(Issue.reported_at.desc(), Issue.id.desc()).limit(MAX_RESULTS)
    )
    return [_as_request(r) for r in rows]


def get_request(session: Session, account: User, request_id: int) -> dict[str, Any]:
    rows = session.execute(
        _request_query().where(Issue.id == request_id, scope.issue_filter(account))
    ).all()
    if not rows:
        raise NotFound(f"没有编号为 {request_id} 的服务请求", field="service_request_id")
    return _as_request(rows[0])


# --- POST requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    issue_id: int
    external_id: str | None
    existed: bool  # the same ticket was sent before: nothing new was created


def create_request(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    account: User,
    form: Mapping[str, str],
    source: str,
    now: datetime | None = None,
) -> Created:
    """A service request from an integration becomes an issue (source e.g. 12345热线). With
    `external_id` (the sender's ticket id) the same ticket twice is the same issue."""
    code = (form.get("service_code") or "").strip()
    if not code:
        raise InvalidInput(
            "缺少 service_code（问题类别）",
            {"service_codes": list(settings.categories)},
            "service_code",
        )
    if code not in settings.categories:
        retired = code in settings.retired_categories
        raise InvalidInput(
            f"问题类别「{code}」已停用，不再受理新上报"
            if retired
            else f"未知的 service_code「{code}」",
            {"service_codes": list(settings.categories)},
            "service_code",
        )
    external_id = (form.get("external_id") or "").strip() or None
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise InvalidInput(f"external_id 不能超过 {MAX_EXTERNAL_ID} 个字符", field="external_id")
    if form.get("lat") in (None, "") or form.get("long") in (None, ""):
        raise InvalidInput(
            "缺少坐标 lat/long（本系统按位置确定责任领导；仅有地址文字的工单请先定位）",
            field="lat" if form.get("lat") in (None, "") else "long",
        )
    address = (form.get("address_string") or "").strip()[:300] or None
    if external_id is not None:
        # One ticket, one issue, even when the sender retries at the same moment.
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"open311:{account.id}:{external_id}"},
        )
        existing = session.scalar(
            select(ExternalTicket.issue_id).where(
                ExternalTicket.user_id == account.id, ExternalTicket.external_id == external_id
            )
        )
        if existing is not None:
            return Created(existing, external_id, True)
    description = (form.get("description") or "").strip()
    if address and address not in description:
        description = f"{description}（地址：{address}）" if description else f"地址：{address}"
    report = issue_service.validate_report(
        {
            "lon": form.get("long"),
            "lat": form.get("lat"),
            "coord_sys": form.get("coord_sys"),
            "category": code,
            "source": source,
            "description": description,
        },
        settings,
        now,
    )
    issue = issue_service.create_issue(
        session, registry, settings, report, account, photos=(), now=now
    )
    if external_id is not None:
        session.add(
            ExternalTicket(
                user_id=account.id, external_id=external_id, issue_id=issue.id, address=address
            )
        )
        session.flush()
    return Created(issue.id, external_id, False)


def known_fields() -> Sequence[str]:
    """Form fields of POST requests we read or accept (the spec's and our extensions)."""
    return (
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "description",
        "media_url",
        "external_id",
        "coord_sys",
    )


# --- updates from the sender (inbound) ---------------------------------------------------------

UPDATE_TYPES = {"note": "热线补充", "cancel": "热线撤单"}
CANCELLABLE = ("reported", "accepted")


def ticket_update(
    session: Session,
    settings: IssueSettings,
    account: User,
    issue_id: int,
    payload: Mapping[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """A note or a cancellation from the system that sent the ticket (its own tickets only).
    A note is an event on the issue; a cancellation rejects an issue not yet dispatched (409
    after 交办: the office decides then)."""
    ticket = session.scalar(
        select(ExternalTicket).where(
            ExternalTicket.issue_id == issue_id, ExternalTicket.user_id == account.id
        )
    )
    if ticket is None:
        raise NotFound(f"没有编号为 {issue_id} 的本系统工单", field="service_request_id")
    kind = payload.get("type")
    if kind not in UPDATE_TYPES:
        raise InvalidInput(
            f"type 只能是 {'、'.join(UPDATE_TYPES)}", {"types": list(UPDATE_TYPES)}, "type"
        )
    note = payload.get("note") or ""
    if not isinstance(note, str) or len(note) > 2000:
        raise InvalidInput("note 须是不超过 2000 字的文字", field="note")
    if kind == "note" and not note.strip():
        raise InvalidInput("补充说明不能为空", field="note")
    text_ = f"{UPDATE_TYPES[kind]}（工单 {ticket.external_id}）" + (
        f"：{note.strip()}" if note.strip() else ""
    )
    now = now or datetime.now(UTC)
    if kind == "cancel":
        issue = lock_issue(session, issue_id)
        if issue.status == "rejected":
            raise Conflict("该工单已撤单或不予立案，无需再撤", {"status": issue.status}, "type")
        if issue.status not in CANCELLABLE:
            raise Conflict(
                "该问题已交办处理，不能撤单；如需撤销请联系创文办",
                {"status": issue.status},
                "type",
            )
        event = transition(
            session,
            settings,
            issue_id,
            "rejected",
            account,
            text_,
            now=now,
            allows=lambda action: action == DISPATCH,
        )
    else:
        issue = session.get(Issue, issue_id)
        event = IssueEvent(
            issue_id=issue_id,
            at=now,
            actor_id=account.id,
            from_status=issue.status,
            to_status=issue.status,
            note=text_,
            data={"action": "external_note"},
        )
        session.add(event)
        session.flush()
    return {
        "service_request_id": str(issue_id),
        "event_id": event.id,
        "status": open311_status(event.to_status),
    }
