"""Bulk attribution (one set-based statement over every issue, as `flask reattribute` and the
bench run it) answers exactly what reporting one issue answers, on a constructed set covering
every rule: polygons, the nearest road within its grade's distance, precedence, leaders at the
report time, each step of the fallback chain, the 条块 routing matrix (category, area, layer,
assist units, unit head or none, effective dates) and nobody → the queue."""

from __future__ import annotations

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import text

from geoservice.issues import attribution, routing_rules
from geoservice.models import AreaAssignment, Issue
from tests.factories import LAYERS, add_feature, add_leader, assign, line, metres, rect
from tests.ranking_case import at, build

CATEGORIES = ["环境卫生", "占道经营", "公益广告", "道路破损"]
FALLBACK = ("claims", "grid", "community", "street")

# (x, y) in metres: grids g1–g4 tile [0, 400] × [0, 100]; the road runs along y = 60 over
# x 0–400 (主干道: 40 m), a compound sits in g3 with nobody, a market point in g2.
POINTS = [
    (50, 50),  # g1, 10 m from the road: road (A/B's grid, the road's leader)
    (50, 5),  # g1, 55 m from the road: the grid only
    (140, 30),  # g2, 30 m from the road, 18 m from the market point (beyond its 10 m)
    (158, 30),  # g2, at the market point
    (250, 50),  # g3, inside the compound (nobody) and within the road's 40 m
    (250, 5),  # g3, 5 m inside the compound's south edge
    (350, 10),  # g4: nobody on the grid; fallback to the community / street
    (350, 99),  # g4, on the road's 40 m edge
    (399.9, 100),  # the corner of g4: boundary
    (600, 50),  # outside every layer: nobody, the queue
]
TIMES = [at(18, 9), at(18, 15), at(19, 9), at(21, 9)]


def world(session):
    case = build(session)
    road_leader = add_leader(session, "路长", unit="县交通局")
    road = add_feature(session, "road", "R-1", line((0, 60), (400, 60)), grade="主干道")
    assign(session, road_leader, road, at(1, 0, month=10), at(19, 0))
    add_feature(session, "compound", "C-1", rect(220, 0, 280, 80), compound_type="老旧小区")
    add_feature(session, "market", "M-1", Point(*metres(158, 30)), address="市场路1号")
    community = add_leader(session, "戊书记", unit="乙社区居委会")
    street = add_leader(session, "己主任", unit="测试街道办")
    session.add_all(
        [
            AreaAssignment(area_id=case.areas["乙"], leader_id=community.id, role="社区书记",
                           valid_from=at(1, 0, month=10), valid_to=at(21, 0)),
            AreaAssignment(area_id=case.areas["street"], leader_id=street.id,
                           role="街道包保领导", valid_from=at(1, 0, month=10)),
        ]
    )  # fmt: skip
    head = add_leader(session, "城管局长", unit="县城管局")
    head.is_unit_head = True
    add_leader(session, "城管科员", unit="县城管局")
    publicity = add_leader(session, "宣传部长", unit="县委宣传部")  # a unit without a head
    session.flush()
    cats = CATEGORIES
    rules = [
        dict(category="占道经营", unit_id=head.unit_id),  # county-wide
        dict(
            category="占道经营",
            unit_id=publicity.unit_id,
            area_id=case.areas["甲"],
            co_responsible=True,
        ),
        dict(category="占道经营", unit_id=case.units["二局"], role="assist"),
        dict(category="占道经营", unit_id=head.unit_id, role="assist"),  # the lead itself
        dict(category="公益广告", unit_id=publicity.unit_id, layer="road"),
        dict(category="公益广告", unit_id=head.unit_id, layer="road", area_id=case.areas["乙"]),
        dict(
            category="公益广告",
            unit_id=case.units["一局"],
            valid_from=at(19, 0).isoformat(),
            valid_to=at(21, 0).isoformat(),
        ),
    ]
    for fields in rules:
        routing_rules.create_rule(session, LAYERS, cats, None, {
            "role": "lead", "valid_from": at(1, 0, month=10).isoformat(), **fields})  # fmt: skip
    return case


COLUMNS = ("primary_place_id", "grid_id", "leader_id", "unit_id", "attribution")


def test_bulk_and_per_issue_attribution_agree(db_session):
    world(db_session)
    expected = {}
    for fallback in ((), FALLBACK, ("grid", "street")):
        issues = []
        for x, y in POINTS:
            lon, lat = metres(x, y)
            for when in TIMES:
                for category in CATEGORIES:
                    one = attribution.attribution_at(
                        db_session, LAYERS, lon, lat, when, fallback, category=category
                    )
                    issue = Issue(
                        geom=from_shape(Point(lon, lat), srid=4326),
                        category=category,
                        source="暗访督查",
                        status="reported",
                        reported_at=when,
                    )
                    issues.append((issue, one))
        db_session.add_all([i for i, _ in issues])
        db_session.flush()
        first, last = issues[0][0].id, issues[-1][0].id
        # Polygon claims looked up from the issues' side, then from the layers' side.
        for from_places in (False, True):
            db_session.execute(
                text(
                    "UPDATE issues SET primary_place_id = NULL, grid_id = NULL, leader_id = NULL,"
                    " unit_id = NULL, attribution = NULL WHERE id BETWEEN :a AND :b"
                ),
                {"a": first, "b": last},
            )
            done = attribution.attribute_issues(
                db_session, LAYERS, first, last, fallback, from_places=from_places
            )
            assert done == len(issues)
            db_session.expire_all()
            for issue, one in issues:
                got = {c: getattr(db_session.get(Issue, issue.id), c) for c in COLUMNS}
                assert got == {c: one[c] for c in COLUMNS}, (fallback, from_places, issue.id)
                expected[issue.id] = one

    # The set covers every rule (so the agreement above says something).
    answers = list(expected.values())
    rules = {p["rule"] for a in answers for p in a["attribution"]["places"]}
    assert "contains" in rules and {"within 40.0 m", "within 10.0 m"} <= rules
    layers = {a["attribution"]["places"][0]["layer"] for a in answers if a["primary_place_id"]}
    assert layers == {"road", "compound", "market", "grid"}
    steps = {a["attribution"].get("fallback", {}).get("step") for a in answers}
    assert {"claims", "grid", "community", "street"} <= steps
    routing = [a["attribution"]["routing"] for a in answers if "routing" in a["attribution"]]
    assert {r["co_responsible"] for r in routing} == {True, False}
    assert any(r["assist_unit_ids"] for r in routing) and any(
        not r["assist_unit_ids"] for r in routing
    )
    assert len({r["rule_id"] for r in routing}) == 5  # every lead rule wins somewhere
    routed_to_queue = [a for a in answers if "routing" in a["attribution"] and not a["leader_id"]]
    assert routed_to_queue and all(a["unit_id"] for a in routed_to_queue)
    nobody = [a for a in answers if not a["attribution"]["places"]]
    assert nobody and all(
        a["leader_id"] is None for a in nobody if "routing" not in a["attribution"]
    )
    assert any(a["leader_id"] is None and a["attribution"]["places"] for a in answers)
