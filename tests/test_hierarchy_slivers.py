"""A district and its street whose boundaries match but were digitised in different
coordinate systems (a vertex 1e-13° off a straight edge): no 层级问题. Measured on the
spheroid, that sliver along a 30 km edge "was" 138,000 m²."""

from __future__ import annotations

from sqlalchemy import text

from geoservice.areas import hierarchy_audit
from geoservice.registry import BASE_LAYER
from tests.factories import LAYERS

DISTRICT = "POLYGON((120 31, 120.15 31.0000000000001, 120.3 31, 120.3 31.2, 120 31.2, 120 31))"
STREET = "POLYGON((120 31, 120.3 31, 120.3 31.2, 120 31.2, 120 31))"
SHIFTED = "POLYGON((120 31, 120.29 31, 120.29 31.2, 120 31.2, 120 31))"  # a real 1 km strip


def _areas(session, street_wkt: str) -> None:
    parent = session.execute(
        text(
            "INSERT INTO admin_areas (level, code, name, geom) VALUES"
            " ('district', '320599', '测试区', ST_Multi(ST_GeomFromText(:g, 4326))) RETURNING id"
        ),
        {"g": DISTRICT},
    ).scalar_one()
    session.execute(
        text(
            "INSERT INTO admin_areas (level, code, name, geom, parent_id) VALUES"
            " ('street', '320599001', '测试街道', ST_Multi(ST_GeomFromText(:g, 4326)), :p)"
        ),
        {"g": street_wkt, "p": parent},
    )
    session.flush()


def _not_tiled(session) -> dict:
    result = hierarchy_audit.audit(session, LAYERS, BASE_LAYER, 10.0)
    return {i["code"]: i for i in result["not_tiled"]["items"]}


def test_boundaries_that_match_to_a_centimetre_tile_their_parent(db_session):
    _areas(db_session, STREET)
    assert _not_tiled(db_session) == {}


def test_a_real_gap_is_still_found(db_session):
    _areas(db_session, SHIFTED)
    found = _not_tiled(db_session)
    assert set(found) == {"320599"} and found["320599"]["gap_m2"] > 1_000_000
