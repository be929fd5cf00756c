"""Vector tiles (MVT) of layers and issues, decoded with mapbox-vector-tile."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest

from geoservice.catalogue.tilegrid import FINEST_LEVEL
from geoservice.catalogue.tiles import AGGREGATE_MAX_ZOOM
from tests.api_support import assign, auth, insert_issue, insert_leader, insert_place
from tests.test_api_read import attrs_for, road_spec


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture
def viewer(db_session):
    return auth(db_session, "viewer")


def get_tile(client, headers, collection, z, lon, lat, query=""):
    x, y = tile_of(lon, lat, z)
    response = client.get(
        f"/api/collections/{collection}/tiles/{z}/{x}/{y}.pbf{query}", headers=headers
    )
    assert response.status_code == 200, response.get_data()[:300]
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(response.get_data())


def test_layer_tile_carries_properties_and_the_primary_leader(app, client, db_session, viewer):
    spec = road_spec(app)
    fid = insert_place(
        db_session,
        spec,
        "R1",
        "文昌路",
        "MULTILINESTRING((120.100 33.700, 120.102 33.701))",
        **attrs_for(spec),
    )
    leader = insert_leader(db_session, "张三", "城管局")
    assign(db_session, leader, fid, "道路长")
    layers_ = get_tile(client, viewer, spec.collection, 15, 120.101, 33.7005)
    (feature,) = layers_[spec.collection]["features"]
    assert feature["id"] == fid
    assert feature["properties"]["name"] == "文昌路"
    assert feature["properties"]["leader"] == "张三"
    assert feature["geometry"]["type"] in ("LineString", "MultiLineString")
    empty = get_tile(client, viewer, spec.collection, 15, 10.0, 10.0)
    assert not empty.get(spec.collection, {}).get("features")


def test_low_zoom_issue_tiles_are_aggregated_counts(client, db_session, viewer):
    for i in range(40):
        insert_issue(
            db_session,
            120.10 + (i % 8) * 0.001,
            33.70 + (i // 8) * 0.001,
            status="closed" if i % 4 == 0 else "reported",
        )
    for _ in range(5):
        insert_issue(db_session, 120.30, 33.80, status="dispatched")
    tile = get_tile(client, viewer, "issues", 8, 120.2, 33.75)
    features = tile["issues"]["features"]
    assert all(f["properties"]["cluster"] for f in features)
    assert sum(f["properties"]["count"] for f in features) == 45
    assert sum(f["properties"]["open"] for f in features) == 35
    assert 2 <= len(features) < 45  # nearby issues share a cell
    open_only = get_tile(client, viewer, "issues", 8, 120.2, 33.75, "?status=open")
    assert sum(f["properties"]["count"] for f in open_only["issues"]["features"]) == 35


def test_high_zoom_issue_tiles_are_the_issues_capped_open_first(
    app, client, db_session, viewer, monkeypatch
):
    leader = insert_leader(db_session, "李四")
    closed = [insert_issue(db_session, 120.1001, 33.7001, status="closed") for _ in range(3)]
    opened = [insert_issue(db_session, 120.1001, 33.7001, leader_id=leader) for _ in range(2)]
    z = AGGREGATE_MAX_ZOOM + 2
    tile = get_tile(client, viewer, "issues", z, 120.1001, 33.7001)
    features = tile["issues"]["features"]
    assert sorted(f["id"] for f in features) == sorted(closed + opened)
    by_id = {f["id"]: f["properties"] for f in features}
    assert by_id[opened[0]]["leader_id"] == leader
    assert by_id[closed[0]]["status"] == "closed"
    monkeypatch.setitem(app.config, "TILE_MAX_FEATURES", 2)
    # Never silently dropped: more issues than the cap are counted instead, also beyond the
    # finest tile counts and with a filter the counts cannot answer.
    far = FINEST_LEVEL + 1
    for query in ("", "?overdue=false"):
        counted = get_tile(client, viewer, "issues", far, 120.1001, 33.7001, query)
        features = counted["issues"]["features"]
        assert all(f["properties"]["cluster"] for f in features)
        assert sum(f["properties"]["count"] for f in features) == 5
    # More issues in the tile than the cap, at a zoom the tile counts cover: counts instead.
    dense = get_tile(client, viewer, "issues", z, 120.1001, 33.7001)["issues"]["features"]
    assert all(f["properties"]["cluster"] for f in dense)
    assert sum(f["properties"]["count"] for f in dense) == 5


def test_tile_errors_and_tilejson(app, client, viewer):
    spec = road_spec(app)
    assert (
        client.get(
            f"/api/collections/{spec.collection}/tiles/3/8/0.pbf", headers=viewer
        ).status_code
        == 404
    )
    assert (
        client.get("/api/collections/issues/tiles/3/1/1.pbf?colour=1", headers=viewer).status_code
        == 400
    )
    assert (
        client.get(
            f"/api/collections/{spec.collection}/tiles/3/1/1.pbf?status=open", headers=viewer
        ).status_code
        == 400
    )
    assert client.get("/api/collections/issues/tiles/3/1/1.pbf").status_code == 401
    body = client.get(f"/api/collections/{spec.collection}/tiles", headers=viewer).get_json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith(
        f"/api/collections/{spec.collection}/tiles/{{z}}/{{x}}/{{y}}.pbf"
    )
    assert body["vector_layers"][0]["id"] == spec.collection
    collection = client.get(f"/api/collections/{spec.collection}", headers=viewer).get_json()
    assert any(link["type"] == "application/vnd.mapbox-vector-tile" for link in collection["links"])
