"""issue extent by index: a partial index on issue_tile_counts (cy) at the finest level

The catalogue's issue extent is min/max of the occupied finest cells (catalogue/tiles.py,
`collection_extents`). min/max of cx come from the key index (level, cx, …); min/max of cy
had no index, so the four aggregates scanned the whole level (878,391 rows at 1M issues:
90-530 ms, paid again by every catalogue answer after a report). With this index each of the
four is a one-row index scan (0.2 ms together).

Revision ID: 5e2a7c9b4d63
Revises: 3c7e5a9d1f24
Create Date: 2026-12-03 02:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e2a7c9b4d63"
down_revision: str | Sequence[str] | None = "3c7e5a9d1f24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINEST_LEVEL = 19  # geoservice.catalogue.tilegrid.FINEST_LEVEL when this was written


def upgrade() -> None:
    op.create_index(
        "ix_issue_tile_counts_finest_cy",
        "issue_tile_counts",
        ["cy"],
        postgresql_where=sa.text(f"level = {FINEST_LEVEL}"),
    )


def downgrade() -> None:
    op.drop_index("ix_issue_tile_counts_finest_cy", table_name="issue_tile_counts")
