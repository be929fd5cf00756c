"""The outbox: messages are written in the transaction of the issue event that causes them,
and the worker delivers each exactly once, retrying with back-off, dead-lettering what never
goes through, without ever blocking the request that caused it."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from geoservice.issues.workflow import IssueSettings, transition
from geoservice.notifications import manage, queue
from geoservice.notifications.outbox import queue_health
from tests import notify_support
from tests.notify_support import deliver, deliveries, jobs, worker_settings

scene, receivers = notify_support.scene, notify_support.receivers  # fixtures

SECRET = "hook-secret-123"


def webhook(session, url: str, **extra):
    return manage.save_channel(
        session,
        {
            "kind": "webhook",
            "name": f"webhook {url}",
            "config": {"url": url},
            "secrets": {"secret": SECRET},
            **extra,
        },
    )


def dispatch(client, scene, issue, leader_id=None):
    return client.post(
        f"/api/issues/{issue.id}/transitions",
        json={"to": "dispatched", "leader_id": leader_id or scene.leaders["leader"].id},
        headers=scene.headers("planner"),
    )


def test_a_dispatch_writes_its_messages_in_the_same_transaction(app, scene, receivers):
    s = scene.session
    webhook(s, receivers().url)
    issue = scene.issue()
    settings = IssueSettings.from_config(app.config)
    planner = scene.accounts["planner"][0]
    savepoint = s.begin_nested()
    transition(s, settings, issue.id, "dispatched", planner, leader_id=scene.leaders["leader"].id)
    (row,) = deliveries(s)  # written by the event's own flush
    # ... and so is its job on the procrastinate queue, on the same connection.
    (job,) = jobs(s)
    assert job.delivery_id == row.id and job.status == "todo" and job.lock == f"delivery:{row.id}"
    savepoint.rollback()  # the event is undone: so are its message and its job
    assert deliveries(s) == [] and jobs(s) == []
    assert s.scalar(text("SELECT count(*) FROM notify_messages")) == 0


def test_dispatch_reaches_the_leader_and_the_unit_contact_with_a_link(client, scene, receivers):
    s = scene.session
    receiver = receivers(200)
    webhook(s, receiver.url)
    manage.set_unit_contacts(s, scene.unit.id, scene.leaders["contact"].id, None)
    issue = scene.issue()
    assert dispatch(client, scene, issue).status_code == 200
    rows = deliveries(s)
    assert {r.leader_id for r in rows} == {scene.leaders["leader"].id, scene.leaders["contact"].id}
    assert {r.kind for r in rows} == {"dispatch"}
    counts = deliver(s, worker_settings())
    assert counts["delivered"] == 2
    bodies = [h.json() for h in receiver.hits]
    assert all(b["kind"] == "dispatch" for b in bodies)
    assert all(b["link"] == f"https://cw.example.gov.cn/issues/{issue.id}" for b in bodies)
    assert all("【交办】" in b["text"] and "垃圾桶满溢" in b["text"] for b in bodies)
    assert {b["recipient_mobile"] for b in bodies} >= {"13900000001"}


def test_a_granted_return_tells_the_new_holder(client, scene, receivers):
    s = scene.session
    receiver = receivers(200)
    webhook(s, receiver.url)
    issue = scene.issue()
    assert dispatch(client, scene, issue).status_code == 200
    returned = client.post(
        f"/api/issues/{issue.id}/return",
        json={"reason": "不属于本网格"},
        headers=scene.headers("leader"),
    )
    assert returned.status_code == 201, returned.get_json()
    other = scene.leaders["other"].id
    granted = client.post(
        f"/api/issues/{issue.id}/return/decision",
        json={"grant": True, "leader_id": other, "note": "确权给教育局"},
        headers=scene.headers("planner"),
    )
    assert granted.status_code == 200, granted.get_json()
    told = [r for r in deliveries(s) if r.kind == "return_grant"]
    assert [r.leader_id for r in told] == [other]
    deliver(s, worker_settings())
    (body,) = [h.json() for h in receiver.hits if h.json()["kind"] == "return_grant"]
    assert "【确权交办】" in body["text"] and "整改期限" in body["text"]


def _verify(hit) -> bool:
    ts = hit.headers["X-Geoservice-Timestamp"]
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + hit.body, hashlib.sha256)
    return hit.headers["X-Geoservice-Signature"] == "sha256=" + expected.hexdigest()


def test_a_receiver_failing_twice_then_succeeding_gets_it_exactly_once(client, scene, receivers):
    s = scene.session
    receiver = receivers(500, 500, 200)
    webhook(s, receiver.url)
    issue = scene.issue()
    dispatch(client, scene, issue)
    settings = worker_settings(max_attempts=5)
    now = datetime.now(UTC)
    assert deliver(s, settings, now)["retry"] == 1
    (row,) = deliveries(s)
    assert row.status == "pending" and row.attempts == 1 and row.last_error == "HTTP 500"
    assert row.next_attempt_at == now + timedelta(seconds=30)
    # Procrastinate's retry strategy scheduled the job again for the same moment.
    (job,) = jobs(s)
    assert job.status == "todo" and job.attempts == 1 and job.scheduled_at == row.next_attempt_at
    # Not due yet: nothing is sent before the back-off has passed.
    assert deliver(s, settings, now + timedelta(seconds=10)) == {
        "delivered": 0,
        "retry": 0,
        "dead": 0,
        "quiet": 0,
    }
    assert deliver(s, settings, now + timedelta(seconds=31))["retry"] == 1
    (row,) = deliveries(s)
    assert row.next_attempt_at == now + timedelta(seconds=31 + 60)  # doubled
    assert deliver(s, settings, now + timedelta(seconds=92))["delivered"] == 1
    for later in (200, 5000, 100000):
        assert deliver(s, settings, now + timedelta(seconds=later))["delivered"] == 0
    assert len(receiver.hits) == 3 and len(receiver.succeeded()) == 1
    keys = {h.headers["X-Geoservice-Delivery"] for h in receiver.hits}
    assert len(keys) == 1  # the same idempotency key on every try
    assert all(_verify(h) for h in receiver.hits)
    (row,) = deliveries(s)
    assert row.status == "delivered" and row.attempts == 3 and row.delivered_at is not None
    assert jobs(s) == []  # a succeeded job is deleted: the outbox row is the record


def test_a_slow_receiver_never_blocks_the_request_and_ends_as_a_dead_letter(
    client, scene, receivers
):
    s = scene.session
    slow = receivers(("slow", 3, 200))
    webhook(s, slow.url)
    issue = scene.issue()
    started = time.monotonic()
    assert dispatch(client, scene, issue).status_code == 200
    assert time.monotonic() - started < 1.5  # the request never waits for a receiver
    assert slow.hits == []
    settings = worker_settings(max_attempts=2, timeout_seconds=0.3)
    now = datetime.now(UTC)
    assert deliver(s, settings, now)["retry"] == 1
    assert deliver(s, settings, now + timedelta(minutes=5))["dead"] == 1
    (row,) = deliveries(s)
    assert row.status == "dead" and "超时" in row.last_error
    assert queue_health(s)["dead_letters"] == 1


def test_a_receiver_that_is_down_is_retried_then_dead_and_replay_puts_it_back(
    client, scene, receivers
):
    s = scene.session
    down = receivers(200)
    url = down.url
    down.server.shutdown()
    down.server.server_close()  # nothing listens there any more
    webhook(s, url)
    dispatch(client, scene, scene.issue())
    settings = worker_settings(max_attempts=3)
    now = datetime.now(UTC)
    outcomes = [deliver(s, settings, now + timedelta(hours=h)) for h in (0, 1, 2)]
    assert [o["retry"] for o in outcomes] == [1, 1, 0] and outcomes[2]["dead"] == 1
    response = client.get(
        "/api/notifications/deliveries?status=dead", headers=scene.headers("admin")
    )
    assert response.status_code == 200
    (item,) = response.get_json()["deliveries"]
    assert item["status"] == "dead" and "无法连接" in item["last_error"]
    replay = client.post(
        "/api/notifications/deliveries/replay",
        json={"ids": [item["id"]]},
        headers=scene.headers("admin"),
    )
    assert replay.status_code == 200 and replay.get_json()["replayed"] == 1
    (row,) = deliveries(s)
    assert row.status == "pending" and row.attempts == 0
    # The replay deferred a new job (the dead letter's job had ended).
    assert [(j.delivery_id, j.status, j.attempts) for j in jobs(s)] == [(row.id, "todo", 0)]


def test_a_4xx_answer_is_a_dead_letter_at_once(client, scene, receivers):
    s = scene.session
    webhook(s, receivers(404).url)
    dispatch(client, scene, scene.issue())
    assert deliver(s, worker_settings(max_attempts=8))["dead"] == 1


def test_a_delivered_message_is_never_sent_again_by_a_second_worker(client, scene, receivers):
    s = scene.session
    receiver = receivers(200)
    webhook(s, receiver.url)
    dispatch(client, scene, scene.issue())
    settings = worker_settings()
    assert deliver(s, settings)["delivered"] == 1
    assert deliver(s, settings)["delivered"] == 0
    assert len(receiver.hits) == 1


def test_a_second_job_for_a_delivered_delivery_sends_nothing(client, scene, receivers):
    """Idempotent delivery: a job runs for a delivery (a repeat, a job of a worker that died
    after sending): the outbox row says delivered, so nothing is sent again."""
    s = scene.session
    receiver = receivers(200)
    webhook(s, receiver.url)
    dispatch(client, scene, scene.issue())
    assert deliver(s, worker_settings())["delivered"] == 1
    (row,) = deliveries(s)
    queue.defer(s, [row.id, row.id])
    assert len(jobs(s)) == 2
    assert deliver(s, worker_settings()) == {"delivered": 0, "retry": 0, "dead": 0, "quiet": 0}
    assert jobs(s) == [] and len(receiver.hits) == 1


def test_healthz_reports_the_queue(client, scene, receivers):
    s = scene.session
    webhook(s, receivers(200).url)
    dispatch(client, scene, scene.issue())
    body = client.get("/healthz").get_json()
    queue = body["notifications"]
    assert queue["queue_depth"] == 1 and queue["dead_letters"] == 0
    assert queue["oldest_undelivered_seconds"] >= 0


def test_two_workers_share_the_queue_without_sending_anything_twice(app, engine, receivers):
    """Real concurrency: committed deliveries with their jobs, two procrastinate workers on
    their own connections at once: every delivery is sent exactly once, by one of them."""
    import threading

    from sqlalchemy.orm import Session

    receiver = receivers(("slow", 0.05, 200))
    with Session(engine) as setup:
        channel = webhook(setup, receiver.url)
        setup.commit()
        channel_id = channel.id
        ids, delivery_ids = [], []
        for n in range(24):
            message_id = setup.scalar(
                text(
                    "INSERT INTO notify_messages (kind, dedupe_key, subject, data)"
                    " VALUES ('test', :key, '并发测试', '{}') RETURNING id"
                ),
                {"key": f"concurrency-{n}"},
            )
            ids.append(message_id)
            delivery_ids.append(
                setup.scalar(
                    text(
                        "INSERT INTO notify_deliveries (message_id, channel_id, delivery_key)"
                        " VALUES (:m, :c, :k) RETURNING id"
                    ),
                    {"m": message_id, "c": channel_id, "k": f"concurrency-{n}"},
                )
            )
        queue.defer(setup, delivery_ids)
        setup.commit()
    try:
        settings = worker_settings()
        totals: list[dict] = []
        start = threading.Barrier(2)

        def work() -> None:
            with Session(engine) as session:
                start.wait()
                totals.append(deliver(session, settings))

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        keys = [h.headers["X-Geoservice-Delivery"] for h in receiver.hits]
        assert sorted(keys) == sorted(f"concurrency-{n}" for n in range(24))  # once each
        assert sum(t["delivered"] for t in totals) == 24
        assert all(t["delivered"] for t in totals)  # the work was shared out
    finally:
        with Session(engine) as cleanup:
            cleanup.execute(
                text(
                    "DELETE FROM procrastinate_jobs"
                    " WHERE (args->>'delivery_id')::bigint = ANY(:ids)"
                ),
                {"ids": delivery_ids},
            )
            cleanup.execute(text("DELETE FROM notify_messages WHERE id = ANY(:ids)"), {"ids": ids})
            cleanup.execute(text("DELETE FROM notify_channels WHERE id = :id"), {"id": channel_id})
            cleanup.commit()


def test_healthz_still_answers_when_the_queue_cannot_be_read(client, db_session):
    db_session.execute(text("ALTER TABLE notify_deliveries RENAME TO notify_deliveries_gone"))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["notifications"] is None
    assert response.get_json()["status"] == "ok"


def test_the_worker_command_delivers_once_and_the_cli_replays(app, client, scene, receivers):
    import json

    s = scene.session
    receiver = receivers(404, 200)
    webhook(s, receiver.url)
    dispatch(client, scene, scene.issue())
    s.commit()  # the CLI's own session sees what the request wrote
    runner = app.test_cli_runner()
    result = runner.invoke(args=["notifications-worker", "--once"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert counts["dead"] == 1  # 404: a dead letter at once
    status = json.loads(runner.invoke(args=["notifications", "status"]).output)
    assert status["dead_letters"] == 1
    replayed = runner.invoke(args=["notifications", "replay", "--all-dead"])
    assert "已重新排队 1 条" in replayed.output
    again = json.loads(
        runner.invoke(args=["notifications-worker", "--once"]).output.strip().splitlines()[-1]
    )
    assert again["delivered"] == 1 and len(receiver.succeeded()) == 1


def test_a_channel_switched_off_sends_nothing_more(client, scene, receivers):
    """停用 stops a failing receiver: its deliveries already queued or retrying are not sent
    (dead, saying why: they can be replayed once it is on again)."""
    s = scene.session
    receiver = receivers(500, 500, 500)
    channel = webhook(s, receiver.url)
    issue = scene.issue()
    assert dispatch(client, scene, issue).status_code == 200
    settings = worker_settings(max_attempts=5)
    assert deliver(s, settings)["retry"] == 1
    hits = len(receiver.hits)
    manage.save_channel(s, {"enabled": False}, channel.id)
    assert deliver(s, settings, datetime.now(UTC) + timedelta(hours=1))["dead"] == 1
    assert len(receiver.hits) == hits
    (row,) = deliveries(s)
    assert row.status == "dead" and row.last_error == "渠道已停用，未发送"


def test_a_landline_gets_no_sms_and_preferences_refuse_lists(scene):
    """A leader's phone is an SMS number only when it is a mobile; a JSON list for an e-mail
    address is refused, not stored as "['a@b.cn']"."""
    import pytest

    from geoservice.service_errors import InvalidInput

    s = scene.session
    leader = scene.leaders["other"]
    leader.phone = "0515-88881234"
    s.flush()
    assert manage.preference_view(s, leader.id)["mobile"] is None
    with pytest.raises(InvalidInput):
        manage.save_preference(s, leader.id, {"email": ["a@b.cn"]})
    with pytest.raises(InvalidInput):
        manage.save_preference(s, leader.id, {"mobile": 13911112222})


def test_a_long_sms_keeps_its_link():
    from geoservice.notifications.channels import SMS_MAX, sms_text

    link = "请处理：https://cw.example.gov.cn/issues/10240"
    text = "【交办】问题 #10240 道路破损\n" + "路面破损严重，" * 60 + "\n" + link
    cut = sms_text(text)
    assert len(cut) <= SMS_MAX and cut.endswith(link) and "…" in cut
    assert sms_text("短消息\n" + link) == "短消息\n" + link
