"""The issue state machine (上报 → 立案 → 交办 → 整改 → 反馈 → 复核 → 销号), as data.

`TRANSITIONS` lists every allowed move with the permission it needs (the one permission table
is geoservice.accounts.permissions) and what it requires.
`transition()` applies a move under a row lock, so of two concurrent moves on one issue exactly
one wins and the other sees the new state (409 with the moves still allowed).

Deadlines come from the category's limit in hours, on the wall clock or, with a working-day
calendar (weekends, configurable holidays and 调休 make-up working days), counting only the
hours of working days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from geoservice.accounts.permissions import ACTIONS, allowed
from geoservice.input_values import shown
from geoservice.issues.holder_history import holder_of, stamp
from geoservice.issues.photos import PhotoLimits, PhotoStore, PreparedPhoto, add_photos
from geoservice.models import Issue, IssueEvent, Leader, User
from geoservice.service_errors import Conflict, Forbidden, InvalidInput, NotFound
from geoservice.vocab import ISSUE_STATUSES, OPEN_STATUSES

# Who may make a move is the permission table's business (geoservice.accounts.permissions): each
# move names the action it needs. Moves of the responsible side (`responsible=True`) need, on
# top, that the account speaks for the issue's leader (see `is_responsible`); admin always may.
Allows = Callable[[str], bool]  # action -> may the caller do it (role and token scopes)


@dataclass(frozen=True)
class Transition:
    from_status: str
    to_status: str
    action: str
    label: str  # what the button says
    permission: str  # the action of geoservice.accounts.permissions it needs
    responsible: bool = False  # only the issue's responsible side (and admin)
    note_required: bool = False
    note_hint: str = ""
    min_photos: int = 0
    needs_leader: bool = False
    photo_kind: str = "after"

    def as_json(self) -> dict[str, Any]:
        return {
            "to": self.to_status,
            "action": self.action,
            "label": self.label,
            "note_required": self.note_required,
            "min_photos": self.min_photos,
            "needs_leader": self.needs_leader,
        }


DISPATCH, VERIFY, FIX = "issues.dispatch", "issues.verify", "issues.fix"

TRANSITIONS: tuple[Transition, ...] = (
    Transition("reported", "accepted", "accept", "立案", DISPATCH, photo_kind="before"),
    Transition(
        "reported",
        "rejected",
        "reject",
        "不予立案",
        DISPATCH,
        note_required=True,
        note_hint="请填写不予立案的理由",
        photo_kind="before",
    ),
    Transition(
        "accepted",
        "dispatched",
        "dispatch",
        "交办",
        DISPATCH,
        needs_leader=True,
        photo_kind="before",
    ),
    Transition(
        "dispatched",
        "dispatched",
        "redispatch",
        "改派",
        DISPATCH,
        note_required=True,
        note_hint="请填写改派原因",
        needs_leader=True,
        photo_kind="before",
    ),
    Transition("dispatched", "in_progress", "start", "开始整改", FIX, responsible=True),
    Transition(
        "in_progress",
        "fixed",
        "fix",
        "整改反馈",
        FIX,
        responsible=True,
        note_required=True,
        note_hint="请说明整改情况",
        min_photos=1,
    ),
    Transition("fixed", "closed", "verify", "复核通过并销号", VERIFY),
    Transition(
        "fixed",
        "in_progress",
        "rework",
        "返工",
        VERIFY,
        note_required=True,
        note_hint="请说明返工原因",
    ),
)
_BY_MOVE = {(t.from_status, t.to_status): t for t in TRANSITIONS}

# The responsible unit owes a fix in these states (待整改): its to-do list, "due soon".
RECTIFYING_STATUSES: tuple[str, ...] = ("dispatched", "in_progress")


def status_label(status: str | None) -> str:
    return ISSUE_STATUSES.get(status or "", status or "")


def transitions_from(status: str) -> list[Transition]:
    return [t for t in TRANSITIONS if t.from_status == status]


def find_transition(from_status: str, to_status: str) -> Transition | None:
    return _BY_MOVE.get((from_status, to_status))


# --- permissions ---------------------------------------------------------------------------


def role_allows(account: User | None) -> Allows:
    """The permission table for the account's role (no token scopes): for services and CLI."""

    def allows(action: str) -> bool:
        return account is not None and account.active and allowed(account.role, action)

    return allows


