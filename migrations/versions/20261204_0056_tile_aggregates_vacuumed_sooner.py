"""tile aggregates vacuumed sooner: after 1 % of their rows died, not 20 %

Every issue written or moved deletes and re-inserts its cells' rows in issue_tile_counts, _days,
_facets and _holders (about 44 rows for one status change), and the cells of a county's
centre are the same few rows for every write. With PostgreSQL's default (a vacuum once 20 % of
a table is dead) the scale-100 demo's tables (0.4–4.7 million rows) were not vacuumed once in a
day replay (6,669 requests, 258,263 dead rows in issue_tile_days): every read walked the dead
versions of the hot cells, and the slowest issue tile took 127 ms instead of 73 (tile bench,
before and after a VACUUM). Now autovacuum takes them after 1 % of their rows + 5,000.

Revision ID: 8f4b2d6e0a17
Revises: 7e3a9c1d5f02
Create Date: 2026-12-04 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8f4b2d6e0a17"
down_revision: str | Sequence[str] | None = "7e3a9c1d5f02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("issue_tile_counts", "issue_tile_days", "issue_tile_facets", "issue_tile_holders")


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0.01,"
            " autovacuum_vacuum_threshold = 5000)"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor,"
            " autovacuum_vacuum_threshold)"
        )
