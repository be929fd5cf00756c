"""Concurrent issue reports and the tile-count triggers: do writers wait on each other?

N connections each run report transactions in a loop: INSERT one issue into the same few
cells (same day, category, source: the hottest facet rows too), hold the transaction open
`--hold` seconds (the rest of a report's work), COMMIT. Prints the transactions per second,
the insert latency (p50/p95/max: time spent in the INSERT, i.e. waiting on other writers'
row locks), how often pg_stat_activity showed a writer waiting on a lock, and the load
average. Then checks the counts are exact (issue_tile_counts and issue_tile_facets sums
against count(*) of the issues).

    BENCH_DATABASE_URL=postgresql+psycopg2://geoservice@/geoservice_bench_hotrows?host=... \
      .venv/bin/python bench/hot_rows.py --writers 16 --seconds 10 --hold 0.05

The database is created (empty, migrated) when missing; issues already there are kept (the
exactness check counts them all).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg2://geoservice@/geoservice_bench_hotrows?host=/work/main/.pg/run"

INSERT = text(
    "INSERT INTO issues (geom, category, source, status, reported_at) VALUES"
    " (ST_SetSRID(ST_MakePoint(:x, :y), 4326), '环境卫生', '12345热线', 'reported', now())"
)


def ensure_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    if not exists:
        from geoservice import migrate

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        migrate.upgrade(engine)
        engine.dispose()


def run(url: str, writers: int, seconds: float, hold: float) -> dict:
    engine = create_engine(url, pool_size=writers + 2)
    latencies: list[float] = []
    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def writer(k: int) -> None:
        with engine.connect() as conn:
            i = 0
            while time.monotonic() < stop:
                i += 1
                # Same county, a few hundred metres apart: every coarse cell is shared.
                x, y = 120.2 + 0.001 * ((k + i) % 7), 33.7 + 0.001 * ((k * 3 + i) % 5)
                t0 = time.perf_counter()
                with conn.begin():
                    conn.execute(INSERT, {"x": x, "y": y})
                    t1 = time.perf_counter()
                    time.sleep(hold)
                with lock:
                    latencies.append(t1 - t0)
                    done[0] += 1

    samples = waits = 0
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    with engine.connect() as probe:
        probe.execution_options(isolation_level="AUTOCOMMIT")
        while time.monotonic() < stop:
            waits += probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO issues%'"
                )
            ).scalar()
            samples += 1
            time.sleep(0.02)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    with engine.connect() as conn:
        exact = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM issues),"
                " (SELECT COALESCE(sum(n), 0) FROM issue_tile_counts WHERE level = 5),"
                " (SELECT COALESCE(sum(n), 0) FROM issue_tile_counts WHERE level = 19),"
                " (SELECT COALESCE(sum(n), 0) FROM issue_tile_facets WHERE level = 6),"
                " (SELECT COALESCE(sum(n), 0) FROM issue_tile_facets WHERE level = 18),"
                " (SELECT count(*) FROM issue_tile_counts),"
                " (SELECT count(*) FROM issue_tile_facets)"
            )
        ).one()
    engine.dispose()
    latencies.sort()
    return {
        "tx": done[0],
        "tps": done[0] / elapsed,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "max": latencies[-1],
        "waiting": waits / max(samples, 1),
        "exact": exact,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hold", type=float, default=0.05)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    r = run(url, args.writers, args.seconds, args.hold)
    issues, c5, c19, f6, f18, count_rows, facet_rows = r["exact"]
    ideal = f"≤{args.writers / args.hold:.0f}/s" if args.hold > 0 else "-"
    print(
        f"hot_rows: {args.writers} writers, hold {args.hold * 1000:.0f} ms, {args.seconds:.0f} s:"
        f" {r['tx']} reports (table now {issues} issues), {r['tps']:.0f}/s"
        f" (no waiting at all: {ideal});"
        f" INSERT p50 {r['p50'] * 1000:.1f} ms p95 {r['p95'] * 1000:.1f} ms"
        f" max {r['max'] * 1000:.1f} ms; writers waiting on a lock (mean of samples)"
        f" {r['waiting']:.2f}; load {os.getloadavg()}"
    )
    ok = issues == c5 == c19 == f6 == f18
    print(
        f"hot_rows: exact {'yes' if ok else 'NO'}: issues {issues}, counts level 5 {c5} /"
        f" 19 {c19}, facets level 6 {f6} / 18 {f18}; rows: counts {count_rows},"
        f" facets {facet_rows}"
    )


if __name__ == "__main__":
    main()
