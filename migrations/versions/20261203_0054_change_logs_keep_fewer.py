"""change logs keep fewer rows: the last 2,000 of issue_cell_changes, event_changes and
issue_fact_changes instead of 20,000

The validators of cached answers are the number and id-sum of these logs' rows (an area's, or
those dated before a closed period's end): a count over up to 21,000 rows. The last week's
rankings answered 304 at ~4.6 ms of database CPU each under bench/load.py's mix, nearly all of
it counting the rows dated before the week's end (~16,000 in each of two logs); with ~2,500
rows, 0.3 ms. Items pages and issue tiles count the rows of their area, fewer too.

How many rows are kept changes no answer and no invalidation rate: every logged row changes
its readers' generation twice (when it is written and when it is pruned, one batch per 1,000
rows), whatever the number kept. A row written by a transaction still open is not visible to
the pruning statement of another one, so it is not pruned before its writer commits (its
readers see it appear).

The trigger functions are rewritten where they are: their definition, with `- 20000;` (the
pruning bound) replaced, is executed again (each must hold it exactly once, else the migration
stops). In SQL, so that offline (`--sql`) output does the same.

Revision ID: 6b2d8f4e1a93
Revises: 5c1e9f3a7b20
Create Date: 2026-12-03 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6b2d8f4e1a93"
down_revision: str | Sequence[str] | None = "5c1e9f3a7b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The functions that prune a change log (as at 0053); each prunes one or two logs.
PRUNING = (
    "issue_cells_changed",
    "event_times_changed",
    "issue_facts_changed",
    "issue_rows_updated",
    "issue_rows_inserted",
)


def _keep(old: int, new: int) -> None:
    names = ", ".join(f"'{n}'" for n in PRUNING)
    op.execute(f"""
DO $$
DECLARE
  f record;
  definition text;
  found int;
  rewritten int := 0;
BEGIN
  FOR f IN SELECT p.oid, p.proname FROM pg_proc p
           JOIN pg_namespace s ON s.oid = p.pronamespace
           WHERE s.nspname = current_schema() AND p.proname IN ({names}) LOOP
    definition := pg_get_functiondef(f.oid);
    found := (length(definition) - length(replace(definition, ' - {old};', ''))) / length(' - {old};');
    IF found NOT IN (1, 2) OR (found = 2) <> (f.proname = 'issue_rows_inserted') THEN
      RAISE EXCEPTION 'function % prunes % times by {old}, expected once (twice for issue_rows_inserted)', f.proname, found;
    END IF;
    EXECUTE replace(definition, ' - {old};', ' - {new};');
    rewritten := rewritten + 1;
  END LOOP;
  IF rewritten <> {len(PRUNING)} THEN
    RAISE EXCEPTION 'found % of the {len(PRUNING)} functions pruning the change logs', rewritten;
  END IF;
END $$""")


def upgrade() -> None:
    _keep(20000, 2000)


def downgrade() -> None:
    _keep(2000, 20000)
