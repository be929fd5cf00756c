"""Who may see and change 包保 data — the one place the API and the pages ask.

- planners (and admins) edit everything;
- viewers, inspectors and integrations read everything;
- leader accounts read only their own leader record and places (a unit head: the unit's).

Swap these functions when fine-grained permissions and area scopes arrive.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from geoservice.errors import ApiError
from geoservice.models import Leader, User
from geoservice.responsibility import leaders_in_view

EDIT_ROLES: tuple[str, ...] = ("planner",)
READ_ROLES: tuple[str, ...] = ("planner", "viewer", "inspector", "integration", "leader")
# Whole-county reads (audit, the full roster): everyone who reads, except leader accounts.
OVERVIEW_ROLES: tuple[str, ...] = ("planner", "viewer", "inspector", "integration")


def can_edit(account: User | None) -> bool:
    return account is not None and (account.role == "admin" or account.role in EDIT_ROLES)


def visible_leader_ids(session: Session, account: User) -> list[int] | None:
    """None: the account reads every leader; otherwise the leader ids it may read."""
    if account.role != "leader":
        return None
    if account.leader_id is None:
        return []
    leader = session.get(Leader, account.leader_id)
    return leaders_in_view(session, leader) if leader is not None else []


def check_leader_visible(session: Session, account: User, leader_id: int) -> None:
    visible = visible_leader_ids(session, account)
    if visible is not None and leader_id not in visible:
        raise ApiError(403, "只能查看本人（单位负责人：本单位）的包保信息", field="leader_id")