def is_responsible(session: Session, account: User, issue: Issue) -> bool:
    """The account speaks for the issue's leader: the leader themself or their unit."""
    if account.leader_id is None or issue.leader_id is None:
        return False
    if account.leader_id == issue.leader_id:
        return True
    # 条块 routing with the place's 包保 leader co-responsible (geoservice.issues.routing_rules).
    routing = (issue.attribution or {}).get("routing") or {}
    if routing.get("co_responsible") and account.leader_id == routing.get("place_leader_id"):
        return True
    unit_id = session.scalar(select(Leader.unit_id).where(Leader.id == account.leader_id))
    return unit_id is not None and unit_id == issue.unit_id


def may_act(
    session: Session, account: User | None, move: Transition, issue: Issue, allows: Allows
) -> bool:
    if account is None or not allows(move.permission):
        return False
    if move.responsible and account.role != "admin":
        return is_responsible(session, account, issue)
    return True


def allowed_for(
    session: Session, account: User | None, issue: Issue, allows: Allows | None = None
) -> list[Transition]:
    allows = allows or role_allows(account)
    return [
        t for t in transitions_from(issue.status) if may_act(session, account, t, issue, allows)
    ]


# --- deadlines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkCalendar:
    """Mon–Fri are working days, except holidays; make-up days (调休) work even on weekends."""

    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5


def compute_deadline(
    start: datetime, hours: float, calendar: WorkCalendar | None, tz: ZoneInfo
) -> datetime:
    """`hours` after `start`; with a calendar, only time on working days (local) counts, so a
    24 h limit given on Friday 15:00 ends Monday 15:00."""
    if calendar is None:
        return start + timedelta(hours=hours)
    cursor = start.astimezone(tz)
    remaining = timedelta(hours=hours)
    for _ in range(3 * 366):
        next_midnight = datetime.combine(cursor.date() + timedelta(days=1), time(0), tzinfo=tz)
        if calendar.is_working_day(cursor.date()):
            available = next_midnight - cursor
            if remaining <= available:
                return (cursor + remaining).astimezone(UTC)
            remaining -= available
        cursor = next_midnight
    raise ValueError("no working days in the calendar for three years")


def is_overdue(issue: Issue, now: datetime) -> bool:
    """超期未办结: not closed past its deadline, a fix awaiting verification included. The one
    rule of the lists, the map, 我的包保, the API's `overdue` filter and the rankings."""
    return issue.status in OPEN_STATUSES and issue.deadline is not None and issue.deadline < now


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """SQL condition of `is_overdue` (uses the (status, deadline) index)."""
    return and_(Issue.status.in_(OPEN_STATUSES), Issue.deadline < now)


# --- settings ------------------------------------------------------------------------------


def _dates(values: Iterable[Any], name: str) -> frozenset[date]:
    out = set()
    for value in values or ():
        if isinstance(value, date):
            out.add(value)
            continue
        try:
            out.add(date.fromisoformat(str(value).strip()))
        except ValueError as exc:
            raise ValueError(f"{name}: {value!r} is not a YYYY-MM-DD date") from exc
    return frozenset(out)


def _optional_hours(config: Mapping[str, Any], name: str) -> float | None:
    value = config.get(name)
    if value in (None, ""):
        return None
    hours = float(value)
    if hours <= 0:
        raise ValueError(f"{name}: a positive number of hours")
    return hours


