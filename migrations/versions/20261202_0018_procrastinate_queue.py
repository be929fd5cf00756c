"""procrastinate job queue for notification delivery

Revision ID: 5e1d0c7a9b21
Revises: 7c1e0a5b2d17
Create Date: 2026-12-02 11:30:00

The schema of procrastinate (the PostgreSQL job queue the notification worker runs on,
geoservice/notifications/queue.py), as the pinned version (requirements.txt) ships it. An
upgrade of procrastinate brings its own SQL migrations (procrastinate/sql/migrations): apply
the ones between the two versions in a new revision after this one.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e1d0c7a9b21"
down_revision: str | Sequence[str] | None = "7c1e0a5b2d17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from procrastinate.schema import SchemaManager

    # On the DB-API cursor without parameters: the schema's '%' signs are not placeholders.
    with op.get_bind().connection.dbapi_connection.cursor() as cursor:
        cursor.execute(SchemaManager.get_schema())
    # Deliveries waiting when the home-made loop this replaces stopped get their jobs (the
    # task's name, queue, lock and arguments as geoservice/notifications/queue.py defers them).
    op.execute(
        """
INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, args, scheduled_at)
SELECT 'notifications', 'geoservice.notifications.deliver', 0, 'delivery:' || id,
       jsonb_build_object('delivery_id', id), next_attempt_at
FROM notify_deliveries WHERE status IN ('pending', 'sending') ORDER BY id"""
    )


def downgrade() -> None:
    conn = op.get_bind()
    for table in (
        "procrastinate_periodic_defers",
        "procrastinate_events",
        "procrastinate_jobs",
        "procrastinate_workers",
    ):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    functions = conn.exec_driver_sql(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = current_schema() AND starts_with(p.proname, 'procrastinate_')"
    ).scalars()
    for signature in list(functions):
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
    types = conn.exec_driver_sql(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname = current_schema() AND starts_with(t.typname, 'procrastinate_')"
        " AND t.typtype IN ('e', 'c')"
    ).scalars()
    for name in list(types):
        conn.exec_driver_sql(f"DROP TYPE IF EXISTS {name} CASCADE")
