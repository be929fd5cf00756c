# ruff: noqa: E501  (report lines read better unbroken)
"""What the load benches share (bench/load.py, bench/replay.py): a scratch database holding the
demo county, bench accounts with tokens, a gunicorn server started with a given worker model,
keep-alive HTTP clients that behave like browsers (they keep validators and revalidate), the
percentiles, and the one line format every bench prints a figure in:

    TARGET <name> <measured> <unit> <op><target> [free text: load average, notes]

e.g. `TARGET mixed_load_rps 312.4 req/s >=300 load=1.9,1.7,1.2`. bench/targets.py collects
these lines from every bench it runs and prints the table "figure | target | measured | met?".
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOCKET = os.environ.get("PGHOST") or str(ROOT / ".pg" / "run")
DEMO100 = "geoservice_demo100"
LOAD100 = "geoservice_bench_load100"  # the copy of DEMO100 the benches share


def load_average() -> str:
    return "load=" + ",".join(f"{v:.2f}" for v in os.getloadavg())


def target_line(name: str, measured: float, unit: str, target: str, note: str = "") -> str:
    """The shared figure line (see the module doc); `target` is like '>=300' or '<100', or '-'
    for a figure printed without a target (reported only)."""
    # Two decimals below 10 (ratios like 1.149×): one would round a miss onto its target.
    digits = 2 if abs(measured) < 10 else 1
    line = f"TARGET {name} {measured:.{digits}f} {unit} {target} {load_average()}"
    line += f" {note}" if note else ""
    print(line, flush=True)
    return line


def url_for_database(name: str) -> str:
    return f"postgresql+psycopg2://geoservice@/{name}?host={SOCKET}"


def psql(database: str, sql: str) -> str:
    return subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-h",
            SOCKET,
            "-U",
            "geoservice",
            "-d",
            database,
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def county_database(
    database: str | None, template: str | None, scale: float
) -> tuple[str, str | None]:
    """The bench database's name and the template to copy when it is missing: LOAD100, a copy
    of DEMO100 when that exists, whether LOAD100 was named or not (never a county seeded at
    `scale` under that name); else geoservice_bench_load<scale>, seeded."""
    wanted = f"SELECT 1 FROM pg_database WHERE datname = '{DEMO100}'"
    if template is None and database in (None, LOAD100) and psql("postgres", wanted):
        template = DEMO100
    name = database or (
        LOAD100 if template else f"geoservice_bench_load{scale:g}".replace(".", "_")
    )
    return name, template


def ensure_county(name: str, scale: float, template: str | None = None) -> str:
    """The database `name` holding the demo county (made once, reused after): a copy of
    `template` (e.g. geoservice_demo100, which must have no open connection) or a fresh
    `seed-demo --scale`. Migrations of this checkout are applied, and the ranking snapshots
    built as a deployment's worker keeps them (`flask rankings snapshot --kept`); a database made here is vacuumed
    and analysed. Returns its URL."""
    url = url_for_database(name)
    exists = psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if not exists:
        if template:
            print(f"copying {template} into {name} …", flush=True)
            psql("postgres", f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            psql("postgres", f'CREATE DATABASE "{name}"')
            psql(name, "CREATE EXTENSION IF NOT EXISTS postgis")
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "SECRET_KEY": "bench"}
    flask = str(ROOT / ".venv" / "bin" / "flask")
    subprocess.run([flask, "db-upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    if not template and psql(name, "SELECT count(*) FROM issues") == "0":
        print(f"seeding the demo county at scale {scale} into {name} …", flush=True)
        subprocess.run(
            [flask, "seed-demo", "--scale", str(scale), "--today", "2026-11-27"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    # What a deployment's worker keeps (the hourly task of `flask notifications-worker`): the
    # ranking snapshots of the last eight closed weeks, the last month and quarter (a no-op
    # while current).
    subprocess.run(
        [flask, "rankings", "snapshot", "--kept"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    if not exists:
        # A fresh seed (or a copy of one) has never been vacuumed: no visibility map, so every
        # index-only scan of the tiles and counts visits the heap (the slowest issue tile 139 ms
        # before, 65 ms after, December 4), what a deployment's autovacuum has long done.
        print(f"VACUUM ANALYZE {name} …", flush=True)
        psql(name, "VACUUM ANALYZE")
    return url


@dataclass
class Accounts:
    """Bench accounts and their tokens: `admin`, `planner`, `hotline` (12345, integration),
    `inspectors` (area-bound), `leaders` (bound to a leader and the leader's street)."""

    admin: str
    planner: str
    hotline: str
    inspectors: list[str]
    leaders: list[tuple[str, int]]  # (token, leader id)


def ensure_accounts(
    url: str, leaders: int = 40, inspectors: int = 8, leader_ids: list[int] | None = None
) -> Accounts:
    from sqlalchemy import create_engine, select, text
    from sqlalchemy.orm import Session

    from geoservice.accounts.accounts import create_user, issue_token, user_by_name
    from geoservice.models import Leader

    engine = create_engine(url)
    with Session(engine) as session:

        def user(name: str, role: str, **kw):
            return user_by_name(session, name) or create_user(
                session, name, role, check_strength=False, **kw
            )

        def token(u, scopes=None):
            return issue_token(session, u, label="bench", scopes=scopes)

        streets = session.scalars(
            text("SELECT code FROM admin_areas WHERE level = 'street' ORDER BY code")
        ).all()
        if leader_ids is None:
            leader_ids = session.scalars(
                select(Leader.id).where(Leader.active).order_by(Leader.id).limit(leaders)
            ).all()
        out = Accounts(
            admin=token(user("bench-admin", "admin")),
            planner=token(user("bench-planner", "planner")),
            hotline=token(
                user("bench-12345", "integration"),
                scopes=["issues.report", "issues.read", "layers.read", "rankings.read"],
            ),
            inspectors=[
                token(
                    user(f"bench-inspector-{i}", "inspector", area_code=streets[i % len(streets)])
                )
                for i in range(inspectors)
            ],
            leaders=[
                (token(user(f"bench-leader-{lid}", "leader", leader_id=lid)), lid)
                for lid in leader_ids
            ],
        )
        session.commit()
    engine.dispose()
    return out


def extent(url_db: str) -> tuple[float, float, float, float]:
    box = psql(
        url_db,
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM grids) t",
    )
    return tuple(float(v) for v in box.split("|"))  # type: ignore[return-value]


