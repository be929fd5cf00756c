"""Issues: reporting (validation, attribution, relapse), duplicates and merging; the view of one
issue is in view.py, the queues, dispatch and re-attribution in queues.py.

Plain functions taking a session and plain values; the state machine itself is in workflow.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.areas import service_area
from geoservice.coords import COORD_SYSTEMS, to_wgs84
from geoservice.db import execute_prepared
from geoservice.input_values import shown, text_value, whole_number, within_service_years
from geoservice.issues import attribution, queues
from geoservice.issues.photos import PreparedPhoto, add_photos
from geoservice.issues.workflow import (
    IssueSettings,
    lock_issue,
    status_label,
)
from geoservice.models import Issue, IssueEvent, User
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, InvalidInput, NotFound
from geoservice.vocab import OPEN_STATUSES, SEVERITIES

MAX_DESCRIPTION = 2000
# How far in the future a client clock may be (reported_at) before we refuse it.
CLOCK_SKEW = timedelta(minutes=10)


DEFAULT_SEVERITY = 1  # 一般


@dataclass(frozen=True)
class Report:
    """A validated report: location in WGS-84 and the vocabulary checked."""

    lon: float
    lat: float
    category: str
    source: str
    description: str = ""
    severity: int = 1
    negative_list: bool = False
    reported_at: datetime | None = None
    coord_sys: str = "wgs84"
    input_lon: float | None = None
    input_lat: float | None = None


# --- input validation ----------------------------------------------------------------------


def _number(value: Any, field: str, label: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidInput(f"缺少{label}", field=field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{label}必须是数字，收到 {shown(value)}", field=field) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{label}必须是有限的数字", field=field)
    return number


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, ""):
        return False
    text_value = str(value).strip().lower()
    if text_value in ("1", "true", "yes", "on", "是"):
        return True
    if text_value in ("0", "false", "no", "off", "否"):
        return False
    raise InvalidInput(f"{field} 只能是 true 或 false，收到 {shown(value)}", field=field)


def parse_time(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{field} 不是 ISO 8601 时间（例如 2026-11-20T09:30:00+08:00）：{shown(value)}",
                field=field,
            ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field} 需带时区（例如 +08:00）", field=field)
    return parsed


def location_from(payload: Mapping[str, Any]) -> tuple[Any, Any]:
    """(lon, lat) from {"lon", "lat"} or a GeoJSON Feature/Point (`geometry`)."""
    geometry = payload.get("geometry")
    if payload.get("type") == "Point":
        geometry = payload
    if geometry is not None:
        if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
            raise InvalidInput("问题位置必须是 GeoJSON Point", field="geometry")
        coords = geometry.get("coordinates")
        if not isinstance(coords, list | tuple) or len(coords) not in (2, 3):
            raise InvalidInput("Point 的 coordinates 必须是 [经度, 纬度]", field="geometry")
        return coords[0], coords[1]
    return payload.get("lon"), payload.get("lat")


@dataclass(frozen=True)
class Spot:
    """A checked location: WGS-84 `lon`/`lat`, and the coordinates as sent."""

    lon: float
    lat: float
    coord_sys: str
    input_lon: float
    input_lat: float


def locate(raw_lon: Any, raw_lat: Any, raw_coord_sys: Any = None) -> Spot:
    """The report's checks of a location: numbers (field `lon`/`lat`), in range (field
    `geometry`; the message says longitude comes first, for swapped pairs), a known coordinate
    system; converted to WGS-84."""
    lon = _number(raw_lon, "lon", "经度")
    lat = _number(raw_lat, "lat", "纬度")
    if not in_range(lon, lat):
        raise InvalidInput(
            f"坐标超出范围：经度 {lon}、纬度 {lat}（经度 −180…180，纬度 −90…90；顺序为经度在前）",
            field="geometry",
        )
    coord_sys = str(raw_coord_sys or "wgs84").strip().lower()
    if coord_sys not in COORD_SYSTEMS:
        raise InvalidInput(
            f"不支持的坐标系 {coord_sys!r}，可选：wgs84（GPS/天地图）、gcj02（高德/腾讯）",
            field="coord_sys",
        )
    wlon, wlat = to_wgs84(lon, lat, coord_sys)
    return Spot(wlon, wlat, coord_sys, lon, lat)


def in_range(lon: float, lat: float) -> bool:
    return -180 <= lon <= 180 and -90 <= lat <= 90


def check_in_service_area(
    session: Session, registry: LayerRegistry, lon: float, lat: float
) -> None:
    """Refuses a WGS-84 point outside the service area (as a report there is refused)."""
    if not service_area.contains(session, lon, lat, registry):
        raise_outside_service_area(lon, lat)


def raise_outside_service_area(lon: float, lat: float) -> None:
    raise InvalidInput(
        "该位置不在本系统的服务范围内（辖区之外），请检查坐标或坐标系（coord_sys）",
        {"lon": lon, "lat": lat},
        "geometry",
    )


def validate_report(
    payload: Mapping[str, Any], settings: IssueSettings, now: datetime | None = None
) -> Report:
    """Checks a report's fields (flat mapping: the properties plus lon/lat or geometry)."""
    now = now or datetime.now(UTC)
    raw_lon, raw_lat = location_from(payload)
    spot = locate(raw_lon, raw_lat, payload.get("coord_sys"))
    category = text_value(payload.get("category"), "category", "问题类别").strip()
    if not category:
        raise InvalidInput("缺少问题类别", {"categories": list(settings.categories)}, "category")
    settings.check_category(category)
    source = text_value(payload.get("source"), "source", "问题来源").strip()
    if not source:
        raise InvalidInput("缺少问题来源", {"sources": list(settings.sources)}, "source")
    if source not in settings.sources:
        raise InvalidInput(
            f"问题来源「{source}」不在现行来源中（{'、'.join(settings.sources)}）",
            {"sources": list(settings.sources)},
            "source",
        )
    description = text_value(payload.get("description"), "description", "问题描述")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"问题描述不能超过 {MAX_DESCRIPTION} 字", field="description")
    severity_raw = payload.get("severity", DEFAULT_SEVERITY)
    try:
        severity = whole_number(
            severity_raw if severity_raw not in (None, "") else DEFAULT_SEVERITY
        )
    except ValueError:
        severity = -1
    if severity not in SEVERITIES:
        raise InvalidInput(
            f"严重程度只能是 {', '.join(f'{k}（{v}）' for k, v in SEVERITIES.items())}",
            field="severity",
        )
    reported_at = None
    if payload.get("reported_at") not in (None, ""):
        reported_at = parse_time(payload["reported_at"], "reported_at")
        if reported_at > now + CLOCK_SKEW:
            raise InvalidInput("上报时间不能晚于当前时间", field="reported_at")
        within_service_years(reported_at, "reported_at", "上报时间")
    return Report(
        lon=spot.lon,
        lat=spot.lat,
        category=category,
        source=source,
        description=description.strip(),
        severity=severity,
        negative_list=_bool(payload.get("negative_list"), "negative_list"),
        reported_at=reported_at,
        coord_sys=spot.coord_sys,
        input_lon=spot.input_lon,
        input_lat=spot.input_lat,
    )


