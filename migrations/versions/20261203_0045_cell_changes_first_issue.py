"""issue cell changes carry the lowest issue id they touched

An items page of issues in a bbox lists the matching issues in id order. A report in its area
(a new issue: a higher id than any on a full page) changes the page's numberMatched, not its
features; yet the page was built again, ~80 % of its database time walking ids and building
GeoJSON. Each change row now also names the lowest issue id its statement wrote in that cell
(`first_issue`; 0 for a TRUNCATE and for the rows written before this migration, which thus
concern every page). A page whose last feature has id L is unchanged by every change row with
first_issue > L (geoservice/edge/caching.py, `kept_page`).

Revision ID: 8e1c7a5d3f92
Revises: 2b8d4f6a9c31
Create Date: 2026-12-03 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e1c7a5d3f92"
down_revision: str | Sequence[str] | None = "2b8d4f6a9c31"
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


def _function(first_issue: bool) -> str:
    column = ", first_issue" if first_issue else ""

    def rows(table: str) -> str:
        if not first_issue:
            return f"SELECT DISTINCT {CX}, {CY} FROM {table}"
        return f"SELECT {CX}, {CY}, min(id) FROM {table} GROUP BY 1, 2"

    if first_issue:
        updated = (
            f"SELECT {CX}, {CY}, min(id) FROM"
            " (SELECT geom, id FROM new_rows UNION ALL SELECT geom, id FROM old_rows) c"
            " GROUP BY 1, 2"
        )
    else:
        updated = f"SELECT {CX}, {CY} FROM new_rows UNION SELECT {CX}, {CY} FROM old_rows"
    return f"""
CREATE OR REPLACE FUNCTION issue_cells_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  added bigint;
  last_id bigint;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO issue_cell_changes (cx, cy) VALUES (-1, -1);
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO issue_cell_changes (cx, cy{column}) {rows("new_rows")};
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO issue_cell_changes (cx, cy{column}) {rows("old_rows")};
  ELSE
    INSERT INTO issue_cell_changes (cx, cy{column}) {updated};
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
"""


def upgrade() -> None:
    op.add_column(
        "issue_cell_changes",
        sa.Column("first_issue", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.drop_index("ix_issue_cell_changes_cell", table_name="issue_cell_changes")
    op.create_index(
        "ix_issue_cell_changes_cell",
        "issue_cell_changes",
        ["cx", "cy", "id"],
        postgresql_include=["first_issue"],
    )
    op.execute(_function(first_issue=True))


def downgrade() -> None:
    op.execute(_function(first_issue=False))
    op.drop_index("ix_issue_cell_changes_cell", table_name="issue_cell_changes")
    op.create_index("ix_issue_cell_changes_cell", "issue_cell_changes", ["cx", "cy", "id"])
    op.drop_column("issue_cell_changes", "first_issue")
