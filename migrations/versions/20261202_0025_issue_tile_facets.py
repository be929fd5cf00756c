"""issue tile facets (issues per cell, report day, status, category and source, kept exact by
triggers) and tile_changes (a transactional change marker per tile layer, for tile caching)

`issue_tile_counts` answers low-zoom issue tiles filtered by status only; the facets answer
the map's other common filters (category, source, report-date range, any combination with
status) without scanning the issues: levels 6, 8, 10, 12, 14, days in Asia/Shanghai.

`tile_changes`: every statement writing issues, places, layer tables, areas, assignments,
leaders or units inserts one row naming the tile layer it changes ('issues' or 'layers');
max(id) per layer is the generation a tile cache keys on. Inserts only (no hot row to lock),
and visible exactly when the write commits; old rows are pruned by the trigger itself.

Revision ID: 7c1e5a2b9d40
Revises: 3b7d52e0c916
Create Date: 2026-12-02 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1e5a2b9d40"
down_revision: str | Sequence[str] | None = "3b7d52e0c916"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEVELS = "ARRAY[6, 8, 10, 12, 14, 16, 18]"

# Cell x/y at level 19 of a point (Web Mercator, latitudes clamped), then coarser by shifts
# (the formula of issue_tile_counts).
CELLS = f"""
  SELECT d.sign, d.status, d.category, d.source, d.day, lv AS level,
         (least(greatest(floor((ST_X(d.geom) + 180.0) / 360.0 * 524288), 0), 524287)::int
            >> (19 - lv)) AS cx,
         (least(greatest(floor((1.0 - ln(tan(radians(d.lat)) + 1.0 / cos(radians(d.lat))) / pi())
            / 2.0 * 524288), 0), 524287)::int >> (19 - lv)) AS cy,
         ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat0
  FROM (SELECT *, least(greatest(ST_Y(geom), -85.0511), 85.0511) AS lat FROM {{source}}) d
  CROSS JOIN unnest({LEVELS}) AS lv
"""

APPLY = """
  INSERT INTO issue_tile_facets AS c (level, cx, cy, day, status, category, source, n, sx, sy)
  SELECT level, cx, cy, day, status, category, source, sum(sign), sum(sign * lon),
         sum(sign * lat0)
  FROM ({cells}) s
  GROUP BY level, cx, cy, day, status, category, source
  ORDER BY level, cx, cy, day, status, category, source
  ON CONFLICT (level, cx, cy, day, status, category, source) DO UPDATE
    SET n = c.n + EXCLUDED.n, sx = c.sx + EXCLUDED.sx, sy = c.sy + EXCLUDED.sy;