def min_photos_for(report: Report, settings: IssueSettings) -> int:
    if report.source in settings.photo_optional_sources:
        return 0
    # A category's own photo rule (geoservice.ranking.vocabularies: category_min_photos) wins.
    return settings.category_min_photos.get(report.category, settings.report_min_photos)


# --- creating an issue ---------------------------------------------------------------------


# session.info key: {issue id: (events, photos)} of the issues reported in the session.
NEW_ISSUE_ROWS = "geoservice.new_issue_rows"
# session.info key: {issue id: duplicate candidates} found with the relapse check.
NEW_ISSUE_CANDIDATES = "geoservice.new_issue_candidates"


def create_issue(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    report: Report,
    reporter: User | None,
    photos: Sequence[PreparedPhoto] = (),
    now: datetime | None = None,
    candidates_for: User | None = None,
    with_candidates: bool = False,
) -> Issue:
    """Stores a report with its photos and report event, attributes it to its place and
    leader, and links it to the closed issue it is a relapse of. The caller commits.

    `with_candidates`: the duplicate candidates `candidates_for` may see are found by the
    relapse check's statement (one round trip for both) and kept for the view of the new issue
    (issue_view(new=True), session.info[NEW_ISSUE_CANDIDATES])."""
    now = now or datetime.now(UTC)
    reported_at = report.reported_at or now
    # One statement: the service-area check, the place attribution (with the fallback chain)
    # and 条块 routing by category (geoservice.issues.attribution, routing_rules).
    columns = attribution.attribution_at(
        session,
        registry,
        report.lon,
        report.lat,
        reported_at,
        settings.fallback,
        category=report.category,
        in_area_sql=service_area.contains_sql(registry),
    )
    if not columns.pop("in_area"):
        raise_outside_service_area(report.lon, report.lat)
    if len(photos) < min_photos_for(report, settings):
        raise InvalidInput(f"请至少上传 {min_photos_for(report, settings)} 张照片", field="photos")
    if photos and settings.store is None:
        raise RuntimeError("UPLOAD_DIR is not configured")
    # The relapse and duplicate checks before the INSERT (nothing of the new row is needed:
    # the report's point, category and time): the relapse link is then written with the row,
    # and its events with the report's, instead of an UPDATE and two more statements.
    near = NearPoint.of_report(report, reported_at)
    if with_candidates:
        relapse, candidates = _relapse_and_candidates(session, settings, near, candidates_for)
    else:
        relapse, candidates = _relapse(session, settings, near), []
    issue = Issue(
        geom=from_shape(Point(report.lon, report.lat), srid=4326),
        category=report.category,
        source=report.source,
        description=report.description,
        severity=report.severity,
        # 负面清单 categories (geoservice.ranking.vocabularies) are always on the negative list.
        negative_list=report.negative_list or report.category in settings.negative_list_categories,
        status="reported",
        reported_at=reported_at,
        reported_by_id=reporter.id if reporter else None,
        relapse_of_id=relapse.original_id if relapse is not None else None,
        **columns,
    )
    session.add(issue)
    session.flush()
    data: dict[str, Any] = {"action": "report"}
    if report.coord_sys != "wgs84":
        data["input"] = {
            "coord_sys": report.coord_sys,
            "lon": report.input_lon,
            "lat": report.input_lat,
        }
    event = IssueEvent(
        issue_id=issue.id,
        at=now,
        actor_id=issue.reported_by_id,
        from_status=None,
        to_status="reported",
        note=f"{report.source}上报",
        data=data,
    )
    events = [event]
    session.add(event)
    if relapse is not None:
        on_issue, on_original = relapse.events(issue, now)
        events.append(on_issue)
        session.add_all([on_issue, on_original])
    session.flush()
    rows = (
        add_photos(session, settings.store, issue.id, event.id, "before", photos) if photos else []
    )
    # The view of the new issue (issue_view(new=True)) takes its events and photos from here.
    session.info.setdefault(NEW_ISSUE_ROWS, {})[issue.id] = (events, rows)
    if with_candidates:
        session.info.setdefault(NEW_ISSUE_CANDIDATES, {})[issue.id] = candidates
    return issue


