# ruff: noqa: E501  (SQL and report lines read better unbroken)
"""Items and tiles over a 1,000,000-issue table: our API vs the same SQL in psql vs tipg
vs pygeoapi.

    .venv/bin/python bench/api_bench.py [--issues 1000000] [--runs 5] [--only items,small,tiles]
                                        [--workers 2] [--clients 8] [--seconds 20]

Builds (once; reused while it holds the wanted number of issues) a separate database
`geoservice_bench` in the project's local cluster (or BENCH_DATABASE_URL), fills it with
issues by one `generate_series` INSERT, starts our service (gunicorn), tipg (uvicorn) and
pygeoapi (gunicorn, its PostgreSQL provider) — each with --workers workers, tipg and pygeoapi
from virtualenvs of their own (bench/.venv-tipg, bench/.venv-pygeoapi, installed on first
use) — side by side on 127.0.0.1, and prints, with the load average beside every figure:

- items: a 10,000-feature bbox page of issues: our API over HTTP, the very statement our API
  runs timed in psql (output discarded: the floor), tipg's and pygeoapi's equivalent request
  (medians of --runs timed requests after one warm-up);
- small: 100-feature bbox pages under concurrency (what map clients send): --clients client
  processes, each asking pages of random map-sized bboxes (one seeded list, the same for every
  server) for --seconds, one server at a time: requests/s, p50, p95, errors. Ours is served as
  scripts/run serves it (gthread, --threads 4 per worker; --threads 1: sync workers);
- tiles: vector tiles from zoom 4 to 16 at the centre of the data: ours and tipg's.

Not part of the test suite. The machine is shared: compare figures of one run only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.load_kit import target_line  # noqa: E402
from geoservice import migrate  # noqa: E402

TIPG_VENV = ROOT / "bench" / ".venv-tipg"
TIPG_VERSION = "1.6.1"
PYGEOAPI_VENV = ROOT / "bench" / ".venv-pygeoapi"
PYGEOAPI_VERSION = "0.21.0"  # the newest that installs on Python 3.11
# The demo county's extent; the bbox below covers about a quarter of it.
AREA = (120.226, 33.756, 120.293, 33.803)
BBOX = (120.24, 33.77, 120.275, 33.795)


def sh(*args: str, **kwargs) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def local_database_url(name: str) -> str:
    out = sh(str(ROOT / "scripts" / "pg"), "start", cwd=ROOT)
    base = next(
        line.split("=", 1)[1] for line in out.splitlines() if line.startswith("DATABASE_URL=")
    )
    return base.replace("/geoservice?", f"/{name}?")


def ensure_database(url: str, issues: int) -> None:
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}):
            conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    migrate.upgrade(engine)
    with engine.begin() as conn:
        have = conn.scalar(text("SELECT count(*) FROM issues"))
    if have != issues:
        print(f"generating {issues:,} issues (one INSERT … generate_series) …", flush=True)
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE issues, issue_events, photos RESTART IDENTITY CASCADE"))
            conn.execute(text("DELETE FROM leaders"))
            conn.execute(text("DELETE FROM units"))
            conn.execute(
                text("INSERT INTO units (name) SELECT '单位' || g FROM generate_series(1, 20) g")
            )
            conn.execute(
                text(
                    "INSERT INTO leaders (name, title, unit_id, level) SELECT '领导' || g, '局长',"
                    " (SELECT min(id) FROM units) + g % 20, '县级' FROM generate_series(1, 60) g"
                )
            )
            conn.execute(
                text(f"""
INSERT INTO issues (geom, category, source, severity, status, reported_at, deadline,
                    leader_id, unit_id, description)
