# ruff: noqa: E501  (report lines read better unbroken)
"""App CPU per request of bench/load.py's mix, serially in-process (Flask test client): the same
weights, clients (leaders, planners, the admin; reports by the 12345 token) and validator
caches (If-None-Match), so reports invalidate items pages and issue tiles as they do under the
load bench. bench/request_path.py measures each kind on its own, after its warm-up: there an
items page comes from the response store (1.1 round trips), which the mixed load rarely allows.

    .venv/bin/python bench/mix_cpu.py [--database geoservice_bench_load1] [-n 3000] [--profile report]

Prints the app CPU (this process, the test client included: ~0.1 ms per request) and the
database CPU (the app's backends, read from /proc in clock ticks before and after each request:
exact over many requests, not for one) per request and per kind, with each kind's status codes
and its shares of the totals.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
from load_kit import backend_cpu_reader, ensure_accounts, ensure_county


class _Once:
    """A stop event that lets run_client make exactly one request."""

    def __init__(self) -> None:
        self.calls = 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls > 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=os.environ.get("LOAD_DATABASE") or "geoservice_bench_load1"
    )
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("-n", type=int, default=3000, help="requests (after 300 of warm-up)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--profile",
        metavar="LABEL",
        help="cProfile (CPU time) the requests whose label holds LABEL",
    )
    parser.add_argument("--sort", default="tottime", help="pstats order (tottime, cumulative…)")
    args = parser.parse_args()
    profiler = cProfile.Profile(time.process_time) if args.profile else None

    url = ensure_county(args.database, args.scale)
    accounts = ensure_accounts(url)
    from geoservice import create_app
    from geoservice.db import database

    upload_dir = Path(__file__).resolve().parent / "out" / "uploads"
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "bench", "UPLOAD_DIR": str(upload_dir),
         "RATE_LIMIT_WRITES_PER_MINUTE": 0}
    )  # fmt: skip
    backend_cpu = backend_cpu_reader(database(app).engine)
    client = app.test_client()
    work = load.Workload(args.database)
    tokens = [
        accounts.leaders[i % len(accounts.leaders)][0]
        if i % 2
        else (accounts.admin if i % 4 == 0 else accounts.planner)
        for i in range(args.clients)
    ]
    caches: list[dict[str, str]] = [{} for _ in tokens]
    rngs = [random.Random(1000 + i) for i in range(args.clients)]
    cpu: dict[str, float] = defaultdict(float)
    db_cpu: dict[str, float] = defaultdict(float)
    codes: dict[str, Counter] = defaultdict(Counter)

    class InProcess:
        """load.Client's interface over the test client."""

        def __init__(self, i: int) -> None:
            self.i = i

        def request(self, label, method, path, body=None, expected=(200,)):
            token = accounts.hotline if method == "POST" else tokens[self.i]
            headers = {"Authorization": f"Bearer {token}"}
            if method == "GET" and path in caches[self.i]:
                headers["If-None-Match"] = caches[self.i][path]
            profiled = profiler is not None and args.profile in label and measuring
            if profiled:
                profiler.enable()
            db_before = backend_cpu()
            started = time.process_time()
            response = client.open(path, method=method, headers=headers, json=body)
            data = response.get_data()
            cpu[label] += time.process_time() - started
            db_cpu[label] += backend_cpu() - db_before
            if profiled:
                profiler.disable()
            codes[label][response.status_code] += 1
            if response.status_code not in (*expected, 304):
                raise SystemExit(f"{label}: {response.status_code} {data[:300]!r}")
            if method == "GET" and response.status_code == 200 and response.headers.get("ETag"):
                caches[self.i][path] = response.headers["ETag"]
            return response.status_code, data

    def run(total: int) -> None:
        for j in range(total):
            i = j % args.clients
            load.run_client(InProcess(i), InProcess(i), work, rngs[i], _Once())

    measuring = False
    run(300)
    cpu.clear()
    db_cpu.clear()
    codes.clear()
    measuring = True
    started = time.process_time()
    run(args.n)
    total = time.process_time() - started
    db_total = sum(db_cpu.values())
    print(
        f"mix on {args.database}, {args.n} requests in-process: app CPU {total / args.n * 1e6:.0f} µs"
        f" + database CPU {db_total / args.n * 1e6:.0f} µs per request;"
        f" load {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(
        f"  {'request':30s} {'n':>5s} {'app µs':>8s} {'share':>6s} {'db µs':>8s} {'share':>6s}"
        "  status codes"
    )
    for label in sorted(cpu):
        n = sum(codes[label].values())
        print(
            f"  {label:30s} {n:5d} {cpu[label] / n * 1e6:8.0f} {cpu[label] / total * 100:5.1f}%"
            f" {db_cpu[label] / n * 1e6:8.0f} {db_cpu[label] / max(db_total, 1e-9) * 100:5.1f}%"
            f"  {dict(codes[label])}"
        )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(45)
        if os.environ.get("MIX_CPU_PROFILE_DUMP"):
            profiler.dump_stats(os.environ["MIX_CPU_PROFILE_DUMP"])


if __name__ == "__main__":
    main()
