# ruff: noqa: E501  (report lines read better unbroken)
"""Every vector tile the maps can ask for, timed: issue tiles under each filter the map offers
at zooms 4–16, and the polygon / line layers at the same zooms, against the targets of issue 19.

    [BENCH_DATABASE_URL=postgresql+psycopg2://geoservice@/geoservice_bench_tiles?host=/work/main/.pg/run] \\
        .venv/bin/python bench/tile_bench.py [--runs 3] [--zooms 4-16]

Needs a database holding the demo county at scale 100 (`flask seed-demo --scale 100`, or a
copy of one: CREATE DATABASE … TEMPLATE …) migrated to head; refuses the default names.
Without BENCH_DATABASE_URL it uses the mixed load's `geoservice_bench_load100` (bench/load_kit:
a copy of `geoservice_demo100` when that exists, else the county seeded at scale 100). Runs
the app in-process (Flask test client, one planner token) so the figures are the server's
time per tile: the median of --runs renders with the worker's tile cache off (what a first
view costs), then the same tile from the cache and as a 304 revalidation. Prints the load
average with every table: the machine is shared, figures are noisy.

Targets (issue 19): issue tiles < 100 ms under any filter at any zoom, nothing dropped (the
counts of an aggregated tile add up to the filtered issues in it); polygon and line tiles at
low zoom < 150 KB and < 50 ms.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mapbox_vector_tile  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.load_kit import (  # noqa: E402  (the TARGET lines of bench/README.md)
    county_database,
    ensure_county,
    target_line,
)
from geoservice import create_app  # noqa: E402
from geoservice.accounts.accounts import create_user, issue_token, user_by_name  # noqa: E402
from geoservice.config import normalise_database_url  # noqa: E402
from geoservice.db import database  # noqa: E402

ISSUE_TARGET_MS = 100
LAYER_TARGET_MS = 50
LAYER_TARGET_BYTES = 150_000
LOW_ZOOM = 12  # "low zoom" for the layer targets


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int(
        (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    )


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--zooms", default="4-16")
    parser.add_argument("--only", choices=("issues", "layers"), default=None)
    parser.add_argument(
        "--match", default=None, help="only the issue filters whose label contains this"
    )
    args = parser.parse_args()
    lo, _, hi = args.zooms.partition("-")
    zooms = list(range(int(lo), int(hi or lo) + 1))
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        name, template = county_database(None, None, 100.0)
        url = ensure_county(name, 100.0, template)
    if make_url(url).database in (
        "geoservice",
        "geoservice_bench",
        "geoservice_demo100",
    ):
        raise SystemExit("set BENCH_DATABASE_URL to a scratch copy of the scale-100 demo")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TILE_CACHE_BYTES": 0})
    with app.app_context():
        session = database(app).session()
        user = user_by_name(session, "tile_bench_planner") or create_user(
            session, "tile_bench_planner", "planner", "Bench-password-1"
        )
        token = issue_token(session, user)
        session.commit()
        session.close()
    headers = {"Authorization": f"Bearer {token}"}
    engine = create_engine(normalise_database_url(url))
    with engine.connect() as conn:
        issues = conn.execute(text("SELECT count(*) FROM issues")).scalar()
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(COALESCE((SELECT ST_Extent(geom) FROM grids), (SELECT ST_Extent(geom) FROM issues))) c) s"
            )
        ).one()
        category = conn.execute(
            text("SELECT category FROM issues GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ).scalar()
        source = conn.execute(
            text("SELECT source FROM issues GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ).scalar()
        leader = conn.execute(
            text(
                "SELECT leader_id FROM issues WHERE leader_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar()
        unit = conn.execute(
            text(
                "SELECT unit_id FROM issues WHERE unit_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar()
        last = conn.execute(
            text("SELECT (max(reported_at) AT TIME ZONE 'Asia/Shanghai')::date FROM issues")
        ).scalar()
    week = f"{last - __import__('datetime').timedelta(days=6)}/{last}"
    month = f"{last - __import__('datetime').timedelta(days=29)}/{last}"
    print(
        f"{issues:,} issues; centre {lon:.4f}, {lat:.4f}; busiest category {category}, source"
        f" {source}, leader {leader}, unit {unit}; {load()}\n"
    )
    client = app.test_client()

    def fetch(path: str, extra: dict | None = None):
        return client.get(quote(path, safe="/?=&,.:"), headers={**headers, **(extra or {})})

    def measure(path: str) -> tuple[float, int, bytes, float, float]:
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = fetch(path)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, (path, response.status_code, response.data[:200])
        data = response.data
        etag = response.headers["ETag"]
        start = time.perf_counter()
        status = fetch(path, {"If-None-Match": etag}).status_code
        revalidate = time.perf_counter() - start
        assert status == 304 or "issues" in path, status  # (issue ETags roll over each minute)
        app.config["TILE_CACHE_BYTES"] = 64 * 1024 * 1024
        fetch(path)
        start = time.perf_counter()
        fetch(path)
        hit = time.perf_counter() - start
        app.config["TILE_CACHE_BYTES"] = 0
        return statistics.median(times) * 1000, len(data), data, hit * 1000, revalidate * 1000

    # One untimed request first: the first one of a process opens the connection and fills
    # the server's catalogue caches (the first tile timed was 2–3× slower than the same later).
    fetch(
        f"/api/collections/grids/tiles/12/{tile_xy(lon, lat, 12)[0]}/{tile_xy(lon, lat, 12)[1]}.pbf"
    )
    worst: dict[str, float] = {}
    layer_worst_ms: dict[str, float] = {}
    layer_worst_bytes: dict[str, int] = {}
    hits: list[float] = []
    revalidations: list[float] = []
    if args.only in (None, "issues"):
        filters = [
            ("open (default)", "status=open"),
            ("every state", ""),
            ("category", f"status=open&category={category}"),
            ("category, every state", f"category={category}"),
            ("source", f"status=open&source={source}"),
            ("leader", f"status=open&leader_id={leader}"),
            ("unit", f"status=open&unit_id={unit}"),
            ("unit, every state", f"unit_id={unit}"),
            ("week", f"status=open&datetime={week}"),
            ("month, every state", f"datetime={month}"),
            ("month + category", f"datetime={month}&category={category}"),
            ("overdue", "overdue=true"),
            ("overdue + category", f"overdue=true&category={category}"),
            ("not overdue", "overdue=false"),
        ]
        if args.match:
            filters = [f for f in filters if args.match in f[0]]
        print(
            f"issue tiles at the centre (ms: median render, cache off | cached | 304; bytes; issues counted); target < {ISSUE_TARGET_MS} ms"
        )
        print(f"  {'filter':<24}" + "".join(f"{'z' + str(z):>8}" for z in zooms))
        for label, query in filters:
            cells, sizes = [], []
            for z in zooms:
                x, y = tile_xy(lon, lat, z)
                ms, size, _data, hit, revalidate = measure(
                    f"/api/collections/issues/tiles/{z}/{x}/{y}.pbf"
                    + (f"?{query}" if query else "")
                )
                worst[f"issues {label} z{z}"] = ms
                hits.append(hit)
                revalidations.append(revalidate)
                cells.append(f"{ms:7.0f}{'!' if ms >= ISSUE_TARGET_MS else ' '}")
                sizes.append(f"{size / 1000:7.1f}k")
            print(f"  {label:<24}" + "".join(cells) + f"   {load()}")
            print(f"  {'':<24}" + "".join(sizes))
        # The densest tiles at z15 and z16 (every state): the most issues a tile draws as
        # points, near the cap, or counts per cell above it.
        with engine.connect() as conn:
            dense = {
                z: conn.execute(
                    text(
                        "SELECT cx >> (17 - :z), cy >> (17 - :z), sum(n) FROM issue_tile_counts"
                        " WHERE level = 17 GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1"
                    ),
                    {"z": z},
                ).one()
                for z in (15, 16)
            }
        for label, query in (
            ("densest, every state", ""),
            ("densest, category", f"category={category}"),
            ("densest, unit", f"unit_id={unit}"),
        ):
            cells = []
            for z, (x, y, n) in dense.items():
                ms, size, *_ = measure(
                    f"/api/collections/issues/tiles/{z}/{x}/{y}.pbf"
                    + (f"?{query}" if query else "")
                )
                worst[f"issues {label} z{z}"] = ms
                cells.append(
                    f"z{z} ({int(n):,} issues) {ms:.0f} ms{'!' if ms >= ISSUE_TARGET_MS else ''} {size / 1000:.1f}k"
                )
            print(f"  {label:<24}" + "   ".join(cells) + f"   {load()}")
        print("  (! = over target)")
        print(
            f"  the same tiles from the worker's cache: median {statistics.median(hits):.1f} ms,"
            f" max {max(hits):.1f} ms; 304 revalidation: median"
            f" {statistics.median(revalidations):.1f} ms, max {max(revalidations):.1f} ms"
        )
        # Nothing dropped: at z8 the counts add up to the filtered issues in the tile.
        with engine.connect() as conn:
            x, y = tile_xy(lon, lat, 8)
            open_ = "status IN ('reported','accepted','dispatched','in_progress','fixed')"
            for label, query, where in (
                ("category", f"status=open&category={category}", f"category = :c AND {open_}"),
                ("unit, every state", f"unit_id={unit}", "unit_id = :u"),
                ("overdue", "overdue=true", f"{open_} AND deadline < now()"),
                (
                    "not overdue",
                    "overdue=false",
                    f"NOT ({open_} AND deadline IS NOT NULL AND deadline < now())",
                ),
            ):
                data = fetch(f"/api/collections/issues/tiles/8/{x}/{y}.pbf?{query}").data
                got = sum(
                    f["properties"].get("count", 1)
                    for f in mapbox_vector_tile.decode(data)["issues"]["features"]
                )
                want = conn.execute(
                    text(
                        f"SELECT count(*) FROM issues WHERE {where} AND geom && ST_Transform(ST_TileEnvelope(8, :x, :y), 4326)"
                    ),
                    {"c": category, "u": unit, "x": x, "y": y},
                ).scalar()
                print(
                    f"  z8 {label}: tile counts {got:,}, issues in tile {want:,} {'OK' if got == want else 'MISMATCH'}"
                )

    if args.only in (None, "layers"):
        print(
            f"\nlayer tiles at the centre (ms median render, cache off; bytes); targets at z ≤ {LOW_ZOOM}: < {LAYER_TARGET_MS} ms, < {LAYER_TARGET_BYTES // 1000} KB"
        )
        print(f"  {'layer':<24}" + "".join(f"{'z' + str(z):>8}" for z in zooms))
        layer_hits: list[float] = []
        for collection in ("grids", "roads", "compounds", "markets", "sites"):
            cells, sizes = [], []
            for z in zooms:
                x, y = tile_xy(lon, lat, z)
                ms, size, _data, hit, _revalidate = measure(
                    f"/api/collections/{collection}/tiles/{z}/{x}/{y}.pbf"
                )
                if z <= LOW_ZOOM:
                    layer_hits.append(hit)
                over = z <= LOW_ZOOM and (ms >= LAYER_TARGET_MS or size >= LAYER_TARGET_BYTES)
                if z <= LOW_ZOOM and collection in ("grids", "roads", "compounds"):
                    layer_worst_ms[f"{collection} z{z}"] = ms
                    layer_worst_bytes[f"{collection} z{z}"] = size
                cells.append(f"{ms:7.0f}{'!' if over else ' '}")
                sizes.append(f"{size / 1000:7.1f}k")
            print(f"  {collection:<24}" + "".join(cells) + f"   {load()}")
            print(f"  {'':<24}" + "".join(sizes))
        x, y = tile_xy(lon, lat, 10)
        ms, size, *_ = measure(f"/api/map/areas/community/tiles/10/{x}/{y}.pbf")
        print(f"  community outlines z10   {ms:7.0f} ms {size / 1000:7.1f}k")
        print("  (! = over a target)")
        print(
            f"  z ≤ {LOW_ZOOM} from the worker's tile cache (a repeat view in the same layers"
            f" generation): median {statistics.median(layer_hits):.1f} ms, max"
            f" {max(layer_hits):.1f} ms; {load()}"
        )
    print()
    if worst:
        name = max(worst, key=worst.__getitem__)
        print(
            f"slowest issue tile: {name} {worst[name]:.0f} ms (target < {ISSUE_TARGET_MS}); {load()}"
        )
        target_line("tile_max_ms", worst[name], "ms", f"<{ISSUE_TARGET_MS}", name.replace(" ", "_"))
    if layer_worst_ms:
        slow = max(layer_worst_ms, key=layer_worst_ms.__getitem__)
        big = max(layer_worst_bytes, key=layer_worst_bytes.__getitem__)
        print(
            f"slowest polygon/line tile at z ≤ {LOW_ZOOM}: {slow} {layer_worst_ms[slow]:.0f} ms;"
            f" largest: {big} {layer_worst_bytes[big] / 1000:.1f} KB; {load()}"
        )
        target_line(
            "low_zoom_tile_kb",
            layer_worst_bytes[big] / 1000,
            "KB",
            f"<{LAYER_TARGET_BYTES // 1000}",
            big,
        )
        target_line("low_zoom_tile_ms", layer_worst_ms[slow], "ms", f"<{LAYER_TARGET_MS}", slow)


if __name__ == "__main__":
    main()
