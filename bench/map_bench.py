# ruff: noqa: E501  (report lines read better unbroken)
"""The map pages on a large demo county: page size and time to first features in headless
Chromium, and the data endpoints the page calls.

    .venv/bin/python bench/map_bench.py [--scale 100] [--runs 3]

Uses (and builds once, with `flask seed-demo --scale S`: ~30 minutes at scale 100) a
separate database `geoservice_map_bench` in the project's local cluster, or BENCH_DATABASE_URL.
Serves the app with gunicorn (2 workers, as scripts/run does) on 127.0.0.1, signs in through
/login and prints:

- the HTML size of /map, /map?mine=1 and /screen (the page must stay under 300 KB whatever
  the data size: no feature is inlined);
- in Chromium, from navigation start: the first vector-tile feature drawn, and every visible
  layer's first complete load (median of --runs cold page loads, browser cache off);
- median times of the JSON and tile requests the page makes at the county-wide view.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from geoservice import create_app  # noqa: E402
from geoservice.accounts.accounts import create_user, set_password, user_by_name  # noqa: E402
from geoservice.config import normalise_database_url  # noqa: E402
from geoservice.db import database  # noqa: E402
from tests.browser import Browser, session_cookie  # noqa: E402

PORT = int(os.environ.get("PORT", "5015"))
BASE = f"http://127.0.0.1:{PORT}"


def local_database_url(name: str) -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "pg"), "start"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    base = next(
        line.split("=", 1)[1] for line in out.splitlines() if line.startswith("DATABASE_URL=")
    )
    return base.replace("/geoservice?", f"/{name}?")


def ensure_database(url: str, scale: float) -> None:
    wanted = round(10_000 * scale)
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM issues")).scalar()
    except Exception:
        have = None
    engine.dispose()
    if have is not None and have >= wanted * 0.99:
        print(f"using {make_url(url).database}: {have:,} issues")
        return
    name = make_url(url).database
    admin = create_engine(make_url(normalise_database_url(url)).set(database="postgres"))
    with admin.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    with create_engine(normalise_database_url(url)).begin() as conn:
        conn.execute(text("CREATE EXTENSION postgis"))
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi"}
    flask = str(ROOT / ".venv" / "bin" / "flask")
    print(f"building the demo county at scale {scale} in {name} (several minutes) …")
    subprocess.run([flask, "db-upgrade"], check=True, env=env, cwd=ROOT)
    subprocess.run([flask, "seed-demo", "--scale", str(scale)], check=True, env=env, cwd=ROOT)
    with create_engine(normalise_database_url(url)).begin() as conn:
        conn.execute(text("ANALYZE"))


def ensure_accounts(url: str, password: str) -> int:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context():
        session = database(app).session()
        leader_id = session.execute(
            text(
                "SELECT leader_id FROM assignments WHERE valid_to IS NULL"
                " GROUP BY leader_id ORDER BY count(*) DESC, leader_id LIMIT 1"
            )
        ).scalar_one()
        for username, role, leader in (
            ("map_bench_planner", "planner", None),
            ("map_bench_leader", "leader", leader_id),
        ):
            user = user_by_name(session, username)
            if user is None:
                create_user(session, username, role, password, leader_id=leader)
            else:
                set_password(session, user, password)
        session.commit()
        session.close()
    return leader_id


def start_server(url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_hex(16),
        "SESSION_COOKIE_SECURE": "0",
    }
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{PORT}",
            "--timeout",
            "120",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{BASE}/healthz", timeout=2).read()
            return server
        except Exception:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start")


def timed(opener, path: str, runs: int) -> tuple[float, float, int]:
    """Seconds of the first request, median seconds of `runs` more, and the answer's size."""
    start = time.perf_counter()
    size = len(opener.open(BASE + path, timeout=120).read())
    first = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        opener.open(BASE + path, timeout=120).read()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), size


def tile_at(lon: float, lat: float, z: int) -> str:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"{z}/{x}/{y}"


