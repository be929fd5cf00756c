"""issues and issue_events partitioned by month; recent_writes (issue 19, province scale)

`issues` is range-partitioned by the month of `reported_at`, `issue_events` by the month of
`at` (months start at local midnight, Asia/Shanghai), each with a default partition so no row
is ever refused. A primary key of a partitioned table must contain the partition key, so the
keys become (id, reported_at) and (id, at); `id` stays unique in practice (one sequence) and
every lookup by id still works (an index on id in each partition).

Foreign keys can only point at a unique constraint, which on a partitioned table must also
contain the partition key: the references to issues(id) and issue_events(id) (events, photos,
citizen reports, notifications, field work…) become trigger-checked references, listed in
`soft_foreign_keys`. Statement-level triggers on the referencing tables refuse a missing
parent (SQLSTATE 23503, like a foreign key, with FOR KEY SHARE on the parent rows; an UPDATE
is checked per row, only when the column changed), and a
statement-level trigger on issues / issue_events applies each reference's ON DELETE action
(cascade, set null, restrict). Statement-level triggers fire for statements on the parent
table only, so partition maintenance (detaching or dropping a month, moving rows out of the
default partition) never cascades.

The conversion is generic: the foreign keys to convert are read from pg_constraint, and the
indexes, triggers, extended statistics and outgoing foreign keys of both tables are recreated
from their definitions as they stand (later migrations' additions included).

Partitions are created by `partition_ensure_month(parent, month)`, a SQL function also used by
`flask partitions ensure` (geoservice.partitions): a new month is created as a plain table with
the partition's CHECK constraint and ATTACHed (which locks the parent only lightly), and rows
already in the default partition for that month are moved into it.

Revision ID: 2e2dfcf61411
Revises: 7b3e2a91c0d4
Create Date: 2026-12-02 13:10:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "2e2dfcf61411"
down_revision: str | Sequence[str] | None = "7b3e2a91c0d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONED = {"issues": "reported_at", "issue_events": "at"}
ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null"}
MONTHS_AHEAD = 3

FUNCTIONS = r"""
CREATE FUNCTION partition_month_name(parent regclass, month date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT (SELECT relname FROM pg_class WHERE oid = parent) || '_p' || to_char(month, 'YYYY_MM')
$$;

-- Creates the partition of `parent` for the month of `month` (local midnight to local
-- midnight in `tz`) unless it exists; rows of that month waiting in the default partition
-- are moved into it. Returns the partition's name.
CREATE FUNCTION partition_ensure_month(
  parent regclass, month date, tz text DEFAULT 'Asia/Shanghai'
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  first_day date := date_trunc('month', month)::date;
  lo timestamptz := first_day::timestamp AT TIME ZONE tz;
  hi timestamptz := (first_day + interval '1 month')::date::timestamp AT TIME ZONE tz;
  parent_name text := (SELECT relname FROM pg_class WHERE oid = parent);
  part text := partition_month_name(parent, first_day);
  key text;
  default_part text;
BEGIN
  IF to_regclass(format('%I', part)) IS NOT NULL THEN
    RETURN part;
  END IF;
  SELECT a.attname INTO key
    FROM pg_partitioned_table p JOIN pg_attribute a
      ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
   WHERE p.partrelid = parent;
  IF key IS NULL THEN
    RAISE EXCEPTION '% is not a partitioned table', parent;
  END IF;
  EXECUTE format(
    'CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
    part, parent);
  EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I >= %L AND %I < %L)',
    part, part || '_bounds', key, lo, key, hi);
  SELECT c.relname INTO default_part
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
  IF default_part IS NOT NULL THEN
    EXECUTE format(
      'WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *)'
      ' INSERT INTO %I SELECT * FROM moved',
      default_part, key, lo, key, hi, part);
  END IF;
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
    parent, part, lo, hi);
  -- The CHECK constraint only spared ATTACH a scan; the partition bound now says it.
  EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_bounds');
  RETURN part;
