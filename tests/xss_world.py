"""Script-injection payloads in every user-writable text of the small test world
(tests/world.py), for the page tests of tests/test_script_injection.py and the browser test.

Each payload starts with a unique tag (`X07`) and, if it ever ran, would set
`window.__pwned` (and `document.title`) to that tag: a script break-out
(`</script><script>…`), a template-literal expression (`${…}`, backticks), an `<img onerror>`
and quotes. Short columns get one kind, long ones all of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.models import AuditEntry, IssueEvent, Unit


def _kinds(tag: str) -> list[str]:
    run = f"__pwned='{tag}',document.title='{tag}'"
    return [
        f"{tag}</script><script>{run}</script>",
        f"{tag}`${{{run}}}`'\"",
        f'{tag}<img src=x onerror="{run}">',
    ]


class Payloads:
    def __init__(self) -> None:
        self._n = count(1)
        self.tags: dict[str, str] = {}  # tag → what it was put into

    def make(self, where: str, limit: int | None = None) -> str:
        n = next(self._n)
        tag = f"X{n:02d}"
        self.tags[tag] = where
        kinds = _kinds(tag)
        whole = tag + "".join(k[len(tag) :] for k in kinds)
        if limit is None or len(whole) <= limit:
            return whole
        one = kinds[n % len(kinds)]
        if len(one) <= limit:
            return one
        return (tag + "`${'\"<b>")[:limit]


def poison(session: Session, world: dict[str, Any]) -> Payloads:
    """Puts a payload into every user-writable text of the world: place names and codes,
    area names, leader names and titles, unit names, issue descriptions, issue notes,
    assignment notes, usernames and display names (except the signed-in `admin`, `leader`
    and `planner`), an import's file name in the audit log."""
    p = Payloads()

    def update(table: str, column: str, key: str, value: Any, limit: int | None) -> str:
        payload = p.make(f"{table}.{column}", limit)
        session.execute(
            text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"), {"v": payload, "k": value}
        )
        return payload

    for place_id in world["places"].values():
        update("places", "name", "id", place_id, 200)
        update("places", "code", "id", place_id, 64)
    for area_id in world["areas"].values():
        update("admin_areas", "name", "id", area_id, 100)
    unit = Unit(name=p.make("units.name", 100))
    session.add(unit)
    session.flush()
    for leader_id in world["leaders"].values():
        update("leaders", "name", "id", leader_id, 50)
        update("leaders", "title", "id", leader_id, 100)
        session.execute(
            text("UPDATE leaders SET unit_id = :u WHERE id = :k"), {"u": unit.id, "k": leader_id}
        )
    session.execute(text("UPDATE assignments SET note = :v"), {"v": p.make("assignments.note")})
    # I1 as reported: on road R1 in grid G1 (the issue map draws both, named in tooltips).
    claims = [
        {"layer": "road", "place_id": world["places"]["R1"], "distance_m": 0, "rule": "near",
         "leader_id": world["leaders"]["L3"]},
        {"layer": "grid", "place_id": world["places"]["G1"], "distance_m": 0, "rule": "contains",
         "leader_id": world["leaders"]["L1"]},
    ]  # fmt: skip
    session.execute(
        text("UPDATE issues SET attribution = CAST(:a AS jsonb) WHERE id = :k"),
        {"a": json.dumps({"places": claims}), "k": world["issues"]["I1"]},
    )
    for issue_id in world["issues"].values():
        update("issues", "description", "id", issue_id, None)
        session.add(
            IssueEvent(
                issue_id=issue_id,
                actor_id=world["users"]["inspector"],
                from_status="dispatched",
                to_status="dispatched",
                note=p.make("issue_events.note"),
                at=datetime(2026, 11, 2, tzinfo=UTC),
            )
        )
    for name in ("inspector", "viewer", "viewer_all", "leader2"):
        update("users", "username", "id", world["users"][name], 64)
        update("users", "display_name", "id", world["users"][name], 100)
    session.add(
        AuditEntry(
            user_id=world["users"]["admin"],
            actor=p.make("audit_log.actor", 64),
            action="layer.import",
            entity_type="layer",
            entity_id="roads",
            after={"file": p.make("import file name"), "rows": 2},
        )
    )
    session.flush()
    return p
