"""One attribution batch in its first-pass state, measured and rolled back (A/B on one
database: run it, change the code or the schema, run it again, alternate).

Needs a database left by `bench/issues.sh` (BENCH_DATABASE_URL: its 100,000 issues, layers
and routing rules). The batch's attribution columns are reset (committed, then VACUUM), the
batch is attributed with the fallback chain and routing in a transaction that is rolled back,
and the backend's CPU time is printed per issue; with --explain, auto_explain logs the
statement's plan with its trigger times to the server log and they are printed from there.

  BENCH_DATABASE_URL=... .venv/bin/python bench/attribution_batch.py [--first 1] [--size 50000]
      [--runs 3] [--md5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from geoservice.config import normalise_database_url  # noqa: E402
from geoservice.issues.attribution import attribute_issues  # noqa: E402
from geoservice.registry import LayerRegistry  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from issues_bench import FALLBACK, backend_cpu_seconds, load  # noqa: E402

MD5 = (
    "SELECT md5(string_agg(concat_ws('|', id, primary_place_id, grid_id, leader_id, unit_id,"
    " attribution::text), ',' ORDER BY id)) FROM issues"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--size", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--before",
        default="",
        help="SQL run first in each run's transaction (rolled back with it), e.g. DROP INDEX …",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the statement's trigger times (auto_explain, timing off)",
    )
    parser.add_argument(
        "--md5",
        action="store_true",
        help="print the md5 of every issue's attribution columns and exit",
    )
    parser.add_argument(
        "--commit",
        action="store_true",
        help="attribute the whole table"
        " (batches of --size, committed) from a reset state, then print the md5",
    )
    args = parser.parse_args()
    engine = create_engine(normalise_database_url(os.environ["BENCH_DATABASE_URL"]))
    registry = LayerRegistry.discover("layers")
    if args.md5:
        with engine.connect() as conn:
            print("md5", conn.scalar(text(MD5)), conn.scalar(text("SELECT count(*) FROM issues")))
        return
    if args.commit:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE issues SET primary_place_id = NULL, grid_id = NULL,"
                    " leader_id = NULL, unit_id = NULL, attribution = NULL"
                )
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE issues"))
            lo, hi = conn.execute(text("SELECT min(id), max(id) FROM issues")).one()
        with Session(engine) as session:
            for first in range(lo, hi + 1, args.size):
                attribute_issues(session, registry, first, min(hi, first + args.size - 1), FALLBACK)
                session.commit()
        with engine.connect() as conn:
            print("md5", conn.scalar(text(MD5)))
        return
    lo, hi = args.first, args.first + args.size - 1
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE issues SET primary_place_id = NULL, grid_id = NULL, leader_id = NULL,"
                " unit_id = NULL, attribution = NULL WHERE id BETWEEN :lo AND :hi"
                " AND attribution IS NOT NULL"
            ),
            {"lo": lo, "hi": hi},
        )
    for run in range(args.runs):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM issues"))
        with engine.connect() as connection, Session(bind=connection) as session:
            if args.before:
                session.execute(text(args.before))
            cpu0 = backend_cpu_seconds(session)
            start = time.perf_counter()
            done = attribute_issues(session, registry, lo, hi, FALLBACK)
            wall = time.perf_counter() - start
            cpu = backend_cpu_seconds(session) - cpu0
            session.rollback()
        print(
            f"run {run + 1}: {done:,} issues, wall {wall:.2f} s, database CPU {cpu:.2f} s ="
            f" {cpu / done * 1e6:.0f} µs per issue ({load()})",
            flush=True,
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM issues"))
    if args.explain:
        explain(engine, registry, lo, hi)


def explain(engine, registry: LayerRegistry, lo: int, hi: int) -> None:
    """EXPLAIN ANALYZE of the batch's statement, rolled back: its trigger times
    and the plan's top lines."""
    captured: list = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "written AS" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    with engine.connect() as connection, Session(bind=connection) as session:
        attribute_issues(session, registry, lo, hi, FALLBACK)
        session.rollback()
    event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off; SET LOCAL work_mem = '128MB'")
            cursor.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + statement, parameters)
            for (line,) in cursor.fetchall():
                if "Trigger" in line or "Time" in line:
                    print("  " + line.strip())
        raw.rollback()


if __name__ == "__main__":
    main()
