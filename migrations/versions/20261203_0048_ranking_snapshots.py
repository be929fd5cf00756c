"""ranking snapshots: a closed week's per-issue ranking facts, stored once

Every grouping of a weekly ranking shared the same ~550–600 ms of pipeline at demo scale (the
candidates, the week's rollup rows joined to them, the state at the end and each issue's
holder then). A closed week's answer depends only on rows dated before its end and on the
other tables (`httpcache.written_before(end)`), so its per-issue indicators (the pipeline's
`ind` rows, with every grouping's key) are stored once with those write counters and read back
by each grouping while the counters are unchanged (geoservice/ranking/snapshot.py), with each
grouping's counts aggregated from them once (`ranking_snapshot_figures`). Not counted in
data_generations: a derived copy, written by `flask rankings snapshot` and the worker.

The writes to issues are logged more finely for them than for the HTTP answers
(issue_cell_changes logs every write): `issue_fact_changes` gets a row only for a statement
that inserts or deletes issues or changes a column the rankings read of them (keys, holder,
deadline, relapse, duplicate, report time), with the earliest report time concerned, so that
the daily status changes of older issues leave a closed week's snapshot in use.

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


# The columns of issues the rankings read (models.RANKING_COLUMNS and reported_at): a write
# changing none of them (a status change, a closure, a note) is not logged; what it changes of
# a past week comes with an event dated in that week (event_changes, migration 0046).
FACT_COLUMNS = (
    "id",
    "reported_at",
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
)
KEEP = 20_000  # rows of issue_fact_changes kept, as event_changes

FACTS_CHANGED = f"""
CREATE FUNCTION issue_facts_changed() RETURNS trigger LANGUAGE plpgsql
SET enable_sort = off AS $$
DECLARE
  added bigint;
  last_id bigint;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO issue_fact_changes (first_reported) VALUES ('-infinity');
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO issue_fact_changes (first_reported)
    SELECT min(reported_at) FROM new_rows HAVING count(*) > 0;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO issue_fact_changes (first_reported)
    SELECT min(reported_at) FROM old_rows HAVING count(*) > 0;
  ELSE
    -- Old and new rows grouped by every fact column: an issue whose facts did not change
    -- makes one group of two rows, dropped; a changed one two groups of one (as migration
    -- 0047 pairs them).
    INSERT INTO issue_fact_changes (first_reported)
    SELECT min(c.reported_at) FROM (
      SELECT u.reported_at FROM (
        SELECT {", ".join(FACT_COLUMNS)} FROM old_rows
        UNION ALL
        SELECT {", ".join(FACT_COLUMNS)} FROM new_rows
      ) u
      GROUP BY {", ".join(f"u.{c}" for c in FACT_COLUMNS)}
      HAVING count(*) = 1
    ) c
    HAVING count(*) > 0;
  END IF;
  GET DIAGNOSTICS added = ROW_COUNT;
  IF added > 0 THEN
    last_id := currval(pg_get_serial_sequence('issue_fact_changes', 'id'));
    IF last_id / 1000 <> (last_id - added) / 1000 THEN
      DELETE FROM issue_fact_changes WHERE id < last_id - {KEEP};
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER issues_facts_inserted AFTER INSERT ON issues
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION issue_facts_changed();
CREATE TRIGGER issues_facts_deleted AFTER DELETE ON issues
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION issue_facts_changed();
CREATE TRIGGER issues_facts_updated AFTER UPDATE ON issues
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION issue_facts_changed();
CREATE TRIGGER issues_facts_truncated AFTER TRUNCATE ON issues
  FOR EACH STATEMENT EXECUTE FUNCTION issue_facts_changed();
"""


def upgrade() -> None:
    op.create_table(
        "issue_fact_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("first_reported", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_fact_changes")),
    )
    op.create_index(
        "ix_issue_fact_changes_first_reported",
        "issue_fact_changes",
        ["first_reported"],
        postgresql_include=["id"],
    )
    # Writes before this migration count as made at -infinity: every snapshot built after it.
    op.execute("INSERT INTO issue_fact_changes (first_reported) VALUES ('-infinity')")
    op.execute(FACTS_CHANGED)
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
    op.execute("""
DROP TRIGGER issues_facts_inserted ON issues;
DROP TRIGGER issues_facts_deleted ON issues;
DROP TRIGGER issues_facts_updated ON issues;
DROP TRIGGER issues_facts_truncated ON issues;
DROP FUNCTION issue_facts_changed();
""")
    op.drop_index("ix_issue_fact_changes_first_reported", table_name="issue_fact_changes")
    op.drop_table("issue_fact_changes")
    op.drop_table("ranking_snapshot_figures")
    op.drop_table("ranking_snapshot_rows")
    op.drop_table("ranking_snapshots")
