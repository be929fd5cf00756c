"""Open311 GeoReport v2 at /open311/v2 (stub, filled below)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("open311", __name__)
