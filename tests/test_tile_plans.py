"""Each feature's ST_AsMVTGeom is computed once per tile: no filter of a tile statement's plan
computes it again (catalogue/tiles.py, NO_FILTER; the demo county's z10 grid tile took 49 ms
instead of 35 ms when `WHERE geom IS NOT NULL` around a flattened subquery did)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from geoservice.catalogue import tiles
from tests.api_support import auth
from tests.test_api_read import polygon_spec
from tests.test_api_tiles import tile_of
from tests.test_layer_feature_boxes import CENTRE, build_layer


def xy(z: int) -> str:
    x, y = tile_of(*CENTRE, z)
    return f"{x}/{y}"


def filters(plan: dict) -> list[str]:
    """Every filter and join filter of a plan (JSON, VERBOSE), all nodes down."""
    found = [plan[key] for key in ("Filter", "Join Filter") if key in plan]
    for child in plan.get("Plans", []):
        found += filters(child)
    return found


@pytest.mark.parametrize("boxed", [True, False])
def test_tile_statements_compute_each_features_geometry_once(
    app, client, db_session, monkeypatch, boxed
):
    monkeypatch.setitem(app.config, "TILE_CACHE_BYTES", 0)
    if not boxed:
        monkeypatch.setattr(tiles, "_boxed", lambda session, table: False)
    headers = auth(db_session, "viewer")
    spec = polygon_spec(app)
    build_layer(db_session, spec)
    connection = db_session.connection()
    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(("EXPLAIN", "PREPARE")):
            return
        if "ST_AsMVT(" in statement:
            statements.append((statement, parameters))
        elif "EXECUTE geoservice_" in statement:  # a prepared tile statement (db.execute_prepared)
            statements.append((statement.rpartition(";")[2].strip(), parameters))

    event.listen(connection, "before_cursor_execute", keep)
    try:
        # low-zoom layer tiles (drawn and folded features), a full-detail one, admin outlines
        paths = [
            *(f"/api/collections/{spec.collection}/tiles/{z}/{xy(z)}.pbf" for z in (8, 10, 14, 16)),
            f"/api/map/areas/community/tiles/8/{xy(8)}.pbf",
        ]
        for path in paths:
            assert client.get(path, headers=headers).status_code == 200, path
    finally:
        event.remove(connection, "before_cursor_execute", keep)
    assert len(statements) == len(paths)
    cursor = connection.connection.cursor()
    for statement, parameters in statements:
        cursor.execute("EXPLAIN (VERBOSE, FORMAT JSON) " + statement, parameters)
        (explained,) = cursor.fetchone()
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]
        computed_again = [f for f in filters(plan["Plan"]) if "st_asmvtgeom" in f.lower()]
        assert computed_again == [], statement
