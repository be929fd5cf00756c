"""Who may read and write the collections: the one place the API decides permissions.

Reads: every signed-in account (any role). Writes to layer collections: planners and
integration tokens (admin always passes). Account scoping by admin area and per-token
collection scopes plug in here (`scope_condition`, `check_write`); the audit log of every
write plugs in at `record_write`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from geoservice.auth import current_account, roles_required
from geoservice.collections import Collection
from geoservice.errors import ApiError
from geoservice.models import User
from geoservice.vocab import USER_ROLES

READ_ROLES: tuple[str, ...] = USER_ROLES
WRITE_ROLES: tuple[str, ...] = ("planner", "integration")

read_access = roles_required(*READ_ROLES)
write_access = roles_required(*WRITE_ROLES)

log = logging.getLogger("geoservice.changes")


def check_write(collection: Collection) -> User:
    """Raises unless the caller may change features of `collection`; returns the caller."""
    if not collection.writable:
        raise ApiError(
            405,
            f"集合 {collection.id} 在此接口只读",
            "问题的上报与流转请使用问题接口",
            field="collectionId",
        )
    account = current_account()
    if account is None:  # write_access has already refused anonymous callers
        raise ApiError(401, "请先登录或提供 API 令牌（Authorization: Bearer …）")
    return account


def scope_condition(account: User | None, collection: Collection) -> str | None:
    """An SQL condition restricting what `account` sees of `collection` (None: everything)."""
    return None


@dataclass(frozen=True)
class Change:
    """One write: what the audit log records."""

    action: str  # "create" | "replace" | "update" | "delete" | "import"
    collection: str
    feature_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record_write(session: Session, account: User | None, change: Change) -> None:
    """Audit hook, called inside the write's transaction for every changed feature."""
    log.info(
        "%s %s/%s by %s",
        change.action,
        change.collection,
        change.feature_id,
        account.username if account is not None else "-",
    )
