"""Cost of one report (POST /api/collections/issues/items) in process, on an existing
database (e.g. a copy of the demo at scale 100): wall time, Python CPU and the database
backends' CPU per report, and the trigger functions' time per report (track_functions).

    BENCH_DATABASE_URL=... .venv/bin/python bench/report_cost.py [--reports 60] [--photo]

Writes reports into that database (they stay). Prints one line; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load_kit import cpu_seconds  # noqa: E402
from PIL import Image  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

from geoservice import create_app  # noqa: E402
from geoservice.config import normalise_database_url  # noqa: E402


def small_jpeg() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 90, 60)).save(buffer, "JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--photo", action="store_true")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    url = normalise_database_url(os.environ["BENCH_DATABASE_URL"])
    from geoservice.accounts.auth import create_user, issue_token
    from geoservice.db import database

    upload_dir = tempfile.mkdtemp(prefix="report_cost_")
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "UPLOAD_DIR": upload_dir,
            "RATE_LIMIT_WRITES_PER_MINUTE": 0,
        }
    )
    pids: set[int] = set()
    with app.app_context():
        engine = database().engine

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("SET track_functions = 'pl'")
            cursor.execute("SELECT pg_backend_pid()")
            pids.add(cursor.fetchone()[0])
            cursor.close()

        engine.dispose()
        session = database().session()
        user = create_user(session, f"bench-cost-{os.getpid()}", "integration")
        token = issue_token(session, user, scopes=["issues.report", "issues.read"])
        points = [
            tuple(r)
            for r in session.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids"
                    " ORDER BY md5(id::text) LIMIT 500) t"
                )
            )
        ]
        session.commit()
        session.close()
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    rng = random.Random(7)
    photo = small_jpeg()

    def post() -> None:
        lon, lat = rng.choice(points)
        body = {
            "lon": round(lon, 6),
            "lat": round(lat, 6),
            "category": "环境卫生",
            "source": "暗访督查" if args.photo else "12345热线",
            "description": "基准测试",
            "photos": [photo] if args.photo else [],
        }
        response = client.post("/api/collections/issues/items", json=body, headers=headers)
        response.close()
        if response.status_code != 201:
            raise SystemExit(f"report failed: {response.status_code} {response.get_json()}")

    def functions() -> dict[str, float]:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            return {
                name: self_ms
                for name, self_ms in conn.execute(
                    text(
                        "SELECT funcname, self_time FROM pg_stat_user_functions"
                        " WHERE schemaname = 'public'"
                    )
                )
            }

    with app.app_context():
        engine = database().engine
        for _ in range(args.warmup):
            post()
        time.sleep(1.2)  # pending function stats flushed (at most once a second)
        funcs0 = functions()
        walls, pys = [], []
        db0 = cpu_seconds(list(pids))
        for _ in range(args.reports):
            py = time.process_time()
            start = time.perf_counter()
            post()
            walls.append((time.perf_counter() - start) * 1000)
            pys.append((time.process_time() - py) * 1000)
        db1 = cpu_seconds(list(pids))
        # make the backends flush their function statistics
        time.sleep(1.2)
        post()
        time.sleep(1.2)
        funcs1 = functions()
    n = args.reports
    db_ms = sum(db1[p] - db0.get(p, db1[p]) for p in db1) * 1000 / n
    trig = {k: (v - funcs0.get(k, 0.0)) / (n + 1) for k, v in funcs1.items()}
    trig = {k: v for k, v in trig.items() if v > 0.001}
    walls.sort()
    p95 = walls[int(len(walls) * 0.95) - 1]
    print(
        f"{args.label} {'photo' if args.photo else 'no photo'}: n={n} wall p50"
        f" {statistics.median(walls):.1f} p95 {p95:.1f} ms; python CPU p50"
        f" {statistics.median(pys):.1f} mean {statistics.mean(pys):.1f} ms; db CPU"
        f" {db_ms:.1f} ms/report; functions self ms/report: "
        f"total {sum(trig.values()):.2f} "
        + " ".join(f"{k}={v:.2f}" for k, v in sorted(trig.items(), key=lambda kv: -kv[1]))
        + f"; load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
