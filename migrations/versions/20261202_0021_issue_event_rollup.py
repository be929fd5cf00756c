"""issue event rollup: per issue, day and week, a summary of its state changes (rankings)

Kept by statement-level triggers on issue_events (insert, update, delete, truncate), so
the weekly ranking reads one row per issue instead of every event of the week. See
geoservice/ranking/rollup.py and docs/rankings.md "Speed".

Revision ID: 7b3e2a91c0d4
Revises: 7c1e5a2b9d40
Create Date: 2026-12-02 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b3e2a91c0d4"
down_revision: str | Sequence[str] | None = "7c1e5a2b9d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The summary of a set of change events `e` (issue_id, at, id, from_status, to_status, grain,
# start), per (grain, start, issue_id): the last change by (at, id), the last closure, and
# whether any was a 返工, a handling or a rejection (geoservice.ranking.ranking's `moves`).
SUMMARY = """
  SELECT e.grain, e.start, e.issue_id,
    (array_agg(e.at ORDER BY e.at DESC, e.id DESC))[1] AS last_at,
    (array_agg(e.id ORDER BY e.at DESC, e.id DESC))[1] AS last_id,
    (array_agg(e.to_status ORDER BY e.at DESC, e.id DESC))[1] AS last_status,
    max(e.at) FILTER (WHERE e.to_status = 'closed') AS last_close,
    bool_or((e.from_status = 'fixed' AND e.to_status = 'in_progress') IS TRUE) AS reworked,
    bool_or((e.to_status IN ('fixed', 'closed') OR e.from_status = 'fixed') IS TRUE) AS handled,
    bool_or(e.to_status = 'rejected') AS rejected
  FROM (
    SELECT g.grain, CASE g.grain WHEN 'd' THEN x.day
                      ELSE x.day - (extract(isodow FROM x.day)::int - 1) END AS start,
      x.issue_id, x.at, x.id, x.from_status, x.to_status
    FROM (SELECT r.issue_id, r.at, r.id, r.from_status, r.to_status,
            (r.at AT TIME ZONE issue_event_rollup_zone())::date AS day
          FROM {source} r
          WHERE r.from_status IS DISTINCT FROM r.to_status) x
    CROSS JOIN (VALUES ('d'), ('w')) g(grain)
  ) e
  GROUP BY e.grain, e.start, e.issue_id"""

COLUMNS = "grain, start, issue_id, last_at, last_id, last_status, last_close, reworked, handled,"
COLUMNS += " rejected"

# Per affected issue, the local dates [lo, hi) of the whole ISO weeks its changed events fall in.
KEYS = """
  SELECT issue_id, min(monday) AS lo, max(monday) + 7 AS hi FROM (
    SELECT issue_id, (at AT TIME ZONE issue_event_rollup_zone())::date
      - (extract(isodow FROM at AT TIME ZONE issue_event_rollup_zone())::int - 1) AS monday
    FROM {source}) w
  GROUP BY issue_id"""
CHANGED_BOTH = (
    "(SELECT issue_id, at FROM old_events UNION ALL SELECT issue_id, at FROM new_events) c"
)
# The events of those issues in those weeks.
RESCAN = """(SELECT ev.* FROM ({keys}) k JOIN issue_events ev ON ev.issue_id = k.issue_id
    AND ev.at >= k.lo::timestamp AT TIME ZONE issue_event_rollup_zone()
    AND ev.at < k.hi::timestamp AT TIME ZONE issue_event_rollup_zone())"""

FUNCTIONS = f"""
-- The time zone whose days and ISO weeks the rollup is cut into (the app's TIMEZONE; a
-- period not aligned on them reads the events of its partial days directly).
CREATE FUNCTION issue_event_rollup_zone() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'Asia/Shanghai'::text $$;

CREATE FUNCTION issue_event_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO issue_event_rollup AS d ({COLUMNS})
  SELECT * FROM ({SUMMARY.format(source="new_events")}) s
  ORDER BY grain, start, issue_id
  ON CONFLICT (grain, start, issue_id) DO UPDATE SET
    last_at = CASE WHEN (excluded.last_at, excluded.last_id) > (d.last_at, d.last_id)
                   THEN excluded.last_at ELSE d.last_at END,
    last_status = CASE WHEN (excluded.last_at, excluded.last_id) > (d.last_at, d.last_id)
                       THEN excluded.last_status ELSE d.last_status END,
    last_id = CASE WHEN (excluded.last_at, excluded.last_id) > (d.last_at, d.last_id)
                   THEN excluded.last_id ELSE d.last_id END,
    last_close = greatest(d.last_close, excluded.last_close),
    reworked = d.reworked OR excluded.reworked,
    handled = d.handled OR excluded.handled,
    rejected = d.rejected OR excluded.rejected;
  RETURN NULL;