def inside_points(database: str, n: int) -> list[tuple[float, float]]:
    """`n` points inside the county's grids (reports and attribution previews are refused
    outside the service area)."""
    rows = psql(
        database,
        f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids"
        f" ORDER BY md5(id::text) LIMIT {n}) t",
    )
    return [(float(a), float(b)) for a, b in (line.split("|") for line in rows.splitlines())]


# --- the server ----------------------------------------------------------------------


@dataclass
class WorkerModel:
    """gunicorn's worker model: `sync` (one request at a time per process) or `gthread`
    (`threads` requests at a time per process)."""

    kind: str = "gthread"
    workers: int = 2
    threads: int = 4

    @property
    def label(self) -> str:
        if self.kind == "sync":
            return f"sync ×{self.workers}"
        return f"{self.kind} {self.workers}×{self.threads}"

    def args(self) -> list[str]:
        out = ["--workers", str(self.workers), "--worker-class", self.kind]
        if self.kind == "gthread":
            out += ["--threads", str(self.threads)]
        return out

    @classmethod
    def parse(cls, text: str) -> WorkerModel:
        """`sync:2`, `gthread:2x4`."""
        kind, _, size = text.partition(":")
        if kind == "sync":
            return cls("sync", int(size or 2), 1)
        workers, _, threads = (size or "2x4").partition("x")
        return cls(kind, int(workers), int(threads or 4))


