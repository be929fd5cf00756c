"""The job queue under the outbox: procrastinate (https://procrastinate.readthedocs.io) on
our PostgreSQL database; its schema comes with our migrations.

One job per delivery (task `DELIVER_TASK`, argument `delivery_id`, queue `QUEUE`). A job is
deferred by `defer()` on the caller's SQLAlchemy connection, that is inside the transaction
that writes the delivery (the issue event's, through the outbox hook; a replay's): the job,
the delivery and the event are committed together or not at all. Procrastinate's insert
trigger NOTIFYs the workers when that transaction commits.

The outbox rows stay the durable record: a job only names its delivery, and the task does
nothing for a delivery that is already delivered, dead or gone (idempotent delivery). Each job
carries `lock = delivery:<id>`, so two jobs of one delivery (a replay while an old job still
runs) never run at once.

`SessionConnector` runs procrastinate's worker on one SQLAlchemy session's connection (for
`flask notifications-worker --once` and the tests, whose data is in an open transaction); the
long-running worker uses procrastinate's own psycopg 3 connector (geoservice.notifications
.worker.run).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from procrastinate import App, BaseRetryStrategy, RetryDecision
from procrastinate.connector import BaseAsyncConnector
from procrastinate.contrib.sqlalchemy import SQLAlchemyPsycopg2Connector
from procrastinate.contrib.sqlalchemy.psycopg2_connector import PERCENT_PATTERN, wrap_exceptions
from procrastinate.jobs import Job
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

QUEUE = "notifications"
DELIVER_TASK = "geoservice.notifications.deliver"
SCAN_TASK = "geoservice.notifications.scan"

# Defers on a connection given by the caller (`connection=`): never opened, owns no pool.
_deferrer = App(connector=SQLAlchemyPsycopg2Connector())


# procrastinate's workers beat every 10 s and count as stalled after 30 s without a beat.
ALIVE_SECONDS = 30


def worker_alive(session: Session) -> bool:
    """Whether a notifications worker process is running (procrastinate's heartbeats): the
    pages that leave work to it (the coverage audit after a change) need to know."""
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM procrastinate_workers"
                " WHERE last_heartbeat > now() - make_interval(secs => :s))"
            ),
            {"s": ALIVE_SECONDS},
        ).scalar()
    )


def lock_of(delivery_id: int) -> str:
    return f"delivery:{delivery_id}"


def defer(
    conn: Connection | Session, delivery_ids: Iterable[int], schedule_at: datetime | None = None
) -> int:
    """One delivery job per id, on `conn` (in its transaction). Returns how many."""
    if isinstance(conn, Session):
        conn = conn.connection()
    count = 0
    for delivery_id in delivery_ids:
        _deferrer.configure_task(
            DELIVER_TASK,
            queue=QUEUE,
            lock=lock_of(delivery_id),
            schedule_at=schedule_at,
            connection=conn,
        ).defer(delivery_id=int(delivery_id))
        count += 1
    return count


# --- retries --------------------------------------------------------------------------------


class RetryLater(Exception):
    """Raised by the delivery task after a failed attempt that is not the last one: the
    strategy schedules the job again at `retry_at` (the delivery row says the same)."""

    def __init__(self, message: str, retry_at: datetime, quiet: bool = False):
        super().__init__(message)
        self.retry_at = retry_at
        self.quiet = quiet  # put off to the end of quiet hours: not a failed attempt


class DeliveryRetry(BaseRetryStrategy):
    """Procrastinate's retry strategy for deliveries: exponential back-off (`backoff_seconds`
    doubling at every attempt, at most `backoff_max_seconds`), `max_attempts` attempts, both
    from the configuration (NOTIFY_*). The task asks `next_attempt()` whether a failed attempt
    gets another one (otherwise it records a dead letter) and raises RetryLater with that
    time; any other exception escaping a task is retried on the same schedule."""

    def __init__(self, max_attempts: int, backoff: Any):
        self.max_attempts = max_attempts
        self.backoff = backoff  # attempts (1, 2, …) -> timedelta

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed attempts; None: no more tries."""
        if attempts >= self.max_attempts:
            return None
        return now + self.backoff(attempts)

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_at=exception.retry_at)
        at = self.next_attempt(job.attempts + 1, datetime.now(UTC))
        return None if at is None else RetryDecision(retry_at=at)


# --- a connector on one session -------------------------------------------------------------


class SessionConnector(BaseAsyncConnector):
    """Procrastinate's queries on one SQLAlchemy session's connection, each in a savepoint,
    committed when the session commits (the delivery task commits after each delivery).
    Everything runs on the calling thread (the worker's event loop; delivery tasks are
    coroutines that do not yield while they use the session), so the session is never used
    by two threads at once. No LISTEN: run the worker with listen_notify=False."""

    def __init__(self, session: Session):
        self.session = session
        self._sql = SQLAlchemyPsycopg2Connector()

    def get_sync_connector(self) -> BaseAsyncConnector:
        return self

    async def open_async(self, pool: Any = None) -> None:
        return None

    async def close_async(self) -> None:
        return None

    def _run(self, query: str, arguments: dict[str, Any]):
        with wrap_exceptions(), self.session.begin_nested():
            result = self.session.connection().exec_driver_sql(
                PERCENT_PATTERN.sub("%%", query), self._sql._wrap_json(arguments)
            )
            if not result.returns_rows:
                return []
            return [dict(row) for row in result.mappings()]

    async def execute_query_async(self, query: str, **arguments: Any) -> None:
        self._run(query, arguments)

    async def execute_query_one_async(self, query: str, **arguments: Any) -> dict[str, Any]:
        rows = self._run(query, arguments)
        return rows[0] if rows else None  # type: ignore[return-value]

    async def execute_query_all_async(self, query: str, **arguments: Any) -> list[dict[str, Any]]:
        return self._run(query, arguments)

    def execute_query(self, query: str, **arguments: Any) -> None:
        self._run(query, arguments)

    def execute_query_one(self, query: str, **arguments: Any) -> dict[str, Any]:
        rows = self._run(query, arguments)
        return rows[0] if rows else None  # type: ignore[return-value]

    def execute_query_all(self, query: str, **arguments: Any) -> list[dict[str, Any]]:
        return self._run(query, arguments)

    async def listen_notify(self, on_notification: Any, channels: Iterable[str]) -> None:
        raise NotImplementedError("SessionConnector does not LISTEN (listen_notify=False)")
