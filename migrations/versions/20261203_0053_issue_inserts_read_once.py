"""issue inserts read once: one statement trigger for an INSERT into issues reads the new rows
once and keeps the tile counts, days, facets, holders, the cell and fact logs, and checks the
attribution references and the relapse/duplicate soft foreign keys (instead of nine triggers
each reading them again)

A one-issue report fired nine AFTER INSERT statement triggers on `issues`, each a plpgsql
call reading `new_rows` on its own: the four tile tables (0028/0033/0036/0039), the cell log
(0040), the fact log (0048), the references check (0049) and two `soft_fk_check` calls (0026),
which build their lookup as dynamic SQL (parsed and planned at every call, even with nothing
to look up). Measured on a copy of the demo at scale 100 (pgbench, one-row INSERT rolled back,
2026-12-03): the INSERT took 0.19 ms with no trigger and 2.3–3.4 ms with them.

`issue_rows_inserted` replaces them. One statement: the new rows read once, with the
level-19 cell of each row computed once (the same integers as the functions computed per
level; the level-15 cell of the cell log is the level-19 one shifted by 4, the same integer
as its own expression: the scale factors are powers of two); each tile table's delta, fold and
insert as its own function did (data-modifying CTEs, as 0051); the cell log grouped by cell,
the fact log's earliest report time. Then the references (0049's lookups, FOR KEY SHARE) and
the two soft foreign keys (static statements: cached plans), in the order the triggers fired
(by name), so a statement with several bad keys reports the same constraint. Coordinate sums
of a multi-row insert into the holders' table are added in another order (grouped at level 12
first, as 0051: counts exact; sx/sy equal to the last bits).

Gain (bench/insert_triggers.py, the two alternated by blocks in one backend, same copy): the
backend's CPU per one-row INSERT 1.58 → 1.37 ms (median of 20 blocks; 16 of 20 pairs lower),
in other runs 1.80 → 1.53, 1.73 → 1.60, 1.48 → 1.38, 1.48 → 1.48 ms: about 0.1–0.2 ms a
report (1–2% of its database CPU, 8–13 ms); 20 to 300 rows per INSERT: the same to 5% less.
The rest of the triggers' cost is the work itself: ~22 tile rows folded (deleted and
inserted again, with their indexes) per report.

The replaced functions stay for the downgrade, which restores the nine triggers (the four
tile `*_inserted` functions and `issue_references_check` are then unused; the cell and fact
log functions still serve their DELETE/TRUNCATE/UPDATE triggers, `soft_fk_check` other tables).

Revision ID: 5c1e9f3a7b20
Revises: 4d8e2a6c1f39
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5c1e9f3a7b20"
down_revision: str | Sequence[str] | None = "4d8e2a6c1f39"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The triggers replaced (name, function with its arguments), as they were at 0052.
REPLACED = (
    ("issue_references_ins", "issue_references_check()"),
    ("issues_cells_inserted", "issue_cells_changed()"),
    ("issues_facts_inserted", "issue_facts_changed()"),
    ("issues_tile_counts_insert", "issue_tile_counts_inserted()"),
    ("issues_tile_days_insert", "issue_tile_days_inserted()"),
    ("issues_tile_facets_insert", "issue_tile_facets_inserted()"),
    ("issues_tile_holders_insert", "issue_tile_holders_inserted()"),
    (
        "soft_fk_issues_duplicate_of_id_issues_ins",
        "soft_fk_check('fk_issues_duplicate_of_id_issues', 'duplicate_of_id', 'issues')",
    ),
    (
        "soft_fk_issues_relapse_of_id_issues_ins",
        "soft_fk_check('fk_issues_relapse_of_id_issues', 'relapse_of_id', 'issues')",
    ),
)

# The level-19 cell of a point (0028's expression before its shift), as 0051.
X19 = "least(greatest(floor((ST_X(geom) + 180.0) / 360.0 * 524288), 0), 524287)::int"
Y19 = (
    "least(greatest(floor((1.0 - ln(tan(radians(least(greatest(ST_Y(geom), -85.0511), 85.0511)))"
    " + 1.0 / cos(radians(least(greatest(ST_Y(geom), -85.0511), 85.0511)))) / pi())"
    " / 2.0 * 524288), 0), 524287)::int"
)
DAY = "(reported_at AT TIME ZONE 'Asia/Shanghai')::date"
DEADLINE_DAY = "COALESCE((deadline AT TIME ZONE 'Asia/Shanghai')::date, 'infinity'::date)"

# The columns of the new rows the consumers read.
READ = (
    "id",
    "reported_at",
    "status",
    "category",
    "source",
    "deadline",
    "unit_id",
    "leader_id",
    "grid_id",
    "primary_place_id",
    "relapse_of_id",
    "duplicate_of_id",
)


def _added() -> str:
    """The new rows read once (kept from being pulled up into each consumer: OFFSET 0), with
    their level-19 cell and coordinates."""
    return f"""added AS (
  SELECT {", ".join(READ)},
    {X19} AS x19, {Y19} AS y19, ST_X(geom) AS lon, ST_Y(geom) AS lat0
  FROM new_rows
  OFFSET 0
)"""


def _tile(
    name: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    levels: Sequence[int],
    first: bool = False,
) -> str:
    """Delta, fold and insert of one tile table from the added rows, as its own function did
    (0028/0033/0047; the fold as 0051). `columns`: (expression over `added`, name).
    `first`: group the rows at the finest level first, then roll those groups up to each
    level (fewer rows to group when many issues share a cell)."""
    fine = max(levels)
    attrs = [alias for _expr, alias in columns]
    listed = ", ".join(attrs)
    exprs = ", ".join(f"{expr} AS {alias}" for expr, alias in columns)
    key = ("level", "cx", "cy", *attrs)
    keys = ", ".join(key)
    if not first:
        delta = f"""SELECT lv AS level, x19 >> (19 - lv) AS cx, y19 >> (19 - lv) AS cy, {listed},
      count(*)::bigint AS n, sum(lon) AS sx, sum(lat0) AS sy
    FROM (SELECT x19, y19, lon, lat0, {exprs} FROM added) a
    CROSS JOIN unnest(ARRAY{list(levels)}) AS lv
    GROUP BY 1, 2, 3, {listed}"""
    else:
        delta = f"""SELECT lv AS level, fx >> ({fine} - lv) AS cx, fy >> ({fine} - lv) AS cy,
      {listed}, sum(n)::bigint AS n, sum(sx) AS sx, sum(sy) AS sy
    FROM (
      SELECT x19 >> {19 - fine} AS fx, y19 >> {19 - fine} AS fy, {exprs},
        count(*) AS n, sum(lon) AS sx, sum(lat0) AS sy
      FROM added GROUP BY 1, 2, {", ".join(str(3 + k) for k in range(len(attrs)))}
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


def statement() -> str:
    ctes = [
        _added(),
        _tile("counts", "issue_tile_counts", [("status", "status")], (5, 7, 9, 11, 13, 15, 17, 19)),
        _tile(
            "days",
            "issue_tile_days",
            [(DAY, "day"), ("status", "status"), ("category", "category")],
            (8, 10, 12, 14),
        ),
        _tile(
            "facets",
            "issue_tile_facets",
            [
                (DAY, "day"),
                ("status", "status"),
                ("category", "category"),
                ("source", "source"),
                (DEADLINE_DAY, "deadline_day"),
            ],
            (6, 8, 10, 12, 14, 16, 18),
        ),
        _tile(
            "holders",
            "issue_tile_holders",
            [
                ("status", "status"),
                ("COALESCE(unit_id, 0)", "unit_id"),
                ("COALESCE(leader_id, 0)", "leader_id"),
            ],
            (8, 10, 12),
            first=True,
        ),
        # 0040: each level-15 cell of the new rows with its first issue and report time.
        """cells AS (
  INSERT INTO issue_cell_changes (cx, cy, first_issue, first_reported)
  SELECT x19 >> 4, y19 >> 4, min(id), min(reported_at) FROM added GROUP BY 1, 2
  RETURNING id
)""",
        # 0048: the earliest report time of the new rows.
        """facts AS (
  INSERT INTO issue_fact_changes (first_reported)
  SELECT min(reported_at) FROM added HAVING count(*) > 0
  RETURNING id
)""",
    ]
    references = ",\n  ".join(
        f"array_agg(DISTINCT {c}) FILTER (WHERE {c} IS NOT NULL)"
        for c in (
            "grid_id",
            "primary_place_id",
            "leader_id",
            "unit_id",
            "duplicate_of_id",
            "relapse_of_id",
        )
    )
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"""
SELECT {references},
  (SELECT count(*) FROM cells), (SELECT max(id) FROM cells),
  (SELECT count(*) FROM facts), (SELECT max(id) FROM facts)
INTO grid_ids, place_ids, leader_ids, unit_ids, duplicate_ids, relapse_ids,
  cells_added, cells_last, facts_added, facts_last
FROM added"""
    )


