"""`GET /api/attribution?lon=…&lat=…[&at=…][&coord_sys=…]`: who answers for a spot before an
issue exists — exactly what reporting an issue there would attribute (the report path's own
checks and attribution, `issues.preview_attribution`)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import jsonify

from geoservice import issues as service
from geoservice.api import bp
from geoservice.api.issues import COLLECTION, settings
from geoservice.api.params import single_args
from geoservice.auth import can, require
from geoservice.db import get_session
from geoservice.errors import ApiError
from geoservice.registry import layers
from geoservice.service_errors import InvalidInput

PARAMETERS = ("lon", "lat", "at", "coord_sys")


def _allowed() -> None:
    """Whoever may report an issue (and so learn this by reporting) or read assignments."""
    if not (can("issues.report", COLLECTION) or can("assignments.read")):
        require("issues.report", COLLECTION)


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
    _allowed()
    args = single_args(PARAMETERS)
    spot = _spot(args)
    at = _at(args.get("at"))
    body = service.preview_attribution(get_session(), layers(), settings(), spot.lon, spot.lat, at)
    point = {"type": "Point", "coordinates": [spot.lon, spot.lat]}
    body = {"point": point, **body}
    if spot.coord_sys != "wgs84":
        body["input"] = {"coord_sys": spot.coord_sys, "lon": spot.input_lon, "lat": spot.input_lat}
    return jsonify(body)
