"""Issue 13 §4: phones only for `assignments.read`, writes within the caller's scope, and
reads of a visible leader list only the places the caller may see (two-street world)."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.world import bearer, sign_in

PHONES = {"L1": "13900000001", "L2": "13900000002", "L3": "13900000003"}


def _phones(world) -> None:
    for key, phone in PHONES.items():
        world["session"].execute(
            text("UPDATE leaders SET phone = :p WHERE id = :id"),
            {"p": phone, "id": world["leaders"][key]},
        )
    world["session"].flush()


def _no_phone(body: str) -> None:
    for phone in PHONES.values():
        assert phone not in body


REPORT = {
    "lon": 120.05,
    "lat": 33.0502,
    "category": "环境卫生",
    "source": "12345热线",
    "description": "测试电话",
}


def test_an_inspector_never_reads_leaders_phones(world, world_client):
    """The report answer, the issue read, the issue page and its map popup of an inspector
    carry no phone; a planner (assignments.read) sees them."""
    _phones(world)
    inspector = bearer(world["tokens"]["inspector"])
    created = world_client.post("/api/collections/issues/items", json=REPORT, headers=inspector)
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_data(as_text=True)
    assert json.loads(body)["properties"]["attribution"]["leader"]["name"]
    _no_phone(body)
    issue_id = json.loads(body)["id"]
    read = world_client.get(f"/api/issues/{issue_id}", headers=inspector)
    assert read.status_code == 200
    _no_phone(read.get_data(as_text=True))
    listed = world_client.get("/api/collections/issues/items", headers=inspector)
    _no_phone(listed.get_data(as_text=True))
    planner = world_client.get(
        f"/api/issues/{issue_id}", headers=bearer(world["tokens"]["planner"])
    )
    assert PHONES["L3"] in planner.get_data(as_text=True)
    assert sign_in(world_client, "inspector").status_code == 302
    for page in (f"/issues/{issue_id}", f"/issues/{issue_id}/map"):
        response = world_client.get(page)
        assert response.status_code == 200, page
        _no_phone(response.get_data(as_text=True))


def test_a_street_planner_writes_no_leader_or_unit_of_another_street(world, world_client):
    """Planner bound to S1: leader L2 (S2) and its unit are out of reach for PATCH,
    deactivate and delete; L1 (S1) is not."""
    session = world["session"]
    unit = session.execute(
        text("INSERT INTO units (name) VALUES ('东城街道办') RETURNING id")
    ).scalar()
    session.execute(
        text("UPDATE leaders SET unit_id = :u WHERE id = :id"),
        {"u": unit, "id": world["leaders"]["L2"]},
    )
    session.flush()
    planner = bearer(world["tokens"]["planner"])
    l2 = world["leaders"]["L2"]
    assert (
        world_client.patch(f"/api/leaders/{l2}", json={"title": "x"}, headers=planner).status_code
        == 404
    )
    assert world_client.post(f"/api/leaders/{l2}/deactivate", headers=planner).status_code == 404
    assert world_client.delete(f"/api/leaders/{l2}", headers=planner).status_code == 404
    assert (
        world_client.patch(f"/api/units/{unit}", json={"name": "改名"}, headers=planner).status_code
        == 404
    )
    assert world_client.delete(f"/api/units/{unit}", headers=planner).status_code == 404
    row = session.execute(
        text("SELECT title, active FROM leaders WHERE id = :id"), {"id": l2}
    ).one()
    assert row == ("东城街道党工委书记", True)
    assert session.execute(text("SELECT name FROM units WHERE id = :u"), {"u": unit}).scalar() == (
        "东城街道办"
    )
    l1 = world["leaders"]["L1"]
    patched = world_client.patch(f"/api/leaders/{l1}", json={"title": "书记"}, headers=planner)
    assert patched.status_code == 200
    # The pages refuse the same writes.
    assert sign_in(world_client, "planner").status_code == 302
    from tests.world import csrf_token_of

    csrf = csrf_token_of(world_client, f"/leaders/{l1}")
    for path, form in (
        (f"/leaders/{l2}", {"name": "李强", "title": "页面改", "level": "镇街"}),
        (f"/leaders/{l2}/deactivate", {}),
        (f"/leaders/{l2}/delete", {}),
        (f"/units/{unit}", {"name": "页面改名"}),
        (f"/units/{unit}/delete", {}),
    ):
        world_client.post(path, data={**form, "csrf_token": csrf})
    row = session.execute(
        text("SELECT title, active FROM leaders WHERE id = :id"), {"id": l2}
    ).one()
    assert row == ("东城街道党工委书记", True)
    assert session.execute(text("SELECT name FROM units WHERE id = :u"), {"u": unit}).scalar() == (
        "东城街道办"
    )


def test_a_street_planner_dispatches_and_reassigns_only_to_leaders_it_sees(world, world_client):
    planner = bearer(world["tokens"]["planner"])
    i1, l2, l3 = world["issues"]["I1"], world["leaders"]["L2"], world["leaders"]["L3"]
    far = world_client.post(
        f"/api/issues/{i1}/transitions",
        json={"to": "dispatched", "leader_id": l2, "note": "改派"},
        headers=planner,
    )
    assert far.status_code in (403, 404, 422), far.get_data(as_text=True)
    assert "leader_id" in far.get_data(as_text=True)
    dispatched = world_client.post(
        f"/api/issues/{i1}/dispatch", json={"leader_id": l2}, headers=planner
    )
    assert dispatched.status_code in (403, 404, 422)
    leader = (
        world["session"]
        .execute(text("SELECT leader_id FROM issues WHERE id = :id"), {"id": i1})
        .scalar()
    )
    assert leader == l3
    held = (
        world["session"]
        .execute(
            text("SELECT id FROM assignments WHERE place_id = :p"), {"p": world["places"]["R1"]}
        )
        .scalar()
    )
    moved = world_client.post(
        f"/api/assignments/{held}/reassign", json={"leader_id": l2}, headers=planner
    )
    assert moved.status_code == 404
    assigned = world_client.post(
        "/api/assignments",
        json={"place_id": world["places"]["G1"], "leader_id": l2, "role": "包保责任人"},
        headers=planner,
    )
    assert assigned.status_code == 404
    # The pages offer no such leader to pick.
    assert sign_in(world_client, "planner").status_code == 302
    html = world_client.get(f"/issues/{i1}").get_data(as_text=True)
    assert "王芳" in html and "李强" not in html
    assert "李强" not in world_client.get("/issues/unassigned").get_data(as_text=True)


def test_a_visible_leader_lists_only_places_in_the_callers_area(world, world_client):
    """leader2 (S2) sees L1, who answers for the road R12 entering S2, but not L1's grid G1
    (S1): neither in /api/leaders/{id}, its assignments, nor its features."""
    headers = bearer(world["tokens"]["leader2"])
    l1, g1 = world["leaders"]["L1"], world["places"]["G1"]
    got = world_client.get(f"/api/leaders/{l1}", headers=headers)
    assert got.status_code == 200
    places = [a["place"]["id"] for a in got.get_json()["assignments"]]
    assert world["places"]["R12"] in places and g1 not in places
    held = world_client.get(f"/api/leaders/{l1}/assignments", headers=headers).get_json()
    assert g1 not in [a["place"]["id"] for a in held["assignments"]]
    listed = world_client.get(f"/api/assignments?leader_id={l1}", headers=headers).get_json()
    assert [a["place"]["id"] for a in listed["assignments"]] == [world["places"]["R12"]]
    assert listed["numberMatched"] == 1
    features = world_client.get(f"/api/leaders/{l1}/features", headers=headers).get_json()
    assert g1 not in [f["id"] for f in features["features"]]
    # The leaders list counts L1's places the caller sees (R12), not G1 too.
    row = next(
        r
        for r in world_client.get("/api/leaders", headers=headers).get_json()["leaders"]
        if r["id"] == l1
    )
    assert row["active_assignments"] == 1
    assert world["places"]["R12"] in [f["id"] for f in features["features"]]
    # The leader's page shows the same places, and offers no leader of another street.
    assert sign_in(world_client, "leader2").status_code == 302
    page = world_client.get(f"/leaders/{l1}").get_data(as_text=True)
    assert "建设路" in page and "西一网格" not in page
    # A unit head's unit view: only the places in the caller's area.
    session = world["session"]
    unit = session.execute(
        text("INSERT INTO units (name) VALUES ('县城管局') RETURNING id")
    ).scalar()
    session.execute(
        text("UPDATE leaders SET unit_id = :u, is_unit_head = (id = :l1) WHERE id IN (:l1, :l3)"),
        {"u": unit, "l1": l1, "l3": world["leaders"]["L3"]},
    )
    session.flush()
    unit_view = world_client.get(f"/api/leaders/{l1}/features?scope=unit", headers=headers)
    assert unit_view.status_code == 200
    ids = [f["id"] for f in unit_view.get_json()["features"]]
    assert ids == [world["places"]["R12"]]
    # The head's own unit view (leader_only is bound to L1, no area) keeps every unit place.
    own = world_client.get(
        f"/api/leaders/{l1}/features?scope=unit", headers=bearer(world["tokens"]["leader_only"])
    ).get_json()
    places = world["places"]
    assert sorted(f["id"] for f in own["features"]) == sorted(
        [places["G1"], places["R12"], places["R1"]]
    )


def test_a_street_planner_ends_nothing_and_reads_no_assignment_of_another_street(
    world, world_client
):
    """L3 (S1) also answers for G2 (S2): the S1 planner may not deactivate or delete L3 (that
    would end or list the S2 assignment), and an assignment in S2 is as unknown to it as a
    missing one — reading, ending or reassigning it."""
    session, planner = world["session"], bearer(world["tokens"]["planner"])
    l3, g2 = world["leaders"]["L3"], world["places"]["G2"]
    in_s2 = session.execute(
        text(
            "INSERT INTO assignments (place_id, leader_id, role, is_primary, valid_from)"
            " VALUES (:p, :l, '包保责任人', false, now() - interval '10 days') RETURNING id"
        ),
        {"p": g2, "l": l3},
    ).scalar_one()
    session.flush()

    def open_assignments() -> int:
        return session.execute(
            text("SELECT count(*) FROM assignments WHERE leader_id = :l AND valid_to IS NULL"),
            {"l": l3},
        ).scalar_one()

    before = open_assignments()
    for path in (f"/api/leaders/{l3}/deactivate",):
        refused = world_client.post(path, json={}, headers=planner)
        assert refused.status_code == 403, refused.get_json()
        assert str(g2) not in refused.get_data(as_text=True)
    assert world_client.delete(f"/api/leaders/{l3}", headers=planner).status_code == 403
    assert open_assignments() == before
    unknown = world_client.get("/api/assignments/987654321", headers=planner).get_json()
    for method, path in (
        ("get", f"/api/assignments/{in_s2}"),
        ("post", f"/api/assignments/{in_s2}/end"),
        ("post", f"/api/assignments/{in_s2}/reassign"),
    ):
        kwargs = {"json": {"leader_id": l3}} if method == "post" else {}
        response = getattr(world_client, method)(path, headers=planner, **kwargs)
        assert response.status_code == 404, (path, response.get_json())
        assert response.get_json()["error"] == unknown["error"].replace("987654321", str(in_s2))
        assert response.get_json()["field"] == unknown["field"]
    assert open_assignments() == before
    # The pages too: the answer names neither the assignment's place nor its id.
    from tests.world import csrf_token_of

    assert sign_in(world_client, "planner").status_code == 302
    csrf = csrf_token_of(world_client, "/leaders")
    page = world_client.post(f"/assignments/{in_s2}/end", data={"csrf_token": csrf})
    missing = world_client.post("/assignments/987654321/end", data={"csrf_token": csrf})
    assert page.status_code == missing.status_code == 404
    assert f"编号为 {g2} " not in page.get_data(as_text=True)
    assert f"没有编号为 {in_s2} 的包保记录" in page.get_data(as_text=True)
    # The county-wide admin may.
    done = world_client.post(
        f"/api/leaders/{l3}/deactivate", json={}, headers=bearer(world["tokens"]["admin"])
    )
    assert done.status_code == 200 and open_assignments() == 0


def test_a_scorecard_lists_only_the_issues_in_the_callers_area(world, world_client):
    """The figures are the county-wide 通报's; the overdue issues behind them only those the
    caller may see (L2's are in S2: none for the S1 planner)."""
    l2 = world["leaders"]["L2"]
    path = f"/api/leaders/{l2}/scorecard?period=week&from=2026-W46"
    everything = world_client.get(path, headers=bearer(world["tokens"]["admin"])).get_json()
    mine = world_client.get(path, headers=bearer(world["tokens"]["planner"])).get_json()
    listed = {i["id"] for i in everything["overdue"]["issues"]}
    assert {world["issues"]["I2"], world["issues"]["I3"]} <= listed
    assert mine["row"] == everything["row"]  # the same figures
    assert mine["overdue"]["issues"] == [] and mine["overdue"]["total"] == 0


def test_a_street_planner_reads_the_leader_it_has_just_created(world, world_client):
    """A new official answers for no place yet: the planner who may take them on reads them
    (to assign them from the pages); a viewer of the street does not; once they answer for a
    place in another street only, the planner no longer does."""
    planner = bearer(world["tokens"]["planner"])
    made = world_client.post(
        "/api/leaders", json={"name": "新任网格员", "level": "村社区"}, headers=planner
    )
    assert made.status_code == 201, made.get_json()
    new = made.get_json()["id"]
    assert world_client.get(f"/api/leaders/{new}", headers=planner).status_code == 200
    listed = world_client.get("/api/leaders", headers=planner).get_json()
    assert new in [x["id"] for x in listed["leaders"]]
    viewer = bearer(world["tokens"]["viewer"])
    assert world_client.get(f"/api/leaders/{new}", headers=viewer).status_code == 404
    session = world["session"]
    session.execute(
        text(
            "INSERT INTO assignments (place_id, leader_id, role, is_primary, valid_from)"
            " VALUES (:p, :l, '包保责任人', false, now() - interval '1 day')"
        ),
        {"p": world["places"]["G2"], "l": new},
    )
    session.flush()
    assert world_client.get(f"/api/leaders/{new}", headers=planner).status_code == 404


def test_a_street_planner_keeps_the_routing_and_area_leaders_of_its_own_street(world, world_client):
    session = world["session"]
    unit = session.execute(
        text("INSERT INTO units (name) VALUES ('县城管局') RETURNING id")
    ).scalar()
    session.flush()
    areas, leaders = world["areas"], world["leaders"]
    planner = bearer(world["tokens"]["planner"])  # bound to S1
    admin = bearer(world["tokens"]["admin"])
    viewer = bearer(world["tokens"]["viewer"])

    def routing(headers, **fields):
        body = {"category": "环境卫生", "unit_id": unit, **fields}
        return world_client.post("/api/routing-rules", json=body, headers=headers)

    other_street = routing(planner, area_id=areas["S2"])
    unknown = routing(planner, area_id=987654)
    assert other_street.status_code == unknown.status_code == 422
    assert other_street.get_json() == unknown.get_json()
    assert routing(planner).status_code == 403  # the county-wide rules are the county's
    own = routing(planner, area_id=areas["C1"])
    assert own.status_code == 201
    east = routing(admin, area_id=areas["S2"]).get_json()["id"]
    county_wide = routing(admin).get_json()["id"]
    for rule_id in (east, county_wide, 987654):
        ended = world_client.post(f"/api/routing-rules/{rule_id}/end", headers=planner)
        assert ended.status_code == 404
    listed = world_client.get("/api/routing-rules", headers=viewer).get_json()["items"]
    assert {r["id"] for r in listed} == {own.get_json()["id"], county_wide}
    assert sign_in(world_client, "viewer").status_code == 302
    page = world_client.get("/admin/rules").get_data(as_text=True)  # the page lists the same
    assert "西一社区" in page and "东城街道" not in page

    def area_leader(headers, area, leader):
        body = {"area_id": areas[area], "leader_id": leaders[leader]}
        return world_client.post("/api/area-assignments", json=body, headers=headers)

    assert area_leader(planner, "C2", "L2").status_code == 422  # another street's community
    assert area_leader(planner, "C1", "L2").status_code == 422  # another street's leader
    assert area_leader(planner, "C1", "L1").status_code == 201
    assert area_leader(admin, "C2", "L2").status_code == 201
    seen = world_client.get("/api/area-assignments", headers=viewer).get_json()["items"]
    assert [row["area_id"] for row in seen] == [areas["C1"]]


def test_another_streets_place_code_and_leader_answer_like_unknown_ones(world, world_client):
    planner = bearer(world["tokens"]["planner"])  # bound to S1
    g2_code = "320999002001001"  # grid G2, in S2

    def responsible(code: str):
        return world_client.get(
            f"/api/responsible?layer=grid&code={code}", headers=planner
        ).get_json()

    known, unknown_code = responsible(g2_code), responsible("320999999999999")
    assert known == json.loads(json.dumps(unknown_code).replace("320999999999999", g2_code))
    issue = world["issues"]["I1"]

    def dispatch(leader_id: int):
        return world_client.post(
            f"/api/issues/{issue}/dispatch", json={"leader_id": leader_id}, headers=planner
        )

    elsewhere, unknown = dispatch(world["leaders"]["L2"]), dispatch(987654)
    assert elsewhere.status_code == unknown.status_code == 404
    assert elsewhere.get_json()["field"] == unknown.get_json()["field"]
    # Nor does a correction of the attribution, or a granted 退回, hand it to them.
    for leader_id in (world["leaders"]["L2"], 987654):
        corrected = world_client.post(
            f"/api/issues/{issue}/attribution-correction",
            json={"leader_id": leader_id, "reason": "纠正"},
            headers=planner,
        )
        assert corrected.status_code == 404 and corrected.get_json()["field"] == "leader_id"
        granted = world_client.post(
            f"/api/issues/{issue}/return/decision",
            json={"grant": True, "leader_id": leader_id},
            headers=planner,
        )
        assert granted.status_code == 404 and granted.get_json()["field"] == "leader_id"
    assert (
        world["session"]
        .execute(text("SELECT leader_id FROM issues WHERE id = :i"), {"i": issue})
        .scalar()
        == world["leaders"]["L3"]
    )


def test_a_places_page_offers_only_the_leaders_the_planner_may_assign(world, world_client):
    assert sign_in(world_client, "planner").status_code == 302  # bound to S1
    page = world_client.get(f"/places/{world['places']['G1']}/responsibility")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f' #{world["leaders"]["L1"]}"' in html
    assert f' #{world["leaders"]["L2"]}"' not in html  # L2 answers for S2's grid


def test_a_leader_without_an_area_is_offered_only_the_grid_choropleth(world, world_client):
    """Its community and street outlines are out of its scope (empty tiles): a 社区 theme
    would colour nothing beside a legend."""
    assert sign_in(world_client, "leader_only").status_code == 302
    html = world_client.get("/map").get_data(as_text=True)
    assert 'value="grid:open"' in html and 'value="community:open"' not in html
    assert sign_in(world_client, "planner").status_code == 302  # bound to S1: its outlines
    assert 'value="community:open"' in world_client.get("/map").get_data(as_text=True)


def test_a_refused_new_leader_form_comes_back_as_typed(world, world_client):
    from tests.world import csrf_token_of

    assert sign_in(world_client, "planner").status_code == 302
    form = {"name": "程晓", "title": "主任（兼）", "phone": "abc123", "level": "镇街",
            "csrf_token": csrf_token_of(world_client, "/leaders")}  # fmt: skip
    refused = world_client.post("/leaders", data=form, follow_redirects=True)
    html = refused.get_data(as_text=True)
    assert "电话号码" in html  # the mistake is named
    assert 'value="程晓"' in html and 'value="主任（兼）"' in html and 'value="abc123"' in html
    again = world_client.get("/leaders").get_data(as_text=True)
    assert 'value="程晓"' not in again  # once
