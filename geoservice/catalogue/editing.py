"""Writing layer features: insert, update, delete (the caller owns the transaction).

Input is checked first (`geoservice.catalogue.validation`); these functions only write. Deleting a
feature that anything still references (issues, assignments, or any other table with a
RESTRICT foreign key to `places`) is refused with a description of what holds it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from geoalchemy2.elements import WKBElement
from sqlalchemy import func, insert, literal_column, text, update
from sqlalchemy.orm import Session

from geoservice.catalogue.validation import DEFAULT, Checked
from geoservice.models import Place
from geoservice.registry import LayerSpec
from geoservice.vocab import OPEN_STATUSES


def _geom(ewkb: bytes) -> WKBElement:
    return WKBElement(ewkb, srid=4326, extended=True)


def insert_features(session: Session, spec: LayerSpec, rows: list[Checked]) -> list[int]:
    """Inserts the checked features; returns their ids in the same order."""
    if not rows:
        return []
    ids = list(
        session.execute(
            insert(Place).returning(Place.id, sort_by_parameter_order=True),
            [{"layer": spec.name, "code": r.code, "name": r.name} for r in rows],
        ).scalars()
    )
    table = spec.model.__table__
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for place_id, row in zip(ids, rows, strict=True):
        values = {k: v for k, v in row.values.items() if v is not DEFAULT}
        values["id"] = place_id
        values["geom"] = _geom(row.ewkb)
        groups[tuple(sorted(values))].append(values)
    for batch in groups.values():
        session.execute(insert(table), batch)
    return ids


def update_feature(session: Session, spec: LayerSpec, feature_id: int, row: Checked) -> None:
    session.execute(
        update(Place)
        .where(Place.id == feature_id)
        .values(code=row.code, name=row.name, updated_at=func.now())
    )
    table = spec.model.__table__
    values: dict[str, Any] = {
        k: (literal_column("DEFAULT") if v is DEFAULT else v) for k, v in row.values.items()
    }
    if row.ewkb is not None:
        values["geom"] = _geom(row.ewkb)
    if values:
        session.execute(update(table).where(table.c.id == feature_id).values(**values))


def current_properties(session: Session, spec: LayerSpec, feature_id: int) -> dict | None:
    """The feature's writable properties (as a client sends them) and its geometry."""
    links = spec.area_links()
    columns = ["p.code", "p.name", *(f"l.{a.name}" for a in spec.attributes)]
    columns += [f"(SELECT code FROM admin_areas WHERE id = l.{k.column})" for k in links]
    row = session.execute(
        text(
            f"SELECT {', '.join(columns)}, ST_AsGeoJSON(l.geom, 7, 0) FROM places p"
            f" JOIN {spec.table} l ON l.id = p.id WHERE p.id = :id"
        ),
        {"id": feature_id},
    ).first()
    if row is None:
        return None
    names = ["code", "name", *(a.name for a in spec.attributes)]
    names += [f"{k.prefix}_code" for k in links]
    return {
        "properties": dict(zip(names, row[:-1], strict=True)),
        "geometry": json.loads(row[-1]),
    }


@dataclass
class Holder:
    kind: str  # machine-readable key
    count: int
    message: str  # Chinese
    sample: list[Any]


class FeatureHeld(Exception):
    def __init__(self, holders: list[Holder]) -> None:
        self.holders = holders
        super().__init__("；".join(h.message for h in holders))


def _restrict_references(session: Session) -> list[tuple[str, str]]:
    """(table, column) of every foreign key to places that blocks deletes (the trigger-checked
    references of `soft_foreign_keys` included: issues' grid and primary place, migration
    0048)."""
    rows = session.execute(
        text("""
SELECT c.conrelid::regclass::text, a.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.contype = 'f' AND c.confrelid = 'places'::regclass AND c.confdeltype IN ('r', 'a')
  AND c.conparentid = 0  -- a partitioned table's key, not each partition's copy
UNION
SELECT table_name, column_name FROM soft_foreign_keys
WHERE target_table = 'places' AND on_delete IN ('restrict', 'no action')
ORDER BY 1, 2""")
    )
    return [(t, c) for t, c in rows]


def holders(session: Session, feature_id: int) -> list[Holder]:
    """What still references the feature: open/closed issues, current/past assignments …"""
    out: list[Holder] = []
    refs = _restrict_references(session)
    issue_columns = [c for t, c in refs if t == "issues"]
    if issue_columns:
        match = " OR ".join(f"{c} = :id" for c in issue_columns)
        row = session.execute(
            text(f"""
SELECT count(*) FILTER (WHERE status = ANY(:open)),
       (array_agg(id ORDER BY id) FILTER (WHERE status = ANY(:open)))[1:10],
       count(*) FILTER (WHERE NOT status = ANY(:open))
FROM issues WHERE {match}"""),
            {"id": feature_id, "open": list(OPEN_STATUSES)},
        ).one()
        open_n, open_ids, closed_n = row
        if open_n:
            shown = "、".join(str(i) for i in open_ids) + ("…" if open_n > len(open_ids) else "")
            out.append(
                Holder("open_issues", open_n, f"未销号问题 {open_n} 件（编号 {shown}）", open_ids)
            )
        if closed_n:
            out.append(
                Holder(
                    "closed_issues",
                    closed_n,
                    f"已办结问题 {closed_n} 件（历史记录须保留）",
                    [],
                )
            )
    if ("assignments", "place_id") in refs:
        rows = session.execute(
            text("""
SELECT a.valid_to IS NULL OR a.valid_to > now() AS active, ld.name, a.role
FROM assignments a JOIN leaders ld ON ld.id = a.leader_id
WHERE a.place_id = :id ORDER BY a.valid_from"""),
            {"id": feature_id},
        ).all()
        active = [f"{name}·{role}" for is_active, name, role in rows if is_active]
        past = [r for r in rows if not r[0]]
        if active:
            out.append(
                Holder(
                    "active_assignments",
                    len(active),
                    f"现任包保 {len(active)} 人（{'、'.join(active[:10])}）",
                    active[:10],
                )
            )
        if past:
            out.append(
                Holder(
                    "past_assignments",
                    len(past),
                    f"历史包保记录 {len(past)} 条（须保留）",
                    [],
                )
            )
    for table, column in refs:
        if table in ("issues", "assignments"):
            continue
        count = session.execute(
            text(f'SELECT count(*) FROM "{table}" WHERE "{column}" = :id'), {"id": feature_id}
        ).scalar()
        if count:
            out.append(Holder(f"{table}.{column}", count, f"{table} 中 {count} 条记录", []))
    return out


def delete_feature(session: Session, feature_id: int) -> None:
    """Deletes the feature (its places row; the layer row cascades) unless something holds it."""
    held = holders(session, feature_id)
    if held:
        raise FeatureHeld(held)
    session.execute(text("DELETE FROM places WHERE id = :id"), {"id": feature_id})
