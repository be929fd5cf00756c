"""The JSON API (OGC API – Features): blueprint `bp`, mounted at /api."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from geoservice.api import features, issues  # noqa: E402, F401  (registers routes on bp)
