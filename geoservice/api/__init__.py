"""The JSON API (OGC API – Features): blueprint `bp`, mounted at /api."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from geoservice.api import (  # noqa: E402, F401  (routes on bp)
    accounts,
    areas,
    audit,
    features,
    rankings,
    responsibility,
)
