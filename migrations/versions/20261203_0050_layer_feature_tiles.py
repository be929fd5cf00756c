"""layer_feature_tiles: each polygon / line layer feature ready to draw in its home tile at every
low zoom (z ≤ 12) — its ST_AsMVTGeom output there and its attributes — kept by triggers

A low-zoom layer tile (geoservice/catalogue/tiles.py) draws up to 4,000 features. Per drawn
feature it looked the layer row up by id (attributes and geometry: ~2 µs, three buffer pins),
then ran ST_Simplify, ST_Transform and ST_AsMVTGeom (wagyu) on it: the demo county's z10 grid
tile spent ~16 ms of ~40 ms (CPU) on these functions and ~8 ms on the lookups. The geometries
are small (7 vertices on average), so the cost is per call, not per vertex: a pre-transformed
or pre-simplified geometry alone saves little (and a second lookup eats it). This table keeps
the whole result instead: for each feature and zoom z ≤ 12 at which it may be drawn (its bbox
at least a pixel wide), the tile holding its bbox centre (its home tile, from the same level-17
centre cell as layer_feature_boxes), the very expression the tile runs for that tile —
`ST_AsMVTGeom(ST_Transform(ST_Simplify(geom, low_detail_tolerance(z, y), true), 3857),
ST_TileEnvelope(z, x, y), 512, 8, true)` — and the row's columns but the geometry (jsonb; the
tile reads them back typed with jsonb_populate_record) and its size as the tile measures it.
A tile reads its home rows as large as its smallest drawn feature by one index range
(layer, z, x, y, size) and hash-joins them to the features it draws; a drawn feature whose
home is a neighbouring tile (it crosses the edge), a point, or one without a row is looked up
and computed as before. The tile's bytes are the same either way (docs/performance.md,
"Low-zoom layer tiles at scale 100": the z10 grid tile's statement 26–34 ms of CPU instead
of 39–49).

`low_detail_tolerance(z, y)`: half a pixel in degrees of latitude at the centre of tile row y
(the simplification tolerance of low-zoom tiles, formerly computed in Python: one formula
for the tiles and this table, so both paths give the same bytes).

Rows are written by statement triggers on each layer table (transition tables), in the
writer's transaction, like layer_feature_boxes (migration 0035): an insert adds rows, an
update rewrites the rows of the features whose geometry or columns changed, a delete or a
truncate removes them.

Revision ID: 9b3f6d2e8a10
Revises: 5e2c7a9d41b8
Create Date: 2026-12-03 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "9b3f6d2e8a10"
down_revision: str | Sequence[str] | None = "5e2c7a9d41b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The layer tables whose geometries may be polygons or lines (those of migration 0035).
TABLES = ("grids", "roads", "compounds", "markets", "sites")

MAX_ZOOM = 12  # geoservice.catalogue.tiles.LOW_DETAIL_MAX_ZOOM
EXTENT, BUFFER = 512, 8  # LOW_DETAIL_EXTENT and its buffer (a 64th)

TOLERANCE = """
CREATE FUNCTION low_detail_tolerance(z integer, y integer) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 360.0::float8 / 2::float8 ^ z / 256
         * cos(atan(sinh(pi() * (1 - 2 * (y + 0.5::float8) / 2::float8 ^ z)))) / 2
$$;
"""

# The rows of layer rows `r` (a table or a transition table, id and geom columns): one per
# zoom at which the feature's bbox is a pixel or more (those it may be drawn at; points never
# have rows) and its geometry does not vanish in its home tile. cx, cy: the level-17 cell of
# the bbox centre, as layer_feature_boxes keeps it; size: its size as the tile measures it
# (px, catalogue/tiles.py) times the pixel's degrees: greatest(dx, dy / cos(lat)) at the home
# tile's centre row, so that a tile reads only the rows as large as those it draws.
ROWS = f"""
  SELECT {{layer}}, z, c.cx >> (17 - z), c.cy >> (17 - z),
         greatest(c.dx, c.dy / cos(atan(sinh(pi() * (1 - 2 * ((c.cy >> (17 - z)) + 0.5::float8)
                                                          / 2::float8 ^ z))))),
         c.id, g.geom, c.attrs
  FROM (
    SELECT r.id, r.geom, r.attrs,
           floor(((ST_XMin(r.b) + ST_XMax(r.b)) / 2 + 180.0) / 360.0 * 131072)::int AS cx,
           floor((1.0 - asinh(tan(radians((ST_YMin(r.b) + ST_YMax(r.b)) / 2))) / pi()) / 2.0
                 * 131072)::int AS cy,
           ST_XMax(r.b) - ST_XMin(r.b) AS dx, ST_YMax(r.b) - ST_YMin(r.b) AS dy
    FROM (SELECT r.id, r.geom, to_jsonb(jsonb_populate_record(r, '{{{{"geom": null}}}}')) - 'geom'
                 AS attrs, Box2D(r.geom) AS b
          FROM {{rows}} r WHERE {{changed}}) r
    WHERE r.b IS NOT NULL AND ST_Dimension(r.geom) > 0
  ) c
  CROSS JOIN generate_series(0, {MAX_ZOOM}) z
  CROSS JOIN LATERAL (
    SELECT ST_AsMVTGeom(
             ST_Transform(ST_Simplify(c.geom, low_detail_tolerance(z, c.cy >> (17 - z)), true),
                          3857),
             ST_TileEnvelope(z, c.cx >> (17 - z), c.cy >> (17 - z)), {EXTENT}, {BUFFER}, true
           ) AS geom
  ) g
  WHERE greatest(c.dx, c.dy) * 2 ^ z * 256 / 360.0 >= 1 AND g.geom IS NOT NULL"""
COLUMNS = "layer, z, x, y, size, id, geom, attrs"

# An update: the features whose geometry or other columns changed (or whose id is new / gone;
# whole rows compared, geometries by their bytes). The attributes are the row as jsonb with
# the geometry nulled first (to_jsonb of a geometry is its GeoJSON: ~20 µs a row).
CHANGED = """NOT EXISTS (
    SELECT 1 FROM old_rows o WHERE o.id = r.id AND o IS NOT DISTINCT FROM r)"""
GONE = """(SELECT o.id FROM old_rows o WHERE NOT EXISTS (
    SELECT 1 FROM new_rows n WHERE n.id = o.id AND n IS NOT DISTINCT FROM o))"""
# The rows of some features: by the primary key (an array, not a join: an edit of one
# feature must not read the whole table; TG_TABLE_NAME is a `name`, of collation "C": as a
# varchar variable, so that the key's first column can be used).

FUNCTIONS = f"""
CREATE FUNCTION layer_feature_tiles_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO layer_feature_tiles ({COLUMNS})
  {ROWS.format(layer="TG_TABLE_NAME", rows="new_rows", changed="TRUE")};
  RETURN NULL;
