"""Read replica bench (issue 19, province scale): a real primary + hot standby pair, the demo
county on it, and the app serving a mix of reads and writes from several accounts, once
without the replica and once with it, in the same run.

    .venv/bin/python -m bench.scale_replica [--scale 0.3] [--seconds 20] [--clients 4]

It starts its own two clusters in a temporary folder (tests/replica_cluster.py: initdb,
pg_basebackup -R, pg_ctl; as `postgres` when run as root), never touching the local cluster,
and removes them at the end. Prints, per phase: requests, p50/p95 of reads and writes,
the transactions each cluster committed (the split), and read-your-own-writes failures (a
writer's GET of the issue it just created answering 404: must be 0).

The requests go through Flask's test client in threads of this process (no HTTP server), so
absolute figures are the app's, not a server's; the split is what this bench shows. The
machine is shared and noisy: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from geoservice import create_app, migrate
from geoservice.accounts.accounts import create_user, issue_token
from geoservice.db import database
from tests.replica_cluster import ClusterPair, free_port, pg_bindir


def activity(url: str) -> tuple[int, int]:
    """(transactions, buffer accesses) of the database so far (pg_stat_database)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            row = conn.execute(
                text(
                    "SELECT xact_commit + xact_rollback, blks_hit + blks_read"
                    " FROM pg_stat_database WHERE datname = current_database()"
                )
            ).one()
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


def load(pair: ClusterPair, scale: float) -> dict:
    from datetime import date, timedelta

    from geoservice import partitions
    from geoservice.demo import generate_county
    from geoservice.demo.issues import ISSUE_WINDOW_DAYS
    from geoservice.demo.seed import load_demo
    from geoservice.registry import layers

    app = create_app({"DATABASE_URL": pair.url(), "SECRET_KEY": "bench"})
    with app.app_context():
        session = database(app).session()
        today = date.today() - timedelta(days=1)
        partitions.ensure(session, today, since=today - timedelta(days=ISSUE_WINDOW_DAYS))
        county = generate_county(seed=7, scale=scale, today=today)
        load_demo(session, layers(), county, progress=lambda m: None)
        tokens = {}
        for name in ("writer1", "writer2", "reader1", "reader2", "reader3", "reader4"):
            user = create_user(session, name, "admin")
            session.flush()
            tokens[name] = issue_token(session, user)
        session.commit()
        bbox = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
                " FROM (SELECT ST_Extent(geom) e FROM issues) s"
            )
        ).one()
        sample = session.execute(
            text("SELECT id, ST_X(geom), ST_Y(geom) FROM issues ORDER BY random() LIMIT 500")
        ).all()
        session.close()
    return {
        "tokens": tokens,
        "bbox": tuple(bbox),
        "ids": [r[0] for r in sample],
        "points": [(r[1], r[2]) for r in sample],  # new reports where issues were (in the area)
    }


