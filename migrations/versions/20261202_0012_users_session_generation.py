"""users.session_generation: logout revokes every session cookie of the account

Revision ID: 7c1e5a90b312
Revises: 0968ec0e6343
Create Date: 2026-12-02 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1e5a90b312"
down_revision: str | Sequence[str] | None = "0968ec0e6343"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("users", "session_generation")