END $$;

-- Updated or deleted events: every bucket of an affected issue between the first and the
-- last changed instant (whole ISO weeks) is summarised again from issue_events.
CREATE FUNCTION issue_event_rollup_resummarise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM issue_event_rollup d USING ({KEYS.format(source=CHANGED_BOTH)}) k
    WHERE d.issue_id = k.issue_id AND d.start >= k.lo AND d.start < k.hi;
    INSERT INTO issue_event_rollup ({COLUMNS})
    {SUMMARY.format(source=RESCAN.format(keys=KEYS.format(source=CHANGED_BOTH)))};
  ELSE
    DELETE FROM issue_event_rollup d USING ({KEYS.format(source="old_events")}) k
    WHERE d.issue_id = k.issue_id AND d.start >= k.lo AND d.start < k.hi;
    INSERT INTO issue_event_rollup ({COLUMNS})
    {SUMMARY.format(source=RESCAN.format(keys=KEYS.format(source="old_events")))};
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION issue_event_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE issue_event_rollup;
  RETURN NULL;
END $$;
"""

# Statement-level (one upsert per statement, COPY included); allowed on a partitioned parent,
# where the transition tables see the rows of every partition.
TRIGGERS = """
CREATE TRIGGER issue_event_rollup_insert AFTER INSERT ON issue_events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT
  EXECUTE FUNCTION issue_event_rollup_insert();
CREATE TRIGGER issue_event_rollup_update AFTER UPDATE ON issue_events
  REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events FOR EACH STATEMENT
  EXECUTE FUNCTION issue_event_rollup_resummarise();
CREATE TRIGGER issue_event_rollup_delete AFTER DELETE ON issue_events
  REFERENCING OLD TABLE AS old_events FOR EACH STATEMENT
  EXECUTE FUNCTION issue_event_rollup_resummarise();
CREATE TRIGGER issue_event_rollup_truncate AFTER TRUNCATE ON issue_events
  FOR EACH STATEMENT EXECUTE FUNCTION issue_event_rollup_truncate();
"""


# The ranking candidate indexes (0012 ranking_indexes) now cover what a ranking reads of an
# issue, so candidates are read by index-only scans instead of ~1/3 of the issues table.
RANKING_COLUMNS = [
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
UNCLOSED = "status NOT IN ('closed', 'rejected') OR (status = 'closed' AND closed_at IS NULL)"


def _candidate_indexes(include: bool) -> None:
    op.drop_index("ix_issues_closed_at", table_name="issues")
    op.drop_index("ix_issues_unclosed_reported_at", table_name="issues")
    op.create_index(
        "ix_issues_closed_at",
        "issues",
        ["closed_at"],
        postgresql_where=sa.text("status = 'closed'"),
        postgresql_include=["reported_at", *RANKING_COLUMNS] if include else [],
    )
    op.create_index(
        "ix_issues_unclosed_reported_at",
        "issues",
        ["reported_at"],
        postgresql_where=sa.text(UNCLOSED),
        postgresql_include=RANKING_COLUMNS if include else [],
    )


def upgrade() -> None:
    _candidate_indexes(include=True)
    op.create_table(
        "issue_event_rollup",
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("issue_id", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_status", sa.String(length=16), nullable=False),
        sa.Column("last_close", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reworked", sa.Boolean(), nullable=False),
        sa.Column("handled", sa.Boolean(), nullable=False),
        sa.Column("rejected", sa.Boolean(), nullable=False),
        sa.CheckConstraint("grain IN ('d', 'w')", name="grain"),
        sa.PrimaryKeyConstraint("grain", "start", "issue_id"),
    )
    op.create_index(
        "ix_issue_event_rollup_issue", "issue_event_rollup", ["issue_id", "grain", "start"]
    )
    op.execute(FUNCTIONS)
    op.execute(
        f"INSERT INTO issue_event_rollup ({COLUMNS}) {SUMMARY.format(source='issue_events')}"
    )
    op.execute(TRIGGERS)


def downgrade() -> None:
    _candidate_indexes(include=False)
    for name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER issue_event_rollup_{name} ON issue_events")
    for name in ("insert", "resummarise", "truncate", "zone"):
        op.execute(f"DROP FUNCTION issue_event_rollup_{name}()")
    op.drop_index("ix_issue_event_rollup_issue", table_name="issue_event_rollup")
    op.drop_table("issue_event_rollup")
