"""Province-scale bench (issue 19): the monthly-partitioned schema on a copy of the scale-100
demo county (1,000,000 issues), then the same county's issues copied back in time to reach
about 10,000,000 issues, with the items, tile and ranking figures measured at both sizes in
the same run.

    ./bench/scale.sh [--copies 9] [--runs 3]      # makes the copy, runs this, drops it

    GENERATE=1000000 ./bench/scale.sh             # no demo database: generated base

`--generate N`: the base is `bench/rankings.py`'s generator (N issues over 8 weeks with their
event chains, 2,000 leaders, spread over a 0.1° square) on an empty database, written with
triggers off (as superuser) and the tile counts, facets and event rollup rebuilt from the rows.
Copies are written the same way as superuser (the derived rows copied shifted alike; a check
line compares the tile counts with count(*)). `--measure-every N` measures on the way.

BENCH_DATABASE_URL: a database holding a copy of the demo (`CREATE DATABASE … TEMPLATE
geoservice_demo100`), at any revision: step 1 times the migrations (the conversion of
issues/issue_events into monthly partitions) on it.

Copies: copy k (1..K) of every issue and event is shifted back k × 8 weeks (the demo's issue
window), with ids offset, so K=9 gives ten times the issues over ~80 weeks, spread over ~19
monthly partitions; attribution (grid, leader, unit) is kept. `--copies` scales it down on a
busy machine (the figures say how many issues they were measured at).

Measured in this process through the Flask test client (no HTTP server, a Bearer token of a
generated admin), median of --runs:
- items: 10,000 issues by bbox (the bbox of bench/api_bench.py), and the same statement run
  straight on the database (rows fetched): the floor; target ≤ 1.1× of psql in issue 19 (the
  floor here excludes psql's JSON, so the ratio is pessimistic);
- tiles: issues at z8, z10, z12 at the centre of the data, filtered by category and not;
  target < 100 ms;
- ranking: the weekly leader ranking of the last full week; target < 1 s.
The machine is shared and noisy: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.engine import make_url

from geoservice import create_app, migrate
from geoservice.db import database

BBOX = (120.24, 33.77, 120.275, 33.795)
WINDOW_DAYS = 56  # the demo's issue window (geoservice.demo.issues.ISSUE_WINDOW_DAYS)
SHIFTED = {
    "issues": ("reported_at", "deadline", "closed_at", "updated_at", "holder_since"),
    "issue_events": ("at", "deadline", "prev_deadline"),
}


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, out


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def columns(conn, table: str) -> list[str]:
    return conn.scalars(
        text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass)"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"t": table},
    ).all()


def copy_back(app, copies: int, between=None, done: int = 0, vacuum: bool = True) -> None:
    """Copies every issue and event `copies` times, each copy shifted back a window more;
    `between(k)` (optional) runs after copy k < copies, once the copies are ANALYZEd."""
    from geoservice import partitions

    engine = database(app).engine
    with engine.begin() as conn:
        base = conn.execute(
            text(
                "SELECT (SELECT max(id) FROM issues), (SELECT max(id) FROM issue_events),"
                " (SELECT min(reported_at) FROM issues)::date"
            )
        ).one()
    issue_ids, event_ids, first = base
    if done:  # resuming after `done` copies: copy k's ids are the base's + k × the base's max
        issue_ids, event_ids = issue_ids // (done + 1), event_ids // (done + 1)
        first = first + timedelta(days=WINDOW_DAYS * done)
    earliest = first - timedelta(days=WINDOW_DAYS * copies + 31)
    with database(app).session() as session, session.begin():
        made = partitions.ensure(session, today=first, months_ahead=0, since=earliest)
    print(f"  partitions ensured back to {earliest:%Y-%m} ({len(made)} months checked)")
    with engine.connect() as conn:
        fast = conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    if fast:
        print(
            "  superuser: copies written with session_replication_role = replica (no triggers,"
            " no reference checks: the copies are consistent by construction), and the tables"
            " the triggers keep (tile counts, tile facets, event rollup) copied shifted alike"
        )
        if not done:
            with engine.begin() as conn:
                snapshot_derived(conn)
    for k in range(done + 1, copies + 1):
        t = time.perf_counter()
        shift = f"interval '{WINDOW_DAYS * k} days'"
        with engine.begin() as conn:
            if fast:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table, max_id in (("issues", issue_ids), ("issue_events", event_ids)):
                cols = columns(conn, table)
                exprs = []
                for c in cols:
                    if c == "id":
                        exprs.append(f"id + {max_id * k}")
                    elif c in ("issue_id", "relapse_of_id", "duplicate_of_id"):
                        exprs.append(f"{c} + {issue_ids * k}")
                    elif c in SHIFTED[table]:
                        exprs.append(f"{c} - {shift}")
                    else:
                        exprs.append(c)
                conn.execute(
                    text(
                        f"INSERT INTO {table} ({', '.join(cols)})"
                        f" SELECT {', '.join(exprs)} FROM {table} WHERE id <= {max_id}"
                    )
                )
            if fast:
                copy_derived(conn, k, issue_ids, event_ids)
        print(f"  copy {k}/{copies}: {time.perf_counter() - t:.0f} s (load {load()})", flush=True)
        if between is not None and k < copies:
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(text("ANALYZE issues, issue_events"))
            between(k)
    with engine.begin() as conn:
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('issues', 'id'),"
                " (SELECT max(id) FROM issues)),"
                " setval(pg_get_serial_sequence('issue_events', 'id'),"
                " (SELECT max(id) FROM issue_events))"
            )
        )
    if fast:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE bench_base_tile_counts, bench_base_tile_facets"))
            counts = conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM issues),"
                    " (SELECT sum(n) FROM issue_tile_counts WHERE level = 5),"
                    " (SELECT sum(n) FROM issue_tile_facets WHERE level = 6)"
                )
            ).one()
        print(
            "  check: {:,} issues; in the tile counts {:,}, in the tile facets {:,}".format(*counts)
        )
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        t = time.perf_counter()
        what = "VACUUM ANALYZE" if vacuum else "ANALYZE"
        conn.execute(text(f"{what} issues"))
        conn.execute(text(f"{what} issue_events"))
        print(f"  {what}: {time.perf_counter() - t:.0f} s")


POINT = "ST_SetSRID(ST_MakePoint(120.25, 33.75), 4326)"  # where the generator puts every issue
SPREAD = "ST_SetSRID(ST_MakePoint(120.2 + random() * 0.1, 33.7 + random() * 0.1), 4326)"


class _Spread:
    """The generator's session with its issues spread over its 0.1° square (the generator
    puts them all on one point) and, as superuser, its triggers off."""

    def __init__(self, session, replica: bool):
        self.session, self.replica = session, replica

    def execute(self, statement, params=None):
        if self.replica:
            self.session.execute(text("SET LOCAL session_replication_role = replica"))
        return self.session.execute(text(statement.text.replace(POINT, SPREAD)), params)

    def commit(self):
        self.session.commit()


def rebuild_derived(session) -> None:
    """What the triggers keep, rebuilt from the rows: tile counts, tile facets, event rollup."""
    import importlib.util
    from pathlib import Path

    def migration(stem: str):
        path = Path(migrate.__file__).parent.parent / "migrations" / "versions" / f"{stem}.py"
        spec = importlib.util.spec_from_file_location(f"_scale_{stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    hotrows = migration("20261202_0028_tile_counts_without_hot_rows")
    for table, key, stem in hotrows.TABLES:
        module = migration(stem)
        row = getattr(module, "ROW", "status, geom")
        cells = module.CELLS.format(source=f"(SELECT 1 AS sign, {row} FROM issues) AS existing")
        session.execute(text(f"DELETE FROM {table}"))
        session.execute(
            text(
                f"INSERT INTO {table} ({key}, n, sx, sy) SELECT {key}, sum(sign),"
                f" sum(sign * lon), sum(sign * lat0) FROM ({cells}) s GROUP BY {key}"
            )
        )
    rollup = migration("20261202_0021_issue_event_rollup")
    session.execute(text("DELETE FROM issue_event_rollup"))
    session.execute(
        text(
            f"INSERT INTO issue_event_rollup ({rollup.COLUMNS})"
            f" {rollup.SUMMARY.format(source='issue_events')}"
        )
    )


def generate(app, issues: int) -> None:
    """Without the demo county: `bench/rankings.py`'s generator (8 weeks of issues with their
    event chains, 2,000 leaders), its month partitions first, the issues spread uniformly over
    its 0.1° square. As superuser, written with triggers off and what they keep rebuilt after
    (several times faster)."""
    from bench.rankings import WINDOW_END
    from bench.rankings import generate as generate_issues
    from geoservice import partitions
    from geoservice.registry import layers

    t = time.perf_counter()
    with app.app_context():
        session = database(app).session()
        replica = session.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        partitions.ensure(
            session,
            today=WINDOW_END.date(),
            months_ahead=1,
            since=WINDOW_END.date() - timedelta(days=WINDOW_DAYS + 31),
        )
        session.commit()
        generate_issues(_Spread(session, replica), layers(), issues, 2000, WINDOW_DAYS // 7)
        if replica:
            t1 = time.perf_counter()
            rebuild_derived(session)
            session.commit()
            print(f"  tile counts, facets, event rollup rebuilt: {time.perf_counter() - t1:.0f} s")
        session.close()
    with database(app).engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        # Named tables: a bare VACUUM also takes the shared catalogs and waits behind any
        # other database's open ANALYZE.
        for table in ("issues", "issue_events", "issue_event_rollup", "issue_tile_counts",
                      "issue_tile_facets", "leaders", "grids", "places"):  # fmt: skip
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    print(f"generated {issues:,} issues in {time.perf_counter() - t:.0f} s; load {load()}")


def snapshot_derived(conn) -> None:
    """The base's tile counts and facets (before any copy), folded per key."""
    conn.execute(
        text(
            "DROP TABLE IF EXISTS bench_base_tile_counts, bench_base_tile_facets;"
            " CREATE TABLE bench_base_tile_counts AS SELECT level, cx, cy, status, sum(n) AS n,"
            " sum(sx) AS sx, sum(sy) AS sy FROM issue_tile_counts"
            " GROUP BY level, cx, cy, status HAVING sum(n) <> 0;"
            " CREATE TABLE bench_base_tile_facets AS SELECT level, cx, cy, day, status, category,"
            " source, sum(n) AS n, sum(sx) AS sx, sum(sy) AS sy FROM issue_tile_facets"
            " GROUP BY level, cx, cy, day, status, category, source HAVING sum(n) <> 0"
        )
    )