SELECT ST_SetSRID(ST_MakePoint(
         {AREA[0]} + ({AREA[2]} - {AREA[0]}) * (CASE WHEN g % 3 = 0 THEN 0.5 + (random() - 0.5) * 0.3 ELSE random() END),
         {AREA[1]} + ({AREA[3]} - {AREA[1]}) * (CASE WHEN g % 3 = 0 THEN 0.5 + (random() - 0.5) * 0.3 ELSE random() END)), 4326),
       (ARRAY['环境卫生','垃圾外溢','道路破损','车辆违停','乱贴乱画','占道经营','设施损坏'])[1 + g % 7],
       (ARRAY['暗访督查','12345热线','随手拍','自查'])[1 + g % 4],
       1 + g % 3,
       (ARRAY['closed','closed','closed','closed','reported','dispatched','in_progress','fixed'])[1 + g % 8],
       r, r + interval '24 hours',
       (SELECT min(id) FROM leaders) + g % 60, (SELECT min(id) FROM units) + g % 20,
       '问题描述 ' || g
FROM generate_series(1, {issues}) g
CROSS JOIN LATERAL (SELECT now() - (random() * 56) * interval '1 day' + g * interval '0' AS r) t
""")
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE issues"))
            conn.execute(text("VACUUM ANALYZE issue_tile_counts"))
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    engine.dispose()


def admin_token(url: str) -> str:
    from sqlalchemy.orm import Session

    from geoservice.accounts.accounts import create_user, issue_token, user_by_name

    engine = create_engine(url)
    with Session(engine) as session:
        user = user_by_name(session, "bench") or create_user(session, "bench", "admin")
        token = issue_token(session, user, label="bench")
        session.commit()
    engine.dispose()
    return token


def ensure_tipg() -> Path:
    uvicorn = TIPG_VENV / "bin" / "uvicorn"
    if not uvicorn.exists():
        print("installing tipg into bench/.venv-tipg …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
        subprocess.run(
            [str(TIPG_VENV / "bin" / "pip"), "install", "-q", f"tipg=={TIPG_VERSION}", "uvicorn"],
            check=True,
        )
    return uvicorn


def wait_for(url: str, headers: dict[str, str], seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def fetch(url: str, headers: dict[str, str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as r:
        body = r.read()
    return (time.perf_counter() - started) * 1000, body


def timed(fn, runs: int) -> tuple[float, object]:
    fn()  # warm-up
    results = [fn() for _ in range(runs)]
    return statistics.median(r[0] for r in results), results[-1][1]


def literal_sql(statement: str, params: dict) -> str:
    def value(v):
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        if isinstance(v, list):
            return "ARRAY[" + ",".join(value(x) for x in v) + "]"
        return repr(v)

    return re.sub(
        r":(\w+)",
        lambda m: value(params[m.group(1)]) if m.group(1) in params else m.group(0),
        statement,
    )


def psql_once(url: str, sql: str) -> float:
    """The statement's time in psql (its output discarded): the second of two runs in one
    session, so that the session's catalogue caches are warm as in our pooled connections."""
    u = make_url(url)
    out = subprocess.run(
        [
            shutil.which("psql") or "psql",
            "-X",
            "-q",
            "-A",  # unaligned: psql does not pad a 6 MB cell before discarding it
            "-t",
            "-h",
            u.query.get("host"),
            "-U",
            u.username,
            "-d",
            u.database,
            "-c",
            "SET TimeZone = 'Asia/Shanghai'",
            "-c",
            "SET max_parallel_workers_per_gather = 0",  # as our API runs a page
            "-c",
            sql,
            "-c",
            "\\timing on",
            "-c",
            sql,
            "-o",
            "/dev/null",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(re.findall(r"Time: ([\d.]+) ms", out)[-1])


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2**z
    return int((lon + 180) / 360 * n), int(
        (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    )


def ensure_pygeoapi() -> Path:
    gunicorn = PYGEOAPI_VENV / "bin" / "gunicorn"
    if not gunicorn.exists():
        print("installing pygeoapi into bench/.venv-pygeoapi …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PYGEOAPI_VENV)], check=True)
        subprocess.run(
            [
                str(PYGEOAPI_VENV / "bin" / "pip"),
                "install",
                "-q",
                f"pygeoapi=={PYGEOAPI_VERSION}",
                "geoalchemy2",
                "psycopg2-binary",
                "gunicorn",
            ],
            check=True,
        )
    return gunicorn


CONTACT_FIELDS = "name position address city stateorprovince postalcode country phone fax email"
CONTACT_FIELDS = (*CONTACT_FIELDS.split(), "hours", "instructions")


def pygeoapi_env(url: str, port: int) -> dict[str, str]:
    """pygeoapi's configuration (one collection: the issues table) and OpenAPI document."""
    u = make_url(url)
    folder = ROOT / "bench" / "out"
    folder.mkdir(exist_ok=True)
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "limits": {"default_items": 100, "max_items": 10_000},
            "map": {"url": "http://127.0.0.1/{z}/{x}/{y}.png", "attribution": "-"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "bench",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "-",
                "url": "http://127.0.0.1",
            },
            "license": {"name": "-", "url": "http://127.0.0.1"},
            "provider": {"name": "-", "url": "http://127.0.0.1"},
            "contact": {
                **dict.fromkeys(CONTACT_FIELDS, "-"),
                "url": "http://127.0.0.1",
                "role": "pointOfContact",
            },
        },
        "resources": {
            "issues": {
                "type": "collection",
                "title": "issues",
                "description": "issues",
                "keywords": ["issues"],
                "extents": {
                    "spatial": {
                        "bbox": list(AREA),
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": {
                            "host": u.query["host"],
                            "dbname": u.database,
                            "user": u.username,
                            "search_path": ["public"],
                        },
                        "id_field": "id",
                        "table": "issues",
                        "geom_field": "geom",
                    }
                ],
            }
        },
    }
    config_file = folder / "pygeoapi-config.json"  # JSON is YAML
    openapi_file = folder / "pygeoapi-openapi.yml"
    config_file.write_text(json.dumps(config, indent=1))
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config_file), "PYGEOAPI_OPENAPI": str(openapi_file)}
    subprocess.run(
        [
            str(PYGEOAPI_VENV / "bin" / "pygeoapi"),
            "openapi",
            "generate",
            str(config_file),
            "--output-file",
            str(openapi_file),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    return env


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def small_bboxes(count: int, seed: int) -> list[str]:
    """Map-sized bboxes (≈ 200 m to 1 km wide) anywhere in the data: most hold 100+ issues."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        w = rnd.uniform(0.002, 0.01)
        h = w * 0.7
        x = rnd.uniform(AREA[0], AREA[2] - w)
        y = rnd.uniform(AREA[1], AREA[3] - h)
        out.append(f"{x:.6f},{y:.6f},{x + w:.6f},{y + h:.6f}")
    return out


def _client(port: int, paths: list[str], headers: dict, until: float, out) -> None:
    times, errors, i = [], 0, 0
    while time.time() < until:
        path = paths[i % len(paths)]
        i += 1
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            ok = response.status == 200
        except OSError:
            ok = False
        if ok:
            times.append((time.perf_counter() - started) * 1000)
        else:
            errors += 1
    out.put((times, errors))


def concurrent_pages(port: int, paths: list[str], headers: dict, clients: int, seconds: float):
    """`clients` processes ask `paths` (each from its own offset) for `seconds`:
    (requests/s, p50 ms, p95 ms, errors)."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    until = time.time() + seconds
    step = max(1, len(paths) // clients)
    procs = [
        ctx.Process(
            target=_client,
            args=(port, paths[k * step :] + paths[: k * step], headers, until, out),
        )
        for k in range(clients)
    ]
    started = time.time()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - started
    times = sorted(t for r in results for t in r[0])
    errors = sum(r[1] for r in results)
    if not times:
        return 0.0, 0.0, 0.0, errors
    return (
        len(times) / elapsed,
        statistics.median(times),
        times[min(len(times) - 1, int(len(times) * 0.95))],
        errors,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=5091)
    parser.add_argument("--tipg-port", type=int, default=5092)
    parser.add_argument("--pygeoapi-port", type=int, default=5093)
    parser.add_argument("--workers", type=int, default=2, help="workers of every server")
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("THREADS", 4)),
        help="threads per worker of ours (gunicorn gthread, as scripts/run serves; 1: sync)",
    )
    parser.add_argument(
        "--servers", default="ours,tipg,pygeoapi", help="small pages: which servers to load"
    )
    parser.add_argument("--clients", type=int, default=8, help="small pages: client processes")
    parser.add_argument("--seconds", type=float, default=20, help="small pages: per server")
    parser.add_argument(
        "--only", default="items,small,tiles", help="comma-separated: items, small, tiles"
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))

    url = os.environ.get("BENCH_DATABASE_URL") or local_database_url("geoservice_bench")
    ensure_database(url, args.issues)
    token = admin_token(url)
    ours = {"Authorization": f"Bearer {token}"}
    uvicorn = ensure_tipg()
    pygeoapi = ensure_pygeoapi()
    u = make_url(url)
    # tipg validates the URL (a host is required): the socket folder, percent-encoded.
    asyncpg_url = f"postgresql://{u.username}@{quote(u.query['host'], safe='')}/{u.database}"
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "PYTHONPATH": str(ROOT)}
    tipg_env = {
        **os.environ,
        "DATABASE_URL": asyncpg_url,
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        "TIPG_DEFAULT_FEATURES_LIMIT": "10000",
    }
    pygeoapi_environ = pygeoapi_env(url, args.pygeoapi_port)
    workers = str(args.workers)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    servers = [
        subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "--bind",
                f"127.0.0.1:{args.port}",
                "--workers",
                workers,
                "--worker-class",
                "gthread" if args.threads > 1 else "sync",
                "--threads",
                str(args.threads),
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            **quiet,
        ),
        subprocess.Popen(
            [
                str(uvicorn),
                "tipg.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.tipg_port),
                "--workers",
                workers,
                "--log-level",
                "warning",
            ],
            env=tipg_env,
            **quiet,
        ),
        subprocess.Popen(
            [
                str(pygeoapi),
                "--bind",
                f"127.0.0.1:{args.pygeoapi_port}",
                "--workers",
                workers,
                "pygeoapi.flask_app:APP",
            ],
            env=pygeoapi_environ,
            **quiet,
        ),
    ]
    try:
        api = f"http://127.0.0.1:{args.port}/api"
        tipg = f"http://127.0.0.1:{args.tipg_port}"
        pga = f"http://127.0.0.1:{args.pygeoapi_port}"
        wait_for(f"{api}/collections", ours)
        wait_for(f"{tipg}/collections", {})
        wait_for(f"{pga}/collections?f=json", {})
        print(
            f"servers: {args.workers} workers each (ours: {args.threads} thread(s) per worker);"
            f" {load()}",
            flush=True,
        )
        results: dict = {"workers": args.workers, "threads": args.threads}
        if "items" in parts:
            results["items"] = run_items(url, api, tipg, pga, ours, args.runs)
        if "small" in parts:
            results["small"] = run_small(args, ours, servers[0].pid, u.database)
        if "tiles" in parts:
            results["tiles"] = run_tiles(api, tipg, ours, args.runs)
    finally:
        for p in servers:
            p.terminate()
        for p in servers:
            p.wait(timeout=20)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "api_bench.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))


