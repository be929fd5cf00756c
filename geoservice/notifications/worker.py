"""The delivery worker: claims due deliveries with `FOR UPDATE SKIP LOCKED` (so any number
of workers share the queue without sending one delivery twice at once), sends them outside
any transaction, and records the outcome: delivered; or back to the queue with exponential
back-off; or, after the last attempt (or a permanent failure), a dead letter admins see and
may replay. A claim is a lease (`locked_until`): a worker that dies mid-send leaves the
delivery to be claimed again when the lease ends. Delivery is at least once; every channel
carries the delivery key (webhook header, e-mail Message-ID) so a receiver can drop a
repeat, and a delivery recorded as delivered is never sent again.

The worker also runs the time-driven triggers (deadline reminders, the escalation ladder, the
daily digest; geoservice.notifications.triggers) at most once per `scan_seconds`, under an
advisory lock so two workers never run them at once.
"""

from __future__ import annotations

import logging
import select as select_module
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from geoservice.issues.workflow import status_label
from geoservice.notifications import triggers
from geoservice.notifications.channels import DeliveryError, Outgoing, send
from geoservice.notifications.outbox import CHANNEL

log = logging.getLogger(__name__)
SCAN_LOCK = 7_318_001  # pg advisory lock key of the trigger scans


@dataclass(frozen=True)
class WorkerSettings:
    base_url: str = ""
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    max_attempts: int = 8
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    lease_seconds: float = 120.0
    batch: int = 20
    poll_seconds: float = 5.0
    scan_seconds: float = 60.0
    deadline_hours: float = 4.0
    escalation_hours: tuple[float, ...] = (0.0, 24.0, 72.0)
    escalation_max_days: float = 14.0
    digest_hour: int = 8

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
            lease_seconds=float(config.get("NOTIFY_LEASE_SECONDS", cls.lease_seconds)),
            batch=int(config.get("NOTIFY_BATCH", cls.batch)),
            poll_seconds=float(config.get("NOTIFY_POLL_SECONDS", cls.poll_seconds)),
            scan_seconds=float(config.get("NOTIFY_SCAN_SECONDS", cls.scan_seconds)),
            deadline_hours=float(config.get("NOTIFY_DEADLINE_HOURS", cls.deadline_hours)),
            escalation_hours=tuple(float(x) for x in ladder),
            escalation_max_days=float(
                config.get("NOTIFY_ESCALATION_MAX_DAYS", cls.escalation_max_days)
            ),
            digest_hour=int(config.get("NOTIFY_DIGEST_HOUR", cls.digest_hour)),
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the n-th failed attempt: 30 s, 1 min, 2 min … at most an hour."""
        seconds = self.backoff_seconds * (2 ** max(attempts - 1, 0))
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))


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
            lines.append(f"· {item.get('subject')}")
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
        if kind in ("dispatch", "redispatch", "deadline", "escalate"):
            lines.append(f"整改期限：{_local(data.get('deadline'), settings.tz)}")
        if kind == "escalate" and data.get("overdue_hours") is not None:
            lines.append(f"已超期 {data['overdue_hours']} 小时")
        if data.get("note"):
            lines.append(f"说明：{data['note']}")
    if link:
        lines.append(f"请处理：{link}")
    return "\n".join(lines)


# --- claiming and recording -----------------------------------------------------------------

_CLAIM = text(
    """
WITH due AS (
  SELECT id FROM notify_deliveries
  WHERE (status = 'pending' AND next_attempt_at <= :now)
     OR (status = 'sending' AND locked_until < :now)
  ORDER BY next_attempt_at, id
  LIMIT :limit
  FOR UPDATE SKIP LOCKED
)
UPDATE notify_deliveries d
SET status = 'sending', attempts = d.attempts + 1, locked_until = :lease, updated_at = now()
FROM due WHERE d.id = due.id
RETURNING d.id"""
)

_LOAD = text(
    """
SELECT d.id, d.delivery_key, d.address, d.attempts, m.kind, m.subject, m.data, m.leader_id,
       COALESCE(c.kind, 'callback') AS channel_kind,
       COALESCE(c.config, '{}'::jsonb) AS config,
       CASE WHEN c.id IS NOT NULL THEN c.secrets
            ELSE jsonb_build_object('secret', ic.secret) END AS secrets,
       p.quiet_start, p.quiet_end