@dataclass(frozen=True)
class IssueSettings:
    """Everything the issue services read from the configuration, as plain values."""

    categories: Mapping[str, float]
    sources: tuple[str, ...]
    tz: ZoneInfo
    calendar: WorkCalendar | None = None
    relapse_radius_m: float = 50.0
    relapse_window_days: float = 30.0
    duplicate_radius_m: float = 50.0
    duplicate_window_days: float = 7.0
    report_min_photos: int = 1
    photo_optional_sources: tuple[str, ...] = ()
    photo_limits: PhotoLimits = field(default_factory=PhotoLimits)
    store: PhotoStore | None = None
    accept_sla_hours: float | None = None  # 立案时限 (ACCEPT_SLA_HOURS), optional
    dispatch_sla_hours: float | None = None  # 交办时限 (DISPATCH_SLA_HOURS), optional
    # Where responsibility falls when the primary place has nobody (RESPONSIBILITY_FALLBACK):
    # steps of geoservice.issues.attribution.FALLBACK_STEPS in order; empty: the 待派遣 queue.
    fallback: tuple[str, ...] = ()
    # Per-category rules as data (geoservice.ranking.vocabularies): photos required at report,
    # and the categories always on the 负面清单.
    category_min_photos: Mapping[str, int] = field(default_factory=dict)
    negative_list_categories: frozenset[str] = frozenset()
    # Categories retired (no new reports) with their time limits: the issues that have one
    # keep it, and their deadlines are still set by it.
    retired_categories: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> IssueSettings:
        calendar = None
        if config.get("DEADLINE_WORKING_DAYS"):
            calendar = WorkCalendar(
                _dates(config.get("HOLIDAYS", ()), "HOLIDAYS"),
                _dates(config.get("MAKEUP_WORKDAYS", ()), "MAKEUP_WORKDAYS"),
            )
        upload_dir = config.get("UPLOAD_DIR")
        return cls(
            categories=dict(config["ISSUE_CATEGORIES"]),
            sources=tuple(config["ISSUE_SOURCES"]),
            tz=ZoneInfo(config.get("TIMEZONE", "Asia/Shanghai")),
            calendar=calendar,
            relapse_radius_m=float(config.get("RELAPSE_RADIUS_M", 50)),
            relapse_window_days=float(config.get("RELAPSE_WINDOW_DAYS", 30)),
            duplicate_radius_m=float(config.get("DUPLICATE_RADIUS_M", 50)),
            duplicate_window_days=float(config.get("DUPLICATE_WINDOW_DAYS", 7)),
            report_min_photos=int(config.get("REPORT_MIN_PHOTOS", 1)),
            photo_optional_sources=tuple(config.get("PHOTO_OPTIONAL_SOURCES", ())),
            photo_limits=PhotoLimits(
                max_bytes=int(config.get("PHOTO_MAX_BYTES", PhotoLimits.max_bytes)),
                max_count=int(config.get("PHOTO_MAX_COUNT", PhotoLimits.max_count)),
                max_pixels=int(config.get("PHOTO_MAX_PIXELS", PhotoLimits.max_pixels)),
            ),
            store=PhotoStore(upload_dir) if upload_dir else None,
            accept_sla_hours=_optional_hours(config, "ACCEPT_SLA_HOURS"),
            dispatch_sla_hours=_optional_hours(config, "DISPATCH_SLA_HOURS"),
            fallback=tuple(config.get("RESPONSIBILITY_FALLBACK") or ()),
        )

    def check_category(self, category: str, field_name: str = "category") -> str:
        """`category` if new reports may use it; else InvalidInput (a retired one says so)."""
        if category in self.categories:
            return category
        choices = {"categories": list(self.categories)}
        if category in self.retired_categories:
            raise InvalidInput(
                f"问题类别「{category}」已停用，不再受理新上报（已有问题保留原类别），"
                f"请改选：{'、'.join(self.categories)}",
                choices,
                field_name,
            )
        raise InvalidInput(f"未知问题类别「{category}」", choices, field_name)

    def deadline_for(self, category: str, start: datetime) -> datetime:
        hours = self.categories.get(category) or self.retired_categories.get(category)
        if hours is None:
            hours = max(self.categories.values(), default=72)
        return compute_deadline(start, hours, self.calendar, self.tz)


# --- applying a transition -----------------------------------------------------------------