def preview_attribution(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    lon: float,
    lat: float,
    at: datetime,
) -> dict[str, Any]:
    """What reporting an issue at (lon, lat) (WGS-84) at `at` would attribute, stored nowhere:
    the service-area check and the columns of create_issue, described as in the issue view."""
    # The service-area check in the same statement, as a report's (one round trip less).
    stored = attribution.attribution_at(
        session,
        registry,
        lon,
        lat,
        at,
        settings.fallback,
        in_area_sql=service_area.contains_sql(registry),
    )
    if not stored.pop("in_area"):
        raise_outside_service_area(lon, lat)
    return {
        "at": _iso(at),
        "at_local": _local(at, settings),
        "primary_place_id": stored["primary_place_id"],
        "grid_id": stored["grid_id"],
        "leader_id": stored["leader_id"],
        "unit_id": stored["unit_id"],
        "attribution": attribution.describe(
            session,
            registry,
            stored["attribution"],
            stored["leader_id"],
            stored["unit_id"],
            _local(at, settings),
        ),
    }


# The issue's point and the metres per degree there, as query parameters: with constants the
# planner estimates the spatial condition cheaply (a join estimate costs more than the query).
POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
SCALE = (":mx", ":my")


@dataclass(frozen=True)
class NearPoint:
    """What the nearby-issue checks know of an issue: its point, category and report time,
    passed as values instead of joining `issues` by id (which visits every monthly partition,
    at planning and at execution); `id` is left out of the results (0: a report not yet
    stored, nothing to leave out)."""

    id: int
    lon: float
    lat: float
    category: str
    reported_at: datetime

    @classmethod
    def of_issue(cls, session: Session, issue_id: int) -> NearPoint:
        issue = session.get(Issue, issue_id)  # the identity map for a new issue: no query
        if issue is None:
            raise NotFound(f"没有编号为 {issue_id} 的问题", field="id")
        point = to_shape(issue.geom)
        return cls(issue.id, point.x, point.y, issue.category, issue.reported_at)

    @classmethod
    def of_report(cls, report: Report, reported_at: datetime) -> NearPoint:
        return cls(0, report.lon, report.lat, report.category, reported_at)

    def params(self) -> dict[str, Any]:
        mx, my = attribution.metres_per_degree(self.lat)
        return {
            "id": self.id,
            "lon": self.lon,
            "lat": self.lat,
            "mx": mx,
            "my": my,
            "category": self.category,
            "reported_at": self.reported_at,
        }


