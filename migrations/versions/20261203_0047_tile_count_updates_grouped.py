"""tile count updates grouped, not windowed, and soft foreign-key checks planned once: the
UPDATE triggers of issue_tile_counts, issue_tile_facets, issue_tile_days and
issue_tile_holders find the changed rows of a statement by one grouping of the old and new
rows; soft_fk_check / soft_fk_check_row look their parents (issues, issue_events) up by
static statements on a generic plan (see SOFT_FK_CHECK)

Migration 0033 paired each issue's old and new row by a window over its id (a sort of both
transition tables, then first_value/last_value of every compared column), keeping the pairs
whose compared columns differ. Each of the four UPDATE triggers did so, whatever the statement
changed: a bulk attribution of 50,000 issues (which changes no status, point, category or
report time) spent 110–200 ms in each of the three triggers with nothing to write, and 540 ms
in the holders' one (bench/issues.sh database, 2026-12-03).

Now the old rows (sign -1) and the new rows (sign +1) are grouped by (id, compared columns):
an issue whose compared columns are unchanged makes one group of two rows, dropped; a changed
one makes two groups of one row each, kept with their sign — the same rows as the window's
pairs (grouping compares with `=`, NULLs equal, as IS NOT DISTINCT FROM; for geometries `=`
is exact coordinate equality, as ST_OrderingEquals). One hash aggregate, no sort; the fold is
unchanged. The four functions also get `enable_sort = off` (their GROUP BYs hashed: see
NO_SORT). Coordinate sums are added in another order than before (the count is exact; sx/sy
may differ in the last bits, as they already did between plans).

Revision ID: b3d8f1a6c925
Revises: 4d9b2e7f1a63
Create Date: 2026-12-03 07:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op
from sqlalchemy import text

revision: str = "b3d8f1a6c925"
down_revision: str | Sequence[str] | None = "4d9b2e7f1a63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _migration(stem: str) -> ModuleType:
    path = Path(__file__).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(f"_grouped_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAIRS = "20261202_0033_tile_count_updates_without_join"


def grouped(columns: Sequence[str], outer: str) -> str:
    """The changed rows of an UPDATE as (sign, …), as 0033's `paired(columns, outer)`: -1 for
    the old row, +1 for the new one, for each id whose `columns` differ."""
    listed = ", ".join(columns)
    return f"""(
    SELECT {outer} FROM (
      SELECT min(u.sign) AS sign, u.id, {", ".join(f"u.{c}" for c in columns)}
      FROM (SELECT -1 AS sign, id, {listed} FROM old_rows
            UNION ALL SELECT 1 AS sign, id, {listed} FROM new_rows) u
      GROUP BY u.id, {", ".join(f"u.{c}" for c in columns)}
      HAVING count(*) = 1
    ) p
  ) AS changed"""


def _specs() -> dict[str, tuple[str, tuple[str, ...], str]]:
    """function -> (its current pairing text, compared columns, select list), each checked
    against the migration that installed it."""
    holders = _migration("20261203_0036_issue_tile_holders")
    days = _migration("20261203_0039_issue_tile_days")
    facets = _migration("20261202_0032_issue_tile_facets_deadline_day")
    counts = _migration(PAIRS)
    specs = {
        "issue_tile_counts_updated": (
            counts.UPDATED["issue_tile_counts"],
            ("status", "geom"),
            "p.sign, p.status, p.geom",
        ),
        "issue_tile_facets_updated": (
            facets.UPDATED,
            ("status", "category", "source", "reported_at", "deadline", "geom"),
            "p.sign, p.status, p.category, p.source,"
            " (p.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day,"
            " COALESCE((p.deadline AT TIME ZONE 'Asia/Shanghai')::date, 'infinity'::date)"
            " AS deadline_day, p.geom",
        ),
        "issue_tile_days_updated": (
            days.UPDATED,
            ("status", "category", "reported_at", "geom"),
            f"p.sign, {days._row('p')}",
        ),
        "issue_tile_holders_updated": (
            holders.UPDATED,
            ("status", "unit_id", "leader_id", "geom"),
            f"p.sign, {holders._row('p')}",
        ),
    }
    for _name, (installed, columns, outer) in specs.items():
        assert counts.paired(columns, outer) == installed
    return specs


def _swap(to_grouped: bool) -> None:
    conn = op.get_bind()
    for name, (installed, columns, outer) in _specs().items():
        new = grouped(columns, outer)
        old, replacement = (installed, new) if to_grouped else (new, installed)
        definition = conn.scalar(
            text("SELECT pg_get_functiondef(CAST(:f AS regproc))"), {"f": f"public.{name}"}
        )
        assert definition.count(old) == 1, name
        op.execute(definition.replace(old, replacement))


# Migration 0026's soft foreign-key checks planned each of their lookups at every call
# (EXECUTE of a statement built with format()): planning a lookup in a partitioned parent
# (`issues`, `issue_events`: every monthly partition and its indexes) cost ~0.8 ms of the
# ~1 ms the check of one report's event took. The parents are these two tables only (the
# referencing column varies): the lookups in them are now static statements, planned once per
# session, given the distinct referenced ids as an array — and kept generic: with the ids as
# a parameter the plan cache would re-plan a "custom" plan at every call (it estimates the
# generic plan dearer, not knowing the array's length), which costs as much as EXECUTE. The
# generic plan is the same shape (the parent's partitions' primary keys probed with the ids).
# What is checked, locked (FOR KEY SHARE) and raised is unchanged; another parent table would
# still take the EXECUTE path.
SOFT_FK_CHECK = """
CREATE OR REPLACE FUNCTION soft_fk_check() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  wanted bigint;
  found bigint;
  missing bigint;
  ids bigint[];
