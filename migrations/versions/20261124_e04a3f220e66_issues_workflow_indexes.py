"""issues workflow indexes: geography index for radius queries, the unassigned queue

Revision ID: e04a3f220e66
Revises: fc75acdbeeee
Create Date: 2026-11-24 02:16:00.741299
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op

revision: str = "e04a3f220e66"
down_revision: str | Sequence[str] | None = "fc75acdbeeee"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_issues_geog",
        "issues",
        [sa.literal_column("geography(geom)")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(
        "ix_issues_unassigned",
        "issues",
        ["reported_at"],
        unique=False,
        postgresql_where=sa.text("leader_id IS NULL AND status IN ('reported', 'accepted')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_issues_unassigned",
        table_name="issues",
        postgresql_where=sa.text("leader_id IS NULL AND status IN ('reported', 'accepted')"),
    )
    op.drop_index("ix_issues_geog", table_name="issues", postgresql_using="gist")
