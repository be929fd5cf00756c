"""change times: the earliest moment each write to issues and issue_events concerned

The rankings of a closed period (the default: the last complete week) are a function of the
issues reported and the events that happened before its end (docs/rankings.md), yet their
stored answer was keyed on every table, so every report made the week's ranking stale and it
was computed again (~0.6 s of database time each). Each statement writing issues now also
records, per cell row of `issue_cell_changes`, the earliest `reported_at` of the rows it wrote
(`first_reported`), and each statement writing issue_events one row of `event_changes` with the
earliest `at` of the rows it wrote (old and new). An answer about the time before E stays
valid while no row with a time before E appears in either (geoservice/httpcache.py,
`written_before`). A TRUNCATE writes -infinity; rows written before this migration count as
-infinity. Both tables keep their last 20,000 rows, like issue_cell_changes.

Revision ID: 4d9b2e7f1a63
Revises: 8e1c7a5d3f92
Create Date: 2026-12-03 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4d9b2e7f1a63"
down_revision: str | Sequence[str] | None = "8e1c7a5d3f92"
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

PRUNE = """
  GET DIAGNOSTICS added = ROW_COUNT;
  IF added > 0 THEN
    last_id := currval(pg_get_serial_sequence('{table}', 'id'));
    IF last_id / 1000 <> (last_id - added) / 1000 THEN
      DELETE FROM {table} WHERE id < last_id - {keep};
    END IF;
  END IF;"""


def _cells_function(with_times: bool) -> str:
    extra_column = ", first_reported" if with_times else ""
    extra_value = ", min(reported_at)" if with_times else ""
    moved = "geom, id, reported_at" if with_times else "geom, id"
    return f"""
CREATE OR REPLACE FUNCTION issue_cells_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  added bigint;
  last_id bigint;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO issue_cell_changes (cx, cy) VALUES (-1, -1);
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO issue_cell_changes (cx, cy, first_issue{extra_column})
    SELECT {CX}, {CY}, min(id){extra_value} FROM new_rows GROUP BY 1, 2;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO issue_cell_changes (cx, cy, first_issue{extra_column})
    SELECT {CX}, {CY}, min(id){extra_value} FROM old_rows GROUP BY 1, 2;
  ELSE
    INSERT INTO issue_cell_changes (cx, cy, first_issue{extra_column})
    SELECT {CX}, {CY}, min(id){extra_value} FROM
      (SELECT {moved} FROM new_rows UNION ALL SELECT {moved} FROM old_rows) c
    GROUP BY 1, 2;
  END IF;{PRUNE.format(table="issue_cell_changes", keep=KEEP)}
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.add_column(
        "issue_cell_changes",
        sa.Column(
            "first_reported",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("'-infinity'"),
        ),
    )
    op.create_index(
        "ix_issue_cell_changes_first_reported",
        "issue_cell_changes",
        ["first_reported"],
        postgresql_include=["id"],
    )
    op.execute(_cells_function(with_times=True))
    op.create_table(
        "event_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_changes")),
    )
    op.create_index(
        "ix_event_changes_first_at", "event_changes", ["first_at"], postgresql_include=["id"]
    )
    prune = PRUNE.format(table="event_changes", keep=KEEP)
    op.execute(f"""
CREATE FUNCTION event_times_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  added bigint;
  last_id bigint;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO event_changes (first_at) VALUES ('-infinity');
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO event_changes (first_at) SELECT min(at) FROM new_rows HAVING count(*) > 0;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO event_changes (first_at) SELECT min(at) FROM old_rows HAVING count(*) > 0;
  ELSE
    INSERT INTO event_changes (first_at)
    SELECT min(at) FROM (SELECT at FROM new_rows UNION ALL SELECT at FROM old_rows) c
    HAVING count(*) > 0;
  END IF;{prune}
  RETURN NULL;
END $$;
CREATE TRIGGER issue_events_times_inserted AFTER INSERT ON issue_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_times_changed();
CREATE TRIGGER issue_events_times_deleted AFTER DELETE ON issue_events
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION event_times_changed();
CREATE TRIGGER issue_events_times_updated AFTER UPDATE ON issue_events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION event_times_changed();
CREATE TRIGGER issue_events_times_truncated AFTER TRUNCATE ON issue_events
  FOR EACH STATEMENT EXECUTE FUNCTION event_times_changed();
""")


def downgrade() -> None:
    op.execute("""
DROP TRIGGER issue_events_times_inserted ON issue_events;
DROP TRIGGER issue_events_times_deleted ON issue_events;
DROP TRIGGER issue_events_times_updated ON issue_events;
DROP TRIGGER issue_events_times_truncated ON issue_events;
DROP FUNCTION event_times_changed();
""")
    op.drop_index("ix_event_changes_first_at", table_name="event_changes")
    op.drop_table("event_changes")
    op.execute(_cells_function(with_times=False))
    op.drop_index("ix_issue_cell_changes_first_reported", table_name="issue_cell_changes")
    op.drop_column("issue_cell_changes", "first_reported")
