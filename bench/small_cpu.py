"""CPU per 100-feature bbox page (bench/api_bench.py's "small" pages), serially in-process
(Flask test client, validators on as served): app CPU and PostgreSQL backend CPU per page,
wall p50/p95, over `-n` of api_bench's bboxes (seed 19), each asked once (pages built, as most
of the small bench's requests are). `--bodies FILE` writes every answer (its timeStamp
blanked) for comparing two versions; `--profile` prints the top Python functions (CPU time).

    BENCH_DATABASE_URL=… .venv/bin/python bench/small_cpu.py [-n 400] [--skip 0]
        [--bodies out.jsonl] [--profile] [--root DIR]

`--root DIR`: import geoservice from DIR (another checkout) instead of this one.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=400)
    parser.add_argument("--skip", type=int, default=0, help="start at this bbox of the list")
    parser.add_argument("--bodies")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--root", default=str(HERE.parent))
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE app setting")
    parser.add_argument("--statements", action="store_true", help="each statement's median wall ms")
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    sys.path.insert(1, str(HERE.parent))

    import psycopg2.extensions
    from sqlalchemy import event

    from bench.api_bench import admin_token, small_bboxes
    from bench.load_kit import backend_cpu_reader
    from geoservice import create_app
    from geoservice.db import database

    url = os.environ["BENCH_DATABASE_URL"]
    token = admin_token(url)
    settings = dict(e.split("=", 1) for e in args.env)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", **settings})
    engine = database(app).engine

    trips: dict[str, list[float]] = {}

    class TimedCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            started = time.perf_counter()
            try:
                return super().execute(query, vars)
            finally:
                q = query.decode() if isinstance(query, bytes) else str(query)
                trips.setdefault(" ".join(q.split())[:90], []).append(time.perf_counter() - started)

    class TimedConnection(psycopg2.extensions.connection):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.cursor_factory = TimedCursor

    if args.statements:

        @event.listens_for(engine, "do_connect")
        def _factory(_dialect, _record, _cargs, cparams):
            cparams["connection_factory"] = TimedConnection

    backend_cpu = backend_cpu_reader(engine)

    assert psycopg2.extensions
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    boxes = small_bboxes(2000 + args.skip + args.n, seed=19)[args.skip : args.skip + args.n]
    warm = small_bboxes(40, seed=7)
    for b in warm:  # connections, catalogue caches, compiled statements
        r = client.get(f"/api/collections/issues/items?limit=100&bbox={b}", headers=headers)
        assert r.status_code == 200, r.get_data()[:300]
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    trips.clear()
    out = open(args.bodies, "w") if args.bodies else None  # noqa: SIM115
    walls = []
    app0, db0 = time.process_time(), backend_cpu()
    for b in boxes:
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        r = client.get(f"/api/collections/issues/items?limit=100&bbox={b}", headers=headers)
        walls.append((time.perf_counter() - started) * 1000)
        if profiler:
            profiler.disable()
        if r.status_code != 200:
            raise SystemExit(f"{b}: {r.status_code} {r.get_data()[:300]!r}")
        if out:
            body = re.sub(rb'"timeStamp": ?"[^"]*"', b'"timeStamp":""', r.get_data())
            out.write(b.encode().decode() + "\t" + body.decode() + "\n")
    app_cpu = (time.process_time() - app0) / len(boxes) * 1000
    db_cpu = (backend_cpu() - db0) / len(boxes) * 1000
    walls.sort()
    print(
        f"{len(boxes)} pages: wall p50 {statistics.median(walls):.2f} ms p95"
        f" {walls[int(len(walls) * 0.95)]:.2f} ms; CPU app {app_cpu:.2f} + db {db_cpu:.2f}"
        f" = {app_cpu + db_cpu:.2f} ms/page; load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for q, times in sorted(trips.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {len(times):5d} × {statistics.median(times) * 1000:7.3f} ms  {q}")
    if profiler:
        s = io.StringIO()
        pstats.Stats(profiler, stream=s).sort_stats(
            os.environ.get("PROFILE_SORT", "tottime")
        ).print_stats(40)
        print(s.getvalue())


if __name__ == "__main__":
    main()
