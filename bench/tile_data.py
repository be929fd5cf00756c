# ruff: noqa: E501
"""A stand-in for the scale-100 demo county for bench/tile_bench.py, built in minutes: the demo
county's areas, layers (29,803 grids, 12,134 roads … at scale 100), units, leaders and
assignments as `seed-demo` loads them, and its issue stream (1,000,000 issues at scale 100:
statuses, categories, sources, report times and deadlines as the demo has them) copied into
`issues` without events, photos or per-issue attribution — each issue gets the leader (and
unit) of a random leader instead. The tiles only read the issues' columns, so this is enough
to time them; it is not a demo to click through. ~25 minutes at load 8 (1M issues through the
tile-count triggers in batches of 100,000, then one UPDATE with triggers off).

    .venv/bin/python bench/tile_data.py DBNAME [--scale 100] [--today 2026-11-27] [--issues N]
        [--big-unit 0.25]

`--big-unit F`: the unit with the most leaders then holds F of the attributed issues (spread
over its leaders), as a big 责任单位 of a real county does (the random spread gives the largest
unit ~1 %): what the unit filter's tiles cost at their worst. `--big-unit F --existing` does
only that, to a database built before.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from geoservice import create_app, migrate, partitions  # noqa: E402
from geoservice.db import database  # noqa: E402
from geoservice.demo import ISSUE_WINDOW_DAYS, generate_county  # noqa: E402
from geoservice.demo import seed as demo_seed  # noqa: E402
from geoservice.registry import layers  # noqa: E402

HOST = "/work/main/.pg/run"


def refill_holders(session) -> None:
    """issue_tile_holders (migration 0036) from `issues` again, after updates made with the
    triggers off (leader and unit are its key)."""
    if session.scalar(text("SELECT to_regclass('issue_tile_holders')")) is None:
        return
    path = ROOT / "migrations/versions/20261203_0036_issue_tile_holders.py"
    spec = importlib.util.spec_from_file_location("_holders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    session.execute(text("LOCK TABLE issue_tile_holders IN EXCLUSIVE MODE"))
    session.execute(text("DELETE FROM issue_tile_holders"))
    session.execute(text(module.fill()))


def concentrate(session, fraction: float) -> None:
    """The unit with the most leaders gets `fraction` of the attributed issues (by an id hash),
    each given one of its leaders; triggers off (as the leader update above), holders refilled."""
    session.execute(text("SET LOCAL session_replication_role = replica"))
    session.execute(
        text("""
