"""Helpers for the 包保 tests: places of any layer, leaders, accounts with API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from geoservice.accounts.auth import create_user, issue_token
from geoservice.models import Leader, Place, Unit
from tests.factories import LAYERS, add_feature, line, metres, rect

TZ = ZoneInfo("Asia/Shanghai")


def day(text: str) -> datetime:
    """Midnight of a date in Beijing time (the app's default TIMEZONE)."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def sample_geometry(layer: str, x: float = 0.0, y: float = 0.0) -> BaseGeometry:
    """A small feature of the layer's geometry kind, x/y metres from the origin."""
    kinds = set(LAYERS.get(layer).geometry_types)
    if kinds & {"Polygon", "MultiPolygon"}:
        return rect(x, y, x + 200, y + 200)
    if kinds & {"LineString", "MultiLineString"}:
        return line((x, y), (x + 300, y + 100))
    return Point(*metres(x, y))


def add_place(
    session: Session,
    layer: str,
    code: str,
    name: str | None = None,
    geom: BaseGeometry | None = None,
    **attrs: Any,
) -> Place:
    """A feature of any layer; required attributes get their first allowed value."""
    for attribute in LAYERS.get(layer).attributes:
        if attribute.required and attribute.name not in attrs:
            attrs[attribute.name] = attribute.choices[0] if attribute.choices else "x"
    geom = geom if geom is not None else sample_geometry(layer)
    return add_feature(session, layer, code, geom, name=name or code, **attrs)


def add_unit(session: Session, name: str, is_lead: bool = False) -> Unit:
    unit = Unit(name=name, is_lead=is_lead)
    session.add(unit)
    session.flush()
    return unit


def add_person(
    session: Session, name: str, unit: Unit | None = None, level: str = "县级", **kw: Any
) -> Leader:
    leader = Leader(name=name, title=kw.pop("title", "局长"), unit=unit, level=level, **kw)
    session.add(leader)
    session.flush()
    return leader


def token_headers(session: Session, role: str, leader: Leader | None = None) -> dict[str, str]:
    """Authorization headers of a new account with `role` (bound to `leader` if given)."""
    username = f"{role}-{leader.id if leader else 'none'}"
    user = create_user(session, username, role, leader_id=leader.id if leader else None)
    return {"Authorization": f"Bearer {issue_token(session, user)}"}
