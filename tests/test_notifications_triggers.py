"""Time-driven messages: a deadline reminder before the deadline, the escalation ladder on an
overdue issue (leader → unit head → 联点领导/分管领导, each step an event on the issue), the
daily digest instead of one message per issue. Times derive from "now", never the calendar."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text

from geoservice.notifications import manage
from geoservice.notifications.worker import scan
from tests import notify_support
from tests.notify_support import deliver, deliveries, worker_settings

scene, receivers = notify_support.scene, notify_support.receivers  # fixtures


def robot(session, receiver):
    manage.save_channel(
        session,
        {
            "kind": "webhook",
            "name": "督办",
            "config": {"url": receiver.url},
            "secrets": {"secret": "k" * 16},
        },
    )


def escalations(session, issue_id):
    return session.execute(
        text(
            "SELECT note, data FROM issue_events WHERE issue_id = :id"
            " AND data->>'action' = 'escalate' ORDER BY (data->>'step')::int"
        ),
        {"id": issue_id},
    ).all()


def test_the_escalation_ladder_on_a_constructed_overdue_issue(client, scene, receivers):
    s = scene.session
    receiver = receivers(200)
    robot(s, receiver)
    manage.set_unit_contacts(s, scene.unit.id, None, scene.leaders["supervisor"].id)
    now = datetime.now(UTC)
    deadline = now - timedelta(hours=1)
    issue = scene.issue(status="dispatched", deadline=deadline)
    settings = worker_settings(escalation_hours=(0, 24, 72))

    scan(s, settings, now)  # 1 h overdue: step 1 only
    steps = escalations(s, issue.id)
    assert [e.data["step"] for e in steps] == ["1"]
    assert steps[0].data["notify"] == [scene.leaders["leader"].id]
    assert "张网格" in steps[0].note
    scan(s, settings, now + timedelta(minutes=5))  # nothing new: idempotent
    assert len(escalations(s, issue.id)) == 1

    scan(s, settings, deadline + timedelta(hours=25))  # step 2: the unit's head
    steps = escalations(s, issue.id)
    assert [e.data["step"] for e in steps] == ["1", "2"]
    assert steps[1].data["notify"] == [scene.leaders["head"].id] and "周主任" in steps[1].note

    scan(s, settings, deadline + timedelta(hours=73))
    steps = escalations(s, issue.id)
    assert [e.data["step"] for e in steps] == ["1", "2", "3"]
    assert steps[2].data["notify"] == [scene.leaders["supervisor"].id]
    assert "联点领导" in steps[2].note and "吴副县长" in steps[2].note

    rows = deliveries(s)
    assert [(r.kind, r.leader_id) for r in rows] == [
        ("escalate", scene.leaders["leader"].id),
        ("escalate", scene.leaders["head"].id),
        ("escalate", scene.leaders["supervisor"].id),
    ]
    assert deliver(s, settings, deadline + timedelta(hours=74))["delivered"] == 3
    texts = [h.json()["text"] for h in receiver.hits]
    assert "【超期提醒·第3级】" in texts[2] and f"/issues/{issue.id}" in texts[2]
    # The timeline shows every step.
    detail = client.get(f"/api/issues/{issue.id}", headers=scene.headers("planner")).get_json()
    notes = [e["note"] for e in detail["properties"]["timeline"]]
    assert sum("超期第" in n for n in notes) == 3


def test_a_step_with_nobody_to_tell_still_shows_on_the_issue(scene):
    s = scene.session
    now = datetime.now(UTC)
    issue = scene.issue(status="in_progress", deadline=now - timedelta(hours=30))
    scene.leaders["head"].is_unit_head = False
    s.flush()
    scan(s, worker_settings(escalation_hours=(0, 24)), now)
    steps = escalations(s, issue.id)
    assert [e.data["step"] for e in steps] == ["1", "2"]
    assert steps[1].data["notify"] == [] and "未设置单位负责人" in steps[1].note


def test_a_redispatch_starts_the_ladder_again(client, scene):
    s = scene.session
    now = datetime.now(UTC)
    issue = scene.issue(status="dispatched", deadline=now - timedelta(hours=2))
    scan(s, worker_settings(), now)
    assert len(escalations(s, issue.id)) == 1
    response = client.post(
        f"/api/issues/{issue.id}/transitions",
        json={"to": "dispatched", "leader_id": scene.leaders["other"].id, "note": "换人"},
        headers=scene.headers("planner"),
    )
    assert response.status_code == 200, response.get_json()
    s.expire_all()
    # 改派 keeps the running deadline (issue 17): the issue is still overdue, and the new
    # leader is told from the first step of the ladder, not from where the last one stopped.
    kept = s.scalar(text("SELECT deadline FROM issues WHERE id = :id"), {"id": issue.id})
    assert kept == issue.deadline
    scan(s, worker_settings(), now + timedelta(minutes=1))
    assert [e.data["step"] for e in escalations(s, issue.id)] == ["1", "1"]


def test_closed_fixed_and_in_time_issues_are_not_escalated(scene):
    s = scene.session
    now = datetime.now(UTC)
    closed = scene.issue(status="closed", deadline=now - timedelta(hours=5))
    fixed = scene.issue(status="fixed", deadline=now - timedelta(hours=5))  # awaits 复核
    in_time = scene.issue(status="dispatched", deadline=now + timedelta(hours=5))
    scan(s, worker_settings(deadline_hours=4), now)
    stale = scene.issue(status="dispatched", deadline=now - timedelta(days=30))
    for issue in (closed, fixed, in_time, stale):
        assert escalations(s, issue.id) == []


def test_a_deadline_reminder_comes_once_before_the_deadline(scene, receivers):
    s = scene.session
    robot(s, receivers(200))
    now = datetime.now(UTC)
    soon = scene.issue(status="in_progress", deadline=now + timedelta(hours=3))
    later = scene.issue(status="dispatched", deadline=now + timedelta(hours=30))
    settings = worker_settings(deadline_hours=4)
    scan(s, settings, now)
    scan(s, settings, now + timedelta(minutes=30))
    rows = [r for r in deliveries(s) if r.kind == "deadline"]
    assert len(rows) == 1 and rows[0].data["issue_id"] == soon.id
    assert rows[0].subject.startswith("【即将到期】")
    assert all(r.data["issue_id"] != later.id for r in rows)


def test_the_daily_digest_replaces_single_messages(client, scene, receivers):
    s = scene.session
    receiver = receivers(200)
    robot(s, receiver)
    manage.save_preference(s, scene.leaders["leader"].id, {"digest": True})
    for _ in range(3):
        response = client.post(
            f"/api/issues/{scene.issue().id}/transitions",
            json={"to": "dispatched", "leader_id": scene.leaders["leader"].id},
            headers=scene.headers("planner"),
        )
        assert response.status_code == 200
    assert {r.status for r in deliveries(s)} == {"held"}
    # Far from its deadline whatever the hour the suite runs at: the days scanned below must
    # not bring deadline reminders or escalations, which are never held for the digest.
    s.execute(text("UPDATE issues SET deadline = now() + interval '30 days'"))
    settings = worker_settings(digest_hour=8)
    assert deliver(s, settings)["delivered"] == 0  # held: nothing goes out one by one
    today = datetime.now(settings.tz).date() + timedelta(days=1)
    early = datetime.combine(today, time(6), tzinfo=settings.tz).astimezone(UTC)
    assert scan(s, settings, early)["digest"] == 0  # before the digest hour
    at_eight = datetime.combine(today, time(8, 5), tzinfo=settings.tz).astimezone(UTC)
    assert scan(s, settings, at_eight)["digest"] == 1
    assert scan(s, settings, at_eight + timedelta(minutes=10))["digest"] == 0
    assert deliver(s, settings, at_eight)["delivered"] == 1
    (hit,) = receiver.hits
    body = hit.json()
    assert body["kind"] == "digest" and "3 条" in body["subject"]
    assert body["text"].count("【交办】") == 3
    assert {r.status for r in deliveries(s) if r.kind == "dispatch"} == {"digested"}
    # Later the same day: held until tomorrow's digest.
    response = client.post(
        f"/api/issues/{scene.issue().id}/transitions",
        json={"to": "dispatched", "leader_id": scene.leaders["leader"].id},
        headers=scene.headers("planner"),
    )
    assert response.status_code == 200
    assert scan(s, settings, at_eight + timedelta(hours=3))["digest"] == 0
    assert scan(s, settings, at_eight + timedelta(days=1))["digest"] == 1


def test_a_message_held_after_the_digest_hour_waits_for_the_next_days_digest(
    client, scene, receivers
):
    """The first message of a day that comes after 08:00 is not sent within the minute as a
    digest of one: it waits for tomorrow's 08:00."""
    s = scene.session
    robot(s, receivers(200))
    manage.save_preference(s, scene.leaders["leader"].id, {"digest": True})
    response = client.post(
        f"/api/issues/{scene.issue().id}/transitions",
        json={"to": "dispatched", "leader_id": scene.leaders["leader"].id},
        headers=scene.headers("planner"),
    )
    assert response.status_code == 200
    s.execute(text("UPDATE issues SET deadline = now() + interval '30 days'"))
    settings = worker_settings(digest_hour=8)
    day = datetime.now(settings.tz).date() + timedelta(days=2)
    ten = datetime.combine(day, time(10), tzinfo=settings.tz).astimezone(UTC)
    s.execute(text("UPDATE notify_messages SET created_at = :t"), {"t": ten})
    assert scan(s, settings, ten + timedelta(minutes=1))["digest"] == 0
    next_morning = datetime.combine(day + timedelta(days=1), time(8, 5), tzinfo=settings.tz)
    assert scan(s, settings, next_morning.astimezone(UTC))["digest"] == 1
    digest = s.execute(text("SELECT data FROM notify_messages WHERE kind = 'digest'")).scalar_one()
    assert digest["link"] == "/issues?view=open"
    assert all(item["link"].startswith("/issues/") for item in digest["items"])
