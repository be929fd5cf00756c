"""A round's site scores are computed once per process while the tables they read are unchanged
(a city's round scores ~9,000 sites, and the assessment page shows two rounds): kept across
requests, computed again after a committed write to one of those tables, never kept for a
transaction that has written one itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from geoservice import httpcache, migrate
from geoservice.assessment import rounds, scores
from geoservice.assessment.models import AssessmentResult, AssessmentRound
from geoservice.models import User
from geoservice.registry import LayerRegistry
from tests.assessment import case
from tests.scratch import create_scratch_database, drop_scratch_database
from tests.test_coverage_kept import TRACKED_ELSEWHERE, tables_read

REGISTRY = LayerRegistry.discover("layers")
SETTINGS = scores.ScoreSettings(line=85.0, bottom_n=1)


def test_site_scores_read_only_the_tables_whose_writes_renew_them(demo_session):
    round_id = demo_session.scalar(select(AssessmentRound.id).order_by(AssessmentRound.id))
    assert round_id is not None  # the demo county has rounds
    before = tables_read(demo_session)
    computed = scores._site_scores(demo_session, round_id, SETTINGS)
    after = tables_read(demo_session)
    read = {t for t, n in after.items() if n > before.get(t, 0)}
    assert computed and {"assessment_results", "sites", "assignments"} <= read  # it did read
    assert read - set(scores.SCORED_TABLES) - TRACKED_ELSEWHERE == set()


@pytest.fixture(scope="module")
def scratch(engine, app, tmp_path_factory) -> Iterator[tuple]:
    """The hand-built county of tests/assessment/case.py, committed in a database of its own."""
    name, url = create_scratch_database(engine, "scores")
    db = create_engine(url)
    try:
        with db.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        migrate.upgrade(db)
        settings = case.issue_settings(app.config, tmp_path_factory.mktemp("photos"))
        with Session(db) as session:
            built = case.build(session, REGISTRY, settings)
            case.record_all(session, REGISTRY, settings, built)
            session.commit()
            ids = {
                "round": built["round"].id,
                "school1": built["sites"]["school1"].id,
                "A2": built["standards"]["A2"],
                "planner": built["planner"].id,
                "L3": built["leaders"]["L3"].id,
            }
        yield db, settings, ids
    finally:
        db.dispose()
        drop_scratch_database(engine, name)


def counted_computations(monkeypatch) -> list[int]:
    """This process starts with no scores of its own; each computation appends to the list."""
    computed: list[int] = []
    real = scores._site_scores
    monkeypatch.setattr(scores, "_site_scores", lambda *a, **k: computed.append(1) or real(*a, **k))
    monkeypatch.setattr(
        scores, "_KEPT", httpcache.KeptByGeneration(copy_value=lambda rows: [dict(r) for r in rows])
    )
    return computed


def site_rows(db, round_id: int) -> dict[str, dict]:
    with Session(db) as session:
        rows = scores.round_scores(session, round_id, "site", SETTINGS)["rows"]
    return {r["name"]: r for r in rows}


def test_scores_are_kept_until_a_write_they_read_is_committed(scratch, monkeypatch):
    db, settings, ids = scratch
    computed = counted_computations(monkeypatch)

    first = site_rows(db, ids["round"])
    assert first["school1"]["score"] == 75.0 and len(computed) == 1
    assert site_rows(db, ids["round"]) == first and len(computed) == 1  # kept

    with Session(db) as session:  # each caller has its own rows: changing them changes nothing
        mine = scores.site_scores(session, ids["round"], SETTINGS)
        for row in mine:
            row["score"] = 0.0
        assert site_rows(db, ids["round"]) == first and len(computed) == 1

    with db.begin() as conn:  # a write the scores do not read leaves them kept
        conn.execute(text("UPDATE issues SET description = description || '（已核）'"))
    assert site_rows(db, ids["round"]) == first and len(computed) == 1

    with Session(db) as session:  # this transaction's own correction: computed, not kept
        failed = session.execute(
            select(AssessmentResult).filter_by(site_id=ids["school1"], standard_id=ids["A2"])
        ).scalar_one()
        rounds.correct_result(
            session, REGISTRY, settings, failed.id, "合格", "照片拍错了点位",
            session.get(User, ids["planner"]), now=case.NOW,
        )  # fmt: skip
        seen = {r["name"]: r for r in scores.site_scores(session, ids["round"], SETTINGS)}
        assert seen["school1"]["score"] == 100.0 and len(computed) == 2
        session.rollback()
    assert site_rows(db, ids["round"]) == first and len(computed) == 2

    with db.begin() as conn:  # a committed write to a table they read: computed again
        conn.execute(text("UPDATE leaders SET name = '王三丰' WHERE id = :id"), {"id": ids["L3"]})
    renamed = site_rows(db, ids["round"])
    assert renamed["bus2"]["leader"] == "王三丰" and len(computed) == 3
    assert site_rows(db, ids["round"]) == renamed and len(computed) == 3  # kept again
