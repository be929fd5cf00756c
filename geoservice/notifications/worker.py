"""The delivery worker: procrastinate's worker (geoservice.notifications.queue) running one
job per delivery. The job loads its delivery, does nothing if it is already delivered, dead
or gone (a job may run twice: a replay, a worker that died mid-send), sends it outside any
transaction, and records the outcome on the outbox row: delivered; or, after a failed attempt
that is not the last, pending with `next_attempt_at` while procrastinate's retry strategy
(queue.DeliveryRetry: exponential back-off, NOTIFY_MAX_ATTEMPTS) schedules the job again; or,
after the last attempt (or a permanent failure), a dead letter admins see and may replay
(which defers a new job). Delivery is at least once; every channel carries the delivery key
(webhook header, e-mail Message-ID) so a receiver can drop a repeat.

The time-driven triggers (deadline reminders, the escalation ladder, the daily digest;
geoservice.notifications.triggers) run as a procrastinate periodic task every minute, under an
advisory lock so two workers never run them at once; the same task puts the jobs of a worker
that died (no heartbeat) back in the queue. Every hour (at :05) another periodic task stores
the ranking snapshots of the last eight closed weeks and months and the last quarter when
missing or no longer current (early on Monday: the week that just closed; early on the 1st: the
month, and the quarter after one; geoservice.ranking.snapshot). Every minute a third one brings
the shared coverage audit up to date after a change to what it reads
(geoservice.responsibility.coverage.refresh).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import procrastinate
from procrastinate.job_context import JobContext
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from geoservice.fieldwork import patrols
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues.workflow import status_label
from geoservice.notifications import field_triggers, queue, triggers
from geoservice.notifications.channels import DeliveryError, Outgoing, send
from geoservice.notifications.outbox import HANDOVER_KINDS
from geoservice.ranking import ranking, snapshot
from geoservice.ranking.periods import last_complete
from geoservice.registry import BASE_LAYER, LayerRegistry
from geoservice.responsibility import coverage

log = logging.getLogger(__name__)
SCAN_LOCK = 7_318_001  # pg advisory lock key of the trigger scans
SNAPSHOT_TASK = "geoservice.rankings.snapshot"
COVERAGE_TASK = "geoservice.coverage.refresh"
# Jobs at once in the worker process: the snapshot and coverage tasks' threads and the event
# loop's deliveries and scans (whose coroutines never yield: they still run one at a time).
WORKER_CONCURRENCY = 3
# On SIGTERM, the jobs in hand get a delivery's timeout and this long; then a snapshot run
# stops after the period it is building.
STOP_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerSettings:
    base_url: str = ""
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    max_attempts: int = 8
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 5.0
    deadline_hours: float = 4.0
    escalation_hours: tuple[float, ...] = (0.0, 24.0, 72.0)
    escalation_max_days: float = 14.0
    digest_hour: int = 8
    patrol_due_hours: float = 6.0  # field work (issue 16): reminder before a patrol is due
    # With both, the scan also creates the patrol tasks of the day's periods (field work): a
    # 点长 who never opens the field app still has tasks, so 巡查到位率 counts them as missed.
    registry: LayerRegistry | None = None
    field_settings: FieldSettings | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkerSettings:
        ladder = config.get("NOTIFY_ESCALATION_HOURS", cls.escalation_hours)
        if isinstance(ladder, str):
            ladder = [x for x in ladder.split(",") if x.strip()]
        return cls(
            base_url=str(config.get("PUBLIC_BASE_URL") or "").rstrip("/"),
            tz=ZoneInfo(config.get("TIMEZONE", "Asia/Shanghai")),
            max_attempts=int(config.get("NOTIFY_MAX_ATTEMPTS", cls.max_attempts)),
            backoff_seconds=float(config.get("NOTIFY_BACKOFF_SECONDS", cls.backoff_seconds)),
            backoff_max_seconds=float(
                config.get("NOTIFY_BACKOFF_MAX_SECONDS", cls.backoff_max_seconds)
            ),
            timeout_seconds=float(config.get("NOTIFY_TIMEOUT_SECONDS", cls.timeout_seconds)),
            poll_seconds=float(config.get("NOTIFY_POLL_SECONDS", cls.poll_seconds)),
            deadline_hours=float(config.get("NOTIFY_DEADLINE_HOURS", cls.deadline_hours)),
            escalation_hours=tuple(float(x) for x in ladder),
            escalation_max_days=float(
                config.get("NOTIFY_ESCALATION_MAX_DAYS", cls.escalation_max_days)
            ),
            digest_hour=int(config.get("NOTIFY_DIGEST_HOUR", cls.digest_hour)),
            patrol_due_hours=float(config.get("NOTIFY_PATROL_DUE_HOURS", cls.patrol_due_hours)),
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the n-th failed attempt: 30 s, 1 min, 2 min … at most an hour."""
        seconds = self.backoff_seconds * (2 ** max(attempts - 1, 0))
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))

    def retry_strategy(self) -> queue.DeliveryRetry:
        return queue.DeliveryRetry(self.max_attempts, self.backoff)


