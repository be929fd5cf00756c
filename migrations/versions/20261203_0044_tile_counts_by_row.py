"""tile counts read by row: an index on issue_tile_counts (level, cy, cx), the table in key order

A viewport's exact count (catalogue/items.py, `_bbox_count_sql`) sums the tile-count rows of
its interior blocks and of four strips along its edges. Two of the strips and two sides of
each level's ring are wide in cx and one or two cells high: the key index (level, cx, cy, …)
walks every cy of each of their columns (the whole county's height: ~360 index pages and
~1.3 ms per strip at demo scale), where an index led by cy reads the strip's own rows. It
replaces 0040's partial index on cy at the finest level, which served the issues' extent
(min/max cy at level 19) and is a prefix case of this one.

The ~3,000 rows a county-twelfth viewport reads lay on ~2,700 heap pages (rows inserted in
arrival order by the triggers and the seed): 9 of the count's 17 ms. CLUSTER puts them in key
order (3.5 s for 1.55 million rows), and fillfactor 80 leaves room on each page for the
counters' updates to stay HOT (same page, no new index entries), so the order lasts: only
keys seen for the first time are appended. Measured on the demo county: count 19.7 → 1.8 ms.

Revision ID: 2b8d4f6a9c31
Revises: 9c3e5a7b1d46
Create Date: 2026-12-03 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2b8d4f6a9c31"
down_revision: str | Sequence[str] | None = "9c3e5a7b1d46"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINEST_LEVEL = 19  # geoservice.catalogue.tilegrid.FINEST_LEVEL when this was written


def upgrade() -> None:
    op.create_index("ix_issue_tile_counts_rows", "issue_tile_counts", ["level", "cy", "cx"])
    op.drop_index("ix_issue_tile_counts_finest_cy", table_name="issue_tile_counts")
    op.execute("ALTER TABLE issue_tile_counts SET (fillfactor = 80)")
    op.execute("CLUSTER issue_tile_counts USING ix_issue_tile_counts_key")
    op.execute("ANALYZE issue_tile_counts")


def downgrade() -> None:
    op.execute("ALTER TABLE issue_tile_counts SET WITHOUT CLUSTER")
    op.execute("ALTER TABLE issue_tile_counts RESET (fillfactor)")
    op.create_index(
        "ix_issue_tile_counts_finest_cy",
        "issue_tile_counts",
        ["cy"],
        postgresql_where=sa.text(f"level = {FINEST_LEVEL}"),
    )
    op.drop_index("ix_issue_tile_counts_rows", table_name="issue_tile_counts")
