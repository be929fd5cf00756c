"""Database CPU of one INSERT into issues with the nine INSERT statement triggers of 0052 and
with the one trigger of 0053 (issue_rows_inserted), alternated by blocks in one backend (a
noisy, shared machine slows both alike), on an existing database at 0053 (e.g. a copy of the
demo at scale 100):

    BENCH_DATABASE_URL=... .venv/bin/python bench/insert_triggers.py [--blocks 10] [--per 200]
        [--rows 1]

Each INSERT copies `--rows` issues of a 500-issue sample (their point, category, source and
attribution; one in five a relapse of an existing issue) and is rolled back. The old triggers
are created for the run and dropped after it (the merged one is disabled meanwhile: the DDL
takes an exclusive lock on issues, do not run it against a database in use). Prints the
backend's CPU per INSERT (median of the blocks) for each; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
MIGRATION = next(ROOT.glob("migrations/versions/*_0053_*.py"))

INSERT = """
INSERT INTO issues (geom, category, source, description, severity, negative_list, status,
                    reported_at, grid_id, primary_place_id, leader_id, unit_id, attribution,
                    relapse_of_id)
SELECT geom, category, source, 'bench', 1, false, 'reported', now(), grid_id,
       primary_place_id, leader_id, unit_id, attribution,
       CASE WHEN k %% 5 = 0 THEN %(original)s END
FROM bench_insert_sample WHERE k BETWEEN %(lo)s AND %(hi)s
RETURNING id, updated_at"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--per", type=int, default=200, help="INSERTs per block")
    parser.add_argument("--rows", type=int, default=1, help="rows per INSERT (≤ 500)")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("m0053", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    replaced = module.REPLACED

    url = os.environ["BENCH_DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    cur.execute(
        "CREATE TEMP TABLE bench_insert_sample AS SELECT row_number() OVER () AS k, geom,"
        " category, source, grid_id, primary_place_id, leader_id, unit_id, attribution"
        " FROM (SELECT * FROM issues ORDER BY reported_at DESC LIMIT 500) s"
    )
    cur.execute("CREATE UNIQUE INDEX ON bench_insert_sample (k)")
    cur.execute("ANALYZE bench_insert_sample")
    cur.execute("SELECT max(id) FROM issues")
    original = cur.fetchone()[0]
    for trigger, function in replaced:
        cur.execute(
            f"CREATE TRIGGER {trigger} AFTER INSERT ON issues REFERENCING NEW TABLE AS new_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}"
        )
    conn.commit()

    def use(merged: bool) -> None:
        for trigger, _ in replaced:
            cur.execute(f"ALTER TABLE issues {'DISABLE' if merged else 'ENABLE'} TRIGGER {trigger}")
        cur.execute(
            f"ALTER TABLE issues {'ENABLE' if merged else 'DISABLE'} TRIGGER issues_rows_inserted"
        )
        conn.commit()

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    rng = random.Random(1)

    def insert() -> None:
        lo = rng.randint(1, 500 - args.rows + 1)
        cur.execute(INSERT, {"lo": lo, "hi": lo + args.rows - 1, "original": original})
        cur.fetchall()
        conn.rollback()

    cpus: dict[bool, list[float]] = {False: [], True: []}
    walls: dict[bool, list[float]] = {False: [], True: []}
    try:
        for block in range(args.blocks):
            for merged in (False, True) if block % 2 == 0 else (True, False):
                use(merged)
                for _ in range(30):  # plans made again after the DDL
                    insert()
                cpu0, wall0 = cpu(), time.perf_counter()
                for _ in range(args.per):
                    insert()
                cpus[merged].append(1000 * (cpu() - cpu0) / args.per)
                walls[merged].append(1000 * (time.perf_counter() - wall0) / args.per)
    finally:
        conn.rollback()
        use(True)
        for trigger, _ in replaced:
            cur.execute(f"DROP TRIGGER {trigger} ON issues")
        conn.commit()
    for merged in (False, True):
        label = "one trigger (0053)" if merged else "nine triggers (0052)"
        print(
            f"{label}, {args.rows} row(s)/INSERT: backend CPU median"
            f" {statistics.median(cpus[merged]):.3f} ms/INSERT (blocks"
            f" {' '.join(f'{c:.2f}' for c in cpus[merged])}); wall median"
            f" {statistics.median(walls[merged]):.3f} ms"
        )
    print(f"load {os.getloadavg()[0]:.2f} (2 cores shared: other work slows both alike)")


if __name__ == "__main__":
    main()
