"""tile counts without hot rows: the triggers of issue_tile_counts and issue_tile_facets insert
delta rows and fold committed ones they can lock at once, instead of updating one row per cell

Before, every statement writing issues upserted one row per (cell, …) key and held its row
lock until the transaction committed: a handful of coarse cells hold the whole county, so
concurrent report transactions queued behind each other (bench/hot_rows.py: 16 writers holding
their transaction 50 ms ran at 19 reports/s, i.e. one at a time). Now the keys are not unique
(the primary keys become plain indexes): a statement inserts its deltas as new rows (an insert
never waits for anyone) and, in the same statement, deletes the rows of the same keys it can
lock without waiting (`FOR UPDATE SKIP LOCKED`: committed rows no other transaction is
folding) and inserts their sum — so a key keeps a few rows, and none of this ever waits.
Readers already sum `n`/`sx`/`sy` per key (rows with a zero sum are dropped when folded; a
key's rows may sum to zero while not yet folded). Every snapshot still sees exact counts: a
fold deletes and inserts the same sum in one transaction.

Revision ID: 5f1b8c3d2a70
Revises: 7d0a6c2e5b27
Create Date: 2026-12-02 15:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "5f1b8c3d2a70"
down_revision: str | Sequence[str] | None = "7d0a6c2e5b27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    """The earlier migration that created the table (its cell formulas and trigger sources)."""
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"_hotrows_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# table, its key columns (its primary key before), the migration that created it.
TABLES = (
    ("issue_tile_counts", "level, cx, cy, status", "20261124_0009_issue_tile_counts"),
    (
        "issue_tile_facets",
        "level, cx, cy, day, status, category, source",
        "20261202_0025_issue_tile_facets",
    ),
)

# {table} {key}: the statement's deltas (summed per key), the rows of those keys this
# transaction can lock now, both folded into one row per key. Only under READ COMMITTED (the
# app's level): a REPEATABLE READ transaction locking a row folded by a transaction committed
# after its snapshot would fail with a serialization error; it inserts its deltas only.
# A statement touching more than FOLD_MOST keys (a bulk import, re-attribution) inserts its
# deltas only too: folding costs an index probe, a delete and an insert per key (100,000
# issues into a million: 21 s folding, 11.8 s with the old upserts); the next report into a
# key folds it.
FOLD_MOST = 200

APPLY = """
  WITH delta AS (
    SELECT {key}, sum(sign)::bigint AS n, sum(sign * lon) AS sx, sum(sign * lat0) AS sy
    FROM ({cells}) s
    GROUP BY {key}
  ), folded AS (
    DELETE FROM {table} c WHERE c.ctid IN (
      SELECT t.ctid FROM {table} t JOIN delta d USING ({key})
      WHERE current_setting('transaction_isolation') = 'read committed'
        AND (SELECT count(*) FROM delta) <= {most}
      FOR UPDATE OF t SKIP LOCKED)
    RETURNING {key}, n, sx, sy
  )
  INSERT INTO {table} ({key}, n, sx, sy)
  SELECT {key}, sum(n), sum(sx), sum(sy)
  FROM (SELECT * FROM delta UNION ALL SELECT * FROM folded) u
  GROUP BY {key}
  HAVING sum(n) <> 0;
"""


# The transition table's size is unknown to the planner (it guesses 200 rows of delta): a
# statement of 100 issues into a million was folded by scanning the whole facets table (1 s,
# 63 ms with the old upserts). Folding is one index probe per delta key: the function's
# planner settings say so (they apply while it runs only).
def _function(name: str, body: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
{body}
  RETURN NULL;
END $$;
"""


def _sources(module: ModuleType) -> dict[str, str]:
    return {"inserted": module.INSERTED, "deleted": module.DELETED, "updated": module.UPDATED}


# The facets' category index (level, category, cx, cy) also matches a key's first columns: the
# planner probed it for folds (estimating one row) and filtered ~200 rows per key at a million
# issues (10 issues: 108 ms instead of 10). Widened to the whole key, either index is an exact
# probe (and category reads keep their prefix).
CATEGORY = "ix_issue_tile_facets_category"
CATEGORY_KEY = "level, category, cx, cy, day, status, source"


def upgrade() -> None:
    op.execute(f"DROP INDEX {CATEGORY}")
    op.execute(f"CREATE INDEX {CATEGORY} ON issue_tile_facets ({CATEGORY_KEY})")
    for table, key, stem in TABLES:
        module = _migration(stem)
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}")
        op.execute(f"CREATE INDEX ix_{table}_key ON {table} ({key})")
        for event, source in _sources(module).items():
            cells = module.CELLS.format(source=source)
            body = APPLY.format(table=table, key=key, cells=cells, most=FOLD_MOST)
            op.execute(_function(f"{table}_{event}", body))


def downgrade() -> None:
    for table, key, stem in TABLES:
        module = _migration(stem)
        op.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        op.execute(f"""
WITH gone AS (DELETE FROM {table} RETURNING *)
INSERT INTO {table} ({key}, n, sx, sy)
SELECT {key}, sum(n), sum(sx), sum(sy) FROM gone GROUP BY {key} HAVING sum(n) <> 0
""")
        op.execute(f"DROP INDEX ix_{table}_key")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")
        for event, source in _sources(module).items():
            op.execute(
                module._function(f"{table}_{event}", source).replace(
                    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
                )
            )
    op.execute(f"DROP INDEX {CATEGORY}")
    op.execute(f"CREATE INDEX {CATEGORY} ON issue_tile_facets (level, category, cx, cy)")
    # The folds fire the deferred data-generation bump (migration 0027): run it now, before
    # the next migration down drops its tables.
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
