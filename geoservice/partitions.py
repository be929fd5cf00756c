"""Monthly partitions of `issues` (by reported_at) and `issue_events` (by at), migration 0026.

- `ensure` creates the months ahead (and any month back to `since`); rows that had landed in
  a table's default partition for such a month move into it. Run by `flask partitions ensure`
  (scripts/run at start, and monthly from cron or the worker host); without it rows still land
  in the default partition, never lost, just not pruned.
- `retire` takes whole months out of the live tables: each old month's rows are copied into a
  plain table of the month's name (`pg_dump -t issues_p2021_01` archives one; kept until
  dropped), then deleted through the partitioned table, so that every trigger sees them leave
  (the tile counts and rollups the maps, counts and rankings read, the write generations of
  cached answers), and the emptied month is detached and dropped; the rows that reference
  them elsewhere (photos, notifications, citizen links, the late events of an old issue…) get
  their reference's ON DELETE action, as a foreign key would have applied; a RESTRICT
  reference that still points at an old month (assessment results, field work) refuses the
  whole retirement.

Month boundaries are local midnights in the app's TIMEZONE (Asia/Shanghai).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

# Each partitioned table and the column its months are taken from.
PARTITIONED = {"issues": "reported_at", "issue_events": "at"}


@dataclass(frozen=True)
class Partition:
    parent: str
    name: str
    bound: str  # PostgreSQL's text of the bound: FOR VALUES FROM (…) TO (…) / DEFAULT
    rows: int  # estimate (pg_class.reltuples; -1 before the first ANALYZE)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def ensure(
    session: Session,
    today: date,
    months_ahead: int = 1,
    since: date | None = None,
    tz: str = "Asia/Shanghai",
) -> list[str]:
    """Creates the missing monthly partitions from `since` (default: this month) to
    `months_ahead` months after `today`'s; returns the partitions that now cover the range."""
    first = date((since or today).year, (since or today).month, 1)
    last = add_months(date(today.year, today.month, 1), months_ahead)
    made = []
    for parent in PARTITIONED:
        month = first
        while month <= last:
            made.append(
                session.execute(
                    text("SELECT partition_ensure_month(CAST(:p AS regclass), :m, :tz)"),
                    {"p": parent, "m": month, "tz": tz},
                ).scalar_one()
            )
            month = add_months(month, 1)
    return made


def partitions(session: Session) -> list[Partition]:
    rows = session.execute(
        text(
            "SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid),"
            "       c.reltuples::bigint"
            "  FROM pg_inherits i"
            "  JOIN pg_class p ON p.oid = i.inhparent"
            "  JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE p.relname = ANY(:parents)"
            " ORDER BY p.relname, c.relname"
        ),
        {"parents": list(PARTITIONED)},
    ).all()
    return [Partition(*row) for row in rows]


def retire(session: Session, before: date, drop: bool = False) -> list[str]:
    """Retires every monthly partition of both tables wholly before the month of `before`
    (module doc; with `drop`, the archive copies are dropped too), applying the references'
    ON DELETE actions to what points at their rows. Refuses (ValueError) when a RESTRICT
    reference still points at one of them. Returns the partitions retired. One transaction:
    call it in a quiet hour (the deletes run every trigger, so it takes far longer than the
    DETACH alone did; not yet measured at scale)."""
    month = date(before.year, before.month, 1)
    retired = []
    # Events first: their own references (feedback, photos, notifications) are applied and
    # their old months leave; the issues' months then take the late events with them.
    for parent in ("issue_events", "issues"):
        leaving = _months_before(session, parent, month)
        for part in leaving:
            _apply_references(session, parent, part, leaving, skip_table="issue_events")
            if parent == "issues":
                # Events after the cut-off of issues reported before it (the statement on the
                # parent applies the events' own references through its trigger).
                session.execute(
                    text(f'DELETE FROM issue_events WHERE issue_id IN (SELECT id FROM "{part}")')
                )
        if leaving:
            _move_out(session, parent, leaving, drop)
            retired.extend(leaving)
    return retired


def _move_out(session: Session, parent: str, months: list[str], drop: bool) -> None:
    """The months' rows into plain tables of their names, deleted through `parent` in one
    statement (a DETACH fires no trigger: the tile counts, rollups and write generations would
    go on counting them; one statement, so that links between two leaving rows do not hold
    either back), then the emptied partitions detached and dropped."""
    column = PARTITIONED[parent]
    for part in months:
        session.execute(text(f'CREATE TABLE "{part}_retired" AS SELECT * FROM "{part}"'))
    leaving = " UNION ALL ".join(f'SELECT id, "{column}" FROM "{part}_retired"' for part in months)
    session.execute(text(f'DELETE FROM "{parent}" WHERE (id, "{column}") IN ({leaving})'))
    for part in months:
        session.execute(text(f'ALTER TABLE "{parent}" DETACH PARTITION "{part}"'))
        session.execute(text(f'DROP TABLE "{part}"'))
        if drop:
            session.execute(text(f'DROP TABLE "{part}_retired"'))
        else:
            session.execute(text(f'ALTER TABLE "{part}_retired" RENAME TO "{part}"'))


def _months_before(session: Session, parent: str, month: date) -> list[str]:
    names = []
    for part in partitions(session):
        if part.parent != parent or part.bound == "DEFAULT":
            continue
        if part.name.rsplit("_p", 1)[1] < month.strftime("%Y_%m"):
            names.append(part.name)
    return names


def _apply_references(
    session: Session, parent: str, part: str, leaving: list[str], skip_table: str
) -> None:
    references = session.execute(
        text(
            "SELECT name, table_name, column_name, on_delete FROM soft_foreign_keys"
            " WHERE target_table = :t ORDER BY on_delete = 'cascade' DESC, name"
        ),
        {"t": parent},
    ).all()
    for name, table, column, action in references:
        if table == skip_table and parent == "issues":
            continue  # the late events are deleted through the parent table (see retire)
        ids = f'SELECT id FROM "{part}"'
        if action == "cascade":
            session.execute(text(f'DELETE FROM "{table}" WHERE "{column}" IN ({ids})'))
        elif action == "set null":
            session.execute(
                text(f'UPDATE "{table}" SET "{column}" = NULL WHERE "{column}" IN ({ids})')
            )
        else:
            # A link between two rows that both leave (an old relapse of an older issue)
            # does not hold them back.
            inside = " AND tableoid::regclass::text <> ALL(:leaving)" if table == parent else ""
            blocked = session.execute(
                text(
                    f'SELECT "{column}" FROM "{table}" WHERE "{column}" IN ({ids}){inside} LIMIT 1'
                ),
                {"leaving": leaving} if inside else {},
            ).scalar()
            if blocked is not None:
                raise ValueError(
                    f"{part}: {table}.{column} 仍引用其中的记录 {blocked}（{name}），不能移出"
                )
