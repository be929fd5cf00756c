"""issue cell changes: where in the city each write to issues happened, for caches by area

Items pages and issue tiles of the issues were cached under the write generation of the
whole `issues` table, so every report anywhere in the county made every page and tile
elsewhere stale. Now every statement writing issues inserts one row per level-15 cell
(about 1 km) its rows were in before or are in after (statement triggers with transition
tables; one row (-1, -1) for a TRUNCATE, which changes every area). The generation of an area
is the number and id-sum of the rows of its cells (and of the TRUNCATE row): it changes with
every committed write inside, whatever the commit order, and not with writes elsewhere
(geoservice/httpcache.py, `area_generation`). Inserts only, no row to lock; the trigger
itself prunes rows older than the last 20,000 (a pruned cell's generation changes once).
Issue tiles key on these now, so the 'issues' rows of `tile_changes` are no longer written.

Revision ID: 9c3e5a7b1d46
Revises: 7f4a2c6e8b15
Create Date: 2026-12-03 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c3e5a7b1d46"
down_revision: str | Sequence[str] | None = "7f4a2c6e8b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEVEL = 15  # geoservice.httpcache.AREA_LEVEL
SCALE = 2**LEVEL
LAT = "least(greatest(ST_Y(geom), -85.0511), 85.0511)"
CX = f"least(greatest(floor((ST_X(geom) + 180.0) / 360.0 * {SCALE}), 0), {SCALE - 1})::int"
CY = (
    f"least(greatest(floor((1.0 - ln(tan(radians({LAT})) + 1.0 / cos(radians({LAT}))) / pi())"
    f" / 2.0 * {SCALE}), 0), {SCALE - 1})::int"
)
KEEP = 20_000


def upgrade() -> None:
    op.create_table(
        "issue_cell_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_cell_changes")),
    )
    op.create_index("ix_issue_cell_changes_cell", "issue_cell_changes", ["cx", "cy", "id"])
    op.execute(f"""
CREATE FUNCTION issue_cells_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  added bigint;
  last_id bigint;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO issue_cell_changes (cx, cy) VALUES (-1, -1);
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO issue_cell_changes (cx, cy)
    SELECT DISTINCT {CX}, {CY} FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO issue_cell_changes (cx, cy)
    SELECT DISTINCT {CX}, {CY} FROM old_rows;
  ELSE
    INSERT INTO issue_cell_changes (cx, cy)
    SELECT {CX}, {CY} FROM new_rows UNION SELECT {CX}, {CY} FROM old_rows;
  END IF;
  GET DIAGNOSTICS added = ROW_COUNT;
  IF added > 0 THEN
    last_id := currval(pg_get_serial_sequence('issue_cell_changes', 'id'));
    IF last_id / 1000 <> (last_id - added) / 1000 THEN
      DELETE FROM issue_cell_changes WHERE id < last_id - {KEEP};
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER issues_cells_inserted AFTER INSERT ON issues
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION issue_cells_changed();
CREATE TRIGGER issues_cells_deleted AFTER DELETE ON issues
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION issue_cells_changed();
CREATE TRIGGER issues_cells_updated AFTER UPDATE ON issues
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION issue_cells_changed();
CREATE TRIGGER issues_cells_truncated AFTER TRUNCATE ON issues
  FOR EACH STATEMENT EXECUTE FUNCTION issue_cells_changed();
DROP TRIGGER issues_tile_changed ON issues;
""")


def downgrade() -> None:
    op.execute("""
CREATE TRIGGER issues_tile_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON issues
  FOR EACH STATEMENT EXECUTE FUNCTION tile_changed('issues');
DROP TRIGGER issues_cells_inserted ON issues;
DROP TRIGGER issues_cells_deleted ON issues;
DROP TRIGGER issues_cells_updated ON issues;
DROP TRIGGER issues_cells_truncated ON issues;
DROP FUNCTION issue_cells_changed();
""")
    op.drop_index("ix_issue_cell_changes_cell", table_name="issue_cell_changes")
    op.drop_table("issue_cell_changes")
