"""Times `GET /api/attribution` (who answers for a spot) on a database holding a county
(bench/attribution_preview.sh loads the demo county into a scratch database).

Points are drawn uniformly in the service area's extent, kept if inside the service area (the
spots an inspector can report from). Measured through the Flask test client with token auth
(routing, parameter checks, service-area check, one attribution_at, names, JSON) and the
service call alone. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from geoservice import create_app  # noqa: E402
from geoservice.areas import service_area  # noqa: E402
from geoservice.config import normalise_database_url  # noqa: E402
from geoservice.issues.issues import preview_attribution  # noqa: E402
from geoservice.issues.workflow import IssueSettings  # noqa: E402
from geoservice.models import User  # noqa: E402
from geoservice.registry import layers  # noqa: E402

WARM_UP = 20
ACCOUNT = "bench-attribution"


def percentiles(timings: list[float]) -> str:
    timings = sorted(timings)
    p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
    return (
        f"n={len(timings)} p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms,"
        f" max {timings[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (other work slows every figure)")
    url = normalise_database_url(os.environ["BENCH_DATABASE_URL"])
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    from geoservice.accounts.auth import create_user, issue_token
    from geoservice.db import database

    rng = random.Random(11)
    with app.app_context():
        session = database().session()
        registry = layers()
        user = session.scalar(select(User).where(User.username == ACCOUNT))
        if user is None:
            user = create_user(session, ACCOUNT, "inspector")
        token = issue_token(session, user, label="bench")
        session.commit()
        box = service_area.extent(session, registry)
        if box is None:
            raise SystemExit("the database holds no county: load one first")
        points: list[tuple[float, float]] = []
        while len(points) < args.requests + WARM_UP:
            lon, lat = rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])
            if service_area.contains(session, lon, lat, registry):
                points.append((lon, lat))
        sizes = session.execute(
            text("SELECT layer, count(*) FROM places GROUP BY layer ORDER BY layer")
        ).all()
        print("layers: " + ", ".join(f"{layer} {n:,}" for layer, n in sizes))
        settings = IssueSettings.from_config(app.config)
        service_ms = []
        for i, (lon, lat) in enumerate(points):
            start = time.perf_counter()
            preview_attribution(session, registry, settings, lon, lat, datetime.now(UTC))
            if i >= WARM_UP:
                service_ms.append((time.perf_counter() - start) * 1000)
        session.rollback()
        session.close()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    api_ms, unassigned = [], 0
    for i, (lon, lat) in enumerate(points):
        start = time.perf_counter()
        response = client.get(f"/api/attribution?lon={lon}&lat={lat}", headers=headers)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"request failed: {response.status_code} {response.get_json()}")
        if i >= WARM_UP:
            api_ms.append(elapsed * 1000)
            unassigned += bool(response.get_json()["attribution"]["unassigned"])
    print(f"spots in the service area: {len(api_ms)}, of them unassigned: {unassigned}")
    print(f"preview_attribution (service, one session): {percentiles(service_ms)}")
    print(f"GET /api/attribution (test client, token):   {percentiles(api_ms)}")


if __name__ == "__main__":
    main()
