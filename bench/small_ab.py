"""Two checkouts' CPU per 100-feature bbox page, interleaved request by request (the host's
speed moves ~1.8× within minutes, so runs one after the other compare the host, not the
code): one in-process app per checkout (Flask test client, validators on), each asked the
same api_bench bboxes (seed 19) in turn, the order swapped every page; app CPU and
PostgreSQL backend CPU per page of each.

    BENCH_DATABASE_URL=… .venv/bin/python bench/small_ab.py OLD_ROOT NEW_ROOT [-n 700] [--skip 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(root: str) -> None:
    sys.path.insert(0, root)
    sys.path.insert(1, str(HERE.parent))
    from bench.api_bench import admin_token, small_bboxes
    from bench.load_kit import backend_cpu_reader
    from geoservice import create_app
    from geoservice.db import database

    url = os.environ["BENCH_DATABASE_URL"]
    headers = {"Authorization": f"Bearer {admin_token(url)}"}
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    engine = database(app).engine
    backend_cpu = backend_cpu_reader(engine)

    client = app.test_client()
    for b in small_bboxes(40, seed=7):
        client.get(f"/api/collections/issues/items?limit=100&bbox={b}", headers=headers)
    app_s = db_s = 0.0
    n = 0
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "END":
            break
        a0, d0 = time.process_time(), backend_cpu()
        r = client.get(
            f"/api/collections/issues/items?limit=100&bbox={line.strip()}", headers=headers
        )
        if r.status_code != 200:
            raise SystemExit(f"{line.strip()}: {r.status_code}")
        app_s += time.process_time() - a0
        db_s += backend_cpu() - d0
        n += 1
        print("ok", flush=True)
    print(f"{n} pages: CPU app {app_s / n * 1000:.2f} + db {db_s / n * 1000:.2f}"
          f" = {(app_s + db_s) / n * 1000:.2f} ms/page", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*")
    parser.add_argument("-n", type=int, default=700)
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    sys.path.insert(0, str(HERE.parent))
    from bench.api_bench import small_bboxes

    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(Path(root).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for root in args.roots
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    boxes = small_bboxes(2000 + args.skip + args.n, seed=19)[args.skip : args.skip + args.n]
    for i, b in enumerate(boxes):
        for p in procs if i % 2 == 0 else procs[::-1]:
            p.stdin.write(b + "\n")
            p.stdin.flush()
            assert p.stdout.readline().strip() == "ok"
    for root, p in zip(args.roots, procs, strict=True):
        p.stdin.write("END\n")
        p.stdin.flush()
        print(f"{root}: {p.stdout.readline().strip()}")
        p.wait()
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