END $$;

-- A referencing table's rows must point at an existing parent row (a foreign key's check).
-- Trigger arguments: the reference's name, the column, the referenced table.
CREATE FUNCTION soft_fk_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  wanted bigint;
  found bigint;
  missing bigint;
BEGIN
  EXECUTE format('SELECT count(DISTINCT %1$I) FROM new_rows WHERE %1$I IS NOT NULL',
    TG_ARGV[1]) INTO wanted;
  IF wanted = 0 THEN
    RETURN NULL;
  END IF;
  -- FOR KEY SHARE, as a foreign key does: the parents cannot be deleted until we commit.
  EXECUTE format(
    'SELECT count(*) FROM (SELECT 1 FROM %1$I p WHERE p.id IN'
    ' (SELECT %2$I FROM new_rows) FOR KEY SHARE OF p) s', TG_ARGV[2], TG_ARGV[1])
    INTO found;
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

-- The same check for one updated row whose reference changed (row level, WHEN the column
-- changed: an update that leaves the reference alone checks nothing, as with a foreign key).
CREATE FUNCTION soft_fk_check_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  wanted bigint := (to_jsonb(NEW) ->> TG_ARGV[1])::bigint;
  found integer;
BEGIN
  IF wanted IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('SELECT 1 FROM %I WHERE id = $1 FOR KEY SHARE', TG_ARGV[2])
    INTO found USING wanted;
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

-- Deleting parent rows applies each reference's ON DELETE action (statement level, so only
-- statements on the partitioned table do: dropping or detaching a month never cascades).
CREATE FUNCTION soft_fk_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ref record;
  blocked bigint;
BEGIN
  FOR ref IN
    SELECT * FROM soft_foreign_keys WHERE target_table = TG_TABLE_NAME
     ORDER BY on_delete = 'cascade' DESC, name
  LOOP
    IF ref.on_delete = 'cascade' THEN
      EXECUTE format('DELETE FROM %I WHERE %I IN (SELECT id FROM old_rows)',
        ref.table_name, ref.column_name);
    ELSIF ref.on_delete = 'set null' THEN
      EXECUTE format('UPDATE %1$I SET %2$I = NULL WHERE %2$I IN (SELECT id FROM old_rows)',
        ref.table_name, ref.column_name);
    ELSE
      EXECUTE format(
        'SELECT c.%2$I FROM %1$I c WHERE c.%2$I IN (SELECT id FROM old_rows) LIMIT 1',
        ref.table_name, ref.column_name) INTO blocked;
      IF blocked IS NOT NULL THEN
        RAISE EXCEPTION
            'update or delete on table "%" violates foreign key constraint "%" on table "%"',
            TG_TABLE_NAME, ref.name, ref.table_name
          USING ERRCODE = 'foreign_key_violation',
                DETAIL = format('Key (id)=(%s) is still referenced from table "%s".',
                                blocked, ref.table_name),
                TABLE = ref.table_name, CONSTRAINT = ref.name;
      END IF;
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    conn = op.get_bind()
    # Read-your-own-writes with a replica (geoservice.db): who wrote lately, on the primary.
    op.execute(
        "CREATE UNLOGGED TABLE recent_writes (account varchar(40) NOT NULL,"
        " at timestamp with time zone NOT NULL, CONSTRAINT pk_recent_writes PRIMARY KEY (account))"
    )
    op.execute(
        "CREATE TABLE soft_foreign_keys ("
        " name text PRIMARY KEY, table_name text NOT NULL, column_name text NOT NULL,"
        " target_table text NOT NULL, on_delete text NOT NULL)"
    )
    op.execute(FUNCTIONS)
    references = conn.execute(
        text(
            "SELECT c.conname, c.conrelid::regclass::text, a.attname,"
            "       c.confrelid::regclass::text, c.confdeltype, cardinality(c.conkey)"
            "  FROM pg_constraint c"
            "  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
            " WHERE c.contype = 'f' AND c.confrelid::regclass::text = ANY(:targets)"
            " ORDER BY c.conname"
        ),
        {"targets": list(PARTITIONED)},
    ).all()
    for name, table, column, target, action, width in references:
        if width != 1 or action not in ACTIONS:
            raise RuntimeError(f"cannot convert foreign key {name} ({width} columns, {action})")
        op.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        conn.execute(
            text("INSERT INTO soft_foreign_keys VALUES (:n, :t, :c, :target, :action)"),
            {"n": name, "t": table, "c": column, "target": target, "action": ACTIONS[action]},
        )
    for table, key in PARTITIONED.items():
        _rebuild(conn, table, key)
    for name, table, column, target, _action, _width in references:
        _install_check(table, column, target, name)
    for target in PARTITIONED:
        op.execute(
            f"CREATE TRIGGER soft_fk_on_delete AFTER DELETE ON {target}"
            " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
            " EXECUTE FUNCTION soft_fk_on_delete()"
        )