def copy_derived(conn, k: int, issue_ids: int, event_ids: int) -> None:
    """What the skipped triggers would have written for copy k: the base's tile counts (same
    points and statuses), tile facets (days shifted) and event rollup (ids and days shifted).
    Every shift is a whole number of weeks, so days and ISO weeks stay aligned."""
    days = WINDOW_DAYS * k
    conn.execute(
        text(
            "INSERT INTO issue_tile_counts (level, cx, cy, status, n, sx, sy)"
            " SELECT level, cx, cy, status, n, sx, sy FROM bench_base_tile_counts"
        )
    )
    conn.execute(
        text(
            "INSERT INTO issue_tile_facets (level, cx, cy, day, status, category, source, n, sx,"
            f" sy) SELECT level, cx, cy, day - {days}, status, category, source, n, sx, sy"
            " FROM bench_base_tile_facets"
        )
    )
    conn.execute(
        text(
            "INSERT INTO issue_event_rollup (grain, start, issue_id, last_at, last_id,"
            " last_status, last_close, reworked, handled, rejected)"
            f" SELECT grain, start - {days}, issue_id + {issue_ids * k},"
            f" last_at - interval '{days} days', last_id + {event_ids * k}, last_status,"
            f" last_close - interval '{days} days', reworked, handled, rejected"
            f" FROM issue_event_rollup WHERE issue_id <= {issue_ids}"
        )
    )