WITH u AS (
  SELECT unit_id FROM leaders WHERE unit_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1
), l AS (
  SELECT id, unit_id, row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS n
  FROM leaders WHERE unit_id = (SELECT unit_id FROM u)
)
UPDATE issues i SET leader_id = l.id, unit_id = l.unit_id FROM l
WHERE i.leader_id IS NOT NULL AND (i.id * 2654435761) % 1000 < :permille
  AND l.k = (i.id * 7919) % l.n"""),
        {"permille": round(fraction * 1000)},
    )
    session.execute(text("SET LOCAL session_replication_role = origin"))
    refill_holders(session)


def build(
    name: str, scale: float, today: date, most: int | None = None, big_unit: float = 0
) -> None:
    if not name.startswith("geoservice_bench_"):
        raise SystemExit("the database name must start with geoservice_bench_")
    url = f"postgresql+psycopg2://geoservice@/{name}?host={HOST}"
    admin = create_engine(
        f"postgresql+psycopg2://geoservice@/postgres?host={HOST}", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            raise SystemExit(f"{name} exists; drop it first")
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    migrate.upgrade(engine)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    started = time.perf_counter()
    county = generate_county(seed=1, scale=scale, today=today)
    print(f"county generated in {time.perf_counter() - started:.0f} s", flush=True)
    with app.app_context():
        session = database(app).session()
        partitions.ensure(
            session,
            today=max(date.today(), today),
            since=today - timedelta(days=ISSUE_WINDOW_DAYS),
            tz=app.config["TIMEZONE"],
        )
        # Everything but the issues and the assessment demo.
        real_issues = demo_seed._load_issues
        demo_seed._load_issues = lambda *a, **k: 0  # type: ignore[assignment]
        import geoservice.assessment.demo as assessment_demo

        real_assessment = assessment_demo.load_assessment_demo
        assessment_demo.load_assessment_demo = lambda *a, **k: {}  # type: ignore[assignment]
        try:
            counts = demo_seed.load_demo(session, layers(), county, progress=print)
        finally:
            demo_seed._load_issues = real_issues  # type: ignore[assignment]
            assessment_demo.load_assessment_demo = real_assessment  # type: ignore[assignment]
        session.commit()
        print(counts, flush=True)
        total, batch = 0, 100_000
        buf = io.StringIO()
        out = csv.writer(buf)

        def flush() -> None:
            buf.seek(0)
            raw = session.connection().connection.dbapi_connection
            with raw.cursor() as cursor:
                cursor.copy_expert(
                    f"COPY issues ({', '.join(demo_seed.ISSUE_COLUMNS)}) FROM STDIN WITH (FORMAT csv, NULL '')",
                    buf,
                )
            session.commit()

        for issue in county.issues():
            if most is not None and total >= most:
                break
            total += 1
            out.writerow(
                (
                    total,
                    f"SRID=4326;POINT({issue.lon:.7f} {issue.lat:.7f})",
                    issue.category,
                    issue.source,
                    issue.description,
                    issue.severity,
                    "t" if issue.negative_list else "f",
                    issue.status,
                    issue.reported_at.isoformat(),
                    issue.deadline.isoformat() if issue.deadline else "",
                    issue.closed_at.isoformat() if issue.closed_at else "",
                    issue.rework_count,
                )
            )
            if total % batch == 0:
                flush()
                buf.seek(0)
                buf.truncate()
                print(f"  {total:,} issues ({time.perf_counter() - started:.0f} s)", flush=True)
        if buf.tell():
            flush()
        # Leader and unit are no tile count's key: the statement triggers (1M-row transition
        # tables joined per trigger) took over 15 minutes here, so they are skipped (needs the
        # local cluster's superuser, as the bench databases have).
        session.execute(text("SET LOCAL session_replication_role = replica"))
        session.execute(
            text("""
UPDATE issues i SET leader_id = l.id, unit_id = l.unit_id
FROM (SELECT id, unit_id, row_number() OVER (ORDER BY id) - 1 AS k FROM leaders) l,
     (SELECT count(*) AS n FROM leaders) c
WHERE l.k = (i.id * 7919) % c.n AND i.status NOT IN ('reported', 'accepted', 'rejected')""")
        )
        session.execute(text("SET LOCAL session_replication_role = origin"))
        refill_holders(session)
        if big_unit:
            concentrate(session, big_unit)
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('issues', 'id'), :v)"), {"v": total}
        )
        session.commit()
        session.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"{total:,} issues; built in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database")
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 11, 27))
    parser.add_argument(
        "--issues", type=int, default=None, help="load at most this many issues (layers only: 0)"
    )
    parser.add_argument("--big-unit", type=float, default=0, help="fraction of attributed issues")
    parser.add_argument(
        "--existing", action="store_true", help="only --big-unit, on a database built before"
    )
    args = parser.parse_args()
    if args.existing:
        if not args.database.startswith("geoservice_bench_"):
            raise SystemExit("the database name must start with geoservice_bench_")
        engine = create_engine(f"postgresql+psycopg2://geoservice@/{args.database}?host={HOST}")
        with engine.begin() as conn:
            from sqlalchemy.orm import Session

            concentrate(Session(bind=conn), args.big_unit)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE issues"))
        return
    build(args.database, args.scale, args.today, args.issues, args.big_unit)


if __name__ == "__main__":
    main()
