"""What a map popup shows about one place or one issue (plain values; the page escapes them).

A place: layer, code, name, declared attributes, its current 包保 leaders (with phone) and its
open / overdue issue counts — an issue counts for a place when the place is its primary place
or its grid, as on 我的包保. An issue: category, state, deadline, description, the leader and
unit recorded at report time, its place and its photos.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.maps.mapdata import CLASS_SQL, ISSUE_CLASSES, OVERDUE_SQL
from geoservice.registry import BASE_LAYER, LayerRegistry
from geoservice.vocab import ISSUE_STATUSES, OPEN_STATUSES, SEVERITIES

_CLASSES = {c.id: c for c in ISSUE_CLASSES}


def place_detail(
    session: Session,
    registry: LayerRegistry,
    place_id: int,
    issue_scope: tuple[str, dict[str, Any]] | None,
) -> dict[str, Any] | None:
    """None when there is no such place. `issue_scope`: SQL on `issues i` (the caller's)."""
    place = (
        session.execute(
            text("SELECT id, layer, code, name FROM places WHERE id = :id"), {"id": place_id}
        )
        .mappings()
        .first()
    )
    if place is None or place["layer"] not in registry:
        return None
    spec = registry.get(place["layer"])
    attributes: list[tuple[str, Any]] = []
    if spec.attributes:
        columns = ", ".join(f"l.{a.name}" for a in spec.attributes)
        values = session.execute(
            text(f"SELECT {columns} FROM {spec.table} l WHERE l.id = :id"), {"id": place_id}
        ).one()
        attributes = [
            (a.title, v) for a, v in zip(spec.attributes, values, strict=True) if v is not None
        ]
    leaders = (
        session.execute(
            text("""
SELECT ld.id, ld.name, ld.title, ld.phone, un.name AS unit, a.role, a.is_primary
FROM assignments a JOIN leaders ld ON ld.id = a.leader_id
LEFT JOIN units un ON un.id = ld.unit_id
WHERE a.place_id = :id AND a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now())
ORDER BY a.is_primary DESC, a.id"""),
            {"id": place_id},
        )
        .mappings()
        .all()
    )
    where, params = issue_scope if issue_scope is not None else ("TRUE", {})
    open_list = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    counts = session.execute(
        text(f"""
SELECT count(*) FILTER (WHERE i.status IN ({open_list})),
       count(*) FILTER (WHERE {OVERDUE_SQL})
FROM issues i
WHERE (i.primary_place_id = :id OR i.grid_id = :id) AND ({where})"""),
        {**params, "id": place_id},
    ).one()
    return {
        "id": place["id"],
        "layer": spec.name,
        "collection": spec.collection,
        "layer_title": spec.title,
        "code": place["code"],
        "name": place["name"],
        "attributes": attributes,
        "leaders": [dict(r) for r in leaders],
        "open": int(counts[0]),
        "overdue": int(counts[1]),
        # Which issues filter lists "its issues" (the base layer's features are issues' grids).
        "issue_filter": "grid_id" if spec.name == BASE_LAYER else "place_id",
    }


def issue_detail(session: Session, registry: LayerRegistry, issue_id: int) -> dict[str, Any] | None:
    """None when there is no such issue (the caller checks scope first)."""
    row = (
        session.execute(
            text(f"""
SELECT i.id, i.category, i.source, i.status, {CLASS_SQL} AS class, i.severity,
       i.negative_list, i.description, i.reported_at, i.deadline, i.closed_at,
       ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
       ld.name AS leader, ld.title AS leader_title, ld.phone AS leader_phone,
       un.name AS unit, pp.name AS place, pp.code AS place_code, pp.layer AS place_layer,
       gp.code AS grid_code
FROM issues i
LEFT JOIN leaders ld ON ld.id = i.leader_id
LEFT JOIN units un ON un.id = i.unit_id
LEFT JOIN places pp ON pp.id = i.primary_place_id
LEFT JOIN places gp ON gp.id = i.grid_id
WHERE i.id = :id"""),
            {"id": issue_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    photos = session.execute(
        text(
            "SELECT id, kind FROM photos WHERE issue_id = :id"
            " ORDER BY kind = 'after', created_at, id"
        ),
        {"id": issue_id},
    ).all()
    out = dict(row)
    out["status_label"] = ISSUE_STATUSES.get(row["status"], row["status"])
    out["class_title"] = _CLASSES[row["class"]].title
    out["class_colour"] = _CLASSES[row["class"]].colour
    out["severity_label"] = SEVERITIES.get(row["severity"], str(row["severity"]))
    out["place_layer_title"] = (
        registry.get(row["place_layer"]).title if row["place_layer"] in registry else None
    )
    out["photos"] = [{"id": int(pid), "kind": kind} for pid, kind in photos]
    return out