def lock_issue(session: Session, issue_id: int) -> Issue:
    """The issue row, locked until the transaction ends (refreshed from the database)."""
    issue = session.scalars(
        select(Issue)
        .where(Issue.id == issue_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if issue is None:
        raise NotFound(f"没有编号为 {issue_id} 的问题", field="id")
    return issue


def _not_allowed(issue: Issue, to_status: str, allowed: Sequence[Transition]) -> Conflict:
    detail = {
        "status": issue.status,
        "status_label": status_label(issue.status),
        "allowed": [t.as_json() for t in allowed],
    }
    if allowed:
        options = "、".join(f"{t.label}（{status_label(t.to_status)}）" for t in allowed)
        hint = f"当前可执行：{options}"
    elif transitions_from(issue.status):
        hint = "当前账号对该问题暂无可执行的操作"
    else:
        hint = "该问题已办结，不能再变更状态"
    return Conflict(
        f"问题当前状态为「{status_label(issue.status)}」，"
        f"不能变更为「{status_label(to_status)}」；{hint}",
        detail,
        "to",
    )


def _resolve_leader(session: Session, issue: Issue, leader_id: int | None) -> Leader:
    chosen = leader_id if leader_id is not None else issue.leader_id
    if chosen is None:
        raise InvalidInput(
            "该问题没有自动归属的责任领导，请指定交办对象（leader_id）", field="leader_id"
        )
    leader = session.get(Leader, chosen)
    if leader is None or not leader.active:
        raise InvalidInput(f"没有编号为 {chosen} 的在岗包保领导", field="leader_id")
    return leader


def check_move(
    session: Session,
    issue: Issue | None,
    to_status: str,
    actor: User | None,
    expected_status: str | None,
    allows: Allows,
) -> Transition:
    """The move to `to_status` if `actor` may make it now; else InvalidInput (unknown status),
    Conflict (stale or illegal move) or Forbidden. Cheap: callers run it before any costly
    work the move needs (decoding photos), and `transition` again under the row lock."""
    if to_status not in ISSUE_STATUSES or issue is None:
        raise InvalidInput(
            f"未知状态 {shown(to_status)}",
            {"statuses": list(ISSUE_STATUSES)},
            "to",
        )
    if expected_status is not None and expected_status != issue.status:
        raise _not_allowed(issue, to_status, allowed_for(session, actor, issue, allows)) from None
    move = find_transition(issue.status, to_status)
    if move is None:
        raise _not_allowed(issue, to_status, allowed_for(session, actor, issue, allows))
    if not may_act(session, actor, move, issue, allows):
        if move.responsible and actor is not None and allows(move.permission):
            message = f"「{move.label}」只能由该问题的责任领导或其单位执行"
        else:
            message = f"当前账号无权「{move.label}」（需要权限：{ACTIONS[move.permission]}）"
        raise Forbidden(message, {"action": move.action, "permission": move.permission})
    return move


def transition(
    session: Session,
    settings: IssueSettings,
    issue_id: int,
    to_status: str,
    actor: User | None,
    note: str = "",
    leader_id: int | None = None,
    expected_status: str | None = None,
    photos: Sequence[PreparedPhoto] = (),
    now: datetime | None = None,
    allows: Allows | None = None,
) -> IssueEvent:
    """Moves the issue to `to_status`, writing one event (and its photos). The caller commits.

    Raises NotFound (404), Conflict (409: stale or illegal move, with the allowed moves),
    Forbidden (403: wrong role or not the responsible side) or InvalidInput (422).
    """
    allows = allows or role_allows(actor)
    if to_status not in ISSUE_STATUSES:
        check_move(session, None, to_status, actor, expected_status, allows)
    issue = lock_issue(session, issue_id)
    # Dated once the row is ours: a move that waited for another one is dated after it.
    now = now or datetime.now(UTC)
    move = check_move(session, issue, to_status, actor, expected_status, allows)
    note = (note or "").strip()
    if move.note_required and not note:
        raise InvalidInput(move.note_hint or "请填写说明", field="note")
    if len(photos) < move.min_photos:
        raise InvalidInput(
            f"「{move.label}」需要至少 {move.min_photos} 张整改后照片", field="photos"
        )
    if photos and settings.store is None:
        raise RuntimeError("UPLOAD_DIR is not configured")

    data: dict[str, Any] = {"action": move.action}
    before = holder_of(issue)
    if move.needs_leader:
        leader = _resolve_leader(session, issue, leader_id)
        if move.action == "redispatch" and leader.id == issue.leader_id:
            raise Conflict(
                f"该问题已由{leader.name}负责，改派请选择另一位领导",
                detail={"status": issue.status, "leader_id": leader.id},
                field="leader_id",
            )
        if move.action == "redispatch" or leader.id != issue.leader_id:
            data["previous_leader_id"] = issue.leader_id
            issue.attribution = {
                **(issue.attribution or {}),
                "manual": {
                    "leader_id": leader.id,
                    "by": actor.id if actor else None,
                    "at": now.isoformat(),
                },
            }
        issue.leader_id, issue.unit_id = leader.id, leader.unit_id
        # 交办 starts the clock; 改派 keeps the running deadline (only a granted 延期 gives
        # time), so lateness cannot be wiped by handing the issue to someone else.
        if move.action != "redispatch" or issue.deadline is None:
            issue.deadline = settings.deadline_for(issue.category, now)
        data.update(leader_id=leader.id, deadline=issue.deadline.isoformat())
    if move.action == "rework":
        issue.rework_count += 1
        data["rework_count"] = issue.rework_count
    if to_status == "closed":
        issue.closed_at = now
    from_status = issue.status
    if is_overdue(issue, now):
        data["overdue"] = True
    issue.status = to_status
    event = IssueEvent(
        issue_id=issue.id,
        at=now,
        actor_id=actor.id if actor else None,
        from_status=from_status,
        to_status=to_status,
        note=note,
        data=data,
    )
    stamp(event, issue, before)
    session.add(event)
    session.flush()
    if photos:
        add_photos(session, settings.store, issue.id, event.id, move.photo_kind, photos)
    return event
