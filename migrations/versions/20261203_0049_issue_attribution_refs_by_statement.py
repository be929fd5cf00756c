"""issue attribution references checked per statement: the foreign keys of issues.grid_id,
primary_place_id (places), leader_id (leaders) and unit_id (units) become statement-level
checks over the transition tables (soft foreign keys, as the references to issues already are)

A foreign key checks each written row on its own: one `SELECT 1 FROM ONLY places WHERE id = $1
FOR KEY SHARE` per row and changed key, run through SPI from a row trigger. A bulk attribution
of 50,000 issues changes all four on nearly every row: ~180,000 checks, 0.66 s of a ~6.5 s
statement (bench/attribution_batch.py --explain, 2026-12-03). The statement trigger below
takes the distinct new keys of the whole statement (for an UPDATE only those of rows whose
key changed, as a foreign key skips a row whose key is unchanged) and looks each table's up
once, by an array, locking the parents FOR KEY SHARE as a foreign key does.

The guarantees are those of the foreign keys: a missing parent is refused with SQLSTATE 23503
and the constraint's name (`insert or update on table "issues" violates foreign key
constraint "fk_issues_grid_id_places"`, the key in DETAIL); deleting a parent still
referenced is refused (ON DELETE RESTRICT: `soft_fk_on_delete` on places, leaders and units,
reading `soft_foreign_keys`, where the four references are listed). As for the other soft
references: the checks run on statements on the partitioned table `issues` (not on a
partition addressed directly), and a TRUNCATE of places, leaders or units no longer cascades
to issues or is refused by them.

Revision ID: 5e2c7a9d41b8
Revises: 6c2e9a4b7d15
Create Date: 2026-12-03 09:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e2c7a9d41b8"
down_revision: str | Sequence[str] | None = "6c2e9a4b7d15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (constraint, column, referenced table)
REFERENCES = (
    ("fk_issues_grid_id_places", "grid_id", "places"),
    ("fk_issues_primary_place_id_places", "primary_place_id", "places"),
    ("fk_issues_leader_id_leaders", "leader_id", "leaders"),
    ("fk_issues_unit_id_units", "unit_id", "units"),
)
TARGETS = ("places", "leaders", "units")

# One function for INSERT (new_rows) and UPDATE (old_rows, new_rows): static statements,
# planned once per session, on a generic plan (see migration 0047's SOFT_FK_CHECK: with the
# arrays as parameters the plan cache would re-plan each call). An UPDATE's old and new rows
# are paired by the whole primary key (a hash join: the transition tables have no statistics,
# and a nested loop over them is quadratic); a row moved to another month (reported_at
# changed) has no pair and all its keys are checked.
FUNCTION = """
CREATE FUNCTION issue_references_check() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_nestloop = off AS $$
DECLARE
  grid_ids bigint[];
  place_ids bigint[];
  leader_ids bigint[];
  unit_ids bigint[];
  found bigint;
  failed text;
  col text;
  target text;
  missing bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT n.grid_id) FILTER (WHERE n.grid_id IS NOT NULL),
           array_agg(DISTINCT n.primary_place_id) FILTER (WHERE n.primary_place_id IS NOT NULL),
           array_agg(DISTINCT n.leader_id) FILTER (WHERE n.leader_id IS NOT NULL),
           array_agg(DISTINCT n.unit_id) FILTER (WHERE n.unit_id IS NOT NULL)
      INTO grid_ids, place_ids, leader_ids, unit_ids
      FROM new_rows n;
  ELSE
    SELECT array_agg(DISTINCT n.grid_id) FILTER (
             WHERE n.grid_id IS NOT NULL AND n.grid_id IS DISTINCT FROM o.grid_id),
           array_agg(DISTINCT n.primary_place_id) FILTER (
             WHERE n.primary_place_id IS NOT NULL
               AND n.primary_place_id IS DISTINCT FROM o.primary_place_id),
           array_agg(DISTINCT n.leader_id) FILTER (
             WHERE n.leader_id IS NOT NULL AND n.leader_id IS DISTINCT FROM o.leader_id),
           array_agg(DISTINCT n.unit_id) FILTER (
             WHERE n.unit_id IS NOT NULL AND n.unit_id IS DISTINCT FROM o.unit_id)
      INTO grid_ids, place_ids, leader_ids, unit_ids
      FROM new_rows n
      LEFT JOIN old_rows o ON o.id = n.id AND o.reported_at = n.reported_at;
  END IF;
  -- FOR KEY SHARE, as a foreign key does: the parents cannot be deleted until we commit.
  IF grid_ids IS NOT NULL THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM places p WHERE p.id = ANY(grid_ids) FOR KEY SHARE OF p) s;
    IF found < cardinality(grid_ids) THEN
      failed := 'fk_issues_grid_id_places'; col := 'grid_id'; target := 'places';
    END IF;
  END IF;
  IF failed IS NULL AND place_ids IS NOT NULL THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM places p WHERE p.id = ANY(place_ids) FOR KEY SHARE OF p) s;
    IF found < cardinality(place_ids) THEN
      failed := 'fk_issues_primary_place_id_places'; col := 'primary_place_id';
      target := 'places';
    END IF;
  END IF;
  IF failed IS NULL AND leader_ids IS NOT NULL THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM leaders p WHERE p.id = ANY(leader_ids) FOR KEY SHARE OF p) s;
    IF found < cardinality(leader_ids) THEN
      failed := 'fk_issues_leader_id_leaders'; col := 'leader_id'; target := 'leaders';
    END IF;
  END IF;
  IF failed IS NULL AND unit_ids IS NOT NULL THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM units p WHERE p.id = ANY(unit_ids) FOR KEY SHARE OF p) s;
    IF found < cardinality(unit_ids) THEN
      failed := 'fk_issues_unit_id_units'; col := 'unit_id'; target := 'units';
    END IF;
  END IF;
  IF failed IS NOT NULL THEN
    EXECUTE format(
      'SELECT n.%2$I FROM new_rows n WHERE n.%2$I IS NOT NULL'
      ' AND NOT EXISTS (SELECT 1 FROM %1$I p WHERE p.id = n.%2$I) LIMIT 1',
      target, col) INTO missing;
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
        TG_TABLE_NAME, failed
      USING ERRCODE = 'foreign_key_violation',
            DETAIL = format('Key (%s)=(%s) is not present in table "%s".', col, missing, target),
            TABLE = TG_TABLE_NAME, CONSTRAINT = failed;
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    for name, column, target in REFERENCES:
        op.execute(f'ALTER TABLE issues DROP CONSTRAINT "{name}"')
        op.execute(
            "INSERT INTO soft_foreign_keys (name, table_name, column_name, target_table,"
            f" on_delete) VALUES ('{name}', 'issues', '{column}', '{target}', 'restrict')"
        )
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER issue_references_ins AFTER INSERT ON issues"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION issue_references_check()"
    )
    op.execute(
        "CREATE TRIGGER issue_references_upd AFTER UPDATE ON issues"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION issue_references_check()"
    )
    for target in TARGETS:
        op.execute(
            f"CREATE TRIGGER soft_fk_on_delete AFTER DELETE ON {target}"
            " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
            " EXECUTE FUNCTION soft_fk_on_delete()"
        )


def downgrade() -> None:
    for target in TARGETS:
        op.execute(f"DROP TRIGGER soft_fk_on_delete ON {target}")
    op.execute("DROP TRIGGER issue_references_upd ON issues")
    op.execute("DROP TRIGGER issue_references_ins ON issues")
    op.execute("DROP FUNCTION issue_references_check()")
    for name, column, target in REFERENCES:
        op.execute(f"DELETE FROM soft_foreign_keys WHERE name = '{name}'")
        op.execute(
            f'ALTER TABLE issues ADD CONSTRAINT "{name}" FOREIGN KEY ({column})'
            f" REFERENCES {target} (id) ON DELETE RESTRICT"
        )