# The settings: those of 0051 (the tile functions' folds probe the tables' indexes by nested
# loops, the GROUP BYs hashed; generic plans for the lookups by arrays, as 0049; no JIT).
FUNCTION = """
CREATE FUNCTION issue_rows_inserted() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET jit = off
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_sort = off AS $$
DECLARE
  grid_ids bigint[];
  place_ids bigint[];
  leader_ids bigint[];
  unit_ids bigint[];
  duplicate_ids bigint[];
  relapse_ids bigint[];
  cells_added bigint;
  cells_last bigint;
  facts_added bigint;
  facts_last bigint;
  found bigint;
  failed text;
  col text;
  target text;
  missing bigint;
BEGIN
  %(statement)s;
  -- The logs keep their last 20,000 rows (0040, 0048), pruned each 1,000 ids.
  IF cells_added > 0 AND cells_last / 1000 <> (cells_last - cells_added) / 1000 THEN
    DELETE FROM issue_cell_changes WHERE id < cells_last - 20000;
  END IF;
  IF facts_added > 0 AND facts_last / 1000 <> (facts_last - facts_added) / 1000 THEN
    DELETE FROM issue_fact_changes WHERE id < facts_last - 20000;
  END IF;
  -- 0049's references check. FOR KEY SHARE, as a foreign key does: the parents cannot be
  -- deleted until we commit.
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
  -- 0026's soft foreign keys of an issue to issues (soft_fk_check), duplicate then relapse.
  IF failed IS NULL AND duplicate_ids IS NOT NULL THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM issues p WHERE p.id = ANY(duplicate_ids) FOR KEY SHARE OF p) s;
    IF found < cardinality(duplicate_ids) THEN
      failed := 'fk_issues_duplicate_of_id_issues'; col := 'duplicate_of_id';
      target := 'issues';
    END IF;
  END IF;
  IF failed IS NULL AND relapse_ids IS NOT NULL THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM issues p WHERE p.id = ANY(relapse_ids) FOR KEY SHARE OF p) s;
    IF found < cardinality(relapse_ids) THEN
      failed := 'fk_issues_relapse_of_id_issues'; col := 'relapse_of_id'; target := 'issues';
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
        "CREATE TRIGGER issues_rows_inserted AFTER INSERT ON issues"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION issue_rows_inserted()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER issues_rows_inserted ON issues")
    op.execute("DROP FUNCTION issue_rows_inserted()")
    for trigger, function in REPLACED:
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER INSERT ON issues"
            " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
            f" EXECUTE FUNCTION {function}"
        )