def admin_token(app) -> str:
    from geoservice.accounts.accounts import create_user, issue_token

    with app.app_context():
        session = database(app).session()
        name = f"scale_bench_{int(time.time())}"
        user = create_user(session, name, "admin")
        session.flush()
        token = issue_token(session, user)
        session.commit()
        session.close()
    return token


def measure(app, token: str, runs: int) -> None:
    from geoservice.catalogue.items import ItemsQuery, items_statement
    from geoservice.edge.access import catalogue
    from geoservice.ranking import ranking
    from geoservice.ranking.periods import week_period
    from geoservice.registry import layers

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        session = database(app).session()
        issues, events, last = session.execute(
            text(
                "SELECT (SELECT count(*) FROM issues), (SELECT count(*) FROM issue_events),"
                " (SELECT max(reported_at) FROM issues)"
            )
        ).one()
        print(f"  data: {issues:,} issues, {events:,} events; load {load()}")
        statement, params = items_statement(
            catalogue().get("issues"), ItemsQuery(limit=10_000, bbox=BBOX)
        )
        floor_ms, _rows = timed(lambda: session.execute(text(statement), params).all(), runs)
        bbox = ",".join(str(v) for v in BBOX)
        ours_ms, response = timed(
            lambda: client.get(
                f"/api/collections/issues/items?bbox={bbox}&limit=10000", headers=headers
            ),
            runs,
        )
        page = response.get_json()
        print(
            f"  items, 10,000 by bbox: ours {ours_ms:.0f} ms, statement alone {floor_ms:.0f} ms"
            f" ({ours_ms / floor_ms:.2f}×; matched {page.get('numberMatched', 'not counted')},"
            f" returned {page['numberReturned']:,}); load {load()}"
        )
        extent = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
                " FROM (SELECT ST_Extent(geom) e FROM issues WHERE id <= 100000) s"
            )
        ).one()
        lon, lat = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
        for z in (8, 10, 12):
            x, y = tile_xy(lon, lat, z)
            out = []
            for query in ("", "?category=环境卫生"):
                url = f"/api/collections/issues/tiles/{z}/{x}/{y}.pbf{query}"
                ms, r = timed(lambda url=url: client.get(url, headers=headers), runs)
                out.append(f"{'category' if query else 'all'} {ms:.0f} ms {len(r.data):,} B")
            print(f"  tile z{z}: {'; '.join(out)} (target < 100 ms); load {load()}")
        # A lookup by id alone probes every month's index (no pruning by id).
        months = session.scalar(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'issues'::regclass")
        )
        ids = session.scalars(text("SELECT id FROM issues TABLESAMPLE SYSTEM (1) LIMIT 20")).all()
        ms, _ = timed(lambda: [client.get(f"/api/issues/{i}", headers=headers) for i in ids], runs)
        print(
            f"  GET /api/issues/<id>: {ms / max(1, len(ids)):.1f} ms each ({months} partitions);"
            f" load {load()}"
        )
        local = last.astimezone(ranking_tz()) - timedelta(days=7)
        iso = local.isocalendar()
        period = week_period(iso[0], iso[1], ranking_tz())
        registry = layers()
        ms, rows = timed(lambda: ranking.ranking(session, registry, "leader", period), max(1, runs))
        print(
            f"  weekly leader ranking {period.title}: {ms:.0f} ms, {len(rows):,} rows"
            f" (target < 1000 ms); load {load()}"
        )
        session.close()


