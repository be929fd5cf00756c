"""Low-zoom layer tiles from layer_feature_tiles (migration 0050): the drawn features come ready
from their home tile's rows — the same bytes as computing each one, and never a stale shape or
attribute after an edit."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from geoservice.catalogue import tiles
from geoservice.catalogue.tilegrid import tile_lat
from geoservice.registry import layers
from tests.api_support import auth, insert_place
from tests.test_api_read import attrs_for, polygon_spec, road_spec
from tests.test_api_tiles import tile_of
from tests.test_layer_feature_boxes import CENTRE, build_layer, decoded, fill_layer, square

ZOOMS = (6, 8, 9, 10, 11, 12)


@pytest.fixture
def viewer(db_session):
    return auth(db_session, "viewer")


def raw_tile(client, headers, collection: str, z: int) -> bytes:
    x, y = tile_of(*CENTRE, z)
    response = client.get(f"/api/collections/{collection}/tiles/{z}/{x}/{y}.pbf", headers=headers)
    assert response.status_code == 200
    return response.get_data()


def computed(monkeypatch, render):
    """`render()` with every drawn feature looked up and computed (no home rows read)."""
    with monkeypatch.context() as every_feature:
        every_feature.setattr(tiles, "_tiled", lambda session, table: False)
        return render()


def home_rows(db_session, table: str, feature: int) -> list:
    return db_session.execute(
        text(
            "SELECT z, x, y, ST_AsText(geom), attrs FROM layer_feature_tiles"
            " WHERE layer = :t AND id = :id ORDER BY z"
        ),
        {"t": table, "id": feature},
    ).all()


def test_every_boxed_layer_keeps_its_features_ready(app, db_session):
    for spec in layers(app):
        if any(t.endswith(("Polygon", "LineString")) for t in spec.geometry_types):
            assert tiles._tiled(db_session, spec.table), spec.table


def test_the_tolerance_function_is_the_python_formula(db_session):
    for z in range(13):
        for y in (0, 2**z // 3, 2**z // 2 - 1, 2**z - 1):
            python = 360.0 / 2**z / 256 * math.cos(math.radians(tile_lat(y + 0.5, z))) / 2
            sql = db_session.execute(
                text("SELECT low_detail_tolerance(:z, :y)"), {"z": z, "y": y}
            ).scalar()
            assert sql == pytest.approx(python, rel=1e-12)


@pytest.mark.parametrize("pick", [polygon_spec, road_spec])
def test_ready_features_give_the_same_bytes_as_computing_each(
    app, client, db_session, viewer, monkeypatch, pick
):
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)
    monkeypatch.setattr(tiles, "LOW_DETAIL_MAX_FEATURES", 12)
    spec = pick(app)
    fill_layer(db_session, spec)
    ready = 0
    for z in ZOOMS:
        x, y = tile_of(*CENTRE, z)
        ready += db_session.execute(
            text(
                "SELECT count(*) FROM layer_feature_tiles"
                " WHERE layer = :t AND z = :z AND x = :x AND y = :y"
            ),
            {"t": spec.table, "z": z, "x": x, "y": y},
        ).scalar()
        tile = raw_tile(client, viewer, spec.collection, z)
        assert tile == computed(
            monkeypatch, lambda z=z: raw_tile(client, viewer, spec.collection, z)
        )
    assert ready > 0  # some drawn features did come from their home rows


def test_tiles_read_the_home_rows(app, client, db_session, viewer, monkeypatch):
    """The rows are what the tile draws (so the equality above compares two paths): a home
    row altered behind the triggers' back shows in the tile, not in the computed one."""
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)
    spec = polygon_spec(app)
    build_layer(db_session, spec)
    z = 10
    x, y = tile_of(*CENTRE, z)
    home = set(
        db_session.execute(
            text(
                "SELECT id FROM layer_feature_tiles"
                " WHERE layer = :t AND z = :z AND x = :x AND y = :y"
            ),
            {"t": spec.table, "z": z, "x": x, "y": y},
        ).scalars()
    )
    drawn = {f[0] for f in decoded(client, viewer, spec.collection, z)[0]}
    feature = min(home & drawn)
    db_session.execute(
        text(
            "UPDATE layer_feature_tiles SET geom = 'POLYGON((1 1, 9 1, 9 9, 1 9, 1 1))'"
            " WHERE layer = :t AND id = :id AND z = :z"
        ),
        {"t": spec.table, "id": feature, "z": z},
    )
    served = {f[0]: f[1] for f in decoded(client, viewer, spec.collection, z)[0]}
    every = computed(
        monkeypatch,
        lambda: {f[0]: f[1] for f in decoded(client, viewer, spec.collection, z)[0]},
    )
    assert served[feature] != every[feature]
    assert {k: v for k, v in served.items() if k != feature} == {
        k: v for k, v in every.items() if k != feature
    }