class Server:
    """gunicorn serving this checkout on 127.0.0.1:`port` (a context manager)."""

    def __init__(self, url: str, port: int, model: WorkerModel, env: dict[str, str] | None = None):
        self.url, self.port, self.model = url, port, model
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "SESSION_COOKIE_SECURE": "0",
            "RATE_LIMIT_WRITES_PER_MINUTE": "0",  # the bench's few accounts write for many
            "UPLOAD_DIR": str(ROOT / "bench" / "out" / "uploads"),
            "PYTHONPATH": str(ROOT),
            "THREADS": str(model.threads),  # as scripts/run: the pool follows (config.py)
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "--bind",
                f"127.0.0.1:{self.port}",
                *self.model.args(),
                "--timeout",
                "120",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        self.__exit__(None, None, None)
        raise SystemExit(f"gunicorn on port {self.port} did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime+stime of each live pid, in seconds (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return out


def backend_cpu_reader(engine: Any) -> Callable[[], float]:
    """Follows the PostgreSQL backends of the connections `engine` opens from now on (its pool
    is emptied first) and returns a function giving their CPU seconds so far (same machine)."""
    from sqlalchemy import event

    backends: set[int] = set()

    @event.listens_for(engine, "connect")
    def _pid(dbapi_connection: Any, _record: Any) -> None:
        backends.add(dbapi_connection.get_backend_pid())

    engine.dispose()
    return lambda: sum(cpu_seconds(list(backends)).values())


def server_pids(server: Server, database: str) -> tuple[list[int], list[int]]:
    """(gunicorn master and workers, PostgreSQL backends connected to `database`)."""
    app = [server.proc.pid] if server.proc else []
    for pid in list(app):
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            app += [int(c) for c in children]
        except OSError:
            pass
    db = [
        int(p)
        for p in psql(
            database,
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()",
        ).split()
    ]
    return app, db


class CpuMeter:
    """CPU seconds spent by the server's processes and its database backends between start()
    and stop(): a figure the other tenants of a shared machine disturb far less than latency."""

    def __init__(self, server: Server, database: str):
        self.server, self.database = server, database

    def start(self) -> None:
        self.app0 = cpu_seconds(server_pids(self.server, self.database)[0])
        self.db0 = cpu_seconds(server_pids(self.server, self.database)[1])

    def stop(self) -> tuple[float, float]:
        app_pids, db_pids = server_pids(self.server, self.database)
        app1, db1 = cpu_seconds(app_pids), cpu_seconds(db_pids)
        app = sum(v - self.app0.get(p, 0.0) for p, v in app1.items())
        db = sum(v - self.db0.get(p, 0.0) for p, v in db1.items())
        return app, db


# --- clients and statistics -----------------------------------------------------------


@dataclass
class Stats:
    """Latencies (ms) per endpoint label, errors, 304s; thread-safe."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    not_modified: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, label: str, ms: float, status: int, expected: tuple[int, ...], body: bytes
    ) -> None:
        with self.lock:
            self.times[label].append(ms)
            if status == 304:
                self.not_modified[label] += 1
            elif status not in expected:
                self.errors[label] += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{label} → {status} {body[:200]!r}")

    def all_times(self) -> list[float]:
        return [t for ts in self.times.values() for t in ts]

    def count(self) -> int:
        return sum(len(ts) for ts in self.times.values())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[
        min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    ]  # nearest rank


def print_endpoints(stats: Stats) -> None:
    print(
        f"  {'endpoint':34s} {'n':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'304':>5s} {'err':>4s}"
    )
    for label in sorted(stats.times):
        ts = stats.times[label]
        print(
            f"  {label:34s} {len(ts):6d} {percentile(ts, 50):8.1f} {percentile(ts, 95):8.1f}"
            f" {max(ts):8.1f} {stats.not_modified[label]:5d} {stats.errors[label]:4d}"
        )
    for s in stats.samples:
        print("  error sample:", s)


class Client:
    """One simulated browser or integration: a keep-alive connection (reopened when the server
    closes it), its token, and a validator cache (ETag/Last-Modified per URL) that it sends back
    as If-None-Match/If-Modified-Since, as a browser does for `no-cache` or expired responses."""

    def __init__(self, port: int, token: str, stats: Stats, validators: bool = True):
        self.port, self.stats, self.validators = port, stats, validators
        self.headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cache: dict[str, tuple[str | None, str | None]] = {}

    def request(
        self, label: str, method: str, path: str, body=None, expected=(200,)
    ) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method == "GET" and self.validators and path in self.cache:
            etag, modified = self.cache[path]
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
        started = time.perf_counter()
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # the server closed a kept-alive connection: once more
                if attempt:
                    raise
        ms = (time.perf_counter() - started) * 1000
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        if method == "GET" and response.status == 200 and self.validators:
            etag, modified = response.getheader("ETag"), response.getheader("Last-Modified")
            if etag or modified:
                self.cache[path] = (etag, modified)
        self.stats.add(label, ms, response.status, expected, data)
        return response.status, data

    def close(self) -> None:
        self.conn.close()


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    return int((lon + 180) / 360 * n), int(
        (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    )


def sample_point(rng: random.Random, box: tuple[float, float, float, float]) -> tuple[float, float]:
    return rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])


def parse_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")
