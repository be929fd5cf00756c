"""The one service area (geoservice.areas.service_area): configured areas, else the highest level of
admin areas imported, else the grids, else none."""

from __future__ import annotations

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box

from geoservice.areas import service_area
from geoservice.models import AdminArea
from tests.api_support import auth
from tests.factories import LAYERS, add_feature


def add_area(session, level, code, name, bounds, parent=None) -> AdminArea:
    row = AdminArea(
        level=level,
        code=code,
        name=name,
        parent_id=parent.id if parent else None,
        geom=from_shape(MultiPolygon([box(*bounds)]), srid=4326),
    )
    session.add(row)
    session.flush()
    return row


def test_nothing_imported_means_no_area_and_every_place_accepted(db_session):
    assert service_area.definition(db_session, LAYERS).source is None
    assert service_area.contains(db_session, 0.0, 0.0, LAYERS)
    assert service_area.outline(db_session, LAYERS) is None
    assert service_area.extent(db_session, LAYERS) is None
    assert service_area.bounds(db_session, LAYERS) is None
    assert service_area.place_name(db_session) is None


def test_grids_alone_define_it_until_areas_are_imported(db_session):
    add_feature(
        db_session, "grid", "320599001001001", MultiPolygon([box(120.0, 31.0, 120.1, 31.1)])
    )
    found = service_area.definition(db_session, LAYERS)
    assert found.source == "base_layer"
    assert service_area.contains(db_session, 120.05, 31.05, LAYERS)
    assert not service_area.contains(db_session, 120.5, 31.05, LAYERS)
    area = service_area.bounds(db_session, LAYERS, margin_m=10_000)
    assert area.bounds[0] == pytest.approx(120.0 - 10_000 / (111_320 * 0.8572), rel=1e-3)


def test_the_highest_level_imported_defines_it_not_every_parentless_area(db_session):
    county = add_area(db_session, "county", "320599", "样例县", (120.0, 31.0, 120.2, 31.2))
    add_area(db_session, "street", "320599001", "城关街道", (120.0, 31.0, 120.1, 31.1), county)
    # A community not linked to anything (e.g. before link-areas), far from the county.
    add_area(db_session, "community", "320588001001", "飞地社区", (121.0, 31.0, 121.1, 31.1))
    found = service_area.definition(db_session, LAYERS)
    assert found.source == "admin_areas" and "street" not in found.levels
    assert service_area.contains(db_session, 120.15, 31.15, LAYERS)
    assert not service_area.contains(db_session, 121.05, 31.05, LAYERS)
    assert service_area.place_name(db_session) == "样例县"
    summary = service_area.summary(db_session, LAYERS)
    assert [a["code"] for a in summary["areas"]] == ["320599"]
    assert summary["extent"] == pytest.approx((120.0, 31.0, 120.2, 31.2))


def test_configured_areas_take_precedence_and_can_be_dropped(db_session):
    county = add_area(db_session, "county", "320599", "样例县", (120.0, 31.0, 120.2, 31.2))
    add_area(db_session, "street", "320599001", "城关街道", (120.0, 31.0, 120.1, 31.1), county)
    assert service_area.use_areas(db_session, ["320599001", "nope"]) == ["nope"]
    assert service_area.definition(db_session, LAYERS).source == "admin_areas"  # unchanged
    assert service_area.use_areas(db_session, ["320599001"]) == []
    assert service_area.definition(db_session, LAYERS).source == "configured"
    assert not service_area.contains(db_session, 120.15, 31.15, LAYERS)
    assert service_area.place_name(db_session) == "城关街道"
    service_area.use_areas(db_session, [])
    assert service_area.contains(db_session, 120.15, 31.15, LAYERS)


EMPTY_PAGES = (
    "/",
    "/coverage",
    "/rankings",
    "/my",
    "/leaders",
    "/units",
    "/roster",
    "/issues/new",
    "/issues/unassigned",
    "/api/coverage",
    "/api/areas",
    "/api/service-area",
    "/api/collections",
    "/api/collections/grids/items",
    "/api/rankings?of=street",
    "/api/rankings?of=community",
    "/api/rankings/charts",
)


@pytest.mark.parametrize("path", EMPTY_PAGES)
def test_an_empty_instance_serves_every_page(client, db_session, path):
    headers = auth(db_session, "admin", "empty_admin")
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    if path == "/":
        assert "这是一个空的系统" in response.get_data(as_text=True)
    if path == "/coverage":
        assert "尚未导入行政区划" in response.get_data(as_text=True)
