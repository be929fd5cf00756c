import dataclasses

import pytest
from sqlalchemy import text

from geoservice.registry import Attribute, Claim, LayerRegistry, LayerSpecError, validate_spec


def test_the_four_layers_are_declared_once_and_ordered_by_precedence(app):
    registry = LayerRegistry.discover("layers")
    assert registry.names == ["site", "market", "compound", "road", "grid"]
    assert {s.collection: s.title for s in registry} == {
        "sites": "点位",  # every kind of site (kinds are data: geoservice/assessment)
        "grids": "网格",
        "roads": "道路",
        "markets": "农贸市场",
        "compounds": "居民小区",
    }
    assert registry.by_collection("grids").name == "grid"
    assert registry.by_collection("nothing") is None


@pytest.mark.parametrize("layer", ["grid", "road", "market", "compound"])
def test_each_layer_table_has_a_4326_geometry_with_a_gist_index(db_session, layer):
    spec = LayerRegistry.discover("layers").get(layer)
    srid = db_session.scalar(
        text(
            "SELECT srid FROM geometry_columns"
            " WHERE f_table_name = :t AND f_geometry_column = 'geom'"
        ),
        {"t": spec.table},
    )
    assert srid == 4326
    gist = db_session.scalars(
        text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = :t AND indexdef LIKE '%USING gist%'"
        ),
        {"t": spec.table},
    ).all()
    assert any("(geom)" in d for d in gist), gist


def test_metre_claims_have_an_index_on_the_geography_cast(db_session):
    for spec in LayerRegistry.discover("layers"):
        if spec.claim.mode != "within":
            continue
        defs = db_session.scalars(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": spec.table}
        ).all()
        assert any("geography(geom)" in d for d in defs), (spec.name, defs)


def test_road_tolerance_depends_on_grade():
    road = LayerRegistry.discover("layers").get("road")
    assert road.claim.tolerance_for({"grade": "主干道"}) > road.claim.tolerance_for(
        {"grade": "背街小巷"}
    )
    assert road.claim.tolerance_for({"grade": "未知"}) == road.claim.tolerance_m


def test_grid_codes_follow_gbt_30428():
    grid = LayerRegistry.discover("layers").get("grid")
    assert grid.code_is_valid("320999001002003")
    assert not grid.code_is_valid("32099900100200")
    assert not grid.code_is_valid("32099900100200X")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attributes": (Attribute("no_such_column", "x"),)}, "has no column"),
        ({"claim": Claim("contains")}, "only polygon layers"),
        ({"claim": Claim("within", tolerance_m=0)}, "positive tolerance"),
        ({"collection": "Roads!"}, "slugs"),
        ({"name": "street"}, "polymorphic_identity"),
        ({"geometry_types": ("Curve",)}, "geometry_types"),
        ({"style_by": ("colour", {})}, "style_by"),
        ({"code_pattern": "(["}, "code_pattern"),
    ],
)
def test_a_bad_declaration_fails_at_start_up_with_a_clear_message(change, message):
    road = LayerRegistry.discover("layers").get("road")
    with pytest.raises(LayerSpecError, match=message):
        validate_spec(dataclasses.replace(road, **change))


def test_two_layers_cannot_share_a_collection():
    registry = LayerRegistry.discover("layers")
    grid, road = registry.get("grid"), registry.get("road")
    with pytest.raises(LayerSpecError, match="collection"):
        LayerRegistry([grid, dataclasses.replace(road, collection="grids")])
