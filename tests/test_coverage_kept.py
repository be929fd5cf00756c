"""The coverage audit is computed once per process while the tables it reads are unchanged
(a city's audit takes 10–13 s): kept across requests, computed again after a committed write
to one of them, never kept for a transaction that has written one itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geoservice import httpcache, migrate
from geoservice.registry import BASE_LAYER, LayerRegistry
from geoservice.responsibility import coverage
from tests.scratch import create_scratch_database, drop_scratch_database

REGISTRY = LayerRegistry.discover("layers")
TRACKED_ELSEWHERE = {"data_generations", "spatial_ref_sys"}  # the counters; PostGIS's own


def tables_read(session: Session) -> dict[str, int]:
    return dict(
        session.execute(
            text("SELECT relname, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables")
        ).all()
    )


def test_the_audit_reads_only_the_tables_whose_writes_renew_it(demo_session):
    before = tables_read(demo_session)
    coverage._computed_report(demo_session, REGISTRY, BASE_LAYER, coverage.DEFAULT_MIN_AREA_M2, 100)
    after = tables_read(demo_session)
    read = {t for t, n in after.items() if n > before.get(t, 0)}
    kept_by = set(coverage.AUDITED_TABLES) | {spec.table for spec in REGISTRY}
    assert {"places", "assignments", "admin_areas", "grids"} <= read  # it did read
    assert read - kept_by - TRACKED_ELSEWHERE == set()


@pytest.fixture(scope="module")
def scratch(engine) -> Iterator:
    name, url = create_scratch_database(engine, "coverage")
    db = create_engine(url)
    try:
        with db.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        migrate.upgrade(db)
        with db.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO places (layer, code, name) VALUES"
                    " ('market', 'M1', '城北农贸市场'), ('market', 'M2', '城南农贸市场');"
                    "INSERT INTO markets (id, geom) SELECT id,"
                    " ST_SetSRID(ST_MakePoint(120.1 + id * 0.001, 33.7), 4326) FROM places;"
                    "INSERT INTO leaders (name, title, level) VALUES ('罗丽', '主任', '镇街');"
                    "INSERT INTO assignments (place_id, leader_id, role, is_primary, valid_from)"
                    " SELECT p.id, l.id, '点长', true, now() - interval '1 day'"
                    " FROM places p, leaders l WHERE p.code = 'M1'"
                )
            )
        yield db
    finally:
        db.dispose()
        drop_scratch_database(engine, name)


def unassigned_markets(report: dict) -> list[str]:
    (markets,) = [item for item in report["layers"] if item["layer"] == "market"]
    return sorted(f["properties"]["code"] for f in markets["unassigned"]["features"]["features"])


def counted_audits(monkeypatch) -> list[int]:
    """This process starts with no audit of its own; each one computed appends to the list."""
    computed: list[int] = []
    real = coverage._computed_report
    monkeypatch.setattr(
        coverage, "_computed_report", lambda *a, **k: computed.append(1) or real(*a, **k)
    )
    monkeypatch.setattr(coverage, "_KEPT", httpcache.KeptByGeneration())
    return computed


def test_the_report_is_kept_until_a_write_it_reads_is_committed(scratch, monkeypatch):
    computed = counted_audits(monkeypatch)

    def report() -> dict:
        with Session(scratch) as session:
            return coverage.coverage_report(session, REGISTRY, BASE_LAYER)

    first = report()
    assert unassigned_markets(first) == ["M2"] and len(computed) == 1
    assert report() == first and len(computed) == 1  # kept

    with scratch.begin() as conn:  # a write the audit does not read leaves it kept
        conn.execute(
            text(
                "INSERT INTO issues (geom, category, source, status, reported_at)"
                " VALUES (ST_SetSRID(ST_MakePoint(120.1, 33.7), 4326), '环境卫生', '自查',"
                " 'reported', now())"
            )
        )
    assert report() == first and len(computed) == 1

    with Session(scratch) as session:  # this transaction's own write: computed, not kept
        session.execute(text("UPDATE assignments SET valid_to = now()"))
        seen = coverage.coverage_report(session, REGISTRY, BASE_LAYER)
        assert unassigned_markets(seen) == ["M1", "M2"] and len(computed) == 2
        session.rollback()
    assert report() == first and len(computed) == 2

    with scratch.begin() as conn:  # committed: the next report is computed again
        conn.execute(text("UPDATE assignments SET valid_to = now()"))
    assert unassigned_markets(report()) == ["M1", "M2"] and len(computed) == 3
    assert unassigned_markets(report()) == ["M1", "M2"] and len(computed) == 3  # kept again


def test_the_worker_processes_share_one_audit_and_compute_it_once(scratch, monkeypatch):
    """With the service's pool (db.tune_pool), the report is left in shared_answers: another
    process (here: this one, its own copy forgotten) reads it instead of computing it, and two
    requests at once compute it once — the other waits for it."""
    from geoservice import db

    url = scratch.url.render_as_string(hide_password=False)
    engine = db.tune_pool(create_engine(url))
    entered, gate, computed = threading.Event(), threading.Event(), []
    real = coverage._computed_report

    def gated(*args, **kwargs):
        computed.append(1)
        entered.set()
        assert gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(coverage, "_computed_report", gated)
    monkeypatch.setattr(coverage, "_KEPT", httpcache.KeptByGeneration())
    answers: dict[str, dict] = {}

    def ask(name: str) -> None:
        with Session(engine) as session:
            answers[name] = coverage.coverage_report(session, REGISTRY, BASE_LAYER)

    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM shared_answers"))
            conn.execute(text("UPDATE assignments SET valid_to = NULL"))  # a new generation
        first = threading.Thread(target=ask, args=("first",))
        first.start()
        assert entered.wait(30)
        second = threading.Thread(target=ask, args=("second",))
        second.start()
        second.join(0.5)
        assert second.is_alive()  # waiting for the first one's audit, not computing its own
        gate.set()
        first.join(30)
        second.join(30)
        assert len(computed) == 1 and answers["first"] == answers["second"]
        assert unassigned_markets(answers["first"]) == ["M2"]

        monkeypatch.setattr(
            coverage, "_KEPT", httpcache.KeptByGeneration()
        )  # another process: nothing of its own yet
        ask("third")
        assert answers["third"] == answers["first"] and len(computed) == 1
        with engine.begin() as conn:
            stored = conn.execute(text("SELECT count(*) FROM shared_answers")).scalar()
        assert stored == 1
    finally:
        gate.set()
        engine.dispose()


def test_after_a_write_the_home_page_shows_the_last_audit_until_the_worker_renews_it(
    scratch, monkeypatch
):
    """A city's audit takes 10–13 s: after a change the home page's headline is the audit
    the processes last stored, said to be from before the change, while the notifications
    worker's task (coverage.refresh) computes the new one — once, not again while current."""
    from geoservice import db
    from geoservice.ranking import dashboard

    engine = db.tune_pool(create_engine(scratch.url.render_as_string(hide_password=False)))
    computed = counted_audits(monkeypatch)

    def refresh() -> bool:
        with Session(engine) as session:
            return coverage.refresh(session, REGISTRY, BASE_LAYER)

    def headline() -> dict:
        with Session(engine) as session:
            return dashboard.coverage_headline(session, REGISTRY, BASE_LAYER)

    def unassigned_now() -> list[str]:
        with Session(engine) as session:
            return unassigned_markets(coverage.coverage_report(session, REGISTRY, BASE_LAYER))

    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM shared_answers"))
            conn.execute(text("UPDATE assignments SET valid_to = NULL"))
        assert refresh() is True and len(computed) == 1
        assert refresh() is False and len(computed) == 1  # current: nothing to do
        first = headline()
        assert first["current"] is True and first["checked_at"] is not None
        assert unassigned_now() == ["M2"] and len(computed) == 1

        with engine.begin() as conn:  # a planner ends M1's assignment
            conn.execute(text("UPDATE assignments SET valid_to = now()"))
        stale = headline()
        assert stale["current"] is False and stale["checked_at"] == first["checked_at"]
        assert len(computed) == 1  # the page did not wait for a new audit
        with Session(engine) as session:  # no worker running to renew it: computed here
            alone = dashboard.coverage_headline(session, REGISTRY, BASE_LAYER, stale_ok=False)
            assert alone["current"] is True and len(computed) == 2
        with engine.begin() as conn:  # changed again, for the worker's turn below
            conn.execute(text("UPDATE assignments SET valid_to = valid_to"))

        assert headline()["current"] is False
        assert refresh() is True and len(computed) == 3
        renewed = headline()
        assert renewed["current"] is True and renewed["checked_at"] >= first["checked_at"]
        assert unassigned_now() == ["M1", "M2"] and len(computed) == 3

        with Session(engine) as session:  # a transaction's own write sees its own audit
            session.execute(text("UPDATE assignments SET valid_to = NULL"))
            assert coverage.last_report(session, REGISTRY, BASE_LAYER) is None
            mine = dashboard.coverage_headline(session, REGISTRY, BASE_LAYER)
            assert mine["current"] is True and len(computed) == 4
            session.rollback()
    finally:
        engine.dispose()


def test_a_running_notifications_worker_is_told_by_its_heartbeat(scratch):
    """The home page leaves the audit to the worker only while one is running."""
    from geoservice.notifications import queue

    with Session(scratch) as session:
        assert queue.worker_alive(session) is False
        session.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())"))
        assert queue.worker_alive(session) is True
        session.execute(
            text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 minute'")
        )
        assert queue.worker_alive(session) is False
        session.rollback()