def ranking_tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=9, help="copies back in time (9: ×10)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-migrate", action="store_true")
    parser.add_argument("--no-vacuum", action="store_true", help="ANALYZE only after the copies")
    parser.add_argument(
        "--resume-after", type=int, default=0, help="the database already holds this many copies"
    )
    parser.add_argument(
        "--measure-every", type=int, default=0, help="also measure after every N copies"
    )
    parser.add_argument(
        "--generate",
        type=int,
        default=0,
        help="generate N issues first (no demo copy needed; the database is emptied)",
    )
    args = parser.parse_args()
    url = os.environ["BENCH_DATABASE_URL"]
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "STATEMENT_TIMEOUT_MS": 0})
    print(f"scale bench on {make_url(url).database}; load {load()}")
    if not args.skip_migrate:
        t = time.perf_counter()
        migrate.upgrade(database(app).engine)
        print(f"migrations (the monthly-partition conversion): {time.perf_counter() - t:.0f} s;"
              f" load {load()}")  # fmt: skip
    if args.generate:
        generate(app, args.generate)
    token = admin_token(app)
    print("at the base size:")
    measure(app, token, args.runs)
    if args.copies:
        print(f"copying the issues {args.copies}× back in time …")

        def between(k: int) -> None:
            if args.measure_every and k % args.measure_every == 0:
                print(f"after {k} copies (ANALYZEd, not vacuumed):")
                measure(app, token, args.runs)

        copy_back(app, args.copies, between, args.resume_after, not args.no_vacuum)
        print(f"after {args.copies} copies:")
        measure(app, token, args.runs)


if __name__ == "__main__":
    main()
