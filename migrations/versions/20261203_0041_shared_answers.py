"""shared answers: answers allowed to lag writes (rankings), shared by the worker processes

Each worker process kept its own copy of the rankings and recomputed it every
RANKINGS_FRESH_SECONDS: with N workers, N computations of about a second each per period and
grouping at demo scale. The process that computes an answer now leaves it here, and the others
serve it (geoservice/httpcache.py, edge/caching.py). Unlogged: a cache.

Revision ID: 7b1d4f6a2c85
Revises: 5e2a7c9b4d63
Create Date: 2026-12-03 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7b1d4f6a2c85"
down_revision: str | Sequence[str] | None = "5e2a7c9b4d63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_answers",
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("clock_window", sa.BigInteger(), nullable=True),
        sa.Column("made", sa.DateTime(timezone=True), nullable=False),
        sa.Column("etag", sa.String(80), nullable=False),
        sa.Column("mimetype", sa.String(120), nullable=False),
        sa.Column("headers", postgresql.JSONB(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_shared_answers")),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("shared_answers")
