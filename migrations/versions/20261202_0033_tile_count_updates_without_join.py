"""tile count updates without a join: the UPDATE triggers of issue_tile_counts and
issue_tile_facets pair each issue's old and new row by sorting, not by joining the two
transition tables

Migration 0028 gave the tile-count trigger functions planner settings (no hash or merge joins,
no sequential scans) so that folding probes the key index. Those settings also applied to the
UPDATE triggers' pairing of `old_rows` with `new_rows` on `id`, which became a nested loop over
two tuplestores: quadratic in the rows a statement updates. An UPDATE of 2,000 issues spent
4 s in each of the two triggers, 5,000 issues 9–11 s each, and a bulk re-attribution of
50,000 issues did not finish — although attribution changes neither the point, the status nor
the facets, so those triggers had nothing to write.

Now the old and new rows are put in one list and each issue's pair is compared by a window
over its id (a sort: n log n, and no join at all), keeping the pairs whose status, point (or,
for facets, category, source or report time) changed, as before. The fold is unchanged.

Revision ID: 9e4b2f7a1c33
Revises: 5f1b8c3d2a70
Create Date: 2026-12-02 16:40:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "9e4b2f7a1c33"
down_revision: str | Sequence[str] | None = "5f1b8c3d2a70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"_pairs_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOTROWS = "20261202_0028_tile_counts_without_hot_rows"


def paired(columns: Sequence[str], outer: str) -> str:
    """The changed rows of an UPDATE as (sign, …): -1 for the old row, +1 for the new one,
    for each id whose `columns` differ (the geometry compared with ST_OrderingEquals).
    `outer`: the select list over those rows (column `p.<name>`)."""
    listed = ", ".join(columns)
    changed = " OR ".join(
        "NOT ST_OrderingEquals(first_value(u.geom) OVER w, last_value(u.geom) OVER w)"
        if c == "geom"
        else f"first_value(u.{c}) OVER w IS DISTINCT FROM last_value(u.{c}) OVER w"
        for c in columns
    )
    return f"""(
    SELECT {outer} FROM (
      SELECT u.*, {changed} AS moved
      FROM (SELECT -1 AS sign, id, {listed} FROM old_rows
            UNION ALL SELECT 1 AS sign, id, {listed} FROM new_rows) u
      WINDOW w AS (PARTITION BY u.id ORDER BY u.sign
                   ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ) p WHERE p.moved
  ) AS changed"""


UPDATED = {
    "issue_tile_counts": paired(("status", "geom"), "p.sign, p.status, p.geom"),
    "issue_tile_facets": paired(
        ("status", "category", "source", "reported_at", "geom"),
        "p.sign, p.status, p.category, p.source,"
        " (p.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, p.geom",
    ),
}


def _install(updated: dict[str, str]) -> None:
    hotrows = _migration(HOTROWS)
    for table, key, stem in hotrows.TABLES:
        cells = _migration(stem).CELLS.format(source=updated[table])
        body = hotrows.APPLY.format(table=table, key=key, cells=cells, most=hotrows.FOLD_MOST)
        op.execute(hotrows._function(f"{table}_updated", body))


def upgrade() -> None:
    _install(UPDATED)


def downgrade() -> None:
    hotrows = _migration(HOTROWS)
    _install({table: _migration(stem).UPDATED for table, _key, stem in hotrows.TABLES})
