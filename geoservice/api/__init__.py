"""The JSON API (OGC API – Features): blueprint `bp`, mounted at /api."""

from __future__ import annotations

from flask import Blueprint, current_app
from werkzeug.routing import BaseConverter

from geoservice.collections import Catalogue, build_catalogue
from geoservice.errors import ApiError
from geoservice.registry import layers

bp = Blueprint("api", __name__, template_folder="templates")


class AreaCode(BaseConverter):
    """An area code in a URL: any path segment except `import`, which is POST /areas/import
    (so that path serves POST only, and its OPTIONS and 405 say so)."""

    regex = r"(?!import(?![^/]))[^/]+"


@bp.record_once
def _converters(state) -> None:  # before the routes below are added
    state.app.url_map.converters["areacode"] = AreaCode


@bp.record_once
def _build_catalogue(state) -> None:
    app = state.app
    base = build_catalogue(layers(app), list(app.config["ISSUE_CATEGORIES"]))
    # Sites: one collection per kind, read from the database at request time (issue 15).
    from geoservice.api.assessment import site_catalogue

    app.extensions["geoservice.collections"] = site_catalogue(app, base)


@bp.after_request
def _read_only_options(response):
    """OPTIONS on a read-only collection's URL lists what it serves (not the generic writes
    every collection's routes accept and refuse with 405 for this one)."""
    from flask import request

    collection_id = (request.view_args or {}).get("collection_id")
    if request.method == "OPTIONS" and collection_id is not None:
        coll = catalogue().get(collection_id)
        if coll is not None and not coll.writable:
            from geoservice.api.access import read_only_allow

            response.headers["Allow"] = read_only_allow()
    return response


def catalogue(app=None) -> Catalogue:
    return (app or current_app).extensions["geoservice.collections"]


def collection_or_404(collection_id: str):
    collection = catalogue().get(collection_id)
    if collection is None:
        raise ApiError(
            404,
            f"没有名为 {collection_id!r} 的集合",
            {"collections": catalogue().ids},
            field="collectionId",
        )
    return collection


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
