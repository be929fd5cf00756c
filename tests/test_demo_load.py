"""The demo county, loaded into PostGIS, keeps its invariants (checked by the database)."""

import re

from sqlalchemy import text

from geoservice.vocab import ROAD_GRADES


def scalar(session, sql, **params):
    return session.scalar(text(sql), params)


def test_counts_match_what_was_generated(demo_session, demo_connection):
    counts = demo_connection.counts
    for layer in ("grid", "road", "market", "compound"):
        n = scalar(demo_session, "SELECT count(*) FROM places WHERE layer = :l", l=layer)
        assert n == counts[layer] > 0
    assert scalar(demo_session, "SELECT count(*) FROM issues") == counts["issues"] > 0


def test_grids_tile_each_community_but_for_the_planted_defects(demo_session, demo_connection):
    defects = demo_connection.county.defects
    (withheld,) = defects.ungridded
    (widened,) = defects.widened
    # Area (m²) of each community not covered by its grids: only where a grid was withheld.
    gaps = demo_session.execute(
        text(
            """SELECT a.code, ST_Area(ST_Difference(a.geom, g.u)::geography) AS m2
               FROM admin_areas a
               JOIN (SELECT community_id, ST_Union(geom) AS u FROM grids GROUP BY community_id) g
                 ON g.community_id = a.id
               WHERE a.level = 'community'"""
        )
    ).all()
    assert [code for code, m2 in gaps if m2 >= 1.0] == [withheld[:12]]
    # Grids overlap only where one was drawn too wide.
    overlapping = demo_session.execute(
        text(
            """SELECT pa.code, pb.code, ST_Area(ST_Intersection(a.geom, b.geom)::geography)
               FROM grids a JOIN grids b ON a.id < b.id AND a.geom && b.geom
               JOIN places pa ON pa.id = a.id JOIN places pb ON pb.id = b.id
               WHERE ST_Relate(a.geom, b.geom, '2********')"""
        )
    ).all()
    assert overlapping
    assert all(widened in (a, b) for a, b, m2 in overlapping if m2 >= 1.0)
    orphans = scalar(demo_session, "SELECT count(*) FROM grids WHERE community_id IS NULL")
    assert orphans == 0


def test_streets_and_communities_tile_the_county(demo_session):
    for child, parent in (("community", "street"), ("street", "county")):
        gap = scalar(
            demo_session,
            """SELECT max(ST_Area(ST_SymDifference(p.geom, c.u)::geography))
               FROM admin_areas p
               JOIN (SELECT parent_id, ST_Union(geom) AS u FROM admin_areas
                     WHERE level = :child GROUP BY parent_id) c ON c.parent_id = p.id
               WHERE p.level = :parent""",
            child=child,
            parent=parent,
        )
        assert gap < 1.0, (child, parent, gap)


def test_every_grid_code_is_unique_well_formed_and_under_its_community(demo_session):
    rows = demo_session.execute(
        text(
            """SELECT p.code, a.code FROM grids g JOIN places p ON p.id = g.id
               JOIN admin_areas a ON a.id = g.community_id"""
        )
    ).all()
    codes = [grid for grid, _ in rows]
    assert len(codes) == len(set(codes))
    for grid, community in rows:
        assert re.fullmatch(r"\d{15}", grid) and grid.startswith(community)


def test_every_road_is_named_and_graded(demo_session):
    rows = demo_session.execute(
        text("SELECT p.name, r.grade FROM roads r JOIN places p ON p.id = r.id")
    ).all()
    assert rows
    assert all(name.strip() for name, _ in rows)
    assert {grade for _, grade in rows} == set(ROAD_GRADES)


def test_geometries_are_valid_and_in_wgs84(demo_session):
    for table in ("grids", "roads", "markets", "compounds", "admin_areas", "issues"):
        bad = scalar(
            demo_session,
            f"SELECT count(*) FROM {table} WHERE NOT ST_IsValid(geom) OR ST_SRID(geom) <> 4326",
        )
        assert bad == 0, table


def test_almost_every_feature_has_a_leader_but_not_all(demo_session):
    share = scalar(
        demo_session,
        """SELECT avg((EXISTS (SELECT 1 FROM assignments a WHERE a.place_id = p.id
                               AND a.valid_to IS NULL))::int)
           FROM places p""",
    )
    assert 0.9 < share < 1.0


