# ruff: noqa: E501  (report lines read better unbroken)
"""Mixed load: N clients (16) against gunicorn (2 workers) — reads, tiles, attribution, reports,
rankings — for each worker model given; prints requests/s, p95 and errors against issue 19's
targets (≥ 300 requests/s, p95 < 100 ms, 0 errors), and p50/p95 per endpoint.

    .venv/bin/python bench/load.py [--seconds 30] [--clients 16] [--models sync:2,gthread:2x4]
                                   [--database NAME] [--template geoservice_demo100 | --scale 1]
                                   [--no-validators]

The database (default geoservice_bench_load100, a copy of geoservice_demo100 when that exists,
else geoservice_bench_load1 seeded at --scale) is made once and reused. Each client is a closed
loop (next request when the last one answered), a browser-like keep-alive connection with a
validator cache: it revalidates what it fetched before (If-None-Match), so answers the server
can confirm unchanged count as 304s, shown per endpoint. `--no-validators`: every GET is fresh.

Mix per request (weights): items page of 100 issues in a viewport 30, one issue 5, issue tile
z12–16 20, grid tile z12–15 10, attribution preview 10, report by 12345 (POST, no photo) 10,
leader rankings of the week 10, the catalogue 5. Half of the clients are leader accounts (data
scope: their own places and issues), the others planners/admins (the whole county). Figures on
this shared 2-core machine are noisy: every figure line carries the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_kit import (
    DEMO100,
    Client,
    CpuMeter,
    Server,
    Stats,
    WorkerModel,
    county_database,
    ensure_accounts,
    ensure_county,
    extent,
    inside_points,
    percentile,
    print_endpoints,
    psql,
    sample_point,
    target_line,
    tile_xy,
)

CATEGORIES = ["环境卫生", "垃圾外溢", "道路破损", "车辆违停", "乱贴乱画", "占道经营", "设施损坏"]
WEIGHTS = {
    "items": 30,
    "issue": 5,
    "tile_issues": 20,
    "tile_grids": 10,
    "attribution": 10,
    "report": 10,
    "rankings": 10,
    "collections": 5,
}


class Workload:
    """The finite sets clients draw from (viewports, tiles, issue ids), like real map users who
    look at the same streets again."""

    def __init__(self, database: str, seed: int = 19):
        rng = random.Random(seed)
        self.box = extent(database)
        x0, y0, x1, y1 = self.box
        w, h = (x1 - x0) / 12, (y1 - y0) / 12
        self.viewports = []
        for _ in range(40):
            lon, lat = sample_point(rng, (x0, y0, x1 - w, y1 - h))
            self.viewports.append(f"{lon:.5f},{lat:.5f},{lon + w:.5f},{lat + h:.5f}")
        self.tiles: dict[int, list[tuple[int, int]]] = {}
        for z in range(12, 17):
            points = [sample_point(rng, self.box) for _ in range(30)]
            self.tiles[z] = sorted({tile_xy(lon, lat, z) for lon, lat in points})
        ids = psql(database, "SELECT id FROM issues ORDER BY reported_at DESC LIMIT 500").split()
        self.issue_ids = [int(i) for i in ids]
        self.points = inside_points(database, 500)
        self.rng = rng


def run_client(
    client: Client, hotline: Client, work: Workload, rng: random.Random, stop: threading.Event
) -> None:
    ops, weights = list(WEIGHTS), list(WEIGHTS.values())
    while not stop.is_set():
        op = rng.choices(ops, weights)[0]
        if op == "items":
            bbox = rng.choice(work.viewports)
            client.request(
                "GET items (100, bbox)",
                "GET",
                f"/api/collections/issues/items?bbox={bbox}&limit=100",
            )
        elif op == "issue":
            client.request(
                "GET issue", "GET", f"/api/issues/{rng.choice(work.issue_ids)}", expected=(200, 404)
            )
        elif op == "tile_issues":
            z = rng.randint(12, 16)
            x, y = rng.choice(work.tiles[z])
            client.request(
                "GET tile issues z12-16", "GET", f"/api/collections/issues/tiles/{z}/{x}/{y}.pbf"
            )
        elif op == "tile_grids":
            z = rng.randint(12, 15)
            x, y = rng.choice(work.tiles[z])
            client.request(
                "GET tile grids z12-15", "GET", f"/api/collections/grids/tiles/{z}/{x}/{y}.pbf"
            )
        elif op == "attribution":
            lon, lat = rng.choice(work.points)
            client.request(
                "GET attribution", "GET", f"/api/attribution?lon={lon:.6f}&lat={lat:.6f}"
            )
        elif op == "report":
            lon, lat = rng.choice(work.points)
            body = {
                "lon": round(lon, 6),
                "lat": round(lat, 6),
                "category": rng.choice(CATEGORIES),
                "source": "12345热线",
                "description": "市民来电反映（压测）",
                "photos": [],
            }
            hotline.request(
                "POST report (12345)",
                "POST",
                "/api/collections/issues/items",
                body,
                expected=(201,),
            )
        elif op == "rankings":
            client.request(
                "GET rankings (leader, week)", "GET", "/api/rankings?of=leader&period=week"
            )
        else:
            client.request("GET collections", "GET", "/api/collections")


def measure(
    port: int,
    accounts,
    work: Workload,
    clients: int,
    seconds: float,
    validators: bool,
    meter: CpuMeter,
) -> tuple[Stats, float, tuple[float, float], float]:
    """Runs `clients` closed loops for a warm-up of 3 s (not counted) then `seconds`; the
    statistics, the measured phase's length, the server's CPU seconds (app, database) and the
    clients' own (this process: they share the machine's cores with the server)."""
    tokens = []
    for i in range(clients):
        if i % 2:
            tokens.append(accounts.leaders[i % len(accounts.leaders)][0])
        else:
            tokens.append(accounts.admin if i % 4 == 0 else accounts.planner)
    for phase, length in (("warm-up", 3.0), ("measured", seconds)):
        stats, stop = Stats(), threading.Event()
        threads = []
        for i, token in enumerate(tokens):
            c = Client(port, token, stats, validators)
            h = Client(port, accounts.hotline, stats, validators)
            rng = random.Random(1000 + i)
            threads.append(
                threading.Thread(target=run_client, args=(c, h, work, rng, stop), daemon=True)
            )
        started = time.perf_counter()
        for t in threads:
            t.start()
        if phase == "measured":
            meter.start()
        clients_cpu = time.process_time()
        time.sleep(length)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        elapsed = time.perf_counter() - started
        clients_cpu = time.process_time() - clients_cpu
    return stats, elapsed, meter.stop(), clients_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--models",
        default="gthread:2x4",
        help="comma-separated: sync:2, gthread:2x4 …; the first prints the TARGET lines",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("LOAD_DATABASE") or None,
        help="default: $LOAD_DATABASE, else see above",
    )
    parser.add_argument(
        "--template", default=None, help=f"copy this database (default {DEMO100} when it exists)"
    )
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--no-validators", action="store_true")
    parser.add_argument("--port", type=int, default=5191)
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)"
    )
    args = parser.parse_args()

    name, template = county_database(args.database, args.template, args.scale)
    url = ensure_county(name, args.scale, template)
    accounts = ensure_accounts(url)
    work = Workload(name)
    issues = psql(name, "SELECT count(*) FROM issues")
    env = dict(e.split("=", 1) for e in args.env)
    print(
        f"mixed load on {name} ({int(issues):,} issues): {args.clients} clients, {args.seconds:g} s each,"
        f" clients {'do not revalidate' if args.no_validators else 'revalidate'}; server settings {env or 'defaults'}; cpus {os.cpu_count()}",
        flush=True,
    )
    first = True
    for spec in args.models.split(","):
        model = WorkerModel.parse(spec.strip())
        with Server(url, args.port, model, env) as server:
            meter = CpuMeter(server, name)
            stats, elapsed, (cpu_app, cpu_db), cpu_clients = measure(
                args.port, accounts, work, args.clients, args.seconds, not args.no_validators, meter
            )
        times = stats.all_times()
        rps = stats.count() / elapsed
        errors = sum(stats.errors.values())
        p95 = percentile(times, 95)
        revalidated = sum(stats.not_modified.values())
        print(
            f"\n{model.label}: {rps:.1f} requests/s, p50 {percentile(times, 50):.1f} ms, p95 {p95:.1f} ms,"
            f" errors {errors}, 304 {revalidated} of {len(times)}  (load {os.getloadavg()[0]:.2f})"
        )
        n = max(1, stats.count())
        print(
            f"  CPU per request: app {cpu_app / n * 1000:.1f} ms + database {cpu_db / n * 1000:.1f} ms"
            f" → at most {os.cpu_count() / ((cpu_app + cpu_db) / n):.0f} requests/s on {os.cpu_count()} idle cores;"
            f" the load's own clients {cpu_clients / n * 1000:.1f} ms ({cpu_clients / elapsed:.2f} of a core)"
        )
        print_endpoints(stats)
        if first:
            target_line("mixed_load_rps", rps, "req/s", ">=300", model.label)
            target_line("mixed_load_p95", p95, "ms", "<100", model.label)
            target_line("mixed_load_errors", errors, "errors", "<=0", model.label)
            first = False


if __name__ == "__main__":
    main()
