"""Bulk attribution spread over several connections (attribute_range_in_parallel, as the bench
and a large re-attribution run it) stores what reporting each issue answers. The batches are
committed by their own connections, so this test commits its layout and removes it after."""

from __future__ import annotations

from datetime import UTC, datetime

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from geoservice.issues import attribution
from geoservice.models import Assignment, Issue, Leader, Place, Unit
from tests.factories import LAYERS, add_feature, add_leader, assign, line, metres, rect

T0 = datetime(2015, 3, 1, tzinfo=UTC)
T1 = datetime(2015, 3, 10, tzinfo=UTC)
COLUMNS = ("primary_place_id", "grid_id", "leader_id", "unit_id", "attribution")


def test_parallel_batches_store_the_single_issue_answers(app, engine):
    created: dict[str, list[int]] = {"issues": [], "places": [], "leaders": [], "units": []}
    with Session(engine) as session:
        try:
            grid = add_feature(session, "grid", "320999001001901", rect(0, 0, 200, 100))
            road = add_feature(session, "road", "R-P", line((0, 50), (400, 50)), grade="主干道")
            market = add_feature(session, "market", "M-P", rect(300, 0, 340, 30))
            grid_leader = add_leader(session, "网格长", unit="并行测试单位")
            road_leader = add_leader(session, "路长", unit="并行测试单位")
            assign(session, grid_leader, grid, T0)
            assign(session, road_leader, road, T0, T1)  # the road has nobody after T1
            created["places"] = [grid.id, road.id, market.id]
            created["leaders"] = [grid_leader.id, road_leader.id]
            created["units"] = [grid_leader.unit_id]
            issues = []
            # On the grid, near the road, beyond it; in the market; nowhere.
            points = [((k * 13) % 500, (k * 7) % 120) for k in range(35)] + [(320, 10), (600, 300)]
            for k, (x, y) in enumerate(points):
                lon, lat = metres(x, y)
                issues.append(
                    Issue(
                        geom=from_shape(Point(lon, lat), srid=4326),
                        category="环境卫生",
                        source="暗访督查",
                        status="reported",
                        reported_at=T0 if k % 2 else datetime(2015, 3, 20, tzinfo=UTC),
                    )
                )
            session.add_all(issues)
            session.commit()
            created["issues"] = ids = sorted(i.id for i in issues)

            done, _ = attribution.attribute_range_in_parallel(
                engine, LAYERS, ids[0], ids[-1], batch=5, workers=2
            )

            assert done == len(ids)
            session.expire_all()
            layers = set()
            for issue in session.scalars(select(Issue).where(Issue.id.in_(ids))):
                lon, lat = session.execute(
                    select(Issue.geom.ST_X(), Issue.geom.ST_Y()).where(Issue.id == issue.id)
                ).one()
                one = attribution.attribution_at(
                    session, LAYERS, lon, lat, issue.reported_at, category=issue.category
                )
                assert {c: getattr(issue, c) for c in COLUMNS} == {c: one[c] for c in COLUMNS}
                layers |= {p["layer"] for p in issue.attribution["places"]}
            assert layers == {"grid", "road", "market"}
        finally:
            session.rollback()
            session.execute(delete(Issue).where(Issue.id.in_(created["issues"])))
            session.execute(delete(Assignment).where(Assignment.place_id.in_(created["places"])))
            # The layers' rows go with their places (ON DELETE CASCADE).
            session.execute(delete(Place).where(Place.id.in_(created["places"])))
            session.execute(delete(Leader).where(Leader.id.in_(created["leaders"])))
            session.execute(delete(Unit).where(Unit.id.in_(created["units"])))
            session.commit()