def _near(session: Session, issue: Issue | NearPoint) -> NearPoint:
    return issue if isinstance(issue, NearPoint) else NearPoint.of_issue(session, issue.id)


@dataclass(frozen=True)
class Relapse:
    """A report's relapse origin: the closed issue it repeats and how far apart they are."""

    original_id: int
    distance_m: Decimal

    def events(self, issue: Issue, now: datetime) -> tuple[IssueEvent, IssueEvent]:
        """The event on the relapse and the one on its original that say so."""
        return (
            IssueEvent(
                issue_id=issue.id,
                at=now,
                from_status=issue.status,
                to_status=issue.status,
                note=f"反弹：问题 #{self.original_id} 销号后在附近（{self.distance_m} 米）再次出现",
                data={
                    "action": "relapse",
                    "relapse_of": self.original_id,
                    "distance_m": float(self.distance_m),
                },
            ),
            IssueEvent(
                issue_id=self.original_id,
                at=now,
                from_status="closed",
                to_status="closed",
                note=f"已反弹：附近再次上报同类问题 #{issue.id}",
                data={"action": "relapsed", "relapse": issue.id},
            ),
        )


# The distance written in the relapse event: on the ellipsoid, to the decimetre.
RELAPSE_DISTANCE = f"round(ST_Distance(geom::geography, {POINT}::geography)::numeric, 1)"


