"""rejected candidates covering: ix_issues_rejected_updated_at includes what a ranking reads

Rankings read three kinds of candidate issues (geoservice.ranking.ranking, `cand`): open ones
by ix_issues_unclosed_reported_at and closed ones by ix_issues_closed_at, both index-only
(they include the ranking columns, migration 0021), and rejected ones updated since the
period began by ix_issues_rejected_updated_at, which included nothing: ~26,000 heap fetches
from ~24,000 blocks for the demo county's week (backend CPU of the candidates 160 → 100 ms).

Revision ID: 7f4a2c6e8b15
Revises: 7b1d4f6a2c85
Create Date: 2026-12-03 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7f4a2c6e8b15"
down_revision: str | Sequence[str] | None = "7b1d4f6a2c85"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_issues_rejected_updated_at"
# geoservice.models.RANKING_COLUMNS when this was written, with reported_at (as ix_issues_closed_at).
INCLUDE = [
    "reported_at",
    "id",
    "deadline",
    "holder_since",
    "relapse_of_id",
    "duplicate_of_id",
    "leader_id",
    "unit_id",
    "grid_id",
    "primary_place_id",
    "category",
    "source",
]


def _replace(include: list[str]) -> None:
    op.drop_index(INDEX, table_name="issues")
    op.create_index(
        INDEX,
        "issues",
        ["updated_at"],
        postgresql_where=sa.text("status = 'rejected'"),
        postgresql_include=include,
    )


def upgrade() -> None:
    _replace(INCLUDE)


def downgrade() -> None:
    _replace([])