def downgrade() -> None:
    conn = op.get_bind()
    references = conn.execute(
        text("SELECT name, table_name, column_name, target_table, on_delete FROM soft_foreign_keys")
    ).all()
    for name, table, _column, _target, _action in references:
        for suffix in ("ins", "upd"):
            op.execute(f'DROP TRIGGER IF EXISTS "{_trigger(name, suffix)}" ON "{table}"')
    for target in PARTITIONED:
        op.execute(f"DROP TRIGGER soft_fk_on_delete ON {target}")
    for table in PARTITIONED:
        _rebuild(conn, table, None)
    for name, table, column, target, action in references:
        op.execute(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY ("{column}")'
            f' REFERENCES "{target}" (id) ON DELETE {action.upper()}'
        )
    op.execute("DROP FUNCTION soft_fk_on_delete()")
    op.execute("DROP FUNCTION soft_fk_check_row()")
    op.execute("DROP FUNCTION soft_fk_check()")
    op.execute("DROP FUNCTION partition_ensure_month(regclass, date, text)")
    op.execute("DROP FUNCTION partition_month_name(regclass, date)")
    op.execute("DROP TABLE soft_foreign_keys")
    op.execute("DROP TABLE recent_writes")


def _trigger(name: str, suffix: str) -> str:
    return f"soft_{name}_{suffix}"[:63]


def _install_check(table: str, column: str, target: str, name: str) -> None:
    args = f"'{name}', '{column}', '{target}'"
    op.execute(
        f'CREATE TRIGGER "{_trigger(name, "ins")}" AFTER INSERT ON "{table}"'
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
        f" EXECUTE FUNCTION soft_fk_check({args})"
    )
    op.execute(
        f'CREATE TRIGGER "{_trigger(name, "upd")}" AFTER UPDATE OF "{column}" ON "{table}"'
        f' FOR EACH ROW WHEN (OLD."{column}" IS DISTINCT FROM NEW."{column}")'
        f" EXECUTE FUNCTION soft_fk_check_row({args})"
    )


