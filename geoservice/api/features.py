"""OGC API – Features: landing page and the collection catalogue built from the registry."""

from __future__ import annotations

from flask import jsonify, url_for

from geoservice.api import bp
from geoservice.auth import can, permission_required
from geoservice.registry import layers


def _collection(spec) -> dict:
    return {
        "id": spec.collection,
        "title": spec.title,
        "description": spec.description,
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "links": [
            {
                "rel": "self",
                "type": "application/json",
                "href": url_for("api.collection", collection_id=spec.collection, _external=True),
            }
        ],
    }


@bp.get("")
def landing():
    return jsonify(
        {
            "title": "创文包保 GIS",
            "description": "网格、道路、农贸市场、居民小区与问题的 OGC API – Features 接口",
            "links": [
                {
                    "rel": "self",
                    "type": "application/json",
                    "href": url_for("api.landing", _external=True),
                },
                {
                    "rel": "data",
                    "type": "application/json",
                    "href": url_for("api.collections", _external=True),
                },
            ],
        }
    )


@bp.get("/collections")
@permission_required("layers.read")
def collections():
    return jsonify(
        {
            # A token scoped to some collections lists only those.
            "collections": [
                _collection(spec) for spec in layers() if can("layers.read", spec.collection)
            ],
            "links": [
                {
                    "rel": "self",
                    "type": "application/json",
                    "href": url_for("api.collections", _external=True),
                }
            ],
        }
    )


@bp.get("/collections/<collection_id>")
@permission_required("layers.read", collection_arg="collection_id")
def collection(collection_id: str):
    from geoservice.errors import ApiError

    spec = layers().by_collection(collection_id)
    if spec is None:
        raise ApiError(404, f"没有名为 {collection_id!r} 的图层集合", field="collectionId")
    return jsonify(_collection(spec))
