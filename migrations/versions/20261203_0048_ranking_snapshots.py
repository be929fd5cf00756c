"""ranking snapshots: a closed week's per-issue ranking facts, stored once

Every grouping of a weekly ranking shared the same ~550–600 ms of pipeline at demo scale (the
candidates, the week's rollup rows joined to them, the state at the end and each issue's
holder then). A closed week's answer depends only on rows dated before its end and on the
other tables (`httpcache.written_before(end)`), so its per-issue indicators (the pipeline's
`ind` rows, with every grouping's key) are stored once with those write counters and read back
by each grouping while the counters are unchanged (geoservice/ranking/snapshot.py), with each
grouping's counts aggregated from them once (`ranking_snapshot_figures`). Not counted in
data_generations: a derived copy, written by `flask rankings snapshot` and the worker.

Revision ID: 6c2e9a4b7d15
Revises: b3d8f1a6c925
Create Date: 2026-12-03 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6c2e9a4b7d15"
down_revision: str | Sequence[str] | None = "b3d8f1a6c925"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = (
    "received",
    "should_close",
    "closed",
    "closed_on_time",
    "closed_late",
    "open_end",
    "overdue_end",
    "handled",
    "reworked",
    "relapses",
    "rejected",
    "handed_overdue",
    "extension_requested",
    "extension_granted",
    "extension_refused",
)


def upgrade() -> None:
    op.create_table(
        "ranking_snapshots",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("definition", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column(
            "built_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("build_seconds", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranking_snapshots")),
        sa.UniqueConstraint("period_start", "period_end", name="uq_ranking_snapshots_period"),
    )
    op.create_table(
        "ranking_snapshot_rows",
        sa.Column("snapshot_id", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(1), nullable=False),
        *(sa.Column(f"k_{g}", sa.BigInteger()) for g in ("leader", "unit", "grid")),
        *(sa.Column(f"k_{g}", sa.BigInteger()) for g in ("community", "street")),
        *(sa.Column(f"k_{g}", sa.Text()) for g in ("layer", "category", "source")),
        sa.Column("h_leader", sa.Boolean(), nullable=False),
        sa.Column("h_unit", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True)),
        *(sa.Column(flag, sa.Boolean(), nullable=False) for flag in FLAGS),
        sa.Column("hours", sa.Numeric()),
        sa.CheckConstraint("kind IN ('f', 'h', 'x')", name=op.f("ck_ranking_snapshot_rows_kind")),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["ranking_snapshots.id"],
            name=op.f("fk_ranking_snapshot_rows_snapshot_id_ranking_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "n", name=op.f("pk_ranking_snapshot_rows")),
    )
    # The 通报's overdue list of a snapshot: index-only.
    op.create_index(
        "ix_ranking_snapshot_rows_overdue",
        "ranking_snapshot_rows",
        ["snapshot_id", "issue_id"],
        postgresql_include=["deadline", "reported_at"],
        postgresql_where=sa.text("overdue_end"),
    )
    op.create_table(
        "ranking_snapshot_figures",
        sa.Column("snapshot_id", sa.BigInteger(), nullable=False),
        sa.Column("grouping", sa.String(16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("k_int", sa.BigInteger()),
        sa.Column("k_text", sa.Text()),
        *(sa.Column(flag, sa.BigInteger(), nullable=False) for flag in FLAGS),
        sa.Column("avg_hours", sa.Numeric()),
        sa.Column("median_hours", sa.Double()),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["ranking_snapshots.id"],
            name=op.f("fk_ranking_snapshot_figures_snapshot_id_ranking_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "snapshot_id", "grouping", "n", name=op.f("pk_ranking_snapshot_figures")
        ),
    )


def downgrade() -> None:
    op.drop_table("ranking_snapshot_figures")
    op.drop_table("ranking_snapshot_rows")
    op.drop_table("ranking_snapshots")
