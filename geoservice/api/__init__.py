"""The JSON API (OGC API – Features): blueprint `bp`, mounted at /api. An edge: parse the
request, call a service, render JSON; the OpenAPI document sits beside the routes (openapi*.py).

May import: geoservice.edge, every domain package, plumbing; never web or cli."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, template_folder="templates")


from geoservice.api import (  # noqa: E402, F401  (register routes on bp)
    accounts,
    areas,
    attribution,
    audit,
    exports,
    features,
    imports,
    issues,
    maps,
    openapi,
    rankings,
    responsibility,
    tiles,
    writes,
)
