"""Leaders as other domains list them (e.g. the dispatch targets of an issue)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def active_leaders(session: Session, ids: list[int] | None = None) -> list[Any]:
    """Active leaders with their unit's name (`id, name, title, unit`), by unit then name;
    `ids`: only these (None: all)."""
    return session.execute(
        text(
            "SELECT l.id, l.name, l.title, u.name AS unit FROM leaders l"
            " LEFT JOIN units u ON u.id = l.unit_id"
            " WHERE l.active AND (CAST(:ids AS int[]) IS NULL OR l.id = ANY(CAST(:ids AS int[])))"
            " ORDER BY u.name, l.name"
        ),
        {"ids": ids},
    ).all()
