"""Loads a generated demo county (geoservice.demo) into the database."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiLineString, MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from geoservice.demo import DemoCounty
from geoservice.issues.attribution import attribute_issues
from geoservice.models import AdminArea, Assignment, Leader, Place, Unit
from geoservice.registry import LayerRegistry, LayerSpec

ISSUE_BATCH = 50_000


def as_column_type(spec: LayerSpec, geom: BaseGeometry) -> BaseGeometry:
    """Promotes single geometries to multi when the layer's column is a multi type."""
    column_type = spec.geometry_column.geometry_type.upper()
    if column_type == "MULTIPOLYGON" and geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    if column_type == "MULTILINESTRING" and geom.geom_type == "LineString":
        return MultiLineString([geom])
    return geom


def analyze(session: Session, *tables: str) -> None:
    """Fresh planner statistics for `tables` (every table of the schema when none), counting
    the rows this transaction wrote: the seed is one transaction, which autovacuum cannot see
    into. Never a bare ANALYZE: that takes the shared catalogues too, and holds their locks
    until the seed commits, stalling every other database's ANALYZE in the cluster."""
    if not tables:
        tables = tuple(
            session.scalars(
                text(
                    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
                    " AND NOT c.relispartition ORDER BY 1"
                )
            )
        )
    session.execute(text("ANALYZE " + ", ".join(tables)))


def database_is_empty(session: Session) -> bool:
    return session.scalar(select(func.count()).select_from(Place)) == 0 and (
        session.scalar(select(func.count()).select_from(AdminArea)) == 0
    )


def load_demo(
    session: Session,
    registry: LayerRegistry,
    county: DemoCounty,
    progress: Callable[[str], None] = lambda _msg: None,
    photo_store: Any = None,
) -> dict[str, int]:
    """Inserts the county; the caller commits. Returns counts per kind. `photo_store`: where
    the demo's evaluation photos go (none: their files are not kept)."""
    counts: dict[str, int] = {}
    area_ids = _load_areas(session, county)
    counts["areas"] = len(area_ids)
    progress(f"行政区划 {len(area_ids)} 个")

    place_ids: dict[tuple[str, str], int] = {}
    for layer, features in county.features.items():
        if layer not in registry:
            continue
        place_ids.update(_load_features(session, registry.get(layer), features, area_ids))
        counts[layer] = len(features)
        progress(f"{registry.get(layer).title} {len(features)} 个")

    unit_ids = {}
    for unit in county.units:
        row = Unit(name=unit.name, is_lead=unit.is_lead)
        session.add(row)
        session.flush()
        unit_ids[unit.name] = row.id
    leader_ids = {}
    for leader in county.leaders:
        row = Leader(
            name=leader.name,
            title=leader.title,
            unit_id=unit_ids[leader.unit_name],
            phone=leader.phone,
            level=leader.level,
        )
        session.add(row)
        session.flush()
        leader_ids[leader.key] = row.id
    counts["units"], counts["leaders"] = len(unit_ids), len(leader_ids)

    rows = [
        {
            "leader_id": leader_ids[a.leader_key],
            "place_id": place_ids[(a.layer, a.code)],
            "role": a.role,
            "is_primary": a.is_primary,
            "valid_from": a.valid_from,
            "valid_to": a.valid_to,
        }
        for a in county.assignments
        if (a.layer, a.code) in place_ids
    ]
    if rows:
        session.execute(insert(Assignment), rows)
    counts["assignments"] = len(rows)
    progress(f"包保责任 {len(rows)} 条")
    # The whole load is one transaction, so autovacuum never sees these rows: without fresh
    # statistics the planner takes every table for empty and the attribution's joins and the
    # per-issue lookups of the 测评 step scan whole tables (hours at scale 100).
    analyze(session)

    counts["issues"] = _load_issues(session, registry, county.issues(), progress)
    # 点位 and 测评 (issue 15): kinds, sites, an example standards tree, two past rounds.
    from geoservice.assessment.demo import load_assessment_demo

    extra = load_assessment_demo(session, registry, county, progress, photo_store)
    counts["issues"] += extra.pop("issues", 0)  # failures of the mock evaluations
    counts.update(extra)
    # The triggers appended the tile counts in the issues' order; viewports read them by cell
    # (migration 0044).
    session.execute(text("CLUSTER issue_tile_counts USING ix_issue_tile_counts_key"))
    analyze(session, "issue_tile_counts")
    return counts


def _load_areas(session: Session, county: DemoCounty) -> dict[str, int]:
    ids: dict[str, int] = {}
    for area in [county.county, *county.streets, *county.communities]:
        row = AdminArea(
            level=area.level,
            code=area.code,
            name=area.name,
            parent_id=ids.get(area.parent_code) if area.parent_code else None,
            geom=from_shape(area.geom, srid=4326),
        )
        session.add(row)
        session.flush()
        ids[area.code] = row.id
    return ids


