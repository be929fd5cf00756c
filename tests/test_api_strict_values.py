"""Values the API document excludes are refused, not read as a default (found by the contract
test with another seed): an empty `at=` is no moment, `all` of a replay is a boolean, an
empty `period` of a publication is no period. Each refusal names its field; nothing is done."""

from __future__ import annotations

from sqlalchemy import text

from tests.world import bearer


def test_an_empty_moment_is_refused_not_read_as_now(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    for path in ("/api/assignments?at=", "/api/assignments?at=%20", "/api/vocabularies?at="):
        response = world_client.get(path, headers=admin)
        assert response.status_code == 400, (path, response.get_json())
        assert response.get_json()["field"] == "at"
    assert world_client.get("/api/assignments?at=2015-03-01", headers=admin).status_code == 200


def test_replay_all_must_be_a_boolean(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    for value in ([True], "yes", 1):
        response = world_client.post(
            "/api/notifications/deliveries/replay", json={"all": value}, headers=admin
        )
        assert response.status_code == 422, (value, response.get_json())
        assert response.get_json()["field"] == "all"


def test_an_empty_period_publishes_nothing(world, world_client):
    admin = bearer(world["tokens"]["admin"])
    session = world["session"]
    before = session.scalar(text("SELECT count(*) FROM publications"))
    response = world_client.post("/api/rankings/publications", json={"period": ""}, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == "period"
    assert session.scalar(text("SELECT count(*) FROM publications")) == before


def test_a_place_given_by_id_still_has_its_layer_and_code_checked(world, world_client):
    """`/api/responsible?layer=&place_id=…` (contract seed 59) answered as if no layer was
    given; an empty or unknown layer, or an empty code, beside a place_id is a 400 now."""
    admin = bearer(world["tokens"]["admin"])
    place_id = next(iter(world["places"].values()))
    ok = world_client.get(f"/api/responsible?place_id={place_id}", headers=admin)
    assert ok.status_code == 200, ok.get_json()
    for query, field in (
        ("layer=", "layer"),
        ("layer=nosuchlayer", "layer"),
        ("code=", "code"),
        ("code=%20", "code"),
    ):
        for path in ("/api/responsible", "/api/assignments"):
            response = world_client.get(f"{path}?place_id={place_id}&{query}", headers=admin)
            assert response.status_code == 400, (path, query, response.get_json())
            assert response.get_json()["field"] == field
    layer = ok.get_json()["place"]["layer"]
    both = world_client.get(f"/api/responsible?place_id={place_id}&layer={layer}", headers=admin)
    assert both.status_code == 200
