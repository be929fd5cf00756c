"""The JSON API (OGC API – Features): blueprint `bp`, mounted at /api."""

from __future__ import annotations

from flask import Blueprint, current_app

from geoservice.catalogue.catalogue import Catalogue, build_catalogue
from geoservice.errors import ApiError
from geoservice.registry import layers

bp = Blueprint("api", __name__, template_folder="templates")


@bp.record_once
def _build_catalogue(state) -> None:
    app = state.app
    app.extensions["geoservice.catalogue.catalogue"] = build_catalogue(
        layers(app), list(app.config["ISSUE_CATEGORIES"])
    )


def catalogue(app=None) -> Catalogue:
    return (app or current_app).extensions["geoservice.catalogue.catalogue"]


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