# --- rendering ------------------------------------------------------------------------------


def _local(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return "未设定"
    return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def render(kind: str, subject: str, data: Mapping[str, Any], settings: WorkerSettings) -> str:
    """The text of a person's message (Chinese), with the link to where they act."""
    link = settings.base_url + data["link"] if data.get("link") else None
    lines = [subject]
    if kind == "digest":
        for item in data.get("items", []):
            where = f" {settings.base_url}{item['link']}" if item.get("link") else ""
            lines.append(f"· {item.get('subject')}{where}")
    elif kind == "bulletin":
        if data.get("rank") is not None:
            lines.append(f"综合得分 {data.get('score')}，排名 {data['rank']}/{data.get('total')}")
        else:
            lines.append("本期无可排名的数据")
        lines.append(
            f"受理 {data.get('received')} 件，结案 {data.get('closed')} 件，"
            f"期末超期 {data.get('overdue_end')} 件"
        )
        if data.get("flags"):
            lines.append("被通报：" + "、".join(data["flags"]))
    elif kind in ("patrol_due", "patrol_overdue"):
        lines.append(f"地点：{data.get('places')}")
        lines.append("请到现场巡查打卡（巡查中什么问题也没发现也要打卡）。")
    elif kind == "assessment_result":
        if data.get("score") is not None:
            lines.append(f"您包保点位的平均得分 {data['score']}")
        if data.get("failed"):
            lines.append(f"不合格点位：{data.get('failed_places')}（已生成问题，请按期整改）")
    else:
        if data.get("description"):
            lines.append(f"问题描述：{data['description']}")
        if data.get("place"):
            lines.append(f"地点：{data['place']}")
        if data.get("leader"):
            unit = f"（{data['unit']}）" if data.get("unit") else ""
            lines.append(f"责任领导：{data['leader']}{unit}")
        if data.get("status"):
            lines.append(f"当前状态：{status_label(data['status'])}")
        if kind in (*HANDOVER_KINDS, "deadline", "escalate"):
            lines.append(f"整改期限：{_local(data.get('deadline'), settings.tz)}")
        if kind == "escalate" and data.get("overdue_hours") is not None:
            lines.append(f"已超期 {data['overdue_hours']} 小时")
        if data.get("note"):
            lines.append(f"说明：{data['note']}")
    if link:
        lines.append(f"请处理：{link}")
    return "\n".join(lines)


# --- loading and recording -----------------------------------------------------------------

_LOAD = text(
    """
SELECT d.id, d.status, d.delivery_key, d.address, d.attempts, m.kind, m.subject, m.data,
       m.leader_id, COALESCE(c.kind, 'callback') AS channel_kind,
       COALESCE(c.config, '{}'::jsonb) AS config,
       CASE WHEN c.id IS NOT NULL THEN c.secrets
            ELSE jsonb_build_object('secret', ic.secret) END AS secrets,
       p.quiet_start, p.quiet_end, COALESCE(c.enabled, true) AS channel_enabled
FROM notify_deliveries d
JOIN notify_messages m ON m.id = d.message_id
LEFT JOIN notify_channels c ON c.id = d.channel_id
LEFT JOIN integration_callbacks ic ON ic.user_id = d.callback_user_id
LEFT JOIN notify_preferences p ON p.leader_id = m.leader_id
WHERE d.id = :id
FOR UPDATE OF d"""
)

SENDABLE = ("pending", "sending")  # anything else is done with (or waits for the digest)


@dataclass(frozen=True)
class Loaded:
    outgoing: Outgoing
    attempts: int
    quiet: tuple[time, time] | None
    channel_enabled: bool = True


def load(session: Session, settings: WorkerSettings, delivery_id: int) -> Loaded | None:
    """The delivery, row-locked until the caller commits; None if it is not to be sent."""
    row = session.execute(_LOAD, {"id": delivery_id}).mappings().one_or_none()
    if row is None or row["status"] not in SENDABLE:
        return None
    data = row["data"] or {}
    link = settings.base_url + data["link"] if data.get("link") else None
    outgoing = Outgoing(
        delivery_id=row["id"],
        delivery_key=row["delivery_key"],
        kind=row["kind"],
        subject=row["subject"],
        text=render(row["kind"], row["subject"], data, settings),
        link=link,
        address=row["address"],
        data=data,
        channel_kind=row["channel_kind"],
        config=row["config"] or {},
        secrets=row["secrets"] or {},
    )
    quiet = None
    if row["quiet_start"] is not None and row["quiet_end"] is not None:
        quiet = (row["quiet_start"], row["quiet_end"])
    return Loaded(outgoing, row["attempts"], quiet, row["channel_enabled"])


def quiet_until(quiet: tuple[time, time] | None, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The end of the person's quiet hours if `now` falls in them (they may span midnight)."""
    if quiet is None:
        return None
    start, end = quiet
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    inside = (start <= t < end) if start <= end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if (start <= end or t < end) else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def _record(session: Session, delivery_id: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    session.execute(
        text(
            f"UPDATE notify_deliveries SET {sets}, locked_until = NULL, updated_at = now()"
            " WHERE id = :id"
        ),
        {"id": delivery_id, **values},
    )
    session.commit()


def process(
    session: Session,
    settings: WorkerSettings,
    delivery_id: int,
    clock: Callable[[], datetime],
) -> str:
    """One delivery job: send the delivery once and record the outcome. Returns "delivered",
    "dead", "quiet" (put off to the end of the person's quiet hours) or "skipped" (nothing to
    do); raises queue.RetryLater after a failed attempt that gets another one."""
    now = clock()
    job = load(session, settings, delivery_id)
    if job is None:
        session.commit()
        return "skipped"
    out = job.outgoing
    if not job.channel_enabled:  # 停用: nothing more goes out on it (replay once re-enabled)
        _record(session, delivery_id, status="dead", last_error="渠道已停用，未发送")
        return "dead"
    wait = quiet_until(job.quiet, now, settings.tz) if out.channel_kind != "callback" else None
    if wait is not None:  # not an attempt: the job runs again when the quiet hours end
        _record(session, delivery_id, status="pending", next_attempt_at=wait)
        raise queue.RetryLater("quiet hours", wait, quiet=True)
    attempts = job.attempts + 1
    # Committed before sending: the row lock is not held over the network.
    _record(session, delivery_id, status="sending", attempts=attempts)
    strategy = settings.retry_strategy()
    try:
        send(out, settings.timeout_seconds)
    except Exception as exc:
        if isinstance(exc, DeliveryError):
            error, permanent = str(exc), exc.permanent
        else:  # a bug in a sender must not lose the delivery
            log.exception("delivery %s crashed", delivery_id)
            error, permanent = f"内部错误：{exc.__class__.__name__}", False
        retry_at = None if permanent else strategy.next_attempt(attempts, now)
        if retry_at is None:
            _record(session, delivery_id, status="dead", last_error=error)
            log.warning("delivery %s is a dead letter: %s", delivery_id, error)
            return "dead"
        _record(session, delivery_id, status="pending", last_error=error, next_attempt_at=retry_at)
        log.info("delivery %s failed (attempt %s): %s", delivery_id, attempts, error)
        raise queue.RetryLater(error, retry_at) from None
    _record(session, delivery_id, status="delivered", delivered_at=clock(), last_error=None)
    return "delivered"


def scan(session: Session, settings: WorkerSettings, now: datetime) -> dict[str, int]:
    """The time-driven triggers, by one worker at a time (advisory lock), committed."""
    got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SCAN_LOCK})
    if not got:
        session.rollback()
        return {}
    result = {
        "patrol_tasks": _patrol_tasks(session, settings, now),
        "deadline": triggers.deadline_reminders(session, settings.deadline_hours, now),
        "escalate": triggers.escalate(
            session, settings.escalation_hours, now, settings.escalation_max_days
        ),
        "digest": triggers.digest(session, settings.tz, settings.digest_hour, now),
        # field work (issue 16): patrols due / overdue, 测评 and 暗访 results
        "patrol_due": field_triggers.patrol_due(
            session, settings.patrol_due_hours, now, settings.tz
        ),
        "patrol_overdue": field_triggers.patrol_overdue(session, now, settings.tz),
        "assessment": field_triggers.assessment_results(session, now, settings.tz),
    }
    session.commit()
    if "patrol_tasks_day" in session.info:
        _tasks_made_for.add(session.info.pop("patrol_tasks_day"))
    return result


_tasks_made_for: set[date] = set()  # local days whose tasks this process has generated


def _patrol_tasks(session: Session, settings: WorkerSettings, now: datetime) -> int:
    """The patrol tasks of every schedule's period containing today (idempotent), once per
    local day and process."""
    if settings.registry is None or settings.field_settings is None:
        return 0
    today = now.astimezone(settings.tz).date()
    if today in _tasks_made_for:
        return 0
    made = patrols.generate_tasks(session, settings.registry, settings.field_settings, today)
    session.info["patrol_tasks_day"] = today  # remembered once the scan commits
    return made


# --- the procrastinate app ------------------------------------------------------------------


@dataclass
class Runtime:
    """What the tasks need, handed to them as the worker's additional context."""

    settings: WorkerSettings
    session: Callable[[], AbstractContextManager[Session]]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    counts: dict[str, int] = field(
        default_factory=lambda: {"delivered": 0, "retry": 0, "dead": 0, "quiet": 0}
    )


def _runtime(context: JobContext) -> Runtime:
    return context.additional_context["notify"]


async def deliver_task(context: JobContext, delivery_id: int) -> str:
    """The job of one delivery. A coroutine that does not yield: the send blocks the worker's
    event loop (at most NOTIFY_TIMEOUT_SECONDS), so the task and procrastinate's own queries
    never use one session from two threads. Run more worker processes for more throughput."""
    runtime = _runtime(context)
    with runtime.session() as session:
        try:
            outcome = process(session, runtime.settings, delivery_id, runtime.clock)
        except queue.RetryLater as exc:
            runtime.counts["quiet" if exc.quiet else "retry"] += 1
            raise
        except Exception:
            session.rollback()
            raise
    if outcome in runtime.counts:
        runtime.counts[outcome] += 1
    return outcome


async def scan_task(context: JobContext, timestamp: int) -> dict[str, int]:
    """Every minute (periodic): the triggers, and the jobs of dead workers back in the queue."""
    runtime = _runtime(context)
    with runtime.session() as session:
        try:
            result = scan(session, runtime.settings, runtime.clock())
        except Exception:
            session.rollback()
            log.exception("notification scans failed")
            result = {}
    await retry_stalled(context.app.job_manager)
    return result


async def retry_stalled(manager: procrastinate.manager.JobManager) -> int:
    """Puts the jobs of dead workers (no heartbeat for 30 s) back in the queue: a delivery
    they held, and a ranking snapshot run, whose procrastinate lock would otherwise keep every
    later run waiting."""
    stalled = list(await manager.get_stalled_jobs(queue=queue.QUEUE))
    for job in stalled:
        log.warning("job %s (%s %s) stalled: retried", job.id, job.task_name, job.task_kwargs)
        await manager.retry_job(job)
    return len(stalled)


def rankings_snapshot(
    session: Session,
    settings: WorkerSettings,
    now: datetime,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict:
    """The ranking snapshots of the last closed periods of each kind (snapshot.KEPT_PERIODS:
    eight weeks, eight months, the quarter), each built when missing or no longer current
    (ranking.ensure_snapshot: seconds for a week at demo scale, about three times that for a
    month) and committed on its own, the most recent first; then the snapshots of other
    periods that ended more than snapshot.KEEP_WEEKS weeks before the last week's end dropped.
    `week`, `month`, `quarter`: what was done for the last one; `built`: how many were built.
    `should_stop` is asked before each period: when it answers yes, the run ends there
    (`stopped`; nothing dropped) and the next one goes on. Needs the layers
    (`settings.registry`)."""
    if settings.registry is None:
        return {}
    today = now.astimezone(settings.tz).date()
    done: dict[str, Any] = {"built": 0}
    kept = []
    for kind, count in snapshot.KEPT_PERIODS.items():
        last = last_complete(kind, today, settings.tz)
        for period in (last.previous(n) for n in range(count)):
            if should_stop():
                return {**done, "stopped": True}
            result = ranking.ensure_snapshot(session, settings.registry, period)
            session.commit()
            done["built"] += result["built"]
            done.setdefault(kind, result)
            kept.append((period.start, period.end))
    week_end = last_complete("week", today, settings.tz).end
    done["dropped"] = snapshot.prune(session, week_end - timedelta(weeks=snapshot.KEEP_WEEKS), kept)
    session.commit()
    return done


def snapshot_task(context: JobContext, timestamp: int) -> dict:
    """Every hour (periodic): `rankings_snapshot`. A plain function, so procrastinate runs it
    in a thread of its own (on its own session) while deliveries go on in the event loop: the
    first run after an upgrade builds seventeen snapshots (minutes at city scale). A stopping
    worker ends it between two periods (`context.should_abort`)."""
    runtime = _runtime(context)
    with runtime.session() as session:
        try:
            return rankings_snapshot(
                session, runtime.settings, runtime.clock(), context.should_abort
            )
        except Exception:
            session.rollback()
            log.exception("ranking snapshot failed")
            return {}


def coverage_task(context: JobContext, timestamp: int) -> dict:
    """Every minute (periodic): the coverage audit computed again when the layers, areas,
    leaders or assignments it reads have changed (geoservice.responsibility.coverage.refresh),
    in a thread of its own like the snapshots, so that the home page and the coverage page
    after a write find it done instead of waiting 10–13 s for a city's audit."""
    runtime = _runtime(context)
    if runtime.settings.registry is None:
        return {}
    with runtime.session() as session:
        try:
            computed = coverage.refresh(session, runtime.settings.registry, BASE_LAYER)
            session.rollback()  # read only
            return {"computed": computed}
        except Exception:
            session.rollback()
            log.exception("coverage audit failed")
            return {}


def build_app(
    connector: procrastinate.connector.BaseConnector,
    settings: WorkerSettings,
    periodic: bool = False,
) -> procrastinate.App:
    """A procrastinate app with our task(s), its retry strategy from `settings`."""
    app = procrastinate.App(connector=connector)
    app.task(
        name=queue.DELIVER_TASK,
        queue=queue.QUEUE,
        pass_context=True,
        retry=settings.retry_strategy(),
    )(deliver_task)
    if periodic:
        task = app.task(name=queue.SCAN_TASK, queue=queue.QUEUE, pass_context=True)(scan_task)
        app.periodic(cron="* * * * *", periodic_id="scan")(task)
        for name, run, cron, periodic_id in (
            (SNAPSHOT_TASK, snapshot_task, "5 * * * *", "rankings_snapshot"),
            (COVERAGE_TASK, coverage_task, "* * * * *", "coverage_refresh"),
        ):
            # `lock`: one run at a time; `queueing_lock`: at most one more waiting, so a run
            # longer than its interval (a city's first snapshots, a province's audit) piles up
            # no jobs.
            long_task = app.task(
                name=name, queue=queue.QUEUE, pass_context=True, lock=name, queueing_lock=name
            )(run)
            app.periodic(cron=cron, periodic_id=periodic_id)(long_task)
    return app


def deliver(
    session: Session,
    settings: WorkerSettings,
    clock: Callable[[], datetime] | None = None,
) -> dict[str, int]:
    """Runs procrastinate's worker on this session's connection until no delivery job is
    due (`wait=False`), and counts the outcomes. For `--once` and the tests."""

    @contextmanager
    def same_session() -> Iterator[Session]:
        yield session

    runtime = Runtime(settings, same_session, clock or (lambda: datetime.now(UTC)))
    app = build_app(queue.SessionConnector(session), settings)
    app.run_worker(
        queues=[queue.QUEUE],
        wait=False,
        listen_notify=False,
        install_signal_handlers=False,
        delete_jobs="successful",
        additional_context={"notify": runtime},
    )
    session.commit()
    return runtime.counts


def run_once(session: Session, settings: WorkerSettings, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    return {"scan": scan(session, settings, now), **deliver(session, settings)}


# --- the process ----------------------------------------------------------------------------


class QuietRetries(logging.Filter):
    """Procrastinate logs every failed job with its traceback; a RetryLater is an expected
    outcome (logged by `process` in one line): its traceback is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], queue.RetryLater):
            record.exc_info = None
            record.exc_text = None
        return True


def psycopg_conninfo(url: URL) -> str:
    """libpq's URI of the SQLAlchemy URL (procrastinate's worker connects with psycopg 3)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def worker_options(settings: WorkerSettings) -> dict[str, Any]:
    """procrastinate's worker options of the process."""
    return {
        "queues": [queue.QUEUE],
        "name": "notifications",
        "fetch_job_polling_interval": settings.poll_seconds,
        "delete_jobs": "successful",
        "concurrency": WORKER_CONCURRENCY,
        "shutdown_graceful_timeout": settings.timeout_seconds + STOP_MARGIN_SECONDS,
    }


def run(url: URL, session_factory: Callable[[], Session], settings: WorkerSettings) -> None:
    """The worker process: procrastinate's worker on the `notifications` queue, woken by
    procrastinate's NOTIFY when a transaction with new jobs commits (and polling every
    NOTIFY_POLL_SECONDS for retries that fall due); the scans every minute. SIGTERM/SIGINT
    stop it after the job in hand (procrastinate's signal handlers)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=psycopg_conninfo(url), min_size=1, max_size=4
    )
    app = build_app(connector, settings, periodic=True)
    runtime = Runtime(settings, session_factory)
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietRetries())
    log.info("notifications worker started")
    try:
        app.run_worker(**worker_options(settings), additional_context={"notify": runtime})
    finally:
        log.info("notifications worker stopped")