END $$;

-- The transition tables have no statistics: hash joins, not a quadratic nested loop (and no
-- JIT compilation, which the nested loops' penalty cost would call for).
CREATE FUNCTION layer_feature_tiles_updated() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off SET jit = off AS $$
DECLARE
  layer_name varchar(32) := TG_TABLE_NAME;
BEGIN
  DELETE FROM layer_feature_tiles t
  WHERE t.layer = layer_name AND t.id = ANY (ARRAY{GONE});
  INSERT INTO layer_feature_tiles ({COLUMNS})
  {ROWS.format(layer="TG_TABLE_NAME", rows="new_rows", changed=CHANGED)};
  RETURN NULL;
END $$;

CREATE FUNCTION layer_feature_tiles_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  layer_name varchar(32) := TG_TABLE_NAME;
BEGIN
  DELETE FROM layer_feature_tiles t
  WHERE t.layer = layer_name AND t.id = ANY (ARRAY(SELECT id FROM old_rows));
  RETURN NULL;
END $$;

CREATE FUNCTION layer_feature_tiles_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  layer_name varchar(32) := TG_TABLE_NAME;
BEGIN
  DELETE FROM layer_feature_tiles WHERE layer = layer_name;
  RETURN NULL;
END $$;
"""


def tile_features(table: str) -> None:
    """Keeps `table`'s rows in layer_feature_tiles (a new polygon / line layer's migration may
    call this after migration 0035's `box_features`; without it, its tiles compute every drawn
    feature, as before)."""
    for event, function, transition in (
        ("INSERT", "inserted", "NEW TABLE AS new_rows"),
        ("UPDATE", "updated", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "deleted", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER {table}_feature_tiles_{function} AFTER {event} ON {table}"
            f" REFERENCING {transition} FOR EACH STATEMENT"
            f" EXECUTE FUNCTION layer_feature_tiles_{function}()"
        )
    op.execute(
        f"CREATE TRIGGER {table}_feature_tiles_truncated AFTER TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION layer_feature_tiles_truncated()"
    )
    op.execute(
        f"INSERT INTO layer_feature_tiles ({COLUMNS}) {ROWS.format(layer=repr(table), rows=table, changed='TRUE')}"
        # a tile's rows together (its range reads as few pages as they fill)
        " ORDER BY 2, 3, 4, 5, 6"
    )


def upgrade() -> None:
    op.execute(TOLERANCE)
    op.create_table(
        "layer_feature_tiles",
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("z", sa.SmallInteger(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("size", sa.Double(), nullable=False),  # the tile's px × pixel_deg
        sa.Column("geom", Geometry(spatial_index=False), nullable=False),  # tile coordinates
        sa.Column("attrs", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("layer", "id", "z", name=op.f("pk_layer_feature_tiles")),
    )
    # A tile's home rows, those large enough to be drawn there: one index range.
    op.create_index(
        "ix_layer_feature_tiles_tile", "layer_feature_tiles", ["layer", "z", "x", "y", "size"]
    )
    op.execute(FUNCTIONS)
    for table in TABLES:
        tile_features(table)
    op.execute("ANALYZE layer_feature_tiles")


def downgrade() -> None:
    for table in TABLES:
        for function in ("inserted", "updated", "deleted", "truncated"):
            op.execute(f"DROP TRIGGER {table}_feature_tiles_{function} ON {table}")
    for function in ("inserted", "updated", "deleted", "truncated"):
        op.execute(f"DROP FUNCTION layer_feature_tiles_{function}()")
    op.drop_table("layer_feature_tiles")
    op.execute("DROP FUNCTION low_detail_tolerance(integer, integer)")
