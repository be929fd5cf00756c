"""rules: leader/unit/deadline history on issue events (backfilled), issues.holder_since,
published 通报 (publications)

Revision ID: 7c1e0a5b2d17
Revises: c5b13a5b584d
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7c1e0a5b2d17"
down_revision: str | Sequence[str] | None = "c5b13a5b584d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RULE_EVENT = "(holder_change AND prev_deadline < at) OR (data ->> 'action') LIKE 'extension%'"

# Existing history: 交办/改派 events carry leader_id, deadline and (when the leader changed)
# previous_leader_id in their data; reattribution events carry before/after. Units are the
# leaders' units. The deadline before a 交办/改派 is the one set by the issue's previous
# 交办/改派; reattribution does not change the deadline.
BACKFILL = """
WITH d AS (
  SELECT e.id,
    (e.data ->> 'leader_id')::bigint AS leader_id,
    CASE WHEN e.data ? 'previous_leader_id' THEN (e.data ->> 'previous_leader_id')::bigint
         ELSE (e.data ->> 'leader_id')::bigint END AS prev_leader_id,
    (e.data ->> 'deadline')::timestamptz AS deadline,
    lag((e.data ->> 'deadline')::timestamptz)
      OVER (PARTITION BY e.issue_id ORDER BY e.at, e.id) AS prev_deadline
  FROM issue_events e
  WHERE e.data ->> 'action' IN ('dispatch', 'redispatch') AND e.data ? 'leader_id'
)
UPDATE issue_events e SET holder_change = true,
  leader_id = d.leader_id, unit_id = l.unit_id, deadline = d.deadline,
  prev_leader_id = d.prev_leader_id, prev_unit_id = pl.unit_id, prev_deadline = d.prev_deadline
FROM d
LEFT JOIN leaders l ON l.id = d.leader_id
LEFT JOIN leaders pl ON pl.id = d.prev_leader_id
WHERE e.id = d.id;

UPDATE issue_events e SET holder_change = true,
  leader_id = (e.data -> 'after' ->> 'leader_id')::bigint,
  unit_id = (e.data -> 'after' ->> 'unit_id')::bigint,
  prev_leader_id = (e.data -> 'before' ->> 'leader_id')::bigint,
  prev_unit_id = (e.data -> 'before' ->> 'unit_id')::bigint,
  deadline = k.deadline, prev_deadline = k.deadline
FROM issue_events r
LEFT JOIN LATERAL (
  SELECT x.deadline FROM issue_events x
  WHERE x.issue_id = r.issue_id AND x.holder_change AND x.data ->> 'action' <> 'reattribute'
    AND (x.at, x.id) < (r.at, r.id)
  ORDER BY x.at DESC, x.id DESC LIMIT 1
) k ON true
WHERE e.id = r.id AND r.data ->> 'action' = 'reattribute';

UPDATE issues i SET holder_since = h.last
FROM (SELECT issue_id, max(at) AS last FROM issue_events WHERE holder_change GROUP BY issue_id) h
WHERE i.id = h.issue_id;
"""


def upgrade() -> None:
    op.add_column("issues", sa.Column("holder_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "issue_events",
        sa.Column("holder_change", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    for name in ("leader_id", "unit_id", "prev_leader_id", "prev_unit_id"):
        op.add_column("issue_events", sa.Column(name, sa.BigInteger(), nullable=True))
    for name in ("deadline", "prev_deadline"):
        op.add_column("issue_events", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    for statement in BACKFILL.split(";"):
        if statement.strip():
            op.execute(statement)
    op.create_index(
        "ix_issue_events_holder",
        "issue_events",
        ["issue_id", "at"],
        unique=False,
        postgresql_include=["id", "prev_leader_id", "prev_unit_id", "prev_deadline"],
        postgresql_where=sa.text("holder_change"),
    )
    op.create_index(
        "ix_issue_events_rule_at",
        "issue_events",
        ["at"],
        unique=False,
        postgresql_where=sa.text(RULE_EVENT),
    )

    op.create_table(
        "publications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_kind", sa.String(length=16), nullable=False),
        sa.Column("period_label", sa.String(length=64), nullable=False),
        sa.Column("period_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("inputs_sha256", sa.String(length=64), nullable=False),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("figures_sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("workbook", sa.LargeBinary(), nullable=False),
        sa.Column("workbook_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["published_by_id"],
            ["users.id"],
            name=op.f("fk_publications_published_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publications")),
        sa.UniqueConstraint(
            "period_kind", "period_label", "version", name="uq_publications_version"
        ),
    )
    op.create_table(
        "area_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("leader_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=50), server_default="包保责任人", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from",
            name=op.f("ck_area_assignments_valid_range"),
        ),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["admin_areas.id"],
            name=op.f("fk_area_assignments_area_id_admin_areas"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["leader_id"],
            ["leaders.id"],
            name=op.f("fk_area_assignments_leader_id_leaders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area_assignments")),
    )
    op.create_index(
        "ix_area_assignments_area_period",
        "area_assignments",
        ["area_id", "valid_from", "valid_to"],
        unique=False,
    )
    op.create_index(
        "ix_area_assignments_leader_id", "area_assignments", ["leader_id"], unique=False
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("layer", sa.String(length=32), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), server_default="lead", nullable=False),
        sa.Column("co_responsible", sa.Boolean(), server_default=sa.text("false"),
                  nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("role IN ('lead', 'assist')", name=op.f("ck_routing_rules_role")),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from",
                           name=op.f("ck_routing_rules_valid_range")),
        sa.ForeignKeyConstraint(["area_id"], ["admin_areas.id"],
                                name=op.f("fk_routing_rules_area_id_admin_areas"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_routing_rules_unit_id_units"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_routing_rules_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )  # fmt: skip
    op.create_index(
        "ix_routing_rules_category", "routing_rules", ["category", "valid_from"], unique=False
    )
    op.create_table(
        "rule_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_rule_settings_created_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_settings")),
        sa.UniqueConstraint("key", "valid_from", name="uq_rule_settings_key_from"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("rule_settings")
    op.drop_table("routing_rules")
    op.drop_table("area_assignments")
    op.drop_table("publications")
    op.drop_index("ix_issue_events_rule_at", table_name="issue_events")
    op.drop_index("ix_issue_events_holder", table_name="issue_events")
    for name in (
        "prev_deadline",
        "deadline",
        "prev_unit_id",
        "prev_leader_id",
        "unit_id",
        "leader_id",
        "holder_change",
    ):
        op.drop_column("issue_events", name)
    op.drop_column("issues", "holder_since")
