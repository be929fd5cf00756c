"""Notifications: a durable outbox of messages written with the issue events that cause them,
a worker that delivers them (e-mail, 企业微信/钉钉 robots, signed webhooks, SMS, integration
callbacks) with retries, back-off and dead letters, the time-driven triggers (deadline
reminders, the escalation ladder, the daily digest), and Open311 GeoReport v2 for hotlines.

Modules: models (tables), outbox (the hook and the queue's figures), queue (the procrastinate
job queue: deferral in the caller's transaction, retry strategy), channels (senders), worker
(the delivery task, procrastinate's worker process), triggers (time-driven messages), manage
(channel settings, preferences, dead letters: admin services), open311 (the hotline interface).
Services take a session and plain values; the edges are geoservice.api.notifications,
geoservice.api.open311, geoservice.web.notifications and geoservice.cli.notifications.

May import: ranking and every domain package below it, plumbing; never an edge.
Contracts: .importlinter.
"""

from __future__ import annotations

from geoservice.notifications import models  # noqa: F401  (tables on Base.metadata)


def init_app(app) -> None:
    """Installs the outbox hook (once per process); the worker's commands are geoservice.cli's."""
    from geoservice.notifications import outbox

    outbox.install()