BEGIN
  EXECUTE format('SELECT array_agg(DISTINCT %1$I)::bigint[] FROM new_rows WHERE %1$I IS NOT NULL',
    TG_ARGV[1]) INTO ids;
  wanted := COALESCE(cardinality(ids), 0);
  IF wanted = 0 THEN
    RETURN NULL;
  END IF;
  -- FOR KEY SHARE, as a foreign key does: the parents cannot be deleted until we commit.
  IF TG_ARGV[2] = 'issues' THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM issues p WHERE p.id = ANY(ids) FOR KEY SHARE OF p) s;
  ELSIF TG_ARGV[2] = 'issue_events' THEN
    SELECT count(*) INTO found FROM (
      SELECT 1 FROM issue_events p WHERE p.id = ANY(ids) FOR KEY SHARE OF p) s;
  ELSE
    EXECUTE format(
      'SELECT count(*) FROM (SELECT 1 FROM %1$I p WHERE p.id = ANY($1) FOR KEY SHARE OF p) s',
      TG_ARGV[2]) INTO found USING ids;
  END IF;
  IF found < wanted THEN
    EXECUTE format(
      'SELECT n.%2$I FROM new_rows n WHERE n.%2$I IS NOT NULL'
      ' AND NOT EXISTS (SELECT 1 FROM %1$I p WHERE p.id = n.%2$I) LIMIT 1',
      TG_ARGV[2], TG_ARGV[1]) INTO missing;
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
        TG_TABLE_NAME, TG_ARGV[0]
      USING ERRCODE = 'foreign_key_violation',
            DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                            TG_ARGV[1], missing, TG_ARGV[2]),
            TABLE = TG_TABLE_NAME, CONSTRAINT = TG_ARGV[0];
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION soft_fk_check_row() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  wanted bigint := (to_jsonb(NEW) ->> TG_ARGV[1])::bigint;
  found integer;
BEGIN
  IF wanted IS NULL THEN
    RETURN NULL;
  END IF;
  IF TG_ARGV[2] = 'issues' THEN
    SELECT 1 INTO found FROM issues WHERE id = wanted FOR KEY SHARE;
  ELSIF TG_ARGV[2] = 'issue_events' THEN
    SELECT 1 INTO found FROM issue_events WHERE id = wanted FOR KEY SHARE;
  ELSE
    EXECUTE format('SELECT 1 FROM %I WHERE id = $1 FOR KEY SHARE', TG_ARGV[2])
      INTO found USING wanted;
  END IF;
  IF found IS NULL THEN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
        TG_TABLE_NAME, TG_ARGV[0]
      USING ERRCODE = 'foreign_key_violation',
            DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                            TG_ARGV[1], wanted, TG_ARGV[2]),
            TABLE = TG_TABLE_NAME, CONSTRAINT = TG_ARGV[0];
  END IF;
  RETURN NULL;
END $$;
"""


def _soft_fk_0026() -> str:
    """Migration 0026's two check functions, as it created them (for the downgrade)."""
    source = Path(__file__).with_name("20261202_0026_partition_issues_by_month.py").read_text()
    start = source.index("CREATE FUNCTION soft_fk_check()")
    end = source.index("-- Deleting parent rows applies")
    return source[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


# The grouped rows' count is estimated from the default (a few hundred at most), so the
# planner sorted the deltas of a bulk UPDATE for their GROUP BY: ~300,000 rows of a
# 50,000-issue attribution batch in the holders' trigger (0.24 s of its 0.56–0.74 s).
# Without sorts in these four functions they are hashed (0.41–0.42 s).
NO_SORT = "ALTER FUNCTION {name}() SET enable_sort = off"


def upgrade() -> None:
    _swap(to_grouped=True)
    for name in _specs():
        op.execute(NO_SORT.format(name=name))
    op.execute(SOFT_FK_CHECK)


def downgrade() -> None:
    op.execute(_soft_fk_0026())
    for name in _specs():
        op.execute(f"ALTER FUNCTION {name}() RESET enable_sort")
    _swap(to_grouped=False)
