"""The JSON API (OGC API – Features): blueprint `bp`, mounted at /api."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from geoservice.api import features, rankings  # noqa: E402, F401  (register routes on bp)
