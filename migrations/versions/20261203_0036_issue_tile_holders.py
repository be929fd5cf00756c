"""issue tile holders: issues per cell, status, responsible unit and leader (责任单位 /
包保领导), kept exact by statement triggers, for the map's unit and leader filters

Low-zoom issue tiles filtered by `unit_id` or `leader_id` (the map's 责任单位 / 包保领导
filters, with or without a status) were counted on the fly over every matching issue: a big
unit's tiles at z4–z10 of the 1M demo took 0.35–1.1 s. This table answers them as
`issue_tile_counts` and `issue_tile_facets` answer theirs (geoservice/catalogue/tiles.py).

Only three levels (8, 10, 12: zooms ≤ 10; above, a tile's matching issues are few enough to
count): every write changing an issue's unit or leader (改派, a re-attribution) writes these
rows too. No unit or no leader is stored as 0 (ids start at 1), so the key has no NULLs and
the fold's key join (`USING`) matches every row.

The triggers are those of migrations 0028 (deltas, folded with SKIP LOCKED when few keys) and
0033 (an UPDATE pairs each issue's old and new row by a window; only the pairs whose status,
unit, leader or point changed write deltas), the fold keeping a swap's coordinate sums (see
`_apply`). The table is filled from `issues` in key order.

bench/tile_bench.py on `bench/tile_data.py --big-unit 0.25` (1M issues, one unit holding
251,021 of them; load ~2.3 on 2 cores): that unit's tiles at z4–z10, 27–163 ms counted on the
fly, 1–3 ms from this table (z11+ still on the fly: 44–51 ms). Filled in ~5 s at 1M issues
(275,586 rows, 63 MB with indexes). Its UPDATE trigger adds ~1.6–2.2 ms to a one-issue 改派,
1.7 s to re-attributing 50,000 issues (3.8 s → 5.3 s), 3.2 s to 251,021 (13.7 s → 16.4 s).

Revision ID: 4a8c1e6f2b57
Revises: da67325f50aa
Create Date: 2026-12-03 09:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "4a8c1e6f2b57"
down_revision: str | Sequence[str] | None = "da67325f50aa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"_holders_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOTROWS = "20261202_0028_tile_counts_without_hot_rows"
PAIRS = "20261202_0033_tile_count_updates_without_join"
TABLE = "issue_tile_holders"
KEY = "level, cx, cy, status, unit_id, leader_id"
LEVELS = "ARRAY[8, 10, 12]"
# Reads are by unit or by leader over a range of cells; each index holds the whole key (a
# fold's probe is then exact in either, migration 0028) and the sums (index-only reads).
INDEXES = {
    f"ix_{TABLE}_unit": "level, unit_id, cx, cy, status, leader_id",
    f"ix_{TABLE}_leader": "level, leader_id, cx, cy, status, unit_id",
}

# As migration 0025's cells (the same cell formula), with unit and leader.
CELLS = f"""
  SELECT d.sign, d.status, d.unit_id, d.leader_id, lv AS level,
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
        f"{p}status, COALESCE({p}unit_id, 0) AS unit_id,"
        f" COALESCE({p}leader_id, 0) AS leader_id, {p}geom"
    )


INSERTED = f"(SELECT 1 AS sign, {_row()} FROM new_rows) AS changed"
DELETED = f"(SELECT -1 AS sign, {_row()} FROM old_rows) AS changed"
UPDATED = _migration(PAIRS).paired(
    ("status", "unit_id", "leader_id", "geom"), f"p.sign, {_row('p')}"
)
EXISTING = f"(SELECT 1 AS sign, {_row()} FROM issues) AS existing"


# Migration 0028's fold, but a key whose rows sum to no issue is kept when its coordinate sums
# do not cancel: one statement moving issue A out of a key and issue B into it (a swap of
# leaders, or of statuses, in one cell) writes n = 0 and sx = x(B) − x(A); dropping that
# row (0028 keeps sum(n) <> 0 only) left the key's centroid at A's place for good. A rounding
# residue (|sum| ≤ 1e-6°, ~0.1 m) is dropped as before.
def _apply(hotrows: ModuleType) -> str:
    having = "HAVING sum(n) <> 0;"
    assert hotrows.APPLY.count(having) == 1
    return hotrows.APPLY.replace(
        having, "HAVING sum(n) <> 0 OR abs(sum(sx)) > 1e-6 OR abs(sum(sy)) > 1e-6;"
    )


def fill() -> str:
    """The table's rows from `issues`, in key order (a tile's range then lies together)."""
    return f"""
INSERT INTO {TABLE} ({KEY}, n, sx, sy)
SELECT {KEY}, sum(sign), sum(sign * lon), sum(sign * lat0)
FROM ({CELLS.format(source=EXISTING)}) s
GROUP BY {KEY} ORDER BY level, unit_id, cx, cy, status, leader_id"""


def upgrade() -> None:
    hotrows = _migration(HOTROWS)
    op.execute(f"""
CREATE TABLE {TABLE} (
  level smallint NOT NULL,
  cx integer NOT NULL,
  cy integer NOT NULL,
  status varchar(16) NOT NULL,
  unit_id integer NOT NULL,
  leader_id integer NOT NULL,
  n bigint NOT NULL,
  sx double precision NOT NULL,
  sy double precision NOT NULL
)""")
    for event, source in (("inserted", INSERTED), ("deleted", DELETED), ("updated", UPDATED)):
        body = _apply(hotrows).format(
            table=TABLE, key=KEY, cells=CELLS.format(source=source), most=hotrows.FOLD_MOST
        )
        op.execute(hotrows._function(f"{TABLE}_{event}", body))
    op.execute(f"""
CREATE FUNCTION {TABLE}_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {TABLE};
  RETURN NULL;
END $$;
CREATE TRIGGER issues_tile_holders_insert AFTER INSERT ON issues
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION {TABLE}_inserted();
CREATE TRIGGER issues_tile_holders_delete AFTER DELETE ON issues
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION {TABLE}_deleted();
CREATE TRIGGER issues_tile_holders_update AFTER UPDATE ON issues
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION {TABLE}_updated();
CREATE TRIGGER issues_tile_holders_truncate AFTER TRUNCATE ON issues
  FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_truncated();
""")
    # CREATE TRIGGER locks writers of issues out until this commits: the fill sees them all.
    op.execute(fill())
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {TABLE} ({columns}) INCLUDE (n, sx, sy)")
    op.execute(f"ANALYZE {TABLE}")


def downgrade() -> None:
    op.execute(f"""
DROP TRIGGER issues_tile_holders_insert ON issues;
DROP TRIGGER issues_tile_holders_delete ON issues;
DROP TRIGGER issues_tile_holders_update ON issues;
DROP TRIGGER issues_tile_holders_truncate ON issues;
DROP FUNCTION {TABLE}_inserted();
DROP FUNCTION {TABLE}_deleted();
DROP FUNCTION {TABLE}_updated();
DROP FUNCTION {TABLE}_truncated();
DROP TABLE {TABLE};
""")
