"""issues by reporter: an index on issues (reported_by_id, reported_at)

An inspector's scope is the issues they reported (geoservice.accounts.scope: `own_reports_of`),
and the home page and the issue lists count and list "my reports": each read every issue of
the city (a sequential scan of ~1,000,000 rows at scale 100: the inspector's home page 1.2 s,
each list 0.75–1.05 s; their latest reports walked the whole city's newest first, 0.7 s).
Deleting a user (ON DELETE SET NULL) scanned them too.

Revision ID: 7d2f9b4e6a13
Revises: 4c8e1a6d2b90
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7d2f9b4e6a13"
down_revision: str | Sequence[str] | None = "4c8e1a6d2b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_issues_reported_by", "issues", ["reported_by_id", "reported_at"])


def downgrade() -> None:
    op.drop_index("ix_issues_reported_by", table_name="issues")