def _relapse_ctes(near_from: str | None = None) -> str:
    """`relapse_near` and `relapse` (its one row: the original's id and point), for a WITH
    clause.
    Near first (the geometry index), then the other conditions on those few rows.
    `near_from`: a CTE of `_near_cte` to take the near rows from instead."""
    if near_from is not None:
        distance = attribution.distance_sql("n.geom", POINT, SCALE)
        near_rows = f"""relapse_near AS (
  SELECT n.id, n.geom, n.category, n.status, n.closed_at FROM {near_from} n
  WHERE {distance} <= :relapse_radius
)"""
    else:
        near = attribution.within_sql("o.geom", POINT, ":relapse_radius", SCALE)
        near_rows = f"""relapse_near AS MATERIALIZED (
  SELECT o.id, o.geom, o.category, o.status, o.closed_at FROM issues o WHERE {near} AND o.id <> :id
)"""
    return f"""{near_rows}, relapse AS (
  SELECT n.id, n.geom FROM relapse_near n
  WHERE n.category = :category AND n.status = 'closed'
    AND n.closed_at <= CAST(:reported_at AS timestamptz)
    AND n.closed_at >= CAST(:reported_at AS timestamptz) - make_interval(secs => :relapse_s)
  ORDER BY n.closed_at DESC, n.id DESC LIMIT 1
)"""


def _relapse_params(settings: IssueSettings) -> dict[str, Any]:
    return {
        "relapse_s": settings.relapse_window_days * 86400,
        "relapse_radius": settings.relapse_radius_m,
    }


def find_relapse_origin(
    session: Session, settings: IssueSettings, issue: Issue | NearPoint
) -> int | None:
    """The most recently closed issue of the same category within the relapse radius whose
    closing lies within the relapse window before this report."""
    found = _relapse(session, settings, _near(session, issue))
    return found.original_id if found is not None else None


def _relapse(session: Session, settings: IssueSettings, near: NearPoint) -> Relapse | None:
    row = session.execute(
        text(f"WITH {_relapse_ctes()} SELECT id, {RELAPSE_DISTANCE} FROM relapse"),
        {**_relapse_params(settings), **near.params()},
    ).first()
    return Relapse(row[0], row[1]) if row is not None else None


def _relapse_and_candidates(
    session: Session, settings: IssueSettings, issue: Issue | NearPoint, account: User | None
) -> tuple[Relapse | None, list[dict[str, Any]]]:
    """_relapse and duplicate_candidates(account=account) in one statement."""
    # One lookup of the issues near the point for both (planning a lookup in every monthly
    # partition cost more than running it), each then keeping its own radius.
    near, params = _near_cte(account)
    duplicates, _ = _duplicates_cte(account, near_from="near")
    # Prepared once per connection with a generic plan (index lookups whatever the point and
    # radii): planned for each point it cost 1–2 ms of planning for ~0.3 ms of execution. The
    # generic plan left to itself started two parallel workers for these few rows (~25 ms):
    # `generic` plans it without them.
    rows = execute_prepared(
        session,
        f"""
WITH {near}, {_relapse_ctes(near_from="near")}, {duplicates}
SELECT true AS relapse, id, NULL::text AS status, NULL::timestamptz AS reported_at,
       NULL::text AS description, NULL::integer AS leader_id, {RELAPSE_DISTANCE} AS distance_m,
       0 AS rank
FROM relapse
UNION ALL
SELECT false, id, status, reported_at, description, leader_id, distance_m, rank FROM duplicates
ORDER BY relapse DESC, rank""",
        {
            **_relapse_params(settings),
            **_duplicates_params(settings),
            "duplicate_limit": DUPLICATE_CANDIDATES_LIMIT,
            **_near(session, issue).params(),
            **params,
        },
        generic=True,
    ).all()
    relapse = Relapse(rows[0].id, rows[0].distance_m) if rows and rows[0].relapse else None
    return relapse, [_candidate_json(r) for r in rows if not r.relapse]


# --- duplicates ----------------------------------------------------------------------------


def duplicate_candidates(
    session: Session,
    settings: IssueSettings,
    issue_id: int,
    limit: int = 10,  # DUPLICATE_CANDIDATES_LIMIT
    account: User | None = None,
) -> list[dict[str, Any]]:
    """Open issues of the same category near this one (radius) reported within the window
    around it: possible duplicates, nearest first; only those `account` may see, if given."""
    duplicates, params = _duplicates_cte(account)
    rows = execute_prepared(  # as _relapse_and_candidates: 1.3 ms planned each time, 0.3 not
        session,
        f"WITH {duplicates} SELECT * FROM duplicates ORDER BY rank",
        {
            "duplicate_limit": limit,
            **_duplicates_params(settings),
            **NearPoint.of_issue(session, issue_id).params(),
            **params,
        },
        generic=True,
    ).all()
    return [_candidate_json(r) for r in rows]


