"""Who may see and change 包保 data — the one place the 包保 API and pages ask.

Built on the permission table (`geoservice.accounts.permissions`) and row scope
(`geoservice.accounts.scope`):

- `assignments.write` (planner, admin) edits units, leaders and assignments;
- `assignments.read` reads them, within the account's scope: an unbound account reads
  every leader; a leader account its own record and the leaders answering for places it
  sees (scope.leader_filter) — and, for a unit head (`leaders.is_unit_head`), every leader of
  its unit; an area-bound account the leaders answering inside its area;
- whole-county views (coverage audit, the full 一览表, the roster import) need
  `assignments.read` (import: `write`) and an account not bound to an area or leader.

Out-of-scope records answer 404, exactly like unknown ones.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.accounts.auth import can, current_account, require
from geoservice.accounts.permissions import allowed
from geoservice.db import get_session, unlimited_statements
from geoservice.edge.vocabularies import assignable_roles, retired_levels
from geoservice.edge.vocabularies import in_force as vocab_in_force
from geoservice.errors import ApiError
from geoservice.models import AdminArea, Assignment, Leader, Place, User
from geoservice.registry import layers
from geoservice.responsibility import roster

READ = "assignments.read"
WRITE = "assignments.write"
COUNTY_ONLY = "此项操作（覆盖检查、全县包保一览表、清单导入、行政区划导入）仅限不限定区域的账号"


def can_edit(_account: User | None = None) -> bool:
    return can(WRITE)


def whole_county(account: User | None) -> bool:
    return account is not None and scope.for_account(account).everything


def county_required(action: str) -> Callable:
    """Decorator: `action` and an account that sees the whole deployment (403 otherwise)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = require(action)
            if not whole_county(account):
                raise ApiError(403, COUNTY_ONLY)
            return view(*args, **kwargs)

        wrapper.permission = action  # type: ignore[attr-defined]
        return wrapper

    return decorator


def _head_unit(session: Session, account: User) -> int | None:
    if account.leader_id is None:
        return None
    leader = session.get(Leader, account.leader_id)
    if leader is not None and leader.is_unit_head and leader.active:
        return leader.unit_id
    return None


def _in_force() -> Any:
    """An assignment in force now (started, not ended)."""
    now = func.now()
    return and_(
        Assignment.valid_from <= now, or_(Assignment.valid_to.is_(None), Assignment.valid_to > now)
    )


def visible_leader_ids(session: Session, account: User | None = None) -> list[int] | None:
    """None: the account reads every leader; otherwise the ids it may read. An account that
    may assign (`assignments.write`) also reads the active leaders who answer for no place now
    — those it may take on (`leader_writable`): a leader it has just created among them."""
    account = account or current_account()
    if whole_county(account):
        return None
    condition = scope.leader_filter(account, layers(), Leader.id)
    unit_id = _head_unit(session, account) if account is not None else None
    if unit_id is not None:
        condition = or_(condition, Leader.unit_id == unit_id)
    if account is not None and allowed(account.role, "assignments.write"):
        holds = select(Assignment.id).where(Assignment.leader_id == Leader.id, _in_force()).exists()
        condition = or_(condition, Leader.active.is_(True) & ~holds)
    return list(session.scalars(select(Leader.id).where(condition)))


def check_leader_visible(session: Session, account: User | None, leader_id: int) -> None:
    visible = visible_leader_ids(session, account)
    if visible is not None and leader_id not in visible:
        raise ApiError(404, f"没有编号为 {leader_id} 的包保领导", field="leader_id")


def place_visibility(account: User | None) -> Any:
    """A filter on Place.id keeping the places the account sees (None: all), for lookups by
    code or name that must answer an out-of-scope code like an unknown one."""
    if whole_county(account):
        return None
    return scope.place_ref_filter(account, layers(), Place.id)


def check_place_visible(session: Session, account: User | None, place_id: int) -> None:
    if whole_county(account):
        return
    if scope.visible_place(session, account, layers(), place_id) is None:
        raise ApiError(404, f"没有编号为 {place_id} 的地点（要素）", field="place_id")


# The roster upload (POST /api/roster/import and the 包保 roster page).
MAX_ROSTER_BYTES = 10 * 1024 * 1024


