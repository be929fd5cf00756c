"""issues workflow indexes: merged duplicates and relapses by target, the unassigned queue

Revision ID: dad81682e7db
Revises: df98642f2e3d
Create Date: 2026-11-24 02:31:28.135938
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op

revision: str = "dad81682e7db"
down_revision: str | Sequence[str] | None = "df98642f2e3d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_issues_duplicate_of",
        "issues",
        ["duplicate_of_id"],
        unique=False,
        postgresql_where=sa.text("duplicate_of_id IS NOT NULL"),
    )
    op.create_index(
        "ix_issues_relapse_of",
        "issues",
        ["relapse_of_id"],
        unique=False,
        postgresql_where=sa.text("relapse_of_id IS NOT NULL"),
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
    op.drop_index(
        "ix_issues_relapse_of",
        table_name="issues",
        postgresql_where=sa.text("relapse_of_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_issues_duplicate_of",
        table_name="issues",
        postgresql_where=sa.text("duplicate_of_id IS NOT NULL"),
    )