def _rebuild(conn, table: str, key: str | None) -> None:
    """Rebuilds `table` as partitioned by month of `key` (or, with key None, as a plain table),
    keeping its rows, defaults, checks, indexes, triggers, statistics, outgoing foreign keys
    and its id sequence."""
    oid = conn.scalar(text("SELECT to_regclass(:t)::oid"), {"t": table})
    pk = conn.execute(
        text("SELECT conname FROM pg_constraint WHERE conrelid = :oid AND contype = 'p'"),
        {"oid": oid},
    ).scalar_one()
    indexes = conn.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            "  JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = :oid AND NOT i.indisprimary ORDER BY c.relname"
        ),
        {"oid": oid},
    ).all()
    triggers = conn.scalars(
        text(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger"
            " WHERE tgrelid = :oid AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgname"
        ),
        {"oid": oid},
    ).all()
    statistics = conn.execute(
        text(
            "SELECT stxname, pg_get_statisticsobjdef(oid) FROM pg_statistic_ext"
            " WHERE stxrelid = :oid ORDER BY stxname"
        ),
        {"oid": oid},
    ).all()
    foreign_keys = conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = :oid AND contype = 'f' AND conparentid = 0 ORDER BY conname"
        ),
        {"oid": oid},
    ).all()
    unique = conn.scalars(
        text("SELECT conname FROM pg_constraint WHERE conrelid = :oid AND contype IN ('u', 'x')"),
        {"oid": oid},
    ).all()
    if unique:
        raise RuntimeError(f"{table}: unique constraints {unique} need the partition key")
    sequence = conn.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
    # Views and materialized views reading the table are dropped and recreated on the new one
    # (with a materialized view's indexes; it is refreshed by being recreated).
    views = conn.execute(
        text(
            "SELECT DISTINCT v.oid, v.relname, v.relkind, pg_get_viewdef(v.oid)"
            "  FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid"
            "  JOIN pg_class v ON v.oid = r.ev_class"
            " WHERE d.refobjid = :oid AND d.classid = 'pg_rewrite'::regclass"
            "   AND v.oid <> :oid ORDER BY v.oid"
        ),
        {"oid": oid},
    ).all()
    view_indexes = {
        name: conn.scalars(
            text("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = :v"),
            {"v": view_oid},
        ).all()
        for view_oid, name, _kind, _definition in views
    }
    for _view_oid, name, kind, _definition in reversed(views):
        op.execute(f'DROP {"MATERIALIZED VIEW" if kind == "m" else "VIEW"} "{name}"')
    old = f"{table}_rebuilt_from"
    for name, _definition in indexes:
        op.execute(f'DROP INDEX "{name}"')
    for name, _definition in statistics:
        op.execute(f'DROP STATISTICS "{name}"')
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    op.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{pk}" TO "{old}_pk"')
    partitioning = f" PARTITION BY RANGE ({key})" if key else ""
    op.execute(
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
        f" INCLUDING STORAGE INCLUDING COMMENTS){partitioning}"
    )
    op.execute(
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{pk}" PRIMARY KEY (id{", " + key if key else ""})'
    )
    if key:
        bounds = conn.execute(
            text(
                f"SELECT date_trunc('month', min({key}) AT TIME ZONE 'Asia/Shanghai')::date,"
                "        date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date"
                f' FROM "{old}"'
            )
        ).one()
        first = min(bounds[0] or bounds[1], bounds[1])
        conn.execute(
            text(
                "SELECT partition_ensure_month(CAST(:t AS regclass), m::date)"
                "  FROM generate_series(CAST(:first AS date),"
                "                       CAST(:now AS date) + make_interval(months => :ahead),"
                "                       interval '1 month') m"
            ),
            {"t": table, "first": first, "now": bounds[1], "ahead": MONTHS_AHEAD},
        )
        op.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
    op.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    for _name, definition in indexes:
        op.execute(definition.replace(" ON ONLY ", " ON "))
    for _name, definition in statistics:
        op.execute(definition)
    for name, definition in foreign_keys:
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for definition in triggers:
        op.execute(definition)
    if sequence:
        op.execute(f'ALTER SEQUENCE {sequence} OWNED BY "{table}".id')
    # No CASCADE: anything else still depending on the old table stops the migration.
    op.execute(f'DROP TABLE "{old}"')
    for _view_oid, name, kind, definition in views:
        op.execute(
            f'CREATE {"MATERIALIZED VIEW" if kind == "m" else "VIEW"} "{name}" AS {definition}'
        )
        for index in view_indexes[name]:
            op.execute(index)
    op.execute(f'ANALYZE "{table}"')