DUPLICATE_CANDIDATES_LIMIT = 10


def _near_cte(account: User | None) -> tuple[str, dict[str, Any]]:
    """`near`: the issues (but :id) in the box covering the larger of the relapse and
    duplicate radii around the point (`box_sql`), with the columns both checks read and
    whether `account` may see them; with the parameters of `account`'s scope. Each check then
    keeps its rows within its own radius by the distance of `within_sql`, so exactly its own
    rows. (The distance is not computed here: its cost estimate made the planner start
    parallel workers for these few rows, ~30 ms.)"""
    visible, visible_params = ("true", {}) if account is None else scope.issue_sql(account, "o")
    box = attribution.box_sql(
        "o.geom", POINT, "greatest(:relapse_radius, :duplicate_radius)", SCALE
    )
    return (
        f"""near AS MATERIALIZED (
  SELECT o.id, o.geom, o.category, o.status, o.closed_at, o.reported_at, o.description,
         o.leader_id, o.duplicate_of_id, ({visible}) AS visible
  FROM issues o WHERE {box} AND o.id <> :id
)""",
        visible_params,
    )


def _duplicates_cte(
    account: User | None, near_from: str | None = None
) -> tuple[str, dict[str, Any]]:
    """`duplicates_near` and `duplicates` (at most :duplicate_limit rows, `rank` from the
    nearest), for a WITH clause; with the parameters of `account`'s scope. `near_from`: a CTE
    of `_near_cte` to take the near rows from instead (its parameters are the same)."""
    visible, visible_params = ("true", {}) if account is None else scope.issue_sql(account, "o")
    if near_from is not None:
        distance = attribution.distance_sql("n.geom", POINT, SCALE)
        near_rows = f"""duplicates_near AS (
  SELECT n.id, n.category, n.status, n.reported_at, n.description, n.leader_id,
         n.duplicate_of_id, round({distance}::numeric, 1) AS distance_m
  FROM {near_from} n WHERE {distance} <= :duplicate_radius AND n.visible
)"""
    else:
        near = attribution.within_sql("o.geom", POINT, ":duplicate_radius", SCALE)
        distance = attribution.distance_sql("o.geom", POINT, SCALE)
        near_rows = f"""duplicates_near AS MATERIALIZED (
  SELECT o.id, o.category, o.status, o.reported_at, o.description, o.leader_id,
         o.duplicate_of_id, round({distance}::numeric, 1) AS distance_m
  FROM issues o WHERE {near} AND o.id <> :id AND {visible}
)"""
    return (
        f"""{near_rows}, duplicates AS (
  SELECT n.id, n.status, n.reported_at, n.description, n.leader_id, n.distance_m,
         row_number() OVER (ORDER BY n.distance_m, n.reported_at) AS rank
  FROM duplicates_near n
  WHERE n.category = :category AND n.status = ANY(:open)
    AND n.duplicate_of_id IS NULL
    AND n.reported_at
        BETWEEN CAST(:reported_at AS timestamptz) - make_interval(secs => :duplicate_s)
            AND CAST(:reported_at AS timestamptz) + make_interval(secs => :duplicate_s)
  ORDER BY rank LIMIT :duplicate_limit
)""",
        visible_params,
    )


def _duplicates_params(settings: IssueSettings) -> dict[str, Any]:
    return {
        "duplicate_radius": settings.duplicate_radius_m,
        "duplicate_s": settings.duplicate_window_days * 86400,
        "open": list(OPEN_STATUSES),
    }


def _candidate_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "status": r.status,
        "status_label": status_label(r.status),
        "reported_at": r.reported_at.isoformat(),
        "description": r.description,
        "leader_id": r.leader_id,
        "distance_m": float(r.distance_m),
    }