def test_issues_are_attributed_and_some_are_overdue(demo_session, demo_connection):
    in_grid = scalar(demo_session, "SELECT avg((grid_id IS NOT NULL)::int) FROM issues")
    assert in_grid > 0.95
    with_leader = scalar(demo_session, "SELECT avg((leader_id IS NOT NULL)::int) FROM issues")
    assert with_leader > 0.8
    overdue = scalar(
        demo_session,
        """SELECT count(*) FROM issues WHERE deadline < :today
           AND status NOT IN ('closed', 'rejected')""",
        today=demo_connection.county.today,
    )
    assert overdue > 0
    statuses = set(demo_session.scalars(text("SELECT DISTINCT status FROM issues")))
    assert {"closed", "dispatched", "in_progress", "fixed", "rejected"} <= statuses


def test_every_issue_starts_with_a_reported_event_and_ends_in_its_status(demo_session):
    mismatched = scalar(
        demo_session,
        """SELECT count(*) FROM issues i
           JOIN LATERAL (SELECT to_status FROM issue_events e WHERE e.issue_id = i.id
                         ORDER BY e.at DESC, e.id DESC LIMIT 1) last ON true
           WHERE last.to_status <> i.status""",
    )
    first_not_reported = scalar(
        demo_session,
        """SELECT count(*) FROM issues i
           JOIN LATERAL (SELECT to_status FROM issue_events e WHERE e.issue_id = i.id
                         ORDER BY e.at, e.id LIMIT 1) first ON true
           WHERE first.to_status <> 'reported'""",
    )
    assert mismatched == 0 and first_not_reported == 0


def test_every_issue_past_acceptance_has_a_responsible_leader(demo_session):
    # Those whose primary place had nobody were dispatched by hand, and say so.
    without = scalar(
        demo_session,
        """SELECT count(*) FROM issues WHERE leader_id IS NULL
           AND status NOT IN ('reported', 'accepted', 'rejected')""",
    )
    by_hand = scalar(demo_session, "SELECT count(*) FROM issues WHERE attribution ? 'manual'")
    assert without == 0
    assert by_hand > 0


def test_tile_rollups_count_every_issue_and_their_triggers_are_back_on(demo_session):
    """The seed turns the tiles' UPDATE rollup triggers off while it attributes (no rolled-up
    column changes there): the rollups must still count every issue in its final status, and
    the triggers must be on again afterwards."""
    by_status = dict(
        demo_session.execute(text("SELECT status, count(*) FROM issues GROUP BY status")).all()
    )
    rolled = dict(
        demo_session.execute(
            text("SELECT status, sum(n) FROM issue_tile_counts WHERE level = 5 GROUP BY status")
        ).all()
    )
    assert rolled == by_status
    facets = scalar(
        demo_session,
        """SELECT count(*) FROM (
  SELECT (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, status, category, source,
         count(*) AS n FROM issues GROUP BY 1, 2, 3, 4
  EXCEPT
  SELECT day, status, category, source, sum(n) FROM issue_tile_facets WHERE level = 6
  GROUP BY 1, 2, 3, 4) missing""",
    )
    assert facets == 0
    days = scalar(
        demo_session,
        """SELECT count(*) FROM (
  SELECT (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, status, category,
         count(*) AS n FROM issues GROUP BY 1, 2, 3
  EXCEPT
  SELECT day, status, category, sum(n) FROM issue_tile_days WHERE level = 8
  GROUP BY 1, 2, 3) missing""",
    )
    assert days == 0
    disabled = scalar(
        demo_session,
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'issues'::regclass AND tgenabled = 'D'",
    )
    assert disabled == 0


def test_every_failed_standard_raised_an_issue_held_to_its_site(demo_session):
    rows = demo_session.execute(
        text(
            """SELECT r.outcome, r.issue_id, r.photo_id, i.primary_place_id, r.site_id,
  (i.attribution -> 'assessment' ->> 'standard_id')::int = r.standard_id AS same_standard
FROM assessment_results r LEFT JOIN issues i ON i.id = r.issue_id"""
        )
    ).all()
    failed = [r for r in rows if r.outcome == "fail"]
    assert failed and len(failed) < len(rows)
    assert all(r.issue_id and r.photo_id and r.primary_place_id == r.site_id for r in failed)
    assert all(r.same_standard for r in failed)
    assert all(r.issue_id is None for r in rows if r.outcome != "fail")
