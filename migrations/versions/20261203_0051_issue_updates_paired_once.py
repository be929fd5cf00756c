"""issue updates paired once: one statement trigger for an UPDATE of issues pairs the old and
new rows once and keeps the tile counts, facets, days, holders, the ranking fact log and the
attribution references from the pairs (instead of six triggers each pairing them again)

Six AFTER UPDATE statement triggers of `issues` each scanned both transition tables and
grouped their rows to find the issues whose columns of interest changed (0047's grouping), and
the references check (0049) joined them once more. A bulk attribution changes only the keys
and the attribution: the counts, facets and days triggers had nothing to write and still paid
their grouping (80–140 ms each for a 50,000-issue batch), the fact log 200 ms, the holders'
trigger 0.6–1.0 s (bench database, 2026-12-03).

`issue_rows_updated` replaces them: one hash FULL JOIN of old and new rows by the primary key
(id, reported_at), keeping the pairs where any column one of them reads differs, each pair
flagged for each consumer whose columns differ (a row moved to another month has no pair: its
old row counts as removed and its new row as added, which nets to the same counts). For each
consumer, the same rows as before with the same signs: the tiles' delta, fold and insert
statements are those of their own functions (as data-modifying CTEs of one statement); the
cell of each row is computed once (the level-19 integers, shifted per level: the same
integers as before); the holders' delta is grouped at level 12 first and then rolled up to
levels 10 and 8 (100,000 signed rows grouped once instead of 300,000). Coordinate sums are
added in another order (counts exact; sx/sy equal to the last bits, as between plans).
`issue_fact_changes` gets the earliest report time of the pairs whose fact columns differ,
the references the new keys that differ from the old ones, exactly as 0048/0049 compute them.

The six functions stay (unused) for the downgrade, which restores their triggers.

Revision ID: a7f3c1e90d52
Revises: 9b3f6d2e8a10
Create Date: 2026-12-03 12:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a7f3c1e90d52"
down_revision: str | Sequence[str] | None = "9b3f6d2e8a10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The triggers replaced (name, function), as 0033/0036/0039/0048/0049 created them.
REPLACED = (
    ("issues_tile_counts_update", "issue_tile_counts_updated"),
    ("issues_tile_facets_update", "issue_tile_facets_updated"),
    ("issues_tile_holders_update", "issue_tile_holders_updated"),
    ("issues_tile_days_update", "issue_tile_days_updated"),
    ("issues_facts_updated", "issue_facts_changed"),
    ("issue_references_upd", "issue_references_check"),
)

# Every column a consumer compares (id and reported_at are the join key).
COLUMNS = (
    "status",
    "geom",
    "category",
    "source",
    "deadline",
    "unit_id",
    "leader_id",
    "holder_since",
    "relapse_of_id",
    "duplicate_of_id",
    "grid_id",
    "primary_place_id",
)
# consumer -> the columns whose change concerns it (besides a missing pair)
FLAGS = {
    "counts": ("status", "geom"),
    "days": ("status", "category", "geom"),  # + reported_at: equal within a pair
    "facets": ("status", "category", "source", "deadline", "geom"),
    "holders": ("status", "unit_id", "leader_id", "geom"),
    # 0048's fact columns: keys, holder, deadline, relapse, duplicate, category, source
    "facts": (
        "deadline",
        "holder_since",
        "relapse_of_id",
        "duplicate_of_id",
        "leader_id",
        "unit_id",
        "grid_id",
        "primary_place_id",
        "category",
        "source",
    ),
}

# The level-19 cell of a point (0028's expression before its shift), and its coordinates.
X19 = "least(greatest(floor((ST_X({g}) + 180.0) / 360.0 * 524288), 0), 524287)::int"
Y19 = (
    "least(greatest(floor((1.0 - ln(tan(radians(least(greatest(ST_Y({g}), -85.0511), 85.0511)))"
    " + 1.0 / cos(radians(least(greatest(ST_Y({g}), -85.0511), 85.0511)))) / pi())"
    " / 2.0 * 524288), 0), 524287)::int"
)


def _pairs() -> str:
    """Each changed issue's old (o_) and new (n_) columns, `same_<column>` for each compared
    column, a flag per consumer, and the level-19 cell and coordinates of each side. The join
    and the comparisons in a subquery kept from being pulled up (OFFSET 0): each comparison is
    evaluated once per pair, and the cells only for the pairs kept."""
    same = ",\n      ".join(f"o.{c} IS NOT DISTINCT FROM n.{c} AS same_{c}" for c in COLUMNS)
    sides = ",\n      ".join(
        f"o.{c} AS o_{c}, n.{c} AS n_{c}" for c in ("id", "reported_at", *COLUMNS)
    )
    cells = ",\n    ".join(
        f"{X19.format(g=f'{s}_geom')} AS {s}_x19, {Y19.format(g=f'{s}_geom')} AS {s}_y19,"
        f" ST_X({s}_geom) AS {s}_lon, ST_Y({s}_geom) AS {s}_lat"
        for s in ("o", "n")
    )
    flags = ",\n    ".join(
        f"o_id IS NULL OR n_id IS NULL OR NOT ({' AND '.join(f'same_{c}' for c in cols)})"
        f" AS {name}_changed"
        for name, cols in FLAGS.items()
    )
    every = " AND ".join(f"same_{c}" for c in COLUMNS)
    return f"""pairs AS (
  SELECT p.*,
    {flags},
    {cells}
  FROM (
    SELECT {sides},
      {same}
    FROM old_rows o FULL JOIN new_rows n ON n.id = o.id AND n.reported_at = o.reported_at
    OFFSET 0
  ) p
  WHERE o_id IS NULL OR n_id IS NULL OR NOT ({every})
)"""


def _signed(name: str, columns: Sequence[tuple[str, str]]) -> str:
    """The changed rows of consumer `name` as (sign, …, x19, y19, lon, lat0): -1 for the old
    row, +1 for the new one. `columns`: (expression of a side `s`, name)."""

    def side(s: str, sign: int) -> str:
        listed = ", ".join(expr.format(s=s) + f" AS {alias}" for expr, alias in columns)
        return (
            f"SELECT {sign} AS sign, {listed}, {s}_x19 AS x19, {s}_y19 AS y19,"
            f" {s}_lon AS lon, {s}_lat AS lat0 FROM pairs"
            f" WHERE {name}_changed AND {s}_id IS NOT NULL"
        )

    return f"{name}_rows AS (\n  {side('o', -1)}\n  UNION ALL\n  {side('n', 1)}\n)"


def _tile(
    name: str, table: str, key: Sequence[str], levels: Sequence[int], first: bool = False
) -> str:
    """Delta, fold and insert of one tile table, as its own function did (0028/0033/0047),
    from `{name}_rows`. `first`: group the rows at the finest level first, then roll those
    groups up to each level (fewer rows to group when many issues share a cell)."""
    fine = max(levels)
    attrs = [k for k in key if k not in ("level", "cx", "cy")]
    listed = ", ".join(attrs)
    keys = ", ".join(key)
    if not first:
        delta = f"""SELECT lv AS level, x19 >> (19 - lv) AS cx, y19 >> (19 - lv) AS cy, {listed},
      sum(sign)::bigint AS n, sum(sign * lon) AS sx, sum(sign * lat0) AS sy
    FROM {name}_rows CROSS JOIN unnest(ARRAY{list(levels)}) AS lv
    GROUP BY 1, 2, 3, {listed}"""
    else:
        delta = f"""SELECT lv AS level, fx >> ({fine} - lv) AS cx, fy >> ({fine} - lv) AS cy,
      {listed}, sum(n)::bigint AS n, sum(sx) AS sx, sum(sy) AS sy
    FROM (
      SELECT x19 >> {19 - fine} AS fx, y19 >> {19 - fine} AS fy, {listed},
        sum(sign) AS n, sum(sign * lon) AS sx, sum(sign * lat0) AS sy
      FROM {name}_rows GROUP BY 1, 2, {listed}
    ) f CROSS JOIN unnest(ARRAY{list(levels)}) AS lv
    GROUP BY 1, 2, 3, {listed}"""
    return f"""{name}_delta AS (
    {delta}
), {name}_folded AS (
    DELETE FROM {table} c WHERE c.ctid IN (
      SELECT t.ctid FROM {table} t JOIN {name}_delta d USING ({keys})
      WHERE current_setting('transaction_isolation') = 'read committed'
        AND (SELECT count(*) FROM {name}_delta) <= 200
      FOR UPDATE OF t SKIP LOCKED)
    RETURNING {keys}, n, sx, sy
), {name}_written AS (
  INSERT INTO {table} ({keys}, n, sx, sy)
  SELECT {keys}, sum(n), sum(sx), sum(sy)
  FROM (SELECT {keys}, n, sx, sy FROM {name}_delta
        UNION ALL SELECT {keys}, n, sx, sy FROM {name}_folded) u
  GROUP BY {keys}
  HAVING sum(n) <> 0 OR abs(sum(sx)) > 1e-6 OR abs(sum(sy)) > 1e-6
)"""


DAY = "({s}_reported_at AT TIME ZONE 'Asia/Shanghai')::date"


def statement() -> str:
    ctes = [
        _pairs(),
        _signed("counts", [("{s}_status", "status")]),
        _tile(
            "counts",
            "issue_tile_counts",
            ("level", "cx", "cy", "status"),
            (5, 7, 9, 11, 13, 15, 17, 19),
        ),
        _signed("days", [(DAY, "day"), ("{s}_status", "status"), ("{s}_category", "category")]),
        _tile(
            "days",
            "issue_tile_days",
            ("level", "cx", "cy", "day", "status", "category"),
            (8, 10, 12, 14),
        ),
        _signed(
            "facets",
            [
                ("{s}_status", "status"),
                ("{s}_category", "category"),
                ("{s}_source", "source"),
                (DAY, "day"),
                (
                    "COALESCE(({s}_deadline AT TIME ZONE 'Asia/Shanghai')::date, 'infinity'::date)",
                    "deadline_day",
                ),
            ],
        ),
        _tile(
            "facets",
            "issue_tile_facets",
            ("level", "cx", "cy", "day", "status", "category", "source", "deadline_day"),
            (6, 8, 10, 12, 14, 16, 18),
        ),
        _signed(
            "holders",
            [
                ("{s}_status", "status"),
                ("COALESCE({s}_unit_id, 0)", "unit_id"),
                ("COALESCE({s}_leader_id, 0)", "leader_id"),
            ],
        ),
        _tile(
            "holders",
            "issue_tile_holders",
            ("level", "cx", "cy", "status", "unit_id", "leader_id"),
            (8, 10, 12),
            first=True,
        ),
        # 0048: the earliest report time of an issue whose fact columns changed (old or new).
        """facts AS (
  INSERT INTO issue_fact_changes (first_reported)
  SELECT min(least(o_reported_at, n_reported_at)) FROM pairs WHERE facts_changed
  HAVING count(*) > 0
  RETURNING id
)""",
    ]
    references = ",\n  ".join(
        f"array_agg(DISTINCT n_{c}) FILTER (WHERE n_{c} IS NOT NULL AND NOT same_{c})"
        for c in ("grid_id", "primary_place_id", "leader_id", "unit_id")
    )
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"""
SELECT {references},
  (SELECT count(*) FROM facts), (SELECT max(id) FROM facts)