def browser_runs(cookie: tuple[str, str], path: str, runs: int, wait: str) -> list[dict]:
    out = []
    with Browser.launch(size=(1600, 1000)) as browser:
        for _ in range(runs):
            page = browser.new_page(isolated=True, size=(1600, 1000))
            page.send("Network.setCacheDisabled", {"cacheDisabled": True})
            page.cookie(cookie[0], cookie[1], "127.0.0.1")
            page.goto(BASE + path, timeout=120)
            page.wait_for(wait, timeout=180)
            out.append(
                page.evaluate(
                    "({first: gsMap.firstFeaturesAt, loaded: gsMap.loadedAt,"
                    " dom: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,"
                    " outside: performance.getEntriesByType('resource').filter(e =>"
                    " !e.name.startsWith(location.origin)).length})"
                )
            )
            outside = [u for u in page.requests if not u.startswith((BASE, "data:", "blob:"))]
            if outside:
                raise SystemExit(f"requests left 127.0.0.1: {outside[:3]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL") or local_database_url("geoservice_map_bench")
    ensure_database(url, args.scale)
    password = "Bench-" + secrets.token_urlsafe(10)
    ensure_accounts(url, password)
    engine = create_engine(normalise_database_url(url))
    with engine.connect() as conn:
        issues = conn.execute(text("SELECT count(*) FROM issues")).scalar()
        grids = conn.execute(text("SELECT count(*) FROM grids")).scalar()
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) c FROM grids) s"
            )
        ).one()
    engine.dispose()
    print(f"demo county: {issues:,} issues, {grids:,} grids; centre {lon:.4f}, {lat:.4f}\n")
    server = start_server(url)
    try:
        planner = session_cookie(BASE, "map_bench_planner", password)
        leader = session_cookie(BASE, "map_bench_leader", password)
        openers = {}
        for who, cookie in (("planner", planner), ("leader", leader)):
            opener = urllib.request.build_opener()
            opener.addheaders = [("Cookie", f"{cookie[0]}={cookie[1]}")]
            openers[who] = opener

        print("page size (HTML, bytes; limit 300,000)")
        for who, path in (("planner", "/map"), ("leader", "/map?mine=1"), ("planner", "/screen")):
            _first, seconds, size = timed(openers[who], path, args.runs)
            print(f"  {path:<14} {size:>8,} B   served in {seconds * 1000:6.0f} ms")

        print(
            "\ntime to first features in Chromium (ms from navigation start; median of cold loads)"
        )
        for who, cookie, path, wait in (
            ("planner", planner, "/map", "gsMap.loadedAt.issues"),
            ("leader", leader, "/map?mine=1", "gsMap.loadedAt.issues"),
            (
                "planner",
                planner,
                "/screen",
                "window.gsScreen && gsMap.loadedAt.issues && gsMap.loadedAt.theme",
            ),
        ):
            results = browser_runs(cookie, path, args.runs, wait)
            first = statistics.median(r["first"] for r in results)
            dom = statistics.median(r["dom"] for r in results)
            loaded = {
                k: statistics.median(r["loaded"].get(k, float("nan")) for r in results)
                for k in results[0]["loaded"]
            }
            layers = ", ".join(
                f"{k} {v:.0f}" for k, v in sorted(loaded.items(), key=lambda kv: kv[1])
            )
            print(
                f"  {who:<8} {path:<12} DOM ready {dom:5.0f}   first features {first:5.0f}   layers loaded: {layers}"
            )

        print("\nrequests of the county-wide view (first request, then median ms; size)")
        z = 10
        for label, path in (
            ("summary, no filter", "/api/map/summary?status=open"),
            ("summary, category filter", "/api/map/summary?status=open&category=环境卫生"),
            ("choropleth counts, grids", "/api/map/counts?of=grid&measure=open"),
            ("choropleth counts, communities", "/api/map/counts?of=community&measure=overdue"),
            (
                "heat cells, county view",
                f"/api/map/heat?bbox={lon - 0.35:.4f},{lat - 0.3:.4f},{lon + 0.35:.4f},{lat + 0.3:.4f}&z={z}&status=open",
            ),
            (
                "heat cells, category filter",
                f"/api/map/heat?bbox={lon - 0.35:.4f},{lat - 0.3:.4f},{lon + 0.35:.4f},{lat + 0.3:.4f}&z={z}&category=环境卫生",
            ),
            (
                f"issue tile z{z}, open (pre-counted)",
                f"/api/collections/issues/tiles/{tile_at(lon, lat, z)}.pbf?status=open",
            ),
            (
                f"issue tile z{z}, category (on the fly)",
                f"/api/collections/issues/tiles/{tile_at(lon, lat, z)}.pbf?status=open&category=环境卫生",
            ),
            (
                "issue tile z16",
                f"/api/collections/issues/tiles/{tile_at(lon, lat, 16)}.pbf?status=open",
            ),
            ("grid tile z13", f"/api/collections/grids/tiles/{tile_at(lon, lat, 13)}.pbf"),
            (
                "grid tile z13, GCJ-02 shift",
                f"/api/collections/grids/tiles/{tile_at(lon, lat, 13)}.pbf?shift=gcj02",
            ),
            ("grid labels z16", f"/api/map/labels/grids/tiles/{tile_at(lon, lat, 16)}.pbf"),
            (
                "community outlines z10",
                f"/api/map/areas/community/tiles/{tile_at(lon, lat, z)}.pbf",
            ),
            ("big-screen figures", "/api/map/screen"),
        ):
            first, seconds, size = timed(
                openers["planner"], urllib.request.quote(path, safe="/?=&,.:"), args.runs
            )
            print(f"  {label:<38} {first * 1000:7.0f} {seconds * 1000:7.0f} ms  {size:>9,} B")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
