"""Small builders for constructed test layouts (coordinates in lon/lat, EPSG:4326)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, box
from sqlalchemy.orm import Session

from geoservice.models import Assignment, Issue, Leader, Place, Unit
from geoservice.registry import LayerRegistry

LAYERS = LayerRegistry.discover("layers")

# About 1 m in degrees near 33.8°N.
M_LAT = 1 / 111_000
M_LON = 1 / 92_500


def metres(x: float, y: float, lon0: float = 120.26, lat0: float = 33.78) -> tuple[float, float]:
    """A point x metres east and y metres north of (lon0, lat0)."""
    return lon0 + x * M_LON, lat0 + y * M_LAT


def rect(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    (a, b), (c, d) = metres(x0, y0), metres(x1, y1)
    return MultiPolygon([box(a, b, c, d)])


def line(*points_m: tuple[float, float]) -> MultiLineString:
    return MultiLineString([LineString([metres(x, y) for x, y in points_m])])


def add_feature(session: Session, layer: str, code: str, geom: Any, **attrs: Any) -> Place:
    model = LAYERS.get(layer).model
    feature = model(
        code=code, name=attrs.pop("name", code), geom=from_shape(geom, srid=4326), **attrs
    )
    session.add(feature)
    session.flush()
    return feature


def add_leader(session: Session, name: str, unit: str = "县城管局", level: str = "县级") -> Leader:
    unit_row = session.query(Unit).filter_by(name=unit).one_or_none()
    if unit_row is None:
        unit_row = Unit(name=unit)
        session.add(unit_row)
        session.flush()
    leader = Leader(name=name, title="局长", unit_id=unit_row.id, phone="13800000000", level=level)
    session.add(leader)
    session.flush()
    return leader


def assign(
    session: Session,
    leader: Leader,
    place: Place,
    valid_from: datetime,
    valid_to: datetime | None = None,
    role: str = "包保责任人",
    is_primary: bool = True,
) -> Assignment:
    row = Assignment(
        leader_id=leader.id,
        place_id=place.id,
        role=role,
        is_primary=is_primary,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    session.add(row)
    session.flush()
    return row


def add_issue(
    session: Session, x: float, y: float, reported_at: datetime, category: str = "环境卫生"
) -> Issue:
    issue = Issue(
        geom=from_shape(Point(*metres(x, y)), srid=4326),
        category=category,
        source="暗访督查",
        reported_at=reported_at,
    )
    session.add(issue)
    session.flush()
    return issue