INTO grid_ids, place_ids, leader_ids, unit_ids, added, last_id
FROM pairs"""
    )


# The references' lookups and error as 0049's issue_references_check. The settings: those of
# the tile functions (their folds probe the tables' indexes by nested loops; the GROUP BYs
# hashed); the FULL JOIN can only be hashed or merged, and merging needs two sorts: hashed.
# Generic plans throughout (0049: with the arrays as parameters the plan cache re-plans).
# No JIT: the disabled join methods add their "disable cost" (1e10) to the FULL JOIN's estimate,
# far above jit_above_cost, and compiling the statement (inlined, optimised) took ~3 s at each
# one-row UPDATE.
FUNCTION = """
CREATE FUNCTION issue_rows_updated() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET jit = off
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_sort = off AS $$
DECLARE
  grid_ids bigint[];
  place_ids bigint[];
  leader_ids bigint[];
  unit_ids bigint[];
  added bigint;
  last_id bigint;
  found bigint;
  failed text;
  col text;
  target text;
  missing bigint;
BEGIN
  %(statement)s;
  IF added > 0 AND last_id / 1000 <> (last_id - added) / 1000 THEN
    DELETE FROM issue_fact_changes WHERE id < last_id - 20000;
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
      'SELECT n.%%2$I FROM new_rows n WHERE n.%%2$I IS NOT NULL'
      ' AND NOT EXISTS (SELECT 1 FROM %%1$I p WHERE p.id = n.%%2$I) LIMIT 1',
      target, col) INTO missing;
    RAISE EXCEPTION 'insert or update on table "%%" violates foreign key constraint "%%"',
        TG_TABLE_NAME, failed
      USING ERRCODE = 'foreign_key_violation',
            DETAIL = format('Key (%%s)=(%%s) is not present in table "%%s".', col, missing, target),
            TABLE = TG_TABLE_NAME, CONSTRAINT = failed;
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    for trigger, _function in REPLACED:
        op.execute(f"DROP TRIGGER {trigger} ON issues")
    op.execute(FUNCTION % {"statement": statement()})
    op.execute(
        "CREATE TRIGGER issues_rows_updated AFTER UPDATE ON issues"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION issue_rows_updated()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER issues_rows_updated ON issues")
    op.execute("DROP FUNCTION issue_rows_updated()")
    for trigger, function in REPLACED:
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER UPDATE ON issues"
            " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
            f" EXECUTE FUNCTION {function}()"
        )
