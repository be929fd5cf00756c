"""Importing a grid file larger than memory would like: time and peak memory.

Writes N grids (100 m squares, 15-digit codes) under 4 streets and 400 communities as
GeoJSON, imports streets and communities, then the grids with `flask import-layer` in a child
process, and prints wall time, rate and the child's peak RSS; for comparison, the peak RSS
of reading the same file whole (`read_features`). Run through bench/onboard.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from geoservice import migrate  # noqa: E402
from geoservice.config import normalise_database_url  # noqa: E402

LON0, LAT0 = 118.0, 32.0  # anywhere: the bench city
STEP = 0.001  # ~100 m


def square(i: int, j: int) -> list:
    x, y = LON0 + i * STEP, LAT0 + j * STEP
    return [[[x, y], [x + STEP, y], [x + STEP, y + STEP], [x, y + STEP], [x, y]]]


def ring(i0: int, j0: int, i1: int, j1: int) -> list:
    x0, y0, x1, y1 = LON0 + i0 * STEP, LAT0 + j0 * STEP, LON0 + i1 * STEP, LAT0 + j1 * STEP
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def feature(code: str, name: str, coordinates: list) -> dict:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name},
        "geometry": {"type": "Polygon", "coordinates": coordinates},
    }


def write_files(folder: Path, grids: int) -> tuple[Path, Path, Path]:
    """4 streets side by side, each cut into 100 communities (bands), tiled by grids."""
    side = int(grids**0.5) + 1
    rows = (grids + side - 1) // side
    per_street = (side + 3) // 4
    band = (rows + 99) // 100
    streets, communities = [], []
    for s in range(4):
        i0, i1 = s * per_street, min((s + 1) * per_street, side)
        streets.append(feature(f"3205990{s + 1:02d}", f"街道{s + 1}", ring(i0, 0, i1, rows)))
        for c in range(100):
            j0, j1 = c * band, min((c + 1) * band, rows)
            if j0 < j1:
                code = f"3205990{s + 1:02d}{c + 1:03d}"
                communities.append(feature(code, f"社区{s + 1}-{c + 1}", ring(i0, j0, i1, j1)))
    paths = []
    for name, features in (("streets", streets), ("communities", communities)):
        path = folder / f"{name}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        paths.append(path)
    path = folder / "grids.geojson"
    counters: dict[str, int] = {}
    with path.open("w", encoding="utf-8") as out:
        out.write('{"type":"FeatureCollection","features":[\n')
        for k in range(grids):
            i, j = k % side, k // side
            community = f"3205990{min(i // per_street, 3) + 1:02d}{j // band + 1:03d}"
            n = counters[community] = counters.get(community, 0) + 1
            grid = feature(f"{community}{n:03d}", f"网格{k}", ring(i, j, i + 1, j + 1))
            out.write(("," if k else "") + json.dumps(grid, ensure_ascii=False) + "\n")
        out.write("]}\n")
    paths.append(path)
    return paths[0], paths[1], paths[2]


def flask(url: str, *args: str) -> tuple[float, int, str]:
    """Runs a flask command in a child process: (seconds, peak RSS MiB, output tail)."""
    env = dict(os.environ, DATABASE_URL=url, FLASK_APP=str(ROOT / "wsgi.py"), SECRET_KEY="bench")
    code = (
        "import resource, sys; from flask.cli import main; sys.argv = ['flask', *sys.argv[1:]];\n"
        "try:\n    main()\nfinally:\n"
        "    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    peak = next(
        (
            int(line.split()[1]) // 1024
            for line in done.stderr.splitlines()
            if line.startswith("PEAK")
        ),
        0,
    )
    return seconds, peak, (done.stdout + done.stderr)[-600:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grids", type=int, default=100_000)
    args = parser.parse_args()
    url = normalise_database_url(os.environ["BENCH_DATABASE_URL"])
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    migrate.upgrade(engine)
    with tempfile.TemporaryDirectory() as tmp:
        streets, communities, grids = write_files(Path(tmp), args.grids)
        size = grids.stat().st_size / 2**20
        print(f"grid file: {args.grids:,} features, {size:.0f} MiB GeoJSON")
        for level, path in (("street", streets), ("community", communities)):
            seconds, _peak, out = flask(url, "import-areas", level, str(path))
            print(f"import-areas {level}: {seconds:.1f} s")
        seconds, peak, out = flask(url, "import-layer", "grids", str(grids), "--skip-invalid")
        print(out.strip().splitlines()[2] if out.strip() else "")
        print(
            f"import-layer grids (streamed, checked, written, linked): {seconds:.1f} s,"
            f" {args.grids / seconds:,.0f} grids/s, peak RSS {peak} MiB"
        )
        gpkg = Path(tmp) / "grids.gpkg"
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from pyogrio.raw import read, write;"
             "m, _f, g, d = read(sys.argv[1]);"
             "write(sys.argv[2], g, d, m['fields'], driver='GPKG', geometry_type='Polygon',"
             " crs='EPSG:4326')", str(grids), str(gpkg)],
            check=True,
        )  # fmt: skip
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM grids"))
            conn.execute(text("DELETE FROM places WHERE layer = 'grid'"))
        seconds, peak, out = flask(url, "import-layer", "grids", str(gpkg))
        print(
            f"the same grids from a GeoPackage: {seconds:.1f} s,"
            f" {args.grids / seconds:,.0f} grids/s, peak RSS {peak} MiB"
        )
        code = (
            "import resource, sys; from geoservice.catalogue.importers import read_features;"
            f"r = read_features({str(grids)!r});"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
        )
        whole = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        print(f"reading the same file whole (read_features): peak RSS {whole.stdout.strip()} MiB")
        with engine.connect() as conn:
            counts = conn.execute(text("SELECT count(*), count(community_id) FROM grids")).one()
        print(f"stored grids: {counts[0]:,}, linked to a community: {counts[1]:,}")


if __name__ == "__main__":
    main()
