"""The JSON API (OGC API – Features): blueprint `bp`, mounted at /api. An edge: parse the
request, call a service, render JSON. The OpenAPI document (openapi.py) is assembled from the
operations declared next to their routes (`@documented`, openapi_kit.py: /me, /users, /audit so
far; new endpoints do the same) and the families still listed in openapi_*.py.

May import: geoservice.edge, every domain package, plumbing; never web or cli."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.routing import BaseConverter

from geoservice.edge.access import catalogue, read_only_allow

bp = Blueprint("api", __name__, template_folder="templates")


class AreaCode(BaseConverter):
    """An area code in a URL: any path segment except `import`, which is POST /areas/import
    (so that path serves POST only, and its OPTIONS and 405 say so)."""

    regex = r"(?!import(?![^/]))[^/]+"


@bp.record_once
def _converters(state) -> None:  # before the routes below are added
    state.app.url_map.converters["areacode"] = AreaCode


@bp.after_request
def _read_only_options(response):
    """OPTIONS on a read-only collection's URL lists what it serves (not the generic writes
    every collection's routes accept and refuse with 405 for this one)."""
    collection_id = (request.view_args or {}).get("collection_id")
    if request.method == "OPTIONS" and collection_id is not None:
        coll = catalogue().get(collection_id)
        if coll is not None and not coll.writable:
            response.headers["Allow"] = read_only_allow()
    return response


from geoservice.api import (  # noqa: E402, F401  (register routes on bp)
    accounts,
    areas,
    attribution,
    audit,
    exports,
    extensions,
    features,
    imports,
    intake,
    issues,
    maps,
    notifications,
    openapi,
    publications,
    rankings,
    responsibility,
    returns,
    routing,
    tiles,
    vocabularies,
    writes,
)
