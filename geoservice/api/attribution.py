"""`GET /api/attribution?lon=…&lat=…[&at=…][&coord_sys=…]`: who answers for a spot before an
issue exists — exactly what reporting an issue there would attribute (the report path's own
checks and attribution, `issues.preview_attribution`).

Who may ask: whoever may report (reporting is not limited to the account's area, and a report
would tell the same), or, for accounts that may only read assignments, spots whose issue they
would see (elsewhere: 404, as for an unknown id). Leaders' phone numbers only for accounts that
may read assignments."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import jsonify
from sqlalchemy import BigInteger, Integer, func, literal, select
from sqlalchemy.orm import Session

from geoservice.accounts import scope
from geoservice.accounts.auth import can, current_account, require
from geoservice.api import bp
from geoservice.db import get_session
from geoservice.edge.issues import COLLECTION, settings
from geoservice.edge.params import single_args
from geoservice.errors import ApiError
from geoservice.issues import attribution
from geoservice.issues import issues as service
from geoservice.registry import layers
from geoservice.service_errors import InvalidInput

PARAMETERS = ("lon", "lat", "at", "coord_sys")


def _allowed() -> bool:
    """Whoever may report an issue (and so learn this by reporting) or read assignments; True
    when the answer must stay within what the account may see (it may not report)."""
    if can("issues.report", COLLECTION):
        return False
    if not can("assignments.read"):
        require("issues.report", COLLECTION)
    return True


def _would_see(session: Session, lon: float, lat: float, body: dict) -> bool:
    """Would the caller see an issue reported here (the issues' own scope rule)?"""
    spot = select(
        func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326).label("geom"),
        literal(body["leader_id"], Integer).label("leader_id"),
        literal(body["primary_place_id"], BigInteger).label("primary_place_id"),
        literal(body["grid_id"], BigInteger).label("grid_id"),
        literal(None, Integer).label("reported_by_id"),
    ).subquery("i")
    return bool(session.scalar(select(scope.issue_filter(current_account(), spot))))


def _spot(args: dict[str, str]) -> service.Spot:
    """The report's location checks. Query parameters that are missing, not numbers or out of
    range are a 400; a pair that is only valid the other way round (swapped) gets the report's
    422 and message."""
    try:
        return service.locate(args.get("lon"), args.get("lat"), args.get("coord_sys"))
    except InvalidInput as exc:
        if exc.field != "geometry":
            raise ApiError(400, exc.error, exc.detail, exc.field) from None
        lon, lat = float(args["lon"]), float(args["lat"])
        if service.in_range(lat, lon):
            raise
        field = "lon" if not -180 <= lon <= 180 else "lat"
        raise ApiError(400, exc.error, exc.detail, field) from None


def _at(raw: str | None) -> datetime:
    now = datetime.now(UTC)
    if raw in (None, ""):
        return now
    try:
        at = service.parse_time(raw, "at")
    except InvalidInput as exc:
        raise ApiError(400, exc.error, exc.detail, exc.field) from None
    if at > now + service.CLOCK_SKEW:
        raise ApiError(400, "上报时间不能晚于当前时间", field="at")
    return at


@bp.get("/attribution")
def point_attribution():
    within_scope = _allowed()
    args = single_args(PARAMETERS)
    spot = _spot(args)
    at = _at(args.get("at"))
    session = get_session()
    body = service.preview_attribution(session, layers(), settings(), spot.lon, spot.lat, at)
    if within_scope and not _would_see(session, spot.lon, spot.lat, body):
        raise ApiError(404, "该位置不在您的查看范围内", field="lon")
    if not can("assignments.read"):
        attribution.without_phones(body["attribution"])
    point = {"type": "Point", "coordinates": [spot.lon, spot.lat]}
    body = {"point": point, **body}
    if spot.coord_sys != "wgs84":
        body["input"] = {"coord_sys": spot.coord_sys, "lon": spot.input_lon, "lat": spot.input_lat}
    return jsonify(body)