def roster_upload() -> bytes:
    """The uploaded roster file's bytes (multipart field `file`), size-checked."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "请选择要上传的 Excel 文件（字段 file）", field="file")
    data = upload.read(MAX_ROSTER_BYTES + 1)
    if len(data) > MAX_ROSTER_BYTES:
        raise ApiError(413, f"文件超过 {MAX_ROSTER_BYTES // 1024 // 1024} MB", field="file")
    return data


def run_roster_import(data: bytes, dry_run: bool) -> roster.ImportReport:
    session = get_session()
    unlimited_statements(session)
    report = roster.import_roster(
        session,
        layers(),
        data,
        roles=assignable_roles(),
        levels=vocab_in_force().levels,
        retired_levels=retired_levels(),
        timezone=current_app.config["TIMEZONE"],
        by=current_account(),
        dry_run=dry_run,
    )
    if report.applied:
        session.commit()
    else:
        session.rollback()
    return report


# --- writes: the same scope as reads ------------------------------------------------------


def leader_writable(session: Session, account: User | None, leader_id: int) -> bool:
    """May the account edit this leader or make them answer for something (assign, reassign,
    dispatch an issue to them)? An account that sees the whole deployment: any leader. An
    area- or leader-bound account: a leader it may read (`visible_leader_ids`), or one who
    answers for no place now (a new or freed official, so a street can take on new people)."""
    visible = visible_leader_ids(session, account)
    if visible is None or leader_id in visible:
        return True
    holds = session.scalar(
        select(Assignment.id).where(Assignment.leader_id == leader_id, _in_force()).limit(1)
    )
    return holds is None


def check_holdings_in_scope(
    session: Session, account: User | None, leader_id: int, action: str
) -> None:
    """403 when the leader answers now for places outside the account's area: `action` (停用,
    删除) would end or list them, and the places of another street are that street's to
    change (docs/security.md). Not named, nor counted, in the answer."""
    if whole_county(account):
        return
    outside = session.scalar(
        select(Assignment.id)
        .where(
            Assignment.leader_id == leader_id,
            _in_force(),
            ~scope.place_ref_filter(account, layers(), Assignment.place_id),
        )
        .limit(1)
    )
    if outside is not None:
        raise ApiError(
            403,
            f"该领导在您的管辖范围外还有包保责任，不能{action}；请先结束本范围内的责任，"
            f"{action}由全县账号办理",
            field="leader_id",
        )


def check_leader_writable(session: Session, account: User | None, leader_id: int | None) -> None:
    """404 when the leader is outside what the account may change, and the same 404 when there
    is no such leader (so that the two cannot be told apart)."""
    if leader_id is None:
        return
    if session.get(Leader, leader_id) is None or not leader_writable(session, account, leader_id):
        raise ApiError(404, f"没有编号为 {leader_id} 的包保领导", field="leader_id")


def visible_area_ids(session: Session, account: User | None) -> set[int] | None:
    """The admin areas inside the account's area (None: every area, a county-wide account)."""
    if whole_county(account):
        return None
    return set(
        session.scalars(select(AdminArea.id).where(scope.area_filter(account, AdminArea.id)))
    )


def check_unit_writable(session: Session, account: User | None, unit_id: int) -> None:
    """A unit is changed only by an account that may change every leader of it (a county
    bureau with leaders in several streets is the county's to rename or delete)."""
    if whole_county(account):
        return
    members = session.scalars(select(Leader.id).where(Leader.unit_id == unit_id)).all()
    if any(not leader_writable(session, account, member) for member in members):
        raise ApiError(404, f"没有编号为 {unit_id} 的单位", field="unit_id")


def _place_condition(session: Session, account: User | None, place_id: Any) -> Any:
    """The places the account sees (scope.place_ref_filter), and for a unit head also the
    places its unit's leaders hold now (the head's 本单位 view)."""
    condition = scope.place_ref_filter(account, layers(), place_id)
    unit_id = _head_unit(session, account) if account is not None else None
    if unit_id is not None:
        held = (
            select(Assignment.place_id)
            .join(Leader, Leader.id == Assignment.leader_id)
            .where(Leader.unit_id == unit_id, _in_force())
        )
        condition = or_(condition, place_id.in_(held))
    return condition


def visible_place_ids(session: Session, account: User | None, place_ids: Any) -> set[int] | None:
    """Of `place_ids`, those the account sees (None: all). A leader the account may read can
    also answer for places outside its area: reads of that leader list only the visible ones."""
    ids = {int(i) for i in place_ids}
    if whole_county(account) or not ids:
        return None if whole_county(account) else set()
    place = Place.__table__
    return set(
        session.scalars(
            select(place.c.id).where(
                place.c.id.in_(ids), _place_condition(session, account, place.c.id)
            )
        )
    )


def only_visible_assignments(session: Session, account: User | None, rows: list) -> list:
    visible = visible_place_ids(session, account, [a.place_id for a in rows])
    return rows if visible is None else [a for a in rows if a.place_id in visible]


def assignment_place_where(session: Session, account: User | None) -> Any:
    """A filter on `Assignment.place_id` keeping the places the account sees (None: all)."""
    if whole_county(account):
        return None
    return _place_condition(session, account, Assignment.place_id)


def assignable_leader_ids(session: Session, account: User | None) -> list[int] | None:
    """The leaders `leader_writable` allows, for pick lists (None: every leader)."""
    visible = visible_leader_ids(session, account)
    if visible is None:
        return None
    holding = select(Assignment.leader_id).where(_in_force())
    free = session.scalars(select(Leader.id).where(Leader.id.not_in(holding))).all()
    return sorted(set(visible) | set(free))