FROM notify_deliveries d
JOIN notify_messages m ON m.id = d.message_id
LEFT JOIN notify_channels c ON c.id = d.channel_id
LEFT JOIN integration_callbacks ic ON ic.user_id = d.callback_user_id
LEFT JOIN notify_preferences p ON p.leader_id = m.leader_id
WHERE d.id = ANY(:ids) ORDER BY d.id"""
)


@dataclass(frozen=True)
class Job:
    outgoing: Outgoing
    attempts: int
    quiet: tuple[time, time] | None


def claim(session: Session, settings: WorkerSettings, now: datetime) -> list[Job]:
    """Takes up to `batch` due deliveries (lease until now + lease_seconds) and commits."""
    ids = session.scalars(
        _CLAIM,
        {
            "now": now,
            "limit": settings.batch,
            "lease": now + timedelta(seconds=settings.lease_seconds),
        },
    ).all()
    jobs = []
    if ids:
        for row in session.execute(_LOAD, {"ids": list(ids)}).mappings():
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
            jobs.append(Job(outgoing, row["attempts"], quiet))
    session.commit()
    return jobs


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
            " WHERE id = :id AND status = 'sending'"
        ),
        {"id": delivery_id, **values},
    )
    session.commit()


def deliver(
    session: Session,
    settings: WorkerSettings,
    now: datetime | None = None,
    clock: Callable[[], datetime] | None = None,
) -> dict[str, int]:
    """One round: claim a batch, send each, record each. Counts by outcome."""
    clock = clock or (lambda: datetime.now(UTC))
    now = now or clock()
    counts = {"delivered": 0, "retry": 0, "dead": 0, "quiet": 0}
    for job in claim(session, settings, now):
        out = job.outgoing
        wait = quiet_until(job.quiet, now, settings.tz) if out.channel_kind != "callback" else None
        if wait is not None:  # not an attempt: back in the queue until the quiet hours end
            _record(
                session,
                out.delivery_id,
                status="pending",
                next_attempt_at=wait,
                attempts=job.attempts - 1,
            )
            counts["quiet"] += 1
            continue
        try:
            send(out, settings.timeout_seconds)
        except DeliveryError as exc:
            if exc.permanent or job.attempts >= settings.max_attempts:
                _record(session, out.delivery_id, status="dead", last_error=str(exc))
                counts["dead"] += 1
                log.warning("delivery %s is a dead letter: %s", out.delivery_id, exc)
            else:
                _record(
                    session,
                    out.delivery_id,
                    status="pending",
                    last_error=str(exc),
                    next_attempt_at=now + settings.backoff(job.attempts),
                )
                counts["retry"] += 1
                log.info("delivery %s failed (attempt %s): %s", out.delivery_id, job.attempts, exc)
            continue
        except Exception as exc:  # a bug in a sender must not stop the worker
            log.exception("delivery %s crashed", out.delivery_id)
            _record(
                session,
                out.delivery_id,
                status="pending",
                last_error=f"内部错误：{exc.__class__.__name__}",
                next_attempt_at=now + settings.backoff(job.attempts),
            )
            counts["retry"] += 1
            continue
        _record(session, out.delivery_id, status="delivered", delivered_at=clock(), last_error=None)
        counts["delivered"] += 1
    return counts


def scan(session: Session, settings: WorkerSettings, now: datetime) -> dict[str, int]:
    """The time-driven triggers, by one worker at a time (advisory lock), committed."""
    got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SCAN_LOCK})
    if not got:
        session.rollback()
        return {}
    result = {
        "deadline": triggers.deadline_reminders(session, settings.deadline_hours, now),
        "escalate": triggers.escalate(
            session, settings.escalation_hours, now, settings.escalation_max_days
        ),
        "digest": triggers.digest(session, settings.tz, settings.digest_hour, now),
    }
    session.commit()
    return result


def run_once(
    session: Session, settings: WorkerSettings, now: datetime | None = None
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    return {"scan": scan(session, settings, now), **deliver(session, settings, now)}


# --- the process ----------------------------------------------------------------------------


class _Wake(Exception):
    pass


class Stop:
    """SIGTERM/SIGINT: finish the delivery in hand; a worker waiting for work stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self.waiting = False

    def __call__(self, *_: Any) -> None:
        self.requested = True
        if self.waiting:
            raise _Wake


def run_forever(
    engine: Engine, session_factory: Callable[[], Session], settings: WorkerSettings
) -> None:
    """The worker process: deliver until nothing is due, then wait for a NOTIFY (or the poll
    interval); run the scans every scan_seconds. SIGTERM/SIGINT stop it after the current
    delivery."""
    stop = Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = engine.raw_connection()
    listener.set_isolation_level(0)  # autocommit, for LISTEN
    cursor = listener.cursor()
    cursor.execute(f"LISTEN {CHANNEL}")
    last_scan = datetime.min.replace(tzinfo=UTC)
    log.info("notifications worker started")
    try:
        while not stop.requested:
            busy = False
            with session_factory() as session:
                now = datetime.now(UTC)
                if (now - last_scan).total_seconds() >= settings.scan_seconds:
                    try:
                        scan(session, settings, now)
                    except Exception:
                        session.rollback()
                        log.exception("notification scans failed")
                    last_scan = now
                counts = deliver(session, settings)
                busy = sum(counts.values()) >= settings.batch
            if busy or stop.requested:
                continue
            dbapi = listener.driver_connection
            try:
                stop.waiting = True
                if stop.requested:
                    break
                ready, _, _ = select_module.select([dbapi], [], [], settings.poll_seconds)
            except _Wake:
                break
            finally:
                stop.waiting = False
            if ready:
                dbapi.poll()
                dbapi.notifies.clear()
    finally:
        listener.close()
        log.info("notifications worker stopped")
