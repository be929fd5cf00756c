"""layer_feature_boxes: each polygon / line layer feature's bbox, kept by triggers, so that a
low-zoom layer tile reads only the geometries it draws

A layer tile at zoom ≤ 12 draws at most 4,000 features (the largest) and folds the others
into counts per cell (geoservice/catalogue/tiles.py). It used to read and measure every
feature's geometry in the tile (29,803 grids at z4–z8) to find out which ones to draw; this
table holds what that needs — the bbox (as Box2D gives it), whether the feature is a point,
its larger side (points: infinite), the level-17 cell of the bbox centre (the folding cells of
z ≤ 12 are coarser: a shift), the bbox as a geometry for a GiST index per layer, and an index
on the larger side (the features big enough to draw at a zoom: a range) — so only the drawn
features' geometries are read. Rows are written by statement triggers on each layer table (transition tables: an
import of 30,000 grids is one INSERT … SELECT), in the writer's transaction.

Revision ID: da67325f50aa
Revises: 8e4d2b6a1c93
Create Date: 2026-12-02 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "da67325f50aa"
down_revision: str | Sequence[str] | None = "8e4d2b6a1c93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The layer tables whose geometries may be polygons or lines (the registered layers).
TABLES = ("grids", "roads", "compounds", "markets", "sites")

# One feature's row from a layer row `r` (its bbox `b`): the same Box2D the tile query used.
ROW = """
  SELECT {layer}, r.id, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b), ST_Dimension(r.geom) = 0,
         CASE WHEN ST_Dimension(r.geom) = 0 THEN 'Infinity'::float8
              ELSE greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b)) END,
         floor(((ST_XMin(b) + ST_XMax(b)) / 2 + 180.0) / 360.0 * 131072)::int,
         floor((1.0 - asinh(tan(radians((ST_YMin(b) + ST_YMax(b)) / 2))) / pi()) / 2.0 * 131072)::int,
         ST_Envelope(r.geom)
  FROM (SELECT r.*, Box2D(r.geom) AS b FROM {rows} r) r
  WHERE r.b IS NOT NULL"""  # an empty geometry has no box: neither drawn nor folded, as before
COLUMNS = "layer, id, x0, y0, x1, y1, point, span, cx, cy, box"
UPSERT = f"""
  INSERT INTO layer_feature_boxes ({COLUMNS})
  {ROW.format(layer="TG_TABLE_NAME", rows="new_rows")}
  ON CONFLICT (layer, id) DO UPDATE SET
    x0 = excluded.x0, y0 = excluded.y0, x1 = excluded.x1, y1 = excluded.y1,
    point = excluded.point, span = excluded.span, cx = excluded.cx, cy = excluded.cy,
    box = excluded.box
  WHERE (layer_feature_boxes.x0, layer_feature_boxes.y0, layer_feature_boxes.x1,
         layer_feature_boxes.y1, layer_feature_boxes.point)
        IS DISTINCT FROM (excluded.x0, excluded.y0, excluded.x1, excluded.y1, excluded.point);"""

FUNCTIONS = f"""
CREATE FUNCTION layer_feature_boxes_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{UPSERT}
  RETURN NULL;
END $$;

CREATE FUNCTION layer_feature_boxes_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM layer_feature_boxes b
  WHERE b.layer = TG_TABLE_NAME AND b.id IN (SELECT id FROM old_rows)
    AND b.id NOT IN (SELECT id FROM new_rows WHERE NOT ST_IsEmpty(geom));
{UPSERT}
  RETURN NULL;
END $$;

CREATE FUNCTION layer_feature_boxes_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM layer_feature_boxes b
  WHERE b.layer = TG_TABLE_NAME AND b.id IN (SELECT id FROM old_rows);
  RETURN NULL;
END $$;

CREATE FUNCTION layer_feature_boxes_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM layer_feature_boxes WHERE layer = TG_TABLE_NAME;
  RETURN NULL;
END $$;
"""


def box_features(table: str) -> None:
    """Keeps `table`'s rows in layer_feature_boxes (a new polygon / line layer's migration
    calls this too, and adds the table to geoservice.catalogue.tiles.BOXED_LAYERS)."""
    op.execute(
        f"CREATE INDEX ix_layer_feature_boxes_{table} ON layer_feature_boxes USING gist (box)"
        f" WHERE layer = '{table}'"
    )
    for event, function, transition in (
        ("INSERT", "inserted", "NEW TABLE AS new_rows"),
        ("UPDATE", "updated", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "deleted", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER {table}_feature_boxes_{function} AFTER {event} ON {table}"
            f" REFERENCING {transition} FOR EACH STATEMENT"
            f" EXECUTE FUNCTION layer_feature_boxes_{function}()"
        )
    op.execute(
        f"CREATE TRIGGER {table}_feature_boxes_truncated AFTER TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION layer_feature_boxes_truncated()"
    )
    op.execute(
        f"INSERT INTO layer_feature_boxes ({COLUMNS}) {ROW.format(layer=repr(table), rows=table)}"
    )


def upgrade() -> None:
    op.create_table(
        "layer_feature_boxes",
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("x0", sa.Double(), nullable=False),
        sa.Column("y0", sa.Double(), nullable=False),
        sa.Column("x1", sa.Double(), nullable=False),
        sa.Column("y1", sa.Double(), nullable=False),
        sa.Column("point", sa.Boolean(), nullable=False),
        sa.Column("span", sa.Double(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.Column(
            "box",
            Geometry(srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("layer", "id", name=op.f("pk_layer_feature_boxes")),
    )
    # The features above a size (low-zoom tiles draw those; points always): a range scan.
    op.create_index("ix_layer_feature_boxes_span", "layer_feature_boxes", ["layer", "span"])
    op.execute(FUNCTIONS)
    for table in TABLES:
        box_features(table)
    op.execute("ANALYZE layer_feature_boxes")


def downgrade() -> None:
    for table in TABLES:
        for function in ("inserted", "updated", "deleted", "truncated"):
            op.execute(f"DROP TRIGGER {table}_feature_boxes_{function} ON {table}")
    for function in ("inserted", "updated", "deleted", "truncated"):
        op.execute(f"DROP FUNCTION layer_feature_boxes_{function}()")
    op.drop_table("layer_feature_boxes")
