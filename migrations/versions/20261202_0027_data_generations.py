"""data generations: a write counter per table, bumped at commit, for HTTP validators

Revision ID: 7d0a6c2e5b27
Revises: 2e2dfcf61411
Create Date: 2026-12-02 13:30:00

Every tracked table has a statement-level trigger `data_touch` that notes (once per table and
transaction) that the transaction wrote it; a deferred constraint trigger bumps
`data_generations.generation` of each noted table when the transaction commits, in table-name
order (so two committing transactions never wait on each other crosswise). The bump is part of
the writing transaction: a reader sees the new generation exactly when it sees the new rows.
geoservice/httpcache.py reads the counters; docs/performance.md explains them.
"""

from collections.abc import Sequence

from alembic import op

from geoservice.migrate import UNTRACKED_TABLES, track_changes

revision: str = "7d0a6c2e5b27"
down_revision: str | Sequence[str] | None = "2e2dfcf61411"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE data_generations (
    subject varchar(63) PRIMARY KEY,
    generation bigint NOT NULL DEFAULT 0
);
CREATE TABLE data_touches (
    txid bigint NOT NULL DEFAULT txid_current(),
    subject varchar(63) NOT NULL,
    PRIMARY KEY (txid, subject)
);
CREATE FUNCTION data_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('geoservice.touched_' || TG_TABLE_NAME, true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('geoservice.touched_' || TG_TABLE_NAME, '1', true);
        INSERT INTO data_touches (subject) VALUES (TG_TABLE_NAME) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION data_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched text;
BEGIN
    FOR touched IN
        WITH done AS (
            DELETE FROM data_touches WHERE txid = txid_current() RETURNING subject
        )
        SELECT subject FROM done ORDER BY subject
    LOOP
        UPDATE data_generations SET generation = generation + 1 WHERE subject = touched;
    END LOOP;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER data_bump AFTER INSERT ON data_touches
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION data_bump();
"""
    )
    bind = op.get_bind()
    tables = bind.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " ORDER BY 1"
    ).scalars()
    for table in tables:
        if table not in UNTRACKED_TABLES and not table.startswith("procrastinate_"):
            track_changes(op, table)


def downgrade() -> None:
    op.execute(
        """
DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT subject FROM data_generations LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS data_touch ON %I', t);
    END LOOP;
END $$;
DROP TABLE data_touches;
DROP TABLE data_generations;
DROP FUNCTION data_bump();
DROP FUNCTION data_touch();
"""
    )
