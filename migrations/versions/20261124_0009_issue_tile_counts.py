"""issue tile counts: issues per Web-Mercator cell and status, kept exact by triggers;
statistics on issue coordinates

Low-zoom vector tiles aggregate issues from this table instead of scanning every issue, and
the unfiltered issue count is a sum over its coarsest level. Levels 5, 7, …, 19 (a cell at
level c is the XYZ tile c/cx/cy); statement-level triggers with transition tables keep it in
step with every INSERT, UPDATE (of status or geom), DELETE and TRUNCATE of `issues`.

Revision ID: df98642f2e3d
Revises: 4719cb26e4ac
Create Date: 2026-11-24 02:04:33.898069
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op

revision: str = "df98642f2e3d"
down_revision: str | Sequence[str] | None = "4719cb26e4ac"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Cell x/y at level 19 of a point (Web Mercator, latitudes clamped), then coarser by shifts.
CELLS = """
  SELECT d.sign, d.status, lv AS level,
         (least(greatest(floor((ST_X(d.geom) + 180.0) / 360.0 * 524288), 0), 524287)::int
            >> (19 - lv)) AS cx,
         (least(greatest(floor((1.0 - ln(tan(radians(d.lat)) + 1.0 / cos(radians(d.lat))) / pi())
            / 2.0 * 524288), 0), 524287)::int >> (19 - lv)) AS cy,
         ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat0
  FROM (SELECT *, least(greatest(ST_Y(geom), -85.0511), 85.0511) AS lat FROM {source}) d
  CROSS JOIN unnest(ARRAY[5, 7, 9, 11, 13, 15, 17, 19]) AS lv
"""

APPLY = """
  INSERT INTO issue_tile_counts AS c (level, cx, cy, status, n, sx, sy)
  SELECT level, cx, cy, status, sum(sign), sum(sign * lon), sum(sign * lat0)
  FROM ({cells}) s
  GROUP BY level, cx, cy, status
  ORDER BY level, cx, cy, status
  ON CONFLICT (level, cx, cy, status) DO UPDATE
    SET n = c.n + EXCLUDED.n, sx = c.sx + EXCLUDED.sx, sy = c.sy + EXCLUDED.sy;
"""

INSERTED = "(SELECT 1 AS sign, status, geom FROM new_rows) AS changed"
DELETED = "(SELECT -1 AS sign, status, geom FROM old_rows) AS changed"
UPDATED = """(
    SELECT -1 AS sign, o.status, o.geom FROM old_rows o JOIN new_rows n ON n.id = o.id
      WHERE o.status IS DISTINCT FROM n.status OR NOT ST_OrderingEquals(o.geom, n.geom)
    UNION ALL
    SELECT 1 AS sign, n.status, n.geom FROM old_rows o JOIN new_rows n ON n.id = o.id
      WHERE o.status IS DISTINCT FROM n.status OR NOT ST_OrderingEquals(o.geom, n.geom)
  ) AS changed"""


def _function(name: str, source: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{APPLY.format(cells=CELLS.format(source=source))}
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "issue_tile_counts",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("sx", sa.Double(), nullable=False),
        sa.Column("sy", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("level", "cx", "cy", "status", name=op.f("pk_issue_tile_counts")),
    )
    op.execute(_function("issue_tile_counts_inserted", INSERTED))
    op.execute(_function("issue_tile_counts_deleted", DELETED))
    op.execute(_function("issue_tile_counts_updated", UPDATED))
    op.execute("""
CREATE FUNCTION issue_tile_counts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM issue_tile_counts;
  RETURN NULL;
END $$;
""")
    op.execute("""
CREATE TRIGGER issues_tile_counts_insert AFTER INSERT ON issues
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION issue_tile_counts_inserted();
CREATE TRIGGER issues_tile_counts_delete AFTER DELETE ON issues
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION issue_tile_counts_deleted();
CREATE TRIGGER issues_tile_counts_update AFTER UPDATE ON issues
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION issue_tile_counts_updated();
CREATE TRIGGER issues_tile_counts_truncate AFTER TRUNCATE ON issues
  FOR EACH STATEMENT EXECUTE FUNCTION issue_tile_counts_truncated();
""")
    # Statistics on the coordinates: the exact bbox test on points (ST_X/ST_Y ranges next to
    # the index's `&&`) is otherwise estimated as matching almost nothing, and the planner
    # sorts half a million rows instead of walking the primary key for a 10,000-row page.
    op.execute("CREATE STATISTICS issues_lonlat ON (ST_X(geom)), (ST_Y(geom)) FROM issues")
    # Issues already present.
    op.execute(
        APPLY.format(
            cells=CELLS.format(source="(SELECT 1 AS sign, status, geom FROM issues) AS existing")
        )
    )


def downgrade() -> None:
    op.execute("""
DROP TRIGGER issues_tile_counts_insert ON issues;
DROP TRIGGER issues_tile_counts_delete ON issues;
DROP TRIGGER issues_tile_counts_update ON issues;
DROP TRIGGER issues_tile_counts_truncate ON issues;
DROP FUNCTION issue_tile_counts_inserted();
DROP FUNCTION issue_tile_counts_deleted();
DROP FUNCTION issue_tile_counts_updated();
DROP FUNCTION issue_tile_counts_truncated();
""")
    op.execute("DROP STATISTICS issues_lonlat")
    op.drop_table("issue_tile_counts")
