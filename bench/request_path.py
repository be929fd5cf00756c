# ruff: noqa: E501  (report lines read better unbroken)
"""Where one request spends its time (issue 19): a 100-feature items page (an admin's and a
leader's), one issue (GET), and a report (POST, without and with a photo), each run serially
in-process (Flask test client, no HTTP) against a bench database. Also the other requests of bench/load.py's
mix (the catalogue, issue and grid tiles, attribution, rankings) and the closed loop's five
transitions (bench/replay.py's writes; each on its own issue). Prints per request: wall
time (p50, p95), the database round trips (every statement the driver sends, the implicit
BEGIN and the COMMIT included), the time spent waiting on them (median), and the CPU time of
this process (the app; the profiler's own share included) and of the PostgreSQL backends
(means): the CPU figures are what other work on a shared machine disturbs least. With
--statements the statements of one request, with --profile the top Python functions.

    .venv/bin/python bench/request_path.py [--database geoservice_bench_load1] [-n 200]
                                           [--statements] [--profile]

The database is one of bench/load.py's (the demo county; `--database`, default $LOAD_DATABASE
or geoservice_bench_load1, made at --scale 1 when missing). Reports add issues to it.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import psycopg2
import psycopg2.extensions

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_kit import (
    cpu_seconds,
    ensure_accounts,
    ensure_county,
    extent,
    inside_points,
    tile_xy,
)


class Trace:
    """Round trips of the connections made while it is installed."""

    def __init__(self) -> None:
        self.on = False
        self.trips: list[tuple[str, float]] = []

    def add(self, what: str, seconds: float) -> None:
        if self.on:
            self.trips.append((what, seconds))


TRACE = Trace()
FULL = os.environ.get("REQUEST_PATH_FULL") == "1"  # --statements prints whole statements


class CountingCursor(psycopg2.extensions.cursor):
    def execute(self, query, vars=None):
        if (
            self.connection.status == psycopg2.extensions.STATUS_READY
            and not self.connection.autocommit
        ):
            TRACE.add("BEGIN", 0.0)  # psycopg2 sends it first, in a round trip of its own
        started = time.perf_counter()
        try:
            return super().execute(query, vars)
        finally:
            sent = self.query if FULL else query  # FULL: as sent, values included
            text = sent.decode() if isinstance(sent, bytes) else str(sent)
            TRACE.add(
                " ".join(text.split())[: None if FULL else 110], time.perf_counter() - started
            )


BACKENDS: set[int] = set()


def backend_cpu() -> float:
    """CPU seconds used so far by the backends of the connections made (same machine)."""
    return sum(cpu_seconds(list(BACKENDS)).values())


class CountingConnection(psycopg2.extensions.connection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cursor_factory = CountingCursor
        BACKENDS.add(self.get_backend_pid())

    def set_isolation_level(self, level):
        """SQLAlchemy's isolation_level="AUTOCOMMIT" (and its reset at check-in) come here;
        psycopg2 then sends `SET default_transaction_isolation` when the level changes."""
        before, started = (self.autocommit, self.isolation_level), time.perf_counter()
        try:
            return super().set_isolation_level(level)
        finally:
            if (self.autocommit, self.isolation_level) != before:
                TRACE.add(
                    "SET default_transaction_isolation (psycopg2)", time.perf_counter() - started
                )

    def _sends(self) -> bool:
        """Does a commit or rollback go to the server? Not outside a transaction (psycopg2
        then does nothing: the pool's reset of a connection whose work ended, autocommit)."""
        return self.status != psycopg2.extensions.STATUS_READY

    def commit(self):
        sends, started = self._sends(), time.perf_counter()
        try:
            return super().commit()
        finally:
            if sends:
                TRACE.add("COMMIT", time.perf_counter() - started)

    def rollback(self):
        sends, started = self._sends(), time.perf_counter()
        try:
            return super().rollback()
        finally:
            if sends:
                TRACE.add("ROLLBACK", time.perf_counter() - started)


def small_jpeg() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 90, 60)).save(buffer, "JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=os.environ.get("LOAD_DATABASE") or "geoservice_bench_load1"
    )
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("-n", type=int, default=200, help="requests per kind (after 20 of warm-up)")
    parser.add_argument("--statements", action="store_true", help="list one request's statements")
    parser.add_argument("--profile", action="store_true", help="top Python functions per kind")
    parser.add_argument(
        "--fresh", action="store_true",
        help="2,000 viewports (answers rarely shared) instead of bench/load.py's 40",
    )  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated kinds (default: all)")
    parser.add_argument(
        "--rate-limit", type=int, default=1_000_000,
        help="RATE_LIMIT_WRITES_PER_MINUTE: writes are counted as in production (default: a"
        " limit never reached); 0 turns the counting off",
    )  # fmt: skip
    parser.add_argument(
        "--env", action="append", default=[],
        help="NAME=VALUE: an app setting, as the server's environment gives it (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()

    url = ensure_county(args.database, args.scale)
    accounts = ensure_accounts(url, leaders=4, inspectors=1)
    from sqlalchemy import event

    from geoservice import create_app
    from geoservice.config import config_from_env
    from geoservice.db import database

    upload_dir = Path(__file__).resolve().parent / "out" / "uploads"
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "bench", "UPLOAD_DIR": str(upload_dir),
         "RATE_LIMIT_WRITES_PER_MINUTE": args.rate_limit,
         **config_from_env(dict(e.split("=", 1) for e in args.env))}
    )  # fmt: skip
    engine = database(app).engine

    @event.listens_for(engine, "do_connect")
    def _counting(_dialect, _record, _cargs, cparams):
        cparams["connection_factory"] = CountingConnection

    engine.dispose()
    client = app.test_client()
    rng = random.Random(19)
    x0, y0, x1, y1 = extent(args.database)
    w, h = (x1 - x0) / 12, (y1 - y0) / 12
    viewports = []
    for _ in range(2000 if args.fresh else 40):
        lon, lat = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - h)
        viewports.append(f"{lon:.5f},{lat:.5f},{lon + w:.5f},{lat + h:.5f}")
    points = inside_points(args.database, 300)
    from load_kit import psql

    ids = [
        int(i)
        for i in psql(
            args.database, "SELECT id FROM issues ORDER BY reported_at DESC LIMIT 200"
        ).split()
    ]
    photo = small_jpeg()

    def page(token):
        def run():
            bbox = rng.choice(viewports)
            return client.get(
                f"/api/collections/issues/items?bbox={bbox}&limit=100",
                headers={"Authorization": f"Bearer {token}"},
            )

        return run

    def issue():
        return client.get(
            f"/api/issues/{rng.choice(ids)}", headers={"Authorization": f"Bearer {accounts.admin}"}
        )

    def report(photos, source):
        def run():
            lon, lat = rng.choice(points)
            body = {"lon": round(lon, 6), "lat": round(lat, 6), "category": "环境卫生",
                    "source": source, "description": "压测上报", "photos": photos}  # fmt: skip
            return client.post(
                "/api/collections/issues/items", json=body,
                headers={"Authorization": f"Bearer {accounts.hotline}"},
            )  # fmt: skip

        return run

    tiles = {z: [tile_xy(*point, z) for point in points[:60]] for z in (12, 14, 16)}

    def get(path_of, token=accounts.admin):
        def run():
            return client.get(path_of(), headers={"Authorization": f"Bearer {token}"})

        return run

    def tile(layer):
        def path():
            z = rng.choice(list(tiles))
            x, y = rng.choice(tiles[z])
            return f"/api/collections/{layer}/tiles/{z}/{x}/{y}.pbf"

        return path

    def attribution_path():
        lon, lat = rng.choice(points)
        return f"/api/attribution?lon={lon:.6f}&lat={lat:.6f}"

    def transitions(where: str, to: str, extra: dict):
        """A closed-loop move (as the admin, who may make every one) over issues in its
        from-status, newest first, one issue per request."""
        queue = [
            int(i)
            for i in psql(
                args.database,
                f"SELECT id FROM issues WHERE {where} ORDER BY id DESC LIMIT {args.n + 20}",
            ).split()
        ]

        def run():
            return client.post(
                f"/api/issues/{queue.pop(0)}/transitions", json={"to": to, **extra},
                headers={"Authorization": f"Bearer {accounts.admin}"},
            )  # fmt: skip

        return run

    moves = {
        "立案 accept": ("status = 'reported'", "accepted", {}),
        "交办 dispatch": ("status = 'accepted' AND leader_id IS NOT NULL", "dispatched", {}),
        "开始整改 start": ("status = 'dispatched'", "in_progress", {}),
        "整改反馈 fix, photo": (
            "status = 'in_progress'", "fixed", {"note": "已整改", "photos": [photo]},
        ),
        "销号 verify": ("status = 'fixed'", "closed", {}),
    }  # fmt: skip

    kinds = {
        "GET collections (admin)": (get(lambda: "/api/collections"), (200,)),
        "GET tile issues z12/14/16": (get(tile("issues")), (200, 204)),
        "GET tile grids z12/14/16": (get(tile("grids")), (200, 204)),
        "GET attribution": (get(attribution_path), (200,)),
        "GET rankings (leader, week)": (
            get(lambda: "/api/rankings?of=leader&period=week"),
            (200,),
        ),
        "items page (admin, 100, bbox)": (page(accounts.admin), (200,)),
        "items page (leader, 100, bbox)": (page(accounts.leaders[0][0]), (200,)),
        "GET issue (admin)": (issue, (200, 404)),
        "POST report, no photo (12345)": (report([], "12345热线"), (201,)),
        "POST report, one photo": (report([photo], "暗访督查"), (201,)),
    }
    only = [k for k in args.only.split(",") if k]
    for label, (where, to, extra) in moves.items():
        if not only or any(o in f"POST transition {label}" for o in only):
            kinds[f"POST transition {label}"] = (transitions(where, to, extra), (200,))
    print(
        f"request path on {args.database}: {args.n} requests per kind, serial, in-process"
        f"{' ' + ' '.join(args.env) if args.env else ''};"
        f" load {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(
        f"  {'request':32s} {'p50 ms':>7s} {'p95 ms':>7s} {'trips':>6s} {'SQL ms':>7s}"
        f" {'app CPU ms':>10s} {'db CPU ms':>9s}"
    )
    for label, (run, expected) in kinds.items():
        if only and not any(o in label for o in only):
            continue
        for _ in range(20):
            response = run()
            if response.status_code not in expected:
                raise SystemExit(f"{label}: {response.status_code} {response.get_data()[:300]!r}")
        walls, trips, sql = [], [], []
        per_statement: dict[str, list[float]] = defaultdict(list)
        profiler = cProfile.Profile() if args.profile else None
        sample = None
        cpu_app0, cpu_db0 = time.process_time(), backend_cpu()
        for i in range(args.n):
            TRACE.trips.clear()
            TRACE.on = True
            if profiler:
                profiler.enable()
            started = time.perf_counter()
            response = run()
            wall = time.perf_counter() - started
            if profiler:
                profiler.disable()
            TRACE.on = False
            if response.status_code not in expected:
                raise SystemExit(f"{label}: {response.status_code} {response.get_data()[:300]!r}")
            walls.append(wall * 1000)
            trips.append(len(TRACE.trips))
            sql.append(sum(s for _, s in TRACE.trips) * 1000)
            for what, s in TRACE.trips:
                per_statement[what[:60]].append(s * 1000)
            if i == args.n // 2:
                sample = list(TRACE.trips)
        cpu_app = (time.process_time() - cpu_app0) / args.n * 1000
        cpu_db = (backend_cpu() - cpu_db0) / args.n * 1000
        walls.sort()
        p95 = walls[min(len(walls) - 1, int(len(walls) * 0.95))]
        print(
            f"  {label:32s} {statistics.median(walls):7.2f} {p95:7.2f} {statistics.mean(trips):6.1f}"
            f" {statistics.median(sql):7.2f} {cpu_app:10.2f} {cpu_db:9.2f}",
            flush=True,
        )
        if args.statements and sample:
            for what, s in sample:
                print(f"      {s * 1000:7.3f} ms  {what}")
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(
                os.environ.get("PROFILE_SORT", "cumulative")
            ).print_stats(35)
            print("\n".join(out.getvalue().splitlines()[:60]))


if __name__ == "__main__":
    main()
