"""Low-zoom layer tiles from layer_feature_boxes (migration 0035): the same features and folded
counts as when every feature's geometry is read, and never a stale tile after a write."""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from geoservice.assessment.catalogue import SiteLayerSpec
from geoservice.catalogue import tiles
from geoservice.registry import layers
from tests.api_support import auth, insert_place
from tests.test_api_read import attrs_for, polygon_spec, road_spec
from tests.test_api_tiles import tile_of

CENTRE = (120.3, 33.65)


@pytest.fixture
def viewer(db_session):
    return auth(db_session, "viewer")


def square(x0: float, y0: float, side: float) -> str:
    return (
        f"MULTIPOLYGON((({x0} {y0}, {x0 + side} {y0}, {x0 + side} {y0 + side},"
        f" {x0} {y0 + side}, {x0} {y0})))"
    )


def build_layer(db_session, spec) -> list[int]:
    """Polygons from 2 m to 20 km across around CENTRE: at z6–z12 some are drawn, some folded
    under a pixel, some folded for the feature budget (monkeypatched low)."""
    ids = []
    for i in range(60):
        side = 0.00002 * 1.17**i  # 2 m … 22 km
        angle = i * 2.4
        x0 = CENTRE[0] + 0.25 * math.cos(angle) * (i / 60)
        y0 = CENTRE[1] + 0.2 * math.sin(angle) * (i / 60)
        ids.append(
            insert_place(
                db_session, spec, f"B{i}", f"块{i}", square(x0, y0, side), **attrs_for(spec)
            )
        )
    return ids


def fill_layer(db_session, spec) -> None:
    """Lines from 3 m to 30 km (some crossing tile edges) for a line layer, else build_layer's
    polygons."""
    if "LineString" not in spec.geometry_types:
        build_layer(db_session, spec)
        return
    for i in range(40):
        length = 0.00003 * 1.2**i
        x0, y0 = CENTRE[0] - 0.2 + 0.01 * i, CENTRE[1] - 0.1 + 0.005 * i
        insert_place(
            db_session,
            spec,
            f"L{i}",
            f"路{i}",
            f"MULTILINESTRING(({x0} {y0}, {x0 + length} {y0 + length / 3}))",
            **attrs_for(spec),
        )


def decoded(client, headers, collection: str, z: int, query: str = "") -> tuple[list, list]:
    """The tile's features (id, geometry, properties) and folded points (geometry, count)."""
    x, y = tile_of(*CENTRE, z)
    response = client.get(
        f"/api/collections/{collection}/tiles/{z}/{x}/{y}.pbf{query}", headers=headers
    )
    assert response.status_code == 200
    tile = mapbox_vector_tile.decode(response.get_data())
    features = sorted(
        (f["id"], repr(f["geometry"]), tuple(sorted(f["properties"].items())))
        for f in tile.get(collection, {}).get("features", [])
    )
    folded = sorted(
        (repr(f["geometry"]), f["properties"]["count"])
        for f in tile.get(f"{collection}_folded", {}).get("features", [])
    )
    return features, folded


def test_every_generalisable_layer_keeps_its_boxes(app, db_session):
    for spec in layers(app):
        if any(t.endswith(("Polygon", "LineString")) for t in spec.geometry_types):
            assert tiles._boxed(db_session, spec.table), spec.table


@pytest.mark.parametrize("pick", [polygon_spec, road_spec])
def test_boxed_tiles_draw_and_fold_exactly_what_reading_every_geometry_did(
    app, client, db_session, viewer, monkeypatch, pick
):
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)
    monkeypatch.setattr(tiles, "LOW_DETAIL_MAX_FEATURES", 12)
    spec = pick(app)
    fill_layer(db_session, spec)
    style = spec.style_by[0] if spec.style_by else None
    queries = [""] + ([f"?{style}={next(iter(spec.style_by[1]))}"] if style else [])
    drawn_and_folded = set()
    for z in (4, 6, 8, 9, 10, 11, 12):
        for query in queries:
            boxed = decoded(client, viewer, spec.collection, z, query)
            with monkeypatch.context() as every_geometry:
                every_geometry.setattr(tiles, "_boxed", lambda session, table: False)
                read = decoded(client, viewer, spec.collection, z, query)
            assert boxed == read, (z, query)
            drawn_and_folded.add((bool(boxed[0]), bool(boxed[1])))
    assert (True, True) in drawn_and_folded  # some tiles both draw and fold


