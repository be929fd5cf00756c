"""Per-issue snapshots of closed weeks (issue 17 §4) and calendar months (issue 19): the
storage and its rule.

A closed period's per-issue facts (each issue's flags and its key in every grouping, before any
label, score or setting is applied) are a function of the issues reported and the events dated
before its end (docs/rankings.md: "a closed period never moves") and of the tables the
groupings join (places, the grid table, admin_areas), which is what `generation_sql` counts:
the write counters of those tables (`httpcache.written_before(end, tables)`), the end itself,
the logged writes to issue_events that touched an event dated before the end
(`event_changes`), and the logged writes to issues that inserted or deleted one reported
before the end or changed a column the rankings read of it (`issue_fact_changes`, migration
0048: its keys, holder, deadline, relapse, duplicate, report time — not its status, whose
changes come with events, dated when they happen; a handover, which moves `holder_since`
forward, is dated by it since migration 0057: the holder at an earlier end is read from its
event). Labels, 回访, 巡查 and the scoring settings are read afresh with every ranking, so
writes to leaders, units, rules or a publication, the daily status changes of older issues
and their later handovers leave a snapshot in use.

`ranking.build_snapshot` stores the pipeline's per-issue indicator rows (`ind`, with the key of
every grouping) of one week or month in `ranking_snapshot_rows`, together with those values read
*before* the rows were computed (`ranking_snapshots.generation`: a write committed in between
makes the stored values older than the rows, never newer) and a digest of the statement that
built them (`definition`: new code never reads an older build).

The rule: a closed period's ranking is aggregated from its snapshot only if the stored values
equal the current ones, read in the same statement as the rows (so a rebuild committed in
between cannot mix two snapshots), and the current transaction has written none of those
tables (its own writes are counted only when it commits: `geoservice.touched_<table>`,
migration 0027). Otherwise the answer is the pipeline's, as before. The snapshot tables are
not counted themselves (migrate.UNTRACKED_TABLES): writing one changes no generation.

Plain SQL and plain values; the pipeline that fills a snapshot is geoservice.ranking.ranking's.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice import httpcache

# The groupings a snapshot keeps a key for (`k_<name>`), with the key's SQL type. `all` needs
# none (its key is 0); a grouping the deployment does not offer is stored as NULL.
KEYS: dict[str, str] = {
    "leader": "bigint",
    "unit": "bigint",
    "grid": "bigint",
    "community": "bigint",
    "street": "bigint",
    "layer": "text",
    "category": "text",
    "source": "text",
}
# Groupings whose holder changes (a handover past the deadline counts for the holder before it,
# `h_<name>`: when the holders differ in that grouping). In every other grouping the key of a
# handover's two sides is the same expression, so it never counts there.
HOLDERS = ("leader", "unit")
FLAGS = (
    "received",
    "should_close",
    "closed",
    "closed_on_time",
    "closed_late",
    "open_end",
    "overdue_end",
    "handled",
    "reworked",
    "relapses",
    "rejected",
    "handed_overdue",
    "extension_requested",
    "extension_granted",
    "extension_refused",
)
# Snapshots of periods that ended longer ago than this are dropped by the worker's `prune`,
# except the last closed period of each kind (~55 MB a week at demo scale: 47 MB of rows,
# 9 MB of figures; a month ~140 MB).
KEEP_WEEKS = 8
# The closed periods the worker keeps a current snapshot of, by kind: the last eight weeks
# and months (the rankings page's trend and 收结案 chart show eight periods) and the last
# quarter (a quarter's trend runs the pipeline for the quarters before it).
KEPT_PERIODS = {"week": KEEP_WEEKS, "month": 8, "quarter": 1}


def _touched_sql(tables: Sequence[str]) -> str:
    """Whether this transaction has written one of `tables`, issues or issue_events (its
    writes are counted only when it commits)."""
    names = ", ".join(f"'{t}'" for t in sorted({*tables, *httpcache.TIMED_TABLES}))
    return (
        "(SELECT coalesce(bool_or(current_setting('geoservice.touched_' || subject, true)"
        f" = '1'), false) FROM data_generations WHERE subject IN ({names}))"
    )


def supports(name: str) -> bool:
    """Whether a snapshot holds the rows of grouping `name`."""
    return name in KEYS or name == "all"


def generation_sql(end: datetime, tables: Sequence[str]) -> str:
    """The current values the snapshot of a period ending at `end` is filed under, as one
    bigint[] expression: `written_before(end, tables)`, with the writes to issues counted by
    `issue_fact_changes` (only those that inserted or deleted issues or changed a column the
    rankings read: migration 0048) instead of every write (`issue_cell_changes`)."""
    others, cells, events = httpcache.written_before(end, tables)
    if "issue_cell_changes" not in cells.sql or "event_changes" not in events.sql:
        raise AssertionError("httpcache.written_before changed its subjects")
    issues = (
        "(SELECT ARRAY[count(*), COALESCE(sum(id), 0)] FROM issue_fact_changes"
        f" WHERE first_reported < '{end.isoformat()}'::timestamptz)"
    )
    parts = (f"CAST({sql} AS bigint[])" for sql in (others.sql, issues, events.sql))
    return "(" + " || ".join(parts) + ")"


def definition(build_sql: str) -> str:
    """The digest filed with a snapshot: the statement that built it."""
    return hashlib.sha256(build_sql.encode()).hexdigest()


def valid_sql(end: datetime, tables: Sequence[str]) -> str:
    """SELECT id of the snapshot of [:snap_f, :snap_t) built by :snap_def that is current now
    (no row otherwise)."""
    return (
        "SELECT s.id FROM ranking_snapshots s"
        " WHERE s.period_start = CAST(:snap_f AS timestamptz)"
        " AND s.period_end = CAST(:snap_t AS timestamptz) AND s.definition = :snap_def"
        f" AND s.generation = {generation_sql(end, tables)} AND NOT {_touched_sql(tables)}"
    )


def key_sql(name: str, alias: str = "r") -> str:
    return "0" if name == "all" else f"{alias}.k_{name}"


def row_filter(name: str, alias: str = "r") -> str:
    """The snapshot rows that count in grouping `name` (as the pipeline's `ind` for it)."""
    if name in HOLDERS:
        return f"({alias}.kind <> 'h' OR {alias}.h_{name})"
    return f"{alias}.kind <> 'h'"


def ind_sql(name: str, snap: str) -> str:
    """`WITH snap AS ({snap}), ind AS (…)`: the pipeline's `ind` of grouping `name` (columns
    k, id, reported_at, deadline, the flags, hours) from the snapshot `snap` selects (its id),
    none if it selects none."""
    flags = ", ".join(f"r.{f}" for f in FLAGS)
    return f"""
WITH snap AS ({snap}),
ind AS (
  SELECT {key_sql(name)} AS k, r.issue_id AS id, r.reported_at, r.deadline, {flags}, r.hours
  FROM ranking_snapshot_rows r
  JOIN snap ON r.snapshot_id = snap.id
  WHERE {row_filter(name)}
)
"""


def figures_insert_sql(name: str, key_type: str, aggregate: str) -> str:
    """Stores grouping `name`'s counts of snapshot :snapshot_id (`aggregate`: the pipeline's
    aggregate over `ind`, columns n, k, the counts, avg_hours, median_hours), in key order."""
    counts = ", ".join(FLAGS)
    return (
        ind_sql(name, "SELECT CAST(:snapshot_id AS bigint) AS id")
        + f""",
figures AS ({aggregate})
INSERT INTO ranking_snapshot_figures (snapshot_id, grouping, n, k_{key_type}, {counts},
  avg_hours, median_hours)
SELECT CAST(:snapshot_id AS bigint), '{name}', row_number() OVER (ORDER BY k), k, {counts},
  avg_hours, median_hours
FROM figures
"""
    )


def figures_sql(name: str, key_type: str, one_key: bool = False) -> str:
    """SELECT n, k, the counts, avg_hours, median_hours of grouping `name` from the snapshot
    `snap` (a CTE the caller defines), in key order: the pipeline's aggregate, stored.
    `one_key`: only the row of key :key (NULL: the unassigned row)."""
    counts = ", ".join(f"f.{c}" for c in FLAGS)
    sql_type = "bigint" if key_type == "int" else "text"
    where = f" AND f.k_{key_type} IS NOT DISTINCT FROM CAST(:key AS {sql_type})" if one_key else ""
    return f"""
SELECT 1 AS n, f.k_{key_type} AS k, {counts}, f.avg_hours, f.median_hours
FROM ranking_snapshot_figures f
JOIN snap ON f.snapshot_id = snap.id
WHERE f.grouping = '{name}'{where}
ORDER BY f.n
"""


def params(start: datetime, end: datetime, build_sql: str) -> dict[str, Any]:
    return {"snap_f": start, "snap_t": end, "snap_def": definition(build_sql)}


def current_generation(session: Session, end: datetime, tables: Sequence[str]) -> list[int] | None:
    """The `written_before(end, tables)` values now, or None when this transaction has written
    one of those tables, issues or issue_events (its writes are not counted yet)."""
    row = session.execute(
        text(
            f"SELECT {generation_sql(end, tables)} AS generation, {_touched_sql(tables)} AS touched"
        )
    ).one()
    generation = [int(v) for v in row.generation]
    if generation[0] != len(set(tables)):
        raise ValueError(f"a table of {sorted(tables)} is not counted (data_generations)")
    return None if row.touched else generation


def lock(session: Session, start: datetime, end: datetime) -> None:
    """One builder per period at a time (transaction-level advisory lock)."""
    key = zlib.crc32(f"ranking-snapshot {start.isoformat()} {end.isoformat()}".encode())
    session.execute(text("SELECT pg_advisory_xact_lock(7318002, :k)"), {"k": key - 2**31})


def status(
    session: Session, start: datetime, end: datetime, build_sql: str, tables: Sequence[str]
) -> dict[str, Any]:
    """What is stored for [start, end): rows, when built, and whether it is current."""
    found = session.execute(
        text(
            "SELECT id, rows, built_at, build_seconds, definition = :snap_def AS same_code,"
            f" id IN ({valid_sql(end, tables)}) AS current FROM ranking_snapshots"
            " WHERE period_start = CAST(:snap_f AS timestamptz)"
            " AND period_end = CAST(:snap_t AS timestamptz)"
        ),
        params(start, end, build_sql),
    ).first()
    if found is None:
        return {"stored": False, "current": False}
    return {"stored": True, **found._asdict()}


def replace(
    session: Session,
    start: datetime,
    end: datetime,
    build_sql: str,
    build_params: dict[str, Any],
    generation: list[int],
    figures: Sequence[str] = (),
) -> int:
    """Stores a new snapshot of [start, end) (rows: `build_sql` with `build_params` and
    :snapshot_id; then each statement of `figures`, :snapshot_id given) in place of the old
    one, in the caller's transaction; its row count."""
    if end > datetime.now(UTC):
        raise ValueError("only a closed period has a snapshot")
    session.execute(
        text(
            "DELETE FROM ranking_snapshots WHERE period_start = CAST(:f AS timestamptz)"
            " AND period_end = CAST(:t AS timestamptz)"
        ),
        {"f": start, "t": end},
    )
    snapshot_id = session.execute(
        text(
            "INSERT INTO ranking_snapshots (period_start, period_end, generation, definition,"
            " rows, build_seconds) VALUES (:f, :t, CAST(:g AS bigint[]), :d, 0, 0) RETURNING id"
        ),
        {"f": start, "t": end, "g": generation, "d": definition(build_sql + "".join(figures))},
    ).scalar_one()
    rows = session.execute(text(build_sql), {**build_params, "snapshot_id": snapshot_id}).rowcount
    for sql in figures:
        session.execute(text(sql), {**build_params, "snapshot_id": snapshot_id})
    # Statistics of the new rows: planned without them, the 通报's first read right after a
    # build took 35 s instead of ~0.4 s (demo county, 2026-W47).
    session.execute(text("ANALYZE ranking_snapshot_rows, ranking_snapshot_figures"))
    session.execute(
        text(
            "UPDATE ranking_snapshots SET rows = :rows,"
            " build_seconds = extract(epoch FROM clock_timestamp() - built_at) WHERE id = :id"
        ),
        {"rows": rows, "id": snapshot_id},
    )
    return rows


def prune(
    session: Session, before: datetime, keep: Sequence[tuple[datetime, datetime]] = ()
) -> int:
    """Drops the snapshots of periods that ended before `before`, but those of the periods
    `keep` ((start, end) pairs); how many."""
    return session.execute(
        text(
            "DELETE FROM ranking_snapshots WHERE period_end < :before"
            " AND (period_start, period_end) NOT IN"
            " (SELECT * FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])))"
        ),
        {"before": before, "starts": [k[0] for k in keep], "ends": [k[1] for k in keep]},
    ).rowcount


def insert_sql(with_ind: str, key_index: dict[str, int | None]) -> str:
    """The INSERT of the snapshot rows from a pipeline statement `with_ind` (its `ind` with the
    keys as a text array `k`, and for handovers the new holders' keys `hk`, as
    `ranking.compute_many` runs it); `key_index`: each KEYS grouping's place in the arrays
    (None: not offered). A flag the pipeline leaves NULL (e.g. overdue without a deadline) is
    stored false: every reader counts, filters or ORs it, where NULL and false are alike."""
    keys = []
    for name, sql_type in KEYS.items():
        i = key_index.get(name)
        keys.append("NULL" if i is None else f"CAST(x.k[{i}] AS {sql_type})")
    handed = []
    for name in HOLDERS:
        i = key_index.get(name)
        handed.append(
            "false" if i is None else f"(x.handed_overdue AND x.hk[{i}] IS DISTINCT FROM x.k[{i}])"
        )
    columns = ", ".join(
        [
            "snapshot_id",
            "n",
            "issue_id",
            "kind",
            *(f"k_{name}" for name in KEYS),
            *(f"h_{name}" for name in HOLDERS),
            "reported_at",
            "deadline",
            *FLAGS,
            "hours",
        ]
    )
    return (
        with_ind
        + f"""
INSERT INTO ranking_snapshot_rows ({columns})
SELECT :snapshot_id, row_number() OVER (), x.id,
  CASE WHEN x.handed_overdue THEN 'h'
       WHEN x.extension_requested OR x.extension_granted OR x.extension_refused THEN 'x'
       ELSE 'f' END,
  {", ".join(keys)},
  {", ".join(handed)},
  x.reported_at, x.deadline, {", ".join(f"x.{f} IS TRUE" for f in FLAGS)}, x.hours
FROM ind x
"""
    )
