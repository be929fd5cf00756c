"""The 点位 (sites) an account may see: those in its area, as the sites collection shows them
(docs/security.md). Shared by the assessment API and pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.models import User


def site_condition(account: User | None) -> tuple[str, dict[str, Any]] | None:
    """An SQL condition on `sites s` keeping the account's sites (None: every site)."""
    if scope.for_account(account).everything:
        return None
    return scope.place_sql(account, "s.geom", "s.id")


def sites_in_scope(session: Session, account: User | None, ids: list[int]) -> set[int] | None:
    """Which of the sites `ids` lie in the account's scope (None: the account sees all)."""
    condition = site_condition(account)
    if condition is None:
        return None
    where, params = condition
    return set(
        session.scalars(
            text(f"SELECT s.id FROM sites s WHERE s.id = ANY(:ids) AND {where}"),
            {**params, "ids": ids},
        )
    )