def run_phase(app, data: dict, seconds: float, clients: int) -> dict:
    reads: list[float] = []
    writes: list[float] = []
    stale = [0]
    errors = [0]
    samples: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    x0, y0, x1, y1 = data["bbox"]
    names = list(data["tokens"])

    def client_loop(n: int) -> None:
        rng = random.Random(n)
        client = app.test_client()
        name = names[n % len(names)]
        headers = {"Authorization": f"Bearer {data['tokens'][name]}"}
        while time.monotonic() < stop:
            if name.startswith("writer") and rng.random() < 0.3:
                lon, lat = rng.choice(data["points"])
                body = {
                    "lon": lon + rng.uniform(-1e-4, 1e-4),
                    "lat": lat + rng.uniform(-1e-4, 1e-4),
                    "category": "环境卫生",
                    "source": "12345热线",
                    "description": "bench",
                }
                t = time.perf_counter()
                r = client.post("/api/collections/issues/items", json=body, headers=headers)
                dt = time.perf_counter() - t
                if r.status_code != 201:
                    with lock:
                        errors[0] += 1
                        samples.append(f"POST {r.status_code} {r.get_data(as_text=True)[:120]}")
                    continue
                new_id = r.get_json()["id"]
                t2 = time.perf_counter()
                seen = client.get(f"/api/issues/{new_id}", headers=headers)
                dt2 = time.perf_counter() - t2
                with lock:
                    writes.append(dt)
                    reads.append(dt2)
                    if seen.status_code == 404:
                        stale[0] += 1
                    elif seen.status_code != 200:
                        errors[0] += 1
                continue
            if rng.random() < 0.5:
                url = f"/api/issues/{rng.choice(data['ids'])}"
            else:
                cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
                url = (
                    "/api/collections/issues/items?limit=100"
                    f"&bbox={cx - 0.01},{cy - 0.01},{cx + 0.01},{cy + 0.01}"
                )
            t = time.perf_counter()
            r = client.get(url, headers=headers)
            dt = time.perf_counter() - t
            with lock:
                reads.append(dt)
                if r.status_code != 200:
                    errors[0] += 1
                    samples.append(f"GET {url} {r.status_code} {r.get_data(as_text=True)[:120]}")

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "reads": reads,
        "writes": writes,
        "stale": stale[0],
        "errors": errors[0],
        "samples": samples[:3],
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    bindir = pg_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL with PostGIS installed")
    pair = ClusterPair(root=Path(tempfile.mkdtemp(prefix="gs-bench-replica-")), bindir=bindir,
                       port=free_port(55_800))  # fmt: skip
    try:
        t = time.perf_counter()
        pair.start()
        engine = create_engine(pair.url())
        migrate.upgrade(engine)
        engine.dispose()
        data = load(pair, args.scale)
        pair.start_standby()
        pair.wait_replayed(120)
        print(f"primary + standby with the demo county (scale {args.scale}) ready in "
              f"{time.perf_counter() - t:.0f} s; {len(data['ids'])} sample issues")  # fmt: skip
        config = {
            "DATABASE_URL": pair.url(),
            "SECRET_KEY": "bench",
            "RATE_LIMIT_WRITES_PER_MINUTE": 0,
        }
        phases = [
            ("primary only", create_app(config)),
            (
                "with replica",
                create_app({**config, "DATABASE_REPLICA_URL": pair.url(standby=True)}),
            ),
        ]
        print(
            f"{'phase':14} {'reads':>6} {'p50 ms':>7} {'p95 ms':>7} {'writes':>6} {'p95 ms':>7}"
            f" {'tx prim/repl':>13} {'buffers prim/repl':>19} {'stale':>5} {'errors':>6}  load"
        )
        for label, app in phases:
            before = activity(pair.url()), activity(pair.url(standby=True))
            out = run_phase(app, data, args.seconds, args.clients)
            after = activity(pair.url()), activity(pair.url(standby=True))
            tx = f"{after[0][0] - before[0][0]}/{after[1][0] - before[1][0]}"
            buffers = f"{after[0][1] - before[0][1]}/{after[1][1] - before[1][1]}"
            load_avg = "/".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"{label:14} {len(out['reads']):>6} {pct(out['reads'], 0.5):>7.1f}"
                f" {pct(out['reads'], 0.95):>7.1f} {len(out['writes']):>6}"
                f" {pct(out['writes'], 0.95):>7.1f} {tx:>13} {buffers:>19}"
                f" {out['stale']:>5} {out['errors']:>6}  {load_avg}"
            )
            for sample in out["samples"]:
                print(f"    error: {sample}")
            database(app).engine.dispose()
            if database(app).replica is not None:
                database(app).replica.engine.dispose()
        print(
            "(tx, buffers: transactions and shared-buffer accesses of each cluster during the"
            " phase, pg_stat_database: where the work was done; with a replica, each GET by a"
            " known account also asks the primary whether it wrote lately, one tiny"
            " transaction. stale: a writer's GET of the issue it just created answered 404)"
        )
    finally:
        pair.remove()


if __name__ == "__main__":
    main()