"""

DAY = "(reported_at AT TIME ZONE 'Asia/Shanghai')::date"
ROW = f"status, category, source, {DAY} AS day, geom"
INSERTED = f"(SELECT 1 AS sign, {ROW} FROM new_rows) AS changed"
DELETED = f"(SELECT -1 AS sign, {ROW} FROM old_rows) AS changed"
CHANGED = """o.status IS DISTINCT FROM n.status OR o.category IS DISTINCT FROM n.category
      OR o.source IS DISTINCT FROM n.source OR o.reported_at IS DISTINCT FROM n.reported_at
      OR NOT ST_OrderingEquals(o.geom, n.geom)"""
UPDATED = f"""(
    SELECT -1 AS sign, o.status, o.category, o.source,
           (o.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, o.geom
    FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {CHANGED}
    UNION ALL
    SELECT 1 AS sign, n.status, n.category, n.source,
           (n.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, n.geom
    FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {CHANGED}
  ) AS changed"""

# Tables whose writes change what tiles draw: issues → 'issues'; the rest → 'layers'
# (layer features, their places rows, areas, and the leaders shown in / filtering them).
LAYER_TABLES = (
    "places",
    "grids",
    "roads",
    "compounds",
    "markets",
    "sites",
    "admin_areas",
    "assignments",
    "leaders",
    "units",
)


OPEN = "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'fixed')"
COVERING = (
    ("ix_issues_leader_tiles", "leader_id", None),
    ("ix_issues_unit_tiles", "unit_id", None),
    ("ix_issues_open_deadline_tiles", "deadline", OPEN),
)


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
        "issue_tile_facets",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("sx", sa.Double(), nullable=False),
        sa.Column("sy", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint(
            "level",
            "cx",
            "cy",
            "day",
            "status",
            "category",
            "source",
            name=op.f("pk_issue_tile_facets"),
        ),
    )
    op.create_index(
        "ix_issue_tile_facets_category",
        "issue_tile_facets",
        ["level", "category", "cx", "cy"],
    )
    op.execute(_function("issue_tile_facets_inserted", INSERTED))
    op.execute(_function("issue_tile_facets_deleted", DELETED))
    op.execute(_function("issue_tile_facets_updated", UPDATED))
    op.execute("""
CREATE FUNCTION issue_tile_facets_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM issue_tile_facets;
  RETURN NULL;
END $$;
CREATE TRIGGER issues_tile_facets_insert AFTER INSERT ON issues
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION issue_tile_facets_inserted();
CREATE TRIGGER issues_tile_facets_delete AFTER DELETE ON issues
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION issue_tile_facets_deleted();
CREATE TRIGGER issues_tile_facets_update AFTER UPDATE ON issues
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION issue_tile_facets_updated();
CREATE TRIGGER issues_tile_facets_truncate AFTER TRUNCATE ON issues
  FOR EACH STATEMENT EXECUTE FUNCTION issue_tile_facets_truncated();
""")
    op.execute(
        APPLY.format(
            cells=CELLS.format(source=f"(SELECT 1 AS sign, {ROW} FROM issues) AS existing")
        )
    )

    # Filters the facets cannot answer are counted over the matching rows: covering indexes
    # let those counts read the index alone (no heap visit per issue) for the map's leader,
    # unit and overdue filters.
    for name, column, where in COVERING:
        op.create_index(
            name,
            "issues",
            [column],
            postgresql_include=["status", "geom"],
            postgresql_where=sa.text(where) if where else None,
        )

    op.create_table(
        "tile_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("layer", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tile_changes")),
    )
    op.create_index("ix_tile_changes_layer_id", "tile_changes", ["layer", "id"])
    op.execute("""
CREATE FUNCTION tile_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  new_id bigint;
BEGIN
  INSERT INTO tile_changes (layer) VALUES (TG_ARGV[0]) RETURNING id INTO new_id;
  IF new_id % 1000 = 0 THEN
    DELETE FROM tile_changes WHERE layer = TG_ARGV[0] AND id < new_id - 1000;
  END IF;
  RETURN NULL;
END $$;
""")
    for table in ("issues", *LAYER_TABLES):
        layer = "issues" if table == "issues" else "layers"
        op.execute(
            f"CREATE TRIGGER {table}_tile_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION tile_changed('{layer}')"
        )
    op.execute("INSERT INTO tile_changes (layer) VALUES ('issues'), ('layers')")


def downgrade() -> None:
    for name, _, _ in COVERING:
        op.drop_index(name, table_name="issues")
    for table in ("issues", *LAYER_TABLES):
        op.execute(f"DROP TRIGGER {table}_tile_changed ON {table}")
    op.execute("DROP FUNCTION tile_changed()")
    op.drop_index("ix_tile_changes_layer_id", table_name="tile_changes")
    op.drop_table("tile_changes")
    op.execute("""
DROP TRIGGER issues_tile_facets_insert ON issues;
DROP TRIGGER issues_tile_facets_delete ON issues;
DROP TRIGGER issues_tile_facets_update ON issues;
DROP TRIGGER issues_tile_facets_truncate ON issues;
DROP FUNCTION issue_tile_facets_inserted();
DROP FUNCTION issue_tile_facets_deleted();
DROP FUNCTION issue_tile_facets_updated();
DROP FUNCTION issue_tile_facets_truncated();
""")
    op.drop_index("ix_issue_tile_facets_category", table_name="issue_tile_facets")
    op.drop_table("issue_tile_facets")
