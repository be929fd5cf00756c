"""issue tile days: issues per cell, report day, status and category, kept exact by statement
triggers, for the map's low-zoom tiles of a time range (a month, a week) and of a category

Low-zoom issue tiles of whole report days (the map's time filter), with or without a status
or a category, and those of a category in every state, were read from `issue_tile_facets`
(migration 0025/0032), whose key also holds the source and the deadline day: at the 1M demo
county (56 days of reports) a level-10 cell has ~120,000 facet rows, about two issues each, and
the "last 30 days, every state" z7 tile summed 280,296 of them from the heap (240 ms; z4–z11
102–240 ms), "category, every state" 55,506 (67–154 ms at z7–z11). This table keeps only what
these tiles ask: at most days × statuses × categories rows per cell (z7: ~4,700 rows).

Only levels 8, 10, 12 and 14 (zooms ≤ 11, 4–16 cells across a tile; above, the facets'
tiles are fast enough). The triggers are those of migration 0028 (deltas folded with SKIP
LOCKED when few keys) and 0033 (an UPDATE pairs each issue's old and new row by a window; only
pairs whose status, category, report time or point changed write deltas), with the fold of
migration 0036 keeping a swap's coordinate sums. The key has no NULLs (status, category and
report time are NOT NULL). The table is filled from `issues` in key order.

bench/tile_bench.py --only issues on a copy of the scale-100 demo (1,021,847 issues; load
~2–3 on 2 cores): "month, every state" z4–z11 102–240 ms → 2–47 ms, "category, every state"
z4–z11 31–154 ms → 3–5 ms, "month + category" 17–78 ms → 3–5 ms (z12 and above: the facets, as
before). Filled in ~15 s (505,424 rows; 45 MB heap, 2 × 42 MB indexes). Per statement (its
trigger's time in EXPLAIN ANALYZE): one report 0.13 ms, one status change 0.38 ms; 5,110
status changes 0.43–0.49 s; 51,092 status changes 2.6–5.6 s (the facets' trigger: 18–32 s);
51,092 report times moved a day 2.1–4.4 s; an UPDATE changing none of its columns (leader
only) 0.11–0.15 s for 51,092 rows (the pairing window).

Revision ID: 3c7e5a9d1f24
Revises: 8b3d5e7f9a21
Create Date: 2026-12-03 10:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "3c7e5a9d1f24"
down_revision: str | Sequence[str] | None = "8b3d5e7f9a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"_days_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOTROWS = "20261202_0028_tile_counts_without_hot_rows"
PAIRS = "20261202_0033_tile_count_updates_without_join"
HOLDERS = "20261203_0036_issue_tile_holders"
TABLE = "issue_tile_days"
KEY = "level, cx, cy, day, status, category"
LEVELS = "ARRAY[8, 10, 12, 14]"
# Reads are by cells and days, or by category over a range of cells; each index holds the
# whole key (a fold's probe is then exact in either, migration 0028) and the sums (index-only
# reads).
INDEXES = {
    f"ix_{TABLE}_key": KEY,
    f"ix_{TABLE}_category": "level, category, cx, cy, day, status",
}

# As migration 0025's cells (the same cell formula), with the report day and category.
CELLS = f"""
  SELECT d.sign, d.day, d.status, d.category, lv AS level,
         (least(greatest(floor((ST_X(d.geom) + 180.0) / 360.0 * 524288), 0), 524287)::int
            >> (19 - lv)) AS cx,
         (least(greatest(floor((1.0 - ln(tan(radians(d.lat)) + 1.0 / cos(radians(d.lat))) / pi())
            / 2.0 * 524288), 0), 524287)::int >> (19 - lv)) AS cy,
         ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat0
  FROM (SELECT *, least(greatest(ST_Y(geom), -85.0511), 85.0511) AS lat FROM {{source}}) d
  CROSS JOIN unnest({LEVELS}) AS lv
"""


def _row(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return (
        f"({p}reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day,"
        f" {p}status, {p}category, {p}geom"
    )


INSERTED = f"(SELECT 1 AS sign, {_row()} FROM new_rows) AS changed"
DELETED = f"(SELECT -1 AS sign, {_row()} FROM old_rows) AS changed"
UPDATED = _migration(PAIRS).paired(
    ("status", "category", "reported_at", "geom"), f"p.sign, {_row('p')}"
)
EXISTING = f"(SELECT 1 AS sign, {_row()} FROM issues) AS existing"


def fill() -> str:
    """The table's rows from `issues`, in key order (a tile's range then lies together)."""
    return f"""
INSERT INTO {TABLE} ({KEY}, n, sx, sy)
SELECT {KEY}, sum(sign), sum(sign * lon), sum(sign * lat0)
FROM ({CELLS.format(source=EXISTING)}) s
GROUP BY {KEY} ORDER BY {KEY}"""


def upgrade() -> None:
    hotrows = _migration(HOTROWS)
    apply = _migration(HOLDERS)._apply(hotrows)
    op.execute(f"""
CREATE TABLE {TABLE} (
  level smallint NOT NULL,
  cx integer NOT NULL,
  cy integer NOT NULL,
  day date NOT NULL,
  status varchar(16) NOT NULL,
  category varchar(32) NOT NULL,
  n bigint NOT NULL,
  sx double precision NOT NULL,
  sy double precision NOT NULL
)""")
    for event, source in (("inserted", INSERTED), ("deleted", DELETED), ("updated", UPDATED)):
        body = apply.format(
            table=TABLE, key=KEY, cells=CELLS.format(source=source), most=hotrows.FOLD_MOST
        )
        op.execute(hotrows._function(f"{TABLE}_{event}", body))
    op.execute(f"""
CREATE FUNCTION {TABLE}_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {TABLE};
  RETURN NULL;
END $$;
CREATE TRIGGER issues_tile_days_insert AFTER INSERT ON issues
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION {TABLE}_inserted();
CREATE TRIGGER issues_tile_days_delete AFTER DELETE ON issues
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION {TABLE}_deleted();
CREATE TRIGGER issues_tile_days_update AFTER UPDATE ON issues
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION {TABLE}_updated();
CREATE TRIGGER issues_tile_days_truncate AFTER TRUNCATE ON issues
  FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_truncated();
""")
    # CREATE TRIGGER locks writers of issues out until this commits: the fill sees them all.
    op.execute(fill())
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {TABLE} ({columns}) INCLUDE (n, sx, sy)")
    op.execute(f"ANALYZE {TABLE}")


def downgrade() -> None:
    op.execute(f"""
DROP TRIGGER issues_tile_days_insert ON issues;
DROP TRIGGER issues_tile_days_delete ON issues;
DROP TRIGGER issues_tile_days_update ON issues;
DROP TRIGGER issues_tile_days_truncate ON issues;
DROP FUNCTION {TABLE}_inserted();
DROP FUNCTION {TABLE}_deleted();
DROP FUNCTION {TABLE}_updated();
DROP FUNCTION {TABLE}_truncated();
DROP TABLE {TABLE};
""")
