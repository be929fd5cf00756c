"""tile count swaps keep their centroids: the triggers of issue_tile_counts and
issue_tile_facets keep a key's delta whose count is zero but whose coordinate sums are not

Migration 0028's fold inserts a key's summed rows only `HAVING sum(n) <> 0`. One statement
moving issue A out of a key and issue B into it (two issues of one cell swapping statuses, a
bulk status change) sums to n = 0 with sx = x(B) − x(A): the row was dropped and the key's
centroid stayed where A was, for good (counts stay exact; the point drawn drifts). Now such a
row is kept (|sum| > 1e-6°, ~0.1 m; smaller is a rounding residue, dropped as before), as
issue_tile_holders does (migration 0036). Sums drifted before are left as they are: a rebuild
of the two tables (migration 0032's) would correct them.

Revision ID: 6d2f9b0c4e18
Revises: 4a8c1e6f2b57
Create Date: 2026-12-03 09:30:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "6d2f9b0c4e18"
down_revision: str | Sequence[str] | None = "4a8c1e6f2b57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"_swaps_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOTROWS = "20261202_0028_tile_counts_without_hot_rows"
COUNTS = "20261124_0009_issue_tile_counts"
PAIRS = "20261202_0033_tile_count_updates_without_join"
DEADLINE = "20261202_0032_issue_tile_facets_deadline_day"
HOLDERS = "20261203_0036_issue_tile_holders"


def _install(fixed: bool) -> None:
    """The current trigger functions of both tables (0028's fold; inserts and deletes of 0009
    and 0032, updates of 0033 and 0032), with the fold keeping swaps when `fixed`."""
    hotrows = _migration(HOTROWS)
    apply = _migration(HOLDERS)._apply(hotrows) if fixed else hotrows.APPLY
    counts, deadline = _migration(COUNTS), _migration(DEADLINE)
    tables = {
        ("issue_tile_counts", "level, cx, cy, status", counts.CELLS): {
            "inserted": counts.INSERTED,
            "deleted": counts.DELETED,
            "updated": _migration(PAIRS).UPDATED["issue_tile_counts"],
        },
        ("issue_tile_facets", deadline.KEY, deadline.CELLS): {
            "inserted": deadline.INSERTED,
            "deleted": deadline.DELETED,
            "updated": deadline.UPDATED,
        },
    }
    for (table, key, cells), sources in tables.items():
        for event, source in sources.items():
            body = apply.format(
                table=table, key=key, cells=cells.format(source=source), most=hotrows.FOLD_MOST
            )
            op.execute(hotrows._function(f"{table}_{event}", body))


def upgrade() -> None:
    _install(fixed=True)


def downgrade() -> None:
    _install(fixed=False)