def run_items(url: str, api: str, tipg: str, pga: str, ours: dict, runs: int) -> dict:
    from geoservice import create_app
    from geoservice.catalogue.items import ItemsQuery, items_statement
    from geoservice.edge.access import catalogue

    bbox = ",".join(str(v) for v in BBOX)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context():
        statement, params = items_statement(
            catalogue().get("issues"), ItemsQuery(limit=10_000, bbox=BBOX)
        )
    page_sql = literal_sql(statement, params)

    # Ours and the floor alternate, so that both see the same moments of a shared machine.
    ours_url = f"{api}/collections/issues/items?bbox={bbox}&limit=10000"
    fetch(ours_url, ours)  # warm-up
    ours_times, psql_times = [], []
    for _ in range(runs):
        ms, body = fetch(ours_url, ours)
        ours_times.append(ms)
        psql_times.append(psql_once(url, page_sql))
    ours_ms, psql = statistics.median(ours_times), statistics.median(psql_times)
    ours_load = psql_load = load()
    page = json.loads(body)
    tipg_ms, tbody = timed(
        lambda: fetch(f"{tipg}/collections/public.issues/items?bbox={bbox}&limit=10000", {}), runs
    )
    tipg_load = load()
    tpage = json.loads(tbody)
    pga_ms, pbody = timed(
        lambda: fetch(f"{pga}/collections/issues/items?bbox={bbox}&limit=10000&f=json", {}), runs
    )
    pga_load = load()
    ppage = json.loads(pbody)
    i = {
        "bbox": BBOX,
        "ours_ms": round(ours_ms, 1),
        "ours_bytes": len(body),
        "ours_returned": page["numberReturned"],
        "ours_matched": page.get("numberMatched"),
        "psql_same_statement_ms": round(psql, 1),
        "tipg_ms": round(tipg_ms, 1),
        "tipg_bytes": len(tbody),
        "tipg_returned": tpage.get("numberReturned"),
        "tipg_matched": tpage.get("numberMatched"),
        "pygeoapi_ms": round(pga_ms, 1),
        "pygeoapi_bytes": len(pbody),
        "pygeoapi_returned": ppage.get("numberReturned"),
        "pygeoapi_matched": ppage.get("numberMatched"),
        "load": [ours_load, psql_load, tipg_load, pga_load],
    }
    matched = f"{i['ours_matched']:,}" if i["ours_matched"] is not None else "(not counted)"
    print(f"\n10,000-feature bbox page of issues (bbox {bbox}; {matched} issues match)")
    print(
        f"  our API (HTTP, GeoJSON)        {i['ours_ms']:8.1f} ms  {i['ours_bytes'] / 1e6:5.1f} MB  returned {i['ours_returned']}  {ours_load}"
    )
    print(
        f"  same statement in psql (floor) {i['psql_same_statement_ms']:8.1f} ms  → API/psql = {i['ours_ms'] / i['psql_same_statement_ms']:.2f}×  (target ≤ 1.1×)  {psql_load}"
    )
    print(
        f"  tipg {TIPG_VERSION} (HTTP, GeoJSON)     {i['tipg_ms']:8.1f} ms  {i['tipg_bytes'] / 1e6:5.1f} MB  returned {i['tipg_returned']}"
        f"  → tipg/API = {i['tipg_ms'] / i['ours_ms']:.2f}×  {tipg_load}"
    )
    print(
        f"  pygeoapi {PYGEOAPI_VERSION} (HTTP, GeoJSON) {i['pygeoapi_ms']:8.1f} ms  {i['pygeoapi_bytes'] / 1e6:5.1f} MB  returned {i['pygeoapi_returned']}"
        f"  → pygeoapi/API = {i['pygeoapi_ms'] / i['ours_ms']:.2f}×  {pga_load}"
    )
    target_line("items_vs_psql", i["ours_ms"] / i["psql_same_statement_ms"], "×", "<=1.1")
    target_line("items_ours_ms", i["ours_ms"], "ms", "-")
    target_line("items_tipg_ms", i["tipg_ms"], "ms", "-")
    target_line("items_pygeoapi_ms", i["pygeoapi_ms"], "ms", "-")
    return i