MERGEABLE_STATUSES = ("reported", "accepted")


def merge_duplicate(
    session: Session,
    duplicate_id: int,
    master_id: int,
    actor: User | None,
    note: str = "",
    now: datetime | None = None,
) -> Issue:
    """Marks `duplicate_id` as a duplicate of `master_id`: it keeps its own record (and photos),
    points to the master and is closed as 不予立案（重复上报）; both get an event."""
    now = now or datetime.now(UTC)
    if duplicate_id == master_id:
        raise InvalidInput("不能把问题合并到它自己", field="into")
    # Lock both rows in id order so two merges never deadlock.
    locked = {i: lock_issue(session, i) for i in sorted((duplicate_id, master_id))}
    duplicate, master = locked[duplicate_id], locked[master_id]
    if duplicate.duplicate_of_id is not None:
        raise Conflict(
            f"问题 #{duplicate_id} 已合并到 #{duplicate.duplicate_of_id}",
            {"duplicate_of_id": duplicate.duplicate_of_id},
        )
    merged_in = session.scalars(
        select(Issue.id).where(Issue.duplicate_of_id == duplicate_id).order_by(Issue.id)
    ).all()
    if merged_in:  # it would leave them pointing at a closed duplicate
        listed = "、".join(f"#{i}" for i in merged_in)
        raise Conflict(
            f"已有问题（{listed}）合并到 #{duplicate_id}，它不能再作为重复合并；"
            f"请把 #{master_id} 合并到 #{duplicate_id}",
            {"duplicates": list(merged_in)},
        )
    if master.duplicate_of_id is not None:
        raise Conflict(
            f"问题 #{master_id} 本身是 #{master.duplicate_of_id} 的重复，请合并到 "
            f"#{master.duplicate_of_id}",
            {"duplicate_of_id": master.duplicate_of_id},
            "into",
        )
    if master.status not in OPEN_STATUSES:
        raise Conflict(
            f"问题 #{master_id} 状态为「{status_label(master.status)}」，只能合并到未办结的问题",
            {"status": master.status},
            "into",
        )
    if duplicate.status not in MERGEABLE_STATUSES:
        raise Conflict(
            f"问题 #{duplicate_id} 状态为「{status_label(duplicate.status)}」，"
            "只有尚未交办的问题（已上报、已立案）可以作为重复合并",
            {"status": duplicate.status, "mergeable": list(MERGEABLE_STATUSES)},
        )
    actor_id = actor.id if actor else None
    note = (note or "").strip()
    from_status = duplicate.status
    duplicate.duplicate_of_id = master.id
    duplicate.status = "rejected"
    session.add_all(
        [
            IssueEvent(
                issue_id=duplicate.id,
                at=now,
                actor_id=actor_id,
                from_status=from_status,
                to_status="rejected",
                note=f"重复上报，已并入问题 #{master.id}" + (f"：{note}" if note else ""),
                data={"action": "merge", "into": master.id},
            ),
            IssueEvent(
                issue_id=master.id,
                at=now,
                actor_id=actor_id,
                from_status=master.status,
                to_status=master.status,
                note=f"并入重复上报的问题 #{duplicate.id}" + (f"：{note}" if note else ""),
                data={"action": "merged", "duplicate": duplicate.id},
            ),
        ]
    )
    session.flush()
    return duplicate


# The queues, as callers know them (service.dispatch, service.unassigned_query …).
unassigned_query = queues.unassigned_query
count_unassigned = queues.count_unassigned
dispatch = queues.dispatch
overdue_query = queues.overdue_query
count_overdue = queues.count_overdue
ReattributionReport = queues.ReattributionReport
reattribute = queues.reattribute


# --- the view of one issue -----------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _local(value: datetime | None, settings: IssueSettings) -> str:
    return value.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if value else ""


def get_issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"没有编号为 {issue_id} 的问题", field="id")
    return issue
