"""Shared pieces of the notification tests: a local HTTP receiver with a script of answers,
a small scene (county, grid, leaders in a unit, accounts), and the worker's settings."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text

from geoservice.models import Issue, Unit
from geoservice.notifications import queue, worker
from geoservice.notifications.worker import WorkerSettings
from tests.factories import add_feature, add_issue, add_leader, assign, rect
from tests.issues.helpers import account, add_area


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body.decode())


@dataclass
class Receiver:
    """Answers requests by `script` (one entry per request, the last one repeats): an HTTP
    status, or ("slow", seconds, status), or a dict answered as JSON with 200."""

    script: list[Any]
    hits: list[Hit] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def succeeded(self) -> list[Hit]:
        return [h for h in self.hits if 200 <= h.status < 300]


def start_receiver(script: list[Any]) -> Receiver:
    receiver = Receiver(list(script))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            index = min(len(receiver.hits), len(receiver.script) - 1)
            answer = receiver.script[index]
            status, payload = 200, b"{}"
            if isinstance(answer, tuple):
                _, seconds, status = answer
                time.sleep(seconds)
            elif isinstance(answer, dict):
                payload = json.dumps(answer).encode()
            else:
                status = int(answer)
            receiver.hits.append(Hit(self.path, dict(self.headers), body, status))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def make(*script: Any) -> Receiver:
        receiver = start_receiver(list(script) or [200])
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.server.shutdown()
        receiver.server.server_close()


def jobs(session) -> list[Any]:
    """The procrastinate jobs of deliveries (what the worker will run), oldest first."""
    return session.execute(
        text(
            "SELECT id, status, attempts, scheduled_at, lock,"
            " (args->>'delivery_id')::bigint AS delivery_id FROM procrastinate_jobs"
            " WHERE task_name = :task ORDER BY id"
        ),
        {"task": queue.DELIVER_TASK},
    ).all()


def time_passes(session, until: datetime) -> int:
    """The queue's clock moves to `until`: every waiting job scheduled at or before it becomes
    due now (procrastinate compares `scheduled_at` with the database's now(), which stands
    still in a test's transaction)."""
    return session.execute(
        text(
            "UPDATE procrastinate_jobs SET scheduled_at = now()"
            " WHERE status = 'todo' AND scheduled_at > now() AND scheduled_at <= :until"
        ),
        {"until": until},
    ).rowcount


def deliver(session, settings: WorkerSettings, now: datetime | None = None) -> dict[str, int]:
    """Procrastinate's worker on the test's session until no job is due; `now` is the
    worker's clock (and the queue's: jobs scheduled up to it are due)."""
    if now is None:
        return worker.deliver(session, settings)
    time_passes(session, now)
    return worker.deliver(session, settings, clock=lambda: now)


def worker_settings(**overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "base_url": "https://cw.example.gov.cn",
        "max_attempts": 3,
        "backoff_seconds": 30,
        "timeout_seconds": 1.0,
        "escalation_hours": (0.0, 24.0, 72.0),
    }
    values.update(overrides)
    return WorkerSettings(**values)


@dataclass
class Scene:
    session: Any
    leaders: dict
    accounts: dict
    unit: Unit
    grid: Any

    def headers(self, name: str) -> dict[str, str]:
        return self.accounts[name][1]

    def issue(self, status: str = "accepted", deadline: datetime | None = None) -> Issue:
        issue = add_issue(self.session, 100, 100, datetime.now(UTC) - timedelta(hours=1))
        issue.status = status
        issue.leader_id = self.leaders["leader"].id
        issue.unit_id = self.unit.id
        issue.primary_place_id = self.grid.id
        issue.grid_id = self.grid.id
        issue.deadline = deadline
        issue.description = "垃圾桶满溢"
        self.session.flush()
        return issue


@pytest.fixture
def scene(db_session) -> Scene:
    s = db_session
    add_area(s, "320999", rect(-200, -200, 1200, 1200))
    grid = add_feature(s, "grid", "320999001001001", rect(0, 0, 400, 400), name="一号网格")
    leaders = {
        "leader": add_leader(s, "张网格", unit="城南街道"),
        "contact": add_leader(s, "刘联络", unit="城南街道"),
        "head": add_leader(s, "周主任", unit="城南街道"),
        "supervisor": add_leader(s, "吴副县长", unit="县政府"),
        "other": add_leader(s, "孙其他", unit="县教育局"),
    }
    leaders["head"].is_unit_head = True
    leaders["leader"].phone = "13900000001"
    assign(s, leaders["leader"], grid, datetime(2026, 1, 1, tzinfo=UTC), role="网格长")
    unit = s.query(Unit).filter_by(name="城南街道").one()
    accounts = {
        "planner": account(s, "planner"),
        "admin": account(s, "admin"),
        "viewer": account(s, "viewer"),
        "leader": account(s, "leader", leaders["leader"]),
    }
    s.flush()
    return Scene(s, leaders, accounts, unit, grid)


def deliveries(session, **where: Any) -> list[Any]:
    clause = " AND ".join(f"d.{k} = :{k}" for k in where) or "true"
    return session.execute(
        text(
            "SELECT d.*, m.kind, m.leader_id, m.subject, m.data FROM notify_deliveries d"
            f" JOIN notify_messages m ON m.id = d.message_id WHERE {clause} ORDER BY d.id"
        ),
        where,
    ).all()