def run_small(args, ours: dict, ours_pid: int | None = None, database: str = "") -> dict:
    boxes = small_bboxes(2000, seed=19)
    servers = [
        ("ours", args.port, "/api/collections/issues/items?limit=100&bbox=", ours),
        ("tipg", args.tipg_port, "/collections/public.issues/items?limit=100&bbox=", {}),
        ("pygeoapi", args.pygeoapi_port, "/collections/issues/items?f=json&limit=100&bbox=", {}),
    ]
    print(
        f"\n100-feature bbox pages of issues: {args.clients} clients, {args.workers} workers per"
        f" server, {args.seconds:g} s each, random map-sized bboxes (the same list for all)"
    )
    print("  server      req/s    p50 ms   p95 ms  errors")
    out = {}
    for name, port, prefix, headers in servers:
        if name not in args.servers.split(","):
            continue
        paths = [prefix + b for b in boxes]
        concurrent_pages(port, paths[-50:], headers, args.clients, 2)  # warm-up
        meter = None
        if name == "ours" and ours_pid is not None:
            from bench.load_kit import cpu_seconds

            def pids():
                app = [ours_pid]
                try:
                    children = Path(f"/proc/{ours_pid}/task/{ours_pid}/children").read_text()
                    app += [int(c) for c in children.split()]
                except OSError:
                    pass
                db = subprocess.run(
                    ["psql", "-h", os.environ.get("PGHOST_DIR", str(ROOT / ".pg" / "run")), "-U",
                     "geoservice", "-d", database, "-Atc", "SELECT pid FROM pg_stat_activity"
                     f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"],
                    capture_output=True, text=True,
                ).stdout.split()  # fmt: skip
                return app, [int(p) for p in db]

            app_pids, db_pids = pids()
            meter = (cpu_seconds(app_pids), cpu_seconds(db_pids))
        rate, p50, p95, errors = concurrent_pages(port, paths, headers, args.clients, args.seconds)
        cpu_note = ""
        if meter is not None:
            app_pids, db_pids = pids()
            app1, db1 = cpu_seconds(app_pids), cpu_seconds(db_pids)
            requests = max(1.0, rate * args.seconds)
            cpu_app = sum(v - meter[0].get(p, 0.0) for p, v in app1.items()) / requests * 1000
            cpu_db = sum(v - meter[1].get(p, 0.0) for p, v in db1.items()) / requests * 1000
            cpu_note = f"  CPU/request app {cpu_app:.2f} + db {cpu_db:.2f} ms"
        out[name] = {
            "req_per_s": round(rate, 1),
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "errors": errors,
            "load": load(),
        }
        print(f"  {name:9s} {rate:7.1f} {p50:9.1f} {p95:8.1f} {errors:7d}   {load()}{cpu_note}")
    if out.get("tipg", {}).get("req_per_s") and "ours" in out:
        print(
            f"  ours/tipg = {out['ours']['req_per_s'] / out['tipg']['req_per_s']:.2f}×"
            f" (target ≥ 1.5×); ours p95 {out['ours']['p95_ms']:.1f} ms (target < 60 ms)"
        )
        ratio = out["ours"]["req_per_s"] / out["tipg"]["req_per_s"]
        target_line("small_pages_vs_tipg", ratio, "×", ">=1.5")
    if "ours" in out:
        target_line("small_pages_p95", out["ours"]["p95_ms"], "ms", "<60")
    return out


def run_tiles(api: str, tipg: str, ours: dict, runs: int) -> list:
    tiles = []
    lon, lat = (AREA[0] + AREA[2]) / 2, (AREA[1] + AREA[3]) / 2
    print(f"\nvector tiles of issues at the centre of the data (median ms, bytes)  {load()}")
    print("   z   ours ms    bytes  | tipg ms     bytes")
    for z in (4, 6, 8, 10, 12, 13, 14, 15, 16):
        x, y = tile_xy(lon, lat, z)
        o_ms, o_body = timed(
            lambda z=z, x=x, y=y: fetch(f"{api}/collections/issues/tiles/{z}/{x}/{y}.pbf", ours),
            runs,
        )
        t_ms, t_body = timed(
            lambda z=z, x=x, y=y: fetch(
                f"{tipg}/collections/public.issues/tiles/WebMercatorQuad/{z}/{x}/{y}", {}
            ),
            runs,
        )
        tiles.append(
            {
                "z": z,
                "x": x,
                "y": y,
                "ours_ms": round(o_ms, 1),
                "ours_bytes": len(o_body),
                "tipg_ms": round(t_ms, 1),
                "tipg_bytes": len(t_body),
            }
        )
        print(f"  {z:2d} {o_ms:9.1f} {len(o_body):8d}  | {t_ms:7.1f} {len(t_body):9d}")
    return tiles


if __name__ == "__main__":
    main()
