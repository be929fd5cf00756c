"""issue tile facets by deadline day: `overdue` tiles from the facets

`overdue` is `status open AND deadline < now()`: it moves with the clock, so it cannot be a
stored flag. The facets now also key on the deadline's day (Asia/Shanghai; 'infinity' when an
issue has no deadline): an issue is overdue for sure when its deadline day is before today,
not overdue when after, and only the issues whose deadline falls today need their exact
deadline compared with now() — a few, read from the open-deadline index
(geoservice/catalogue/tiles.py). A deadline follows its report day and category almost
always (report time + the category's limit), so keying on it adds few rows.

The triggers are those of migration 0028 (deltas folded with SKIP LOCKED) with the new key
column, the UPDATE trigger pairing old and new rows by a window as migration 0033 does; an
UPDATE moving only the deadline (an extension) now moves the issue's facet too.
The table is rebuilt from `issues`.

Revision ID: 8e4d2b6a1c93
Revises: 9e4b2f7a1c33
Create Date: 2026-12-02 16:10:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "8e4d2b6a1c93"
down_revision: str | Sequence[str] | None = "9e4b2f7a1c33"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"_deadline_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FACETS = "20261202_0025_issue_tile_facets"
HOTROWS = "20261202_0028_tile_counts_without_hot_rows"
PAIRS = "20261202_0033_tile_count_updates_without_join"
TABLE = "issue_tile_facets"
OLD_KEY = "level, cx, cy, day, status, category, source"
KEY = f"{OLD_KEY}, deadline_day"
OLD_CATEGORY_KEY = "level, category, cx, cy, day, status, source"
CATEGORY_KEY = f"{OLD_CATEGORY_KEY}, deadline_day"
LEVELS = "ARRAY[6, 8, 10, 12, 14, 16, 18]"

# As migration 0025's cells, with the deadline day.
CELLS = f"""
  SELECT d.sign, d.status, d.category, d.source, d.day, d.deadline_day, lv AS level,
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
        f"{p}status, {p}category, {p}source,"
        f" ({p}reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day,"
        f" COALESCE(({p}deadline AT TIME ZONE 'Asia/Shanghai')::date, 'infinity'::date)"
        f" AS deadline_day, {p}geom"
    )


INSERTED = f"(SELECT 1 AS sign, {_row()} FROM new_rows) AS changed"
DELETED = f"(SELECT -1 AS sign, {_row()} FROM old_rows) AS changed"
UPDATED = _migration(PAIRS).paired(
    ("status", "category", "source", "reported_at", "deadline", "geom"),
    "p.sign, p.status, p.category, p.source,"
    " (p.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day,"
    " COALESCE((p.deadline AT TIME ZONE 'Asia/Shanghai')::date, 'infinity'::date)"
    " AS deadline_day, p.geom",
)


# overdue=true reads the open issues' rows of deadline days before today: an index-only scan
# of these (a z8 tile of the 1M demo: 9,860 rows in 3.5 ms; through the key index, 56,000 rows
# with the closed ones filtered out, 0.2–1 s).
OPEN = "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'fixed')"
OPEN_DEADLINE = f"ix_{TABLE}_open_deadline"


def _rebuild(key: str, cells: str) -> None:
    """The table from `issues`, stored in key order: a tile reads a range of (level, cx, cy)
    from the key index, and the heap rows of that range then lie together (a hash-aggregated
    rebuild scattered them: 56,000 random reads, ~1 s for one z8 tile of the 1M demo)."""
    op.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
    op.execute(f"TRUNCATE {TABLE}")
    op.execute(f"""
INSERT INTO {TABLE} ({key}, n, sx, sy)
SELECT {key}, sum(sign), sum(sign * lon), sum(sign * lat0) FROM ({cells}) s
GROUP BY {key} ORDER BY {key}""")


def upgrade() -> None:
    hotrows = _migration(HOTROWS)
    op.execute(f"DROP INDEX ix_{TABLE}_category")
    op.execute(f"DROP INDEX ix_{TABLE}_key")
    op.execute(f"ALTER TABLE {TABLE} ADD COLUMN deadline_day date NOT NULL DEFAULT 'infinity'")
    op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN deadline_day DROP DEFAULT")
    for event, source in (("inserted", INSERTED), ("deleted", DELETED), ("updated", UPDATED)):
        body = hotrows.APPLY.format(
            table=TABLE, key=KEY, cells=CELLS.format(source=source), most=hotrows.FOLD_MOST
        )
        op.execute(hotrows._function(f"{TABLE}_{event}", body))
    _rebuild(KEY, CELLS.format(source=f"(SELECT 1 AS sign, {_row()} FROM issues) AS existing"))
    op.execute(f"CREATE INDEX ix_{TABLE}_key ON {TABLE} ({KEY})")
    op.execute(f"CREATE INDEX ix_{TABLE}_category ON {TABLE} ({CATEGORY_KEY})")
    op.execute(
        f"CREATE INDEX {OPEN_DEADLINE} ON {TABLE} (level, cx, cy, deadline_day)"
        f" INCLUDE (status, category, source, day, n, sx, sy) WHERE {OPEN}"
    )
    op.execute(f"ANALYZE {TABLE}")


def downgrade() -> None:
    hotrows = _migration(HOTROWS)
    facets = _migration(FACETS)
    op.execute(f"DROP INDEX {OPEN_DEADLINE}")
    op.execute(f"DROP INDEX ix_{TABLE}_category")
    op.execute(f"DROP INDEX ix_{TABLE}_key")
    op.execute(f"ALTER TABLE {TABLE} DROP COLUMN deadline_day")
    sources = {**hotrows._sources(facets), "updated": _migration(PAIRS).UPDATED[TABLE]}
    for event, source in sources.items():
        body = hotrows.APPLY.format(
            table=TABLE,
            key=OLD_KEY,
            cells=facets.CELLS.format(source=source),
            most=hotrows.FOLD_MOST,
        )
        op.execute(hotrows._function(f"{TABLE}_{event}", body))
    _rebuild(
        OLD_KEY,
        facets.CELLS.format(source=f"(SELECT 1 AS sign, {facets.ROW} FROM issues) AS existing"),
    )
    op.execute(f"CREATE INDEX ix_{TABLE}_key ON {TABLE} ({OLD_KEY})")
    op.execute(f"CREATE INDEX ix_{TABLE}_category ON {TABLE} ({OLD_CATEGORY_KEY})")
    # The rebuild fires the deferred data-generation bump (migration 0027): run it now.
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
