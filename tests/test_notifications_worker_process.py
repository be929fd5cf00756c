"""The worker as a process (`flask notifications-worker`) on a committed scratch database: an
issue event committed elsewhere wakes it (LISTEN/NOTIFY) and its message reaches a local
receiver; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geoservice import migrate
from geoservice.config import PROJECT_ROOT
from geoservice.models import Issue, IssueEvent, Leader, Unit
from geoservice.notifications import manage
from tests import notify_support
from tests.scratch import create_scratch_database, drop_scratch_database

receivers = notify_support.receivers  # fixture


@pytest.fixture
def scratch_url(engine) -> Iterator[str]:
    name, url = create_scratch_database(engine, "notify")
    url = url.render_as_string(hide_password=False)
    scratch = create_engine(url)
    with scratch.begin() as conn:
        conn.execute(text("CREATE EXTENSION postgis"))
    migrate.upgrade(scratch)
    scratch.dispose()
    yield url
    drop_scratch_database(engine, name)


def test_the_worker_process_wakes_on_a_committed_event_and_stops_on_sigterm(
    app, scratch_url, receivers
):
    """(`app`: create_app installs the outbox hook in this process, as in every web or CLI
    process that writes issue events.)"""
    receiver = receivers(200)
    engine = create_engine(scratch_url)
    with Session(engine) as s:
        unit = Unit(name="城南街道")
        s.add(unit)
        s.flush()
        leader = Leader(name="张网格", unit_id=unit.id, level="镇街", phone="13900000001")
        s.add(leader)
        s.flush()
        issue = Issue(
            geom=from_shape(Point(120.26, 33.78), srid=4326),
            category="环境卫生",
            source="暗访督查",
            status="accepted",
            leader_id=leader.id,
            unit_id=unit.id,
        )
        s.add(issue)
        manage.save_channel(
            s,
            {
                "kind": "webhook",
                "name": "hook",
                "config": {"url": receiver.url},
                "secrets": {"secret": "x" * 8},
            },
        )
        s.commit()
        issue_id, leader_id = issue.id, leader.id
    env = {
        **os.environ,
        "DATABASE_URL": scratch_url,
        "FLASK_APP": "wsgi",
        "SECRET_KEY": "worker-test",
        "PUBLIC_BASE_URL": "https://cw.example.gov.cn",
        "NOTIFY_POLL_SECONDS": "120",  # only a NOTIFY can wake it within the test,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "notifications-worker"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        started = False
        while time.monotonic() < deadline and not started:
            line = worker.stdout.readline()
            started = "notifications worker started" in line
        assert started, "the worker did not start"
        time.sleep(1)  # past its first (empty) round: now it waits on LISTEN
        with Session(engine) as s:
            s.add(
                IssueEvent(
                    issue_id=issue_id,
                    at=datetime.now(UTC),
                    from_status="accepted",
                    to_status="dispatched",
                    note="",
                    data={"action": "dispatch", "leader_id": leader_id},
                )
            )
            s.commit()
        committed = time.monotonic()
        while time.monotonic() - committed < 30 and not receiver.hits:
            time.sleep(0.1)
        assert receiver.hits, "nothing was delivered"
        # Woken by NOTIFY: its poll interval is two minutes.
        assert time.monotonic() - committed < 30
        body = receiver.hits[0].json()
        assert body["link"] == f"https://cw.example.gov.cn/issues/{issue_id}"
        worker.send_signal(signal.SIGTERM)  # while it waits (120 s poll): stops at once
        stopping = time.monotonic()
        assert worker.wait(timeout=20) == 0
        assert time.monotonic() - stopping < 10
        with Session(engine) as s:
            assert s.scalar(text("SELECT status FROM notify_deliveries")) == "delivered"
    finally:
        if worker.poll() is None:
            worker.kill()
        engine.dispose()


def test_deliveries_go_on_while_a_snapshot_run_and_a_coverage_audit_are_running(
    scratch_url, receivers, monkeypatch
):
    """The hourly ranking snapshot (minutes at city scale after an upgrade) and the coverage
    audit (10–13 s for a city, every minute after a change) run beside the deliveries: with
    the process's worker options, a delivery committed while both are running reaches its
    receiver before either ends."""
    import asyncio
    import threading
    from contextlib import suppress

    import procrastinate
    from sqlalchemy.orm import sessionmaker

    from geoservice.notifications import queue, worker
    from geoservice.registry import LayerRegistry

    building, auditing, release = threading.Event(), threading.Event(), threading.Event()

    def slow_snapshot(session, settings, now, should_stop=lambda: False):
        building.set()
        release.wait(60)
        return {"built": 0}

    def slow_audit(session, registry, base_layer):
        auditing.set()
        release.wait(60)
        return True

    monkeypatch.setattr(worker, "rankings_snapshot", slow_snapshot)
    monkeypatch.setattr(worker.coverage, "refresh", slow_audit)
    receiver = receivers(200)
    engine = create_engine(scratch_url)
    settings = worker.WorkerSettings(poll_seconds=0.2, registry=LayerRegistry.discover("layers"))
    app = worker.build_app(
        procrastinate.PsycopgConnector(conninfo=worker.psycopg_conninfo(engine.url)),
        settings,
        periodic=True,
    )
    runtime = worker.Runtime(settings, sessionmaker(engine))
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with app.open_async():
            await app.tasks[worker.SNAPSHOT_TASK].defer_async(timestamp=0)
            await app.tasks[worker.COVERAGE_TASK].defer_async(timestamp=0)
            running = asyncio.create_task(
                app.run_worker_async(
                    **worker.worker_options(settings),
                    additional_context={"notify": runtime},
                    install_signal_handlers=False,
                )
            )
            await stop.wait()
            running.cancel()
            with suppress(asyncio.CancelledError):
                await running

    server = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    server.start()
    try:
        assert building.wait(30), "the snapshot run did not start"
        assert auditing.wait(30), "the coverage audit did not start"
        with Session(engine) as s:
            channel = manage.save_channel(
                s,
                {
                    "kind": "webhook",
                    "name": "hook",
                    "config": {"url": receiver.url},
                    "secrets": {"secret": "x" * 8},
                },
            )
            s.flush()
            message_id = s.scalar(
                text(
                    "INSERT INTO notify_messages (kind, dedupe_key, subject, data)"
                    " VALUES ('test', 'beside-snapshot', '快照期间的通知', '{}') RETURNING id"
                )
            )
            delivery_id = s.scalar(
                text(
                    "INSERT INTO notify_deliveries (message_id, channel_id, delivery_key)"
                    " VALUES (:m, :c, 'beside-snapshot') RETURNING id"
                ),
                {"m": message_id, "c": channel.id},
            )
            queue.defer(s, [delivery_id])
            s.commit()
        committed = time.monotonic()
        while time.monotonic() - committed < 20 and not receiver.hits:
            time.sleep(0.1)
        assert receiver.hits, "the delivery waited for the snapshot run"
        assert not release.is_set() and building.is_set() and auditing.is_set()
    finally:
        release.set()
        loop.call_soon_threadsafe(stop.set)
        server.join(timeout=60)
        engine.dispose()
    assert not server.is_alive()
    with Session(engine) as s:
        assert s.scalar(text("SELECT status FROM notify_deliveries")) == "delivered"


def test_a_snapshot_run_left_by_a_dead_worker_goes_back_in_the_queue(scratch_url):
    """A worker killed during a snapshot run leaves its job `doing`, holding the task's lock:
    the minute's scan of any worker puts it back, as it does a delivery's."""
    import asyncio

    import procrastinate

    from geoservice.notifications import worker

    engine = create_engine(scratch_url)
    app = worker.build_app(
        procrastinate.PsycopgConnector(conninfo=worker.psycopg_conninfo(engine.url)),
        worker.WorkerSettings(),
        periodic=True,
    )

    async def dead_worker_then_scans() -> tuple[int, int, int]:
        async with app.open_async():
            job_id = await app.tasks[worker.SNAPSHOT_TASK].defer_async(timestamp=0)
            with engine.begin() as conn:  # taken by a worker that is gone since
                conn.execute(
                    text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = :id"),
                    {"id": job_id},
                )
            return (
                job_id,
                await worker.retry_stalled(app.job_manager),
                await worker.retry_stalled(app.job_manager),
            )

    try:
        job_id, first, second = asyncio.run(dead_worker_then_scans())
        with engine.connect() as conn:
            status, lock = conn.execute(
                text("SELECT status, lock FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            ).one()
    finally:
        engine.dispose()
    assert (first, second) == (1, 0)
    assert status == "todo" and lock == worker.SNAPSHOT_TASK


@pytest.mark.parametrize("task", ["SNAPSHOT_TASK", "COVERAGE_TASK"])
def test_a_periodic_job_longer_than_its_interval_leaves_one_waiting_not_a_pile(task):
    """The snapshot run (minutes after an upgrade) and the coverage audit (a province's takes
    longer than its minute) are deferred on a schedule: while one waits, the next is not
    queued behind it."""
    from procrastinate import exceptions, testing

    from geoservice.notifications import worker

    app = worker.build_app(testing.InMemoryConnector(), worker.WorkerSettings(), periodic=True)
    name = getattr(worker, task)
    with app.open():
        app.tasks[name].defer(timestamp=0)
        with pytest.raises(exceptions.AlreadyEnqueued):
            app.tasks[name].defer(timestamp=60)
