"""issue_fact_changes: a handover is dated when it happened, not when the issue was reported

The ranking snapshots of closed weeks and months (geoservice/ranking/snapshot.py) are filed
under the rows of issue_fact_changes dated before the period's end: one row per UPDATE that
changed a column the rankings read, dated by the earliest report time of the issues concerned.
A 交办, 改派 or 延期 changes the holder columns (leader, unit, deadline, holder_since), so each
dispatch of an issue reported before the end made that period's snapshot unused, although the
rankings of a period that ended before the handover cannot move: they read the holder at the
period's end from the handover's event (`ranking._as_of`: `holder_since` >= end → the event's
`prev_*`). On a working day every dispatch of last week's or last month's backlog did that
(the day replay at scale 100: ~14 % of the logged statements), so the worker's hourly rebuild
was stale again within minutes and the rankings ran the pipeline.

Now a statement whose issues changed only their holder columns, each moving `holder_since`
forward, is dated by the latest of (report time, new `holder_since`) of each issue — the
earliest of those over the statement: the periods ending after it are the only ones it can
move. Any other fact change (grid, place, category, source, relapse, duplicate, report time,
an insert or delete), or a holder changed without moving `holder_since` forward (a backdated
event entered later, a plain UPDATE), is dated by the report time as before.

The function is rewritten where it is (its definition with the one statement replaced; the
migration stops unless it holds it exactly once), in SQL so that offline output does the same.

Revision ID: 9a5c3e7f1b28
Revises: 8f4b2d6e0a17
Create Date: 2026-12-04 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9a5c3e7f1b28"
down_revision: str | Sequence[str] | None = "8f4b2d6e0a17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BY_REPORT = "SELECT min(least(o_reported_at, n_reported_at)) FROM pairs WHERE facts_changed"
BY_HANDOVER = (
    "SELECT min(CASE WHEN o_id IS NOT NULL AND n_id IS NOT NULL"
    " AND n_holder_since > coalesce(o_holder_since, '-infinity')"
    " AND same_relapse_of_id AND same_duplicate_of_id AND same_grid_id"
    " AND same_primary_place_id AND same_category AND same_source"
    " THEN greatest(n_reported_at, n_holder_since)"
    " ELSE least(o_reported_at, n_reported_at) END) FROM pairs WHERE facts_changed"
)


def _rewrite(old: str, new: str) -> None:
    old_sql, new_sql = old.replace("'", "''"), new.replace("'", "''")
    op.execute(f"""
DO $$
DECLARE
  definition text;
  found int;
BEGIN
  definition := pg_get_functiondef('issue_rows_updated()'::regprocedure);
  found := (length(definition) - length(replace(definition, '{old_sql}', '')))
           / length('{old_sql}');
  IF found <> 1 THEN
    RAISE EXCEPTION 'issue_rows_updated holds the fact log''s statement % times, expected once',
      found;
  END IF;
  EXECUTE replace(definition, '{old_sql}', '{new_sql}');
END $$""")


def upgrade() -> None:
    _rewrite(BY_REPORT, BY_HANDOVER)


def downgrade() -> None:
    _rewrite(BY_HANDOVER, BY_REPORT)
