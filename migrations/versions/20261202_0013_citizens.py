"""citizens: public reports, public side of issues, photo approvals, 回访, 红黑榜, challenges

Revision ID: 5c1d7e20a012
Revises: 7c1e5a90b312
Create Date: 2026-12-02 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5c1d7e20a012"
down_revision: str | Sequence[str] | None = "7c1e5a90b312"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "citizen_reports",
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("ticket", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_citizen_reports_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_citizen_reports")),
        sa.UniqueConstraint("ticket", name=op.f("uq_citizen_reports_ticket")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_citizen_reports_token_hash")),
    )
    op.create_table(
        "issue_public",
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("sensitive", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("published", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metoo_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_issue_public_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_issue_public_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_issue_public")),
    )
    op.create_table(
        "photo_approvals",
        sa.Column("photo_id", sa.BigInteger(), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["photos.id"],
            name=op.f("fk_photo_approvals_photo_id_photos"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["approved_by_id"],
            ["users.id"],
            name=op.f("fk_photo_approvals_approved_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("photo_id", name=op.f("pk_photo_approvals")),
    )
    op.create_table(
        "citizen_feedback",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("close_event_id", sa.BigInteger(), nullable=False),
        sa.Column("answer", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("channel", sa.String(length=16), server_default="ticket", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "answer IN ('satisfied', 'basically', 'unsatisfied')",
            name=op.f("ck_citizen_feedback_answer"),
        ),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('reopened', 'kept')",
            name=op.f("ck_citizen_feedback_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["close_event_id"],
            ["issue_events.id"],
            name=op.f("fk_citizen_feedback_close_event_id_issue_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_citizen_feedback_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_citizen_feedback_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_feedback")),
        sa.UniqueConstraint("close_event_id", name=op.f("uq_citizen_feedback_close_event_id")),
    )
    op.create_index("ix_citizen_feedback_at", "citizen_feedback", ["at"], unique=False)
    op.create_index(
        op.f("ix_citizen_feedback_issue_id"), "citizen_feedback", ["issue_id"], unique=False
    )
    op.create_table(
        "published_boards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("board", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["published_by_id"],
            ["users.id"],
            name=op.f("fk_published_boards_published_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_boards")),
        sa.UniqueConstraint("kind", "label", name="uq_published_boards_kind_label"),
    )
    op.create_table(
        "spent_challenges",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_spent_challenges")),
    )
    op.create_index(
        op.f("ix_spent_challenges_expires_at"), "spent_challenges", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_spent_challenges_expires_at"), table_name="spent_challenges")
    op.drop_table("spent_challenges")
    op.drop_table("published_boards")
    op.drop_index(op.f("ix_citizen_feedback_issue_id"), table_name="citizen_feedback")
    op.drop_index("ix_citizen_feedback_at", table_name="citizen_feedback")
    op.drop_table("citizen_feedback")
    op.drop_table("photo_approvals")
    op.drop_table("issue_public")
    op.drop_table("citizen_reports")