def test_an_edited_feature_shows_its_new_shape_and_attributes_in_the_next_tile(
    app, client, db_session, viewer, monkeypatch
):
    spec = polygon_spec(app)
    ids = build_layer(db_session, spec)
    z = 10
    x, y = tile_of(*CENTRE, z)
    west, north = tiles.tile_lon(x, z), tile_lat(y, z)
    width = tiles.tile_lon(x + 1, z) - west
    # A square in the middle of the tile: drawn, and its home is this tile at z ≤ 12.
    edited = insert_place(
        db_session,
        spec,
        "E",
        "改",
        square(west + 0.4 * width, north - 0.6 * width, 0.1 * width),
        **attrs_for(spec),
    )
    # a pixel or more from z6 (1.6 px) on: rows at z6–z12
    assert [row[0] for row in home_rows(db_session, spec.table, edited)] == list(range(6, 13))
    before = {f[0]: f for f in decoded(client, viewer, spec.collection, z)[0]}[edited]
    # The grid redrawn as a larger, shifted triangle (an edit through SQL, in the same
    # transaction as the next request): the tile (cache on) draws the new shape at once.
    old_rows = home_rows(db_session, spec.table, edited)
    db_session.execute(
        text(
            f"UPDATE {spec.table} SET geom = ST_Multi(ST_MakePolygon(ST_MakeLine(ARRAY["
            " ST_MakePoint(:x0, :y0), ST_MakePoint(:x1, :y0), ST_MakePoint(:x0, :y1),"
            " ST_MakePoint(:x0, :y0)]))) WHERE id = :id"
        ),
        {
            "x0": west + 0.2 * width,
            "x1": west + 0.5 * width,
            "y0": north - 0.7 * width,
            "y1": north - 0.3 * width,
            "id": edited,
        },
    )
    new_rows = home_rows(db_session, spec.table, edited)
    assert [r[3] for r in new_rows] != [r[3] for r in old_rows]
    after = {f[0]: f for f in decoded(client, viewer, spec.collection, z)[0]}[edited]
    assert after[1] != before[1]
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)
    every = computed(monkeypatch, lambda: decoded(client, viewer, spec.collection, z))
    assert {f[0]: f for f in every[0]}[edited] == after
    # An attribute edit only (no geometry change): the ready rows carry the new value.
    if spec.style_by is not None:
        name, values = spec.style_by
        last = list(values)[-1]
        db_session.execute(
            text(f"UPDATE {spec.table} SET {name} = :v WHERE id = :id"), {"v": last, "id": edited}
        )
        assert all(r[4][name] == last for r in home_rows(db_session, spec.table, edited))
        features = {f[0]: f for f in decoded(client, viewer, spec.collection, z)[0]}
        assert (name, last) in features[edited][2]
    # An unchanged update rewrites nothing; a delete removes the rows.
    kept = db_session.execute(
        text("SELECT ctid FROM layer_feature_tiles WHERE layer = :t AND id = :id ORDER BY z"),
        {"t": spec.table, "id": edited},
    ).all()
    db_session.execute(text(f"UPDATE {spec.table} SET geom = geom WHERE id = :id"), {"id": edited})
    assert (
        db_session.execute(
            text("SELECT ctid FROM layer_feature_tiles WHERE layer = :t AND id = :id ORDER BY z"),
            {"t": spec.table, "id": edited},
        ).all()
        == kept
    )
    db_session.execute(text("DELETE FROM places WHERE id = :id"), {"id": edited})
    assert home_rows(db_session, spec.table, edited) == []
    assert edited not in {f[0] for f in decoded(client, viewer, spec.collection, z)[0]}
    assert ids  # the rest of the layer is still there