def _load_features(
    session: Session, spec: LayerSpec, features: Iterable[Any], area_ids: dict[str, int]
) -> dict[tuple[str, str], int]:
    features = list(features)
    if not features:
        return {}
    returned = session.execute(
        insert(Place).returning(Place.id, Place.code, sort_by_parameter_order=True),
        [{"layer": spec.name, "code": f.code, "name": f.name} for f in features],
    ).all()
    columns = spec.model.__table__.c
    rows = []
    for (place_id, _code), feature in zip(returned, features, strict=True):
        attrs = dict(feature.attrs)
        community_code = attrs.pop("community_code", None)
        if community_code is not None and "community_id" in columns:
            attrs["community_id"] = area_ids.get(community_code)
        row = {k: v for k, v in attrs.items() if k in columns}
        row["id"] = place_id
        row["geom"] = from_shape(as_column_type(spec, feature.geom), srid=4326)
        rows.append(row)
    session.execute(insert(spec.model.__table__), rows)
    return {(spec.name, code): place_id for place_id, code in returned}


ISSUE_COLUMNS = (
    "id",
    "geom",
    "category",
    "source",
    "description",
    "severity",
    "negative_list",
    "status",
    "reported_at",
    "deadline",
    "closed_at",
    "rework_count",
)
EVENT_COLUMNS = ("issue_id", "at", "from_status", "to_status", "note")


def _copy(session: Session, table: str, columns: tuple[str, ...], buffer: io.StringIO) -> None:
    buffer.seek(0)
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '')", buffer
        )


def _load_issues(
    session: Session, registry: LayerRegistry, issues: Iterable[Any], progress: Callable
) -> int:
    next_id = session.scalar(text("SELECT COALESCE(max(id), 0) + 1 FROM issues"))
    first_id = next_id
    total = 0

    def flush(issue_buf: io.StringIO, event_buf: io.StringIO, lo: int, hi: int) -> None:
        _copy(session, "issues", ISSUE_COLUMNS, issue_buf)
        _copy(session, "issue_events", EVENT_COLUMNS, event_buf)
        if lo == first_id:  # statistics for the attribution's plan (see load_demo)
            analyze(session, "issues", "issue_events")
        # Neither statement changes a column the tile counts, facets or days roll up: the
        # UPDATE trigger of issues (migration 0051) finds no changed row for them.
        attribute_issues(session, registry, lo, hi)
        _dispatch_unassigned_by_hand(session, lo, hi)

    issue_buf, event_buf = io.StringIO(), io.StringIO()
    issue_csv, event_csv = csv.writer(issue_buf), csv.writer(event_buf)
    batch_start = next_id
    for issue in issues:
        issue_csv.writerow(
            (
                next_id,
                f"SRID=4326;POINT({issue.lon:.7f} {issue.lat:.7f})",
                issue.category,
                issue.source,
                issue.description,
                issue.severity,
                "t" if issue.negative_list else "f",
                issue.status,
                issue.reported_at.isoformat(),
                issue.deadline.isoformat() if issue.deadline else "",
                issue.closed_at.isoformat() if issue.closed_at else "",
                issue.rework_count,
            )
        )
        for event in issue.events:
            event_csv.writerow(
                (
                    next_id,
                    event.at.isoformat(),
                    event.from_status or "",
                    event.to_status,
                    event.note,
                )
            )
        next_id += 1
        total += 1
        if next_id - batch_start >= ISSUE_BATCH:
            flush(issue_buf, event_buf, batch_start, next_id - 1)
            progress(f"问题 {total} 件")
            issue_buf, event_buf = io.StringIO(), io.StringIO()
            issue_csv, event_csv = csv.writer(issue_buf), csv.writer(event_buf)
            batch_start = next_id
    if next_id > batch_start:
        flush(issue_buf, event_buf, batch_start, next_id - 1)
    if total:
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('issues', 'id'), :v)"), {"v": next_id - 1}
        )
        analyze(session, "issues", "issue_events")
    progress(f"问题 {total} 件（编号 {first_id}–{next_id - 1}）")
    return total


def _dispatch_unassigned_by_hand(session: Session, lo: int, hi: int) -> None:
    """Demo issues that went past 立案 although their primary place had no leader were, in the
    story the data tells, dispatched by hand by a planner: to the leader of the next place that
    claimed the point, else to a leader of the lead unit (牵头单位). Recorded as the workflow
    records a manual dispatch."""
    session.execute(
        text(
            """
UPDATE issues i SET
  leader_id = pick.leader_id,
  unit_id = pick.unit_id,
  attribution = i.attribution || jsonb_build_object('manual', jsonb_build_object(
    'leader_id', pick.leader_id, 'by', NULL, 'at', pick.dispatched_at))
FROM (
  SELECT c.id, l.id AS leader_id, l.unit_id,
         (SELECT min(e.at) FROM issue_events e
          WHERE e.issue_id = c.id AND e.to_status = 'dispatched') AS dispatched_at
  FROM issues c
  LEFT JOIN LATERAL (
    SELECT (p ->> 'leader_id')::int AS leader_id
    FROM jsonb_array_elements(c.attribution -> 'places') WITH ORDINALITY AS a(p, n)
    WHERE p ->> 'leader_id' IS NOT NULL ORDER BY n LIMIT 1
  ) first ON true
  JOIN leaders l ON l.id = COALESCE(first.leader_id, (
    SELECT ld.id FROM leaders ld JOIN units u ON u.id = ld.unit_id
    WHERE u.is_lead AND ld.active ORDER BY ld.id LIMIT 1))
  WHERE c.id BETWEEN :lo AND :hi AND c.leader_id IS NULL
    AND c.status NOT IN ('reported', 'accepted', 'rejected')
) pick
WHERE i.id = pick.id
"""
        ),
        {"lo": lo, "hi": hi},
    )