def test_boxes_follow_inserts_moves_and_deletes_and_tiles_are_never_stale(
    app, client, db_session, viewer, monkeypatch
):
    spec = polygon_spec(app)
    boxes = "SELECT id, x0, y0, x1, y1 FROM layer_feature_boxes WHERE layer = :t ORDER BY id"
    fresh = (
        "SELECT id, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)"
        f" FROM (SELECT id, Box2D(geom) AS b FROM {spec.table}) s WHERE b IS NOT NULL ORDER BY id"
    )

    def agree() -> None:
        got = db_session.execute(text(boxes), {"t": spec.table}).all()
        assert got == db_session.execute(text(fresh)).all()

    ids = build_layer(db_session, spec)
    agree()
    z = 8
    features, folded = decoded(client, viewer, spec.collection, z)  # the worker's cache on
    total = len(features) + sum(count for _, count in folded)
    # Move the biggest polygon far away (an edit): the next request draws without it.
    big = ids[-1]
    assert big in [f[0] for f in features]
    db_session.execute(
        text(f"UPDATE {spec.table} SET geom = ST_Translate(geom, 30, 0) WHERE id = :id"),
        {"id": big},
    )
    agree()
    features, folded = decoded(client, viewer, spec.collection, z)
    assert big not in [f[0] for f in features]
    assert len(features) + sum(count for _, count in folded) == total - 1
    # An import (many rows in one statement): all of them are counted at once.
    db_session.execute(
        text(
            "INSERT INTO places (layer, code, name)"
            " SELECT :layer, 'I' || g, '导入' || g FROM generate_series(1, 25) g"
        ),
        {"layer": spec.name},
    )
    attrs = attrs_for(spec)
    columns = "".join(f", {name}" for name in attrs)
    values = "".join(f", :{name}" for name in attrs)
    db_session.execute(
        text(
            f"INSERT INTO {spec.table} (id, geom{columns})"
            f" SELECT p.id, ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:x + p.id % 25 * 0.004,"
            f" :y), 4326), 0.0001)){values} FROM places p WHERE p.code LIKE 'I%'"
        ),
        {"x": CENTRE[0], "y": CENTRE[1], **attrs},
    )
    agree()
    features, folded = decoded(client, viewer, spec.collection, z)
    assert len(features) + sum(count for _, count in folded) == total - 1 + 25
    # Deletes (through places, cascading): gone from the boxes and from the next tile.
    db_session.execute(text("DELETE FROM places WHERE code LIKE 'I%' OR id = :id"), {"id": ids[0]})
    agree()
    features, folded = decoded(client, viewer, spec.collection, z)
    assert len(features) + sum(count for _, count in folded) == total - 2
    # An empty geometry has no box: neither drawn nor counted, by either query.
    db_session.execute(
        text(f"UPDATE {spec.table} SET geom = 'SRID=4326;MULTIPOLYGON EMPTY' WHERE id = :id"),
        {"id": ids[1]},
    )
    agree()
    features, folded = decoded(client, viewer, spec.collection, z)
    assert len(features) + sum(count for _, count in folded) == total - 3
    with monkeypatch.context() as every_geometry:
        every_geometry.setattr(tiles, "_boxed", lambda session, table: False)
        every_geometry.setitem(app.config, "TILE_CACHE_BYTES", 0)  # rendered again
        assert decoded(client, viewer, spec.collection, z) == (features, folded)
    # An attribute edit only: the boxes stay as they are (no rewrite), the tile follows.
    if spec.style_by is not None:
        name, values = spec.style_by
        last = list(values)[-1]
        db_session.execute(
            text(f"UPDATE {spec.table} SET {name} = :v WHERE id = :id"), {"v": last, "id": ids[-2]}
        )
        agree()
        features, _ = decoded(client, viewer, spec.collection, z)
        assert (name, last) in {f[0]: f[2] for f in features}[ids[-2]]


def point_spec(app):
    """A layer that mixes points with polygons (not sites: theirs need a kind)."""
    return next(
        s
        for s in layers(app)
        if {"Point", "Polygon"} <= set(s.geometry_types) and not isinstance(s, SiteLayerSpec)
    )


def test_a_tile_with_more_points_than_its_budget_folds_the_densest_cells(
    app, client, db_session, viewer, monkeypatch
):
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)
    monkeypatch.setattr(tiles, "LOW_DETAIL_MAX_FEATURES", 12)
    spec = point_spec(app)
    z = 9
    x, y = tile_of(*CENTRE, z)
    west, east = tiles.tile_lon(x, z), tiles.tile_lon(x + 1, z)
    north, south = tiles.tile_lat(y, z), tiles.tile_lat(y + 1, z)
    width, height = east - west, north - south
    # A cluster of 30 points within ~50 m, 6 points far apart, one big polygon, all in the tile.
    for i in range(30):
        px, py = west + 0.5 * width + 0.0001 * (i % 6), south + 0.5 * height + 0.0001 * (i // 6)
        insert_place(db_session, spec, f"C{i}", f"密{i}", f"POINT({px} {py})", **attrs_for(spec))
    lone = [
        insert_place(
            db_session,
            spec,
            f"S{i}",
            f"疏{i}",
            f"POINT({west + (0.1 + 0.15 * i) * width} {south + 0.8 * height})",
            **attrs_for(spec),
        )
        for i in range(6)
    ]
    big = insert_place(
        db_session,
        spec,
        "P",
        "大",
        square(west + 0.1 * width, south + 0.1 * height, 0.2 * height),
        **attrs_for(spec),
    )
    boxed = decoded(client, viewer, spec.collection, z)
    with monkeypatch.context() as every_geometry:
        every_geometry.setattr(tiles, "_boxed", lambda session, table: False)
        assert decoded(client, viewer, spec.collection, z) == boxed
    features, folded = boxed
    drawn = {f[0] for f in features}
    # The polygon and the lone points are drawn; the cluster (one or two cells) is counted.
    assert big in drawn and set(lone) <= drawn
    assert len(drawn) <= 12
    assert sum(count for _, count in folded) == 30
    assert len(features) + sum(count for _, count in folded) == 37
    # Under the budget, every point is drawn as before.
    monkeypatch.setattr(tiles, "LOW_DETAIL_MAX_FEATURES", 4000)
    features, folded = decoded(client, viewer, spec.collection, z)
    assert len(features) == 37 and folded == []
