"""The sites API within the caller's area (the two-street world, tests/world.py): reads,
exports and QR codes show only the sites in scope (others are 404, as in the sites
collection), the 点长's phone only to accounts that may read the roster, and no write — create,
move, delete, import by code — reaches a site outside an area-bound planner's area."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from tests.world import sign_in

KIND = {"code": "hospital", "name": "医院", "geometry_type": "point", "claim_radius_m": 40}
WEST = (120.05, 33.05)  # street S1, where the planner, viewer and inspector are bound
EAST = (120.15, 33.05)  # street S2


def site_feature(code: str, name: str, at: tuple[float, float], leader: str, phone: str) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(at)},
        "properties": {"code": code, "name": name, "kind": "hospital", "点长": leader,
                       "点长电话": phone},
    }  # fmt: skip


def upload(features: list[dict]) -> dict:
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    return {"file": (io.BytesIO(body), "sites.geojson", "application/geo+json")}


def import_sites(client, who: dict, west_name: str, east_name: str):
    """The two hospitals H-W (S1) and H-E (S2), by code, with their 点长 and phones."""
    return client.post(
        "/api/assessment/sites/import",
        data=upload([
            site_feature("H-W", west_name, WEST, "西点长", "13800000001"),
            site_feature("H-E", east_name, EAST, "东点长", "13900000002"),
        ]),
        headers=who,
        content_type="multipart/form-data",
    )  # fmt: skip


def headers(world, name: str) -> dict:
    return {"Authorization": f"Bearer {world['tokens'][name]}"}


@pytest.fixture
def sites(world, world_client) -> dict:
    admin = headers(world, "admin")
    assert world_client.post("/api/assessment/kinds", json=KIND, headers=admin).status_code == 201
    imported = import_sites(world_client, admin, "城西医院", "城东医院")
    assert imported.status_code == 200, imported.get_json()
    ids = dict(
        world["session"].execute(text("SELECT code, id FROM places WHERE layer = 'site'")).all()
    )
    return {"west": ids["H-W"], "east": ids["H-E"]}


def exported(world_client, who: dict) -> list[tuple]:
    response = world_client.get("/api/assessment/sites/export", headers=who)
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    header, *rows = sheet.iter_rows(values_only=True)
    return [(row[0], row[header.index("点长电话")]) for row in rows]


def test_reads_and_exports_hold_only_the_sites_in_scope(world, world_client, sites):
    assert exported(world_client, headers(world, "admin")) == [  # by kind, then code
        ("H-E", "13900000002"),
        ("H-W", "13800000001"),
    ]
    assert exported(world_client, headers(world, "viewer")) == [("H-W", "13800000001")]
    # An inspector may not read the roster: the list without the 点长's phone.
    assert exported(world_client, headers(world, "inspector")) == [("H-W", None)]
    viewer = headers(world, "viewer")
    assert (
        world_client.get(f"/api/assessment/sites/{sites['west']}", headers=viewer).status_code
        == 200
    )
    for path in (
        f"/api/assessment/sites/{sites['east']}",
        f"/api/assessment/sites/{sites['east']}/qr",
    ):
        response = world_client.get(path, headers=viewer)
        assert response.status_code == 404 and response.get_json()["field"] == "id", path


def test_an_area_bound_planner_writes_only_sites_in_its_area(world, world_client, sites):
    planner, session = headers(world, "planner"), world["session"]

    def names() -> dict:
        return dict(
            session.execute(text("SELECT code, name FROM places WHERE layer = 'site'")).all()
        )

    before = names()
    east = f"/api/assessment/sites/{sites['east']}"
    assert world_client.patch(east, json={"name": "改名"}, headers=planner).status_code == 404
    assert world_client.delete(east, headers=planner).status_code == 404
    moved = world_client.patch(
        f"/api/assessment/sites/{sites['west']}",
        json={"lon": EAST[0], "lat": EAST[1]},
        headers=planner,
    )
    assert moved.status_code == 403, moved.get_json()
    created = world_client.post(
        "/api/assessment/sites",
        json={
            "kind": "hospital",
            "code": "H-X",
            "name": "越界医院",
            "lon": EAST[0],
            "lat": EAST[1],
        },
        headers=planner,
    )
    assert created.status_code == 403, created.get_json()
    # An import row updating the east site by its code: refused, nothing written (the west
    # row of the same file neither).
    imported = import_sites(world_client, planner, "城西医院（新）", "城东医院（改）")
    assert imported.status_code == 403, imported.get_json()
    assert names() == before
    # Within its area it writes as before.
    renamed = world_client.patch(
        f"/api/assessment/sites/{sites['west']}", json={"name": "城西人民医院"}, headers=planner
    )
    assert renamed.status_code == 200, renamed.get_json()
    assert names() == {**before, "H-W": "城西人民医院"}


def test_a_rounds_sites_and_failures_hold_only_the_sites_in_scope(world, world_client, sites):
    """A round's list, one site's sheet and the failures list: the sites in the caller's
    area, another street's 404 as in the sites collection."""
    from geoservice.assessment import rounds, standards

    session = world["session"]
    tree = [{"code": "1", "title": "医院", "contents": [{"code": "1.1", "title": "院区",
             "standards": [{"code": "H1", "text": "门前整洁", "score": 10,
                            "kinds": ["hospital"], "category": "环境卫生"}]}]}]  # fmt: skip
    version = standards.create_version(
        session, "医院体系", standards.rows_from_tree(tree), ["环境卫生"]
    )
    found = rounds.create_round(
        session,
        {"name": "医院轮", "starts_on": "2026-11-09", "ends_on": "2026-11-12",
         "version_id": version.id},
        None,
    )  # fmt: skip
    viewer = headers(world, "viewer")  # bound to S1
    listed = world_client.get(f"/api/assessment/rounds/{found.id}/sites", headers=viewer)
    assert [s["code"] for s in listed.get_json()["sites"]] == ["H-W"]
    everything = world_client.get(
        f"/api/assessment/rounds/{found.id}/sites", headers=headers(world, "admin")
    )
    assert len(everything.get_json()["sites"]) == 2
    planner = headers(world, "planner")  # bound to S1: opens a site's sheet
    sheet = f"/api/assessment/rounds/{found.id}/sites/"
    assert world_client.get(sheet + str(sites["west"]), headers=planner).status_code == 200
    east = world_client.get(sheet + str(sites["east"]), headers=planner)
    unknown = world_client.get(sheet + "987654", headers=planner)
    assert east.status_code == unknown.status_code == 404
    assert east.get_json()["field"] == unknown.get_json()["field"]
    # Per-site rows (scores, trend), the QR sheet and the failures page: the caller's sites.
    scores = world_client.get(f"/api/assessment/rounds/{found.id}/scores?of=site", headers=viewer)
    assert [r["key"] for r in scores.get_json()["rows"]] == [sites["west"]]
    trend = world_client.get(f"/api/assessment/trend?of=site&key={sites['east']}", headers=viewer)
    assert trend.status_code == 404
    assert sign_in(world_client, "viewer").status_code == 302
    qr = world_client.get("/assessment/qr").get_data(as_text=True)
    assert "H-W" in qr and "H-E" not in qr and "东城街道" not in qr.split("<main", 1)[-1]
