"""Field-work notifications (issue 16), written by the worker's scan: a reminder before patrol
tasks are due, a notice when they went unvisited, and each 点长's result of a finished round or
暗访 — never anything of a 暗访 before it is completed. Each once (dedupe keys).

Patrols: the hand-built week 2015-W45 of tests/test_fieldwork_patrols.py (陈道路 walks 3 of his
4 road tasks, 甲 walks g1, 丙 leaves g2). Rounds: the county of tests/assessment/case.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from geoservice.fieldwork import patrols
from geoservice.notifications import worker
from geoservice.notifications.worker import scan
from tests import test_fieldwork_inspection_rounds as rounds_tests
from tests import test_fieldwork_patrols as patrol_tests
from tests.notify_support import worker_settings
from tests.test_fieldwork_patrols import MONDAY, TZ, schedule, tasks, visit

world, uploads = patrol_tests.world, patrol_tests.uploads
case = rounds_tests.case
SUNDAY_EVENING = datetime(2015, 11, 8, 20, 0, tzinfo=TZ)  # 4 h before W45 ends
NEXT_MONDAY = datetime(2015, 11, 9, 9, 0, tzinfo=TZ)
TUESDAY = datetime(2015, 11, 3, 9, 0, tzinfo=TZ)


def messages(s, kind):
    return s.execute(
        text(
            "SELECT m.kind, l.name, m.subject, m.data FROM notify_messages m"
            " JOIN leaders l ON l.id = m.leader_id WHERE m.kind = :k ORDER BY l.name"
        ),
        {"k": kind},
    ).all()


def test_patrols_due_and_overdue_are_notified_once_per_leader(world):
    w = world
    s = w["session"]
    schedule(w, "road", "道路长", "week", times=2)
    schedule(w, "grid", "网格员", "week")
    patrols.generate_tasks(s, w["registry"], w["settings"], MONDAY)
    for t in tasks(w, leader_id=w["leaders"]["road"].id)[:3]:
        visit(w, "road", t, TUESDAY)
    (g1,) = tasks(w, place_id=w["places"]["g1"].id)
    visit(w, "a", g1, TUESDAY)
    settings = worker_settings(patrol_due_hours=6)

    scan(s, settings, TUESDAY)  # nothing due within 6 hours yet
    assert messages(s, "patrol_due") == []
    scan(s, settings, SUNDAY_EVENING)
    due = messages(s, "patrol_due")
    assert [(m.name, m.data["count"]) for m in due] == [("丙网格员", 1), ("陈道路", 1)]
    assert due[0].subject == "【巡查提醒】1 项巡查任务将于 11-09 00:00 到期"
    assert due[0].data["places"] == "二网格"
    text_ = worker.render("patrol_due", due[0].subject, due[0].data, settings)
    assert "地点：二网格" in text_ and text_.endswith("请处理：https://cw.example.gov.cn/field/")
    scan(s, settings, SUNDAY_EVENING)  # again: nothing new
    assert len(messages(s, "patrol_due")) == 2
    assert messages(s, "patrol_overdue") == []

    scan(s, settings, NEXT_MONDAY)
    overdue = messages(s, "patrol_overdue")
    assert [(m.name, m.data["count"]) for m in overdue] == [("丙网格员", 1), ("陈道路", 1)]
    assert overdue[1].subject.startswith("【巡查逾期】1 项巡查任务逾期未巡")
    scan(s, settings, NEXT_MONDAY)
    assert len(messages(s, "patrol_overdue")) == 2


def test_an_inspection_result_reaches_the_dianzhang_only_once_it_is_done(case):
    c = case
    s = c["session"]
    plan, _ = rounds_tests._plan(c)
    settings = worker_settings()
    scan(s, settings, rounds_tests.LATER)
    # Recorded but not completed: nothing of the plan reaches anyone.
    assert messages(s, "assessment_result") == []
    leaks = s.execute(
        text("SELECT count(*) FROM notify_messages WHERE subject LIKE '%暗访%'")
    ).scalar_one()
    assert leaks == 0
    rounds_tests._complete(c, plan)
    scan(s, settings, rounds_tests.LATER)
    (msg,) = messages(s, "assessment_result")
    assert msg.name == "张一"
    assert (
        msg.subject == f"【暗访结果】暗访：十一月学校周边暗访（#{plan.id}）：2 个点位，不合格 2 项"
    )
    assert (msg.data["score"], msg.data["failed_places"]) == (75.0, "school1")
    body = worker.render("assessment_result", msg.subject, msg.data, settings)
    assert "平均得分 75.0" in body and "不合格点位：school1" in body
    scan(s, settings, rounds_tests.LATER)
    assert len(messages(s, "assessment_result")) == 1


def test_the_scan_creates_the_days_patrol_tasks_for_people_who_never_open_the_app(world):
    """Tasks exist whether or not anyone opens the field app, so a 网格员 who never patrols
    shows as 0 % 到位率, not as absent."""
    w = world
    s = w["session"]
    schedule(w, "grid", "网格员", "week")
    assert tasks(w) == []
    worker._tasks_made_for.clear()
    settings = worker_settings(registry=w["registry"], field_settings=w["settings"])

    first = scan(s, settings, TUESDAY)
    made = tasks(w)
    assert first["patrol_tasks"] == len(made) == 2
    assert {t.place_id for t in made} == {w["places"]["g1"].id, w["places"]["g2"].id}
    assert {t.period_start.astimezone(TZ).date() for t in made} == {MONDAY}
    assert scan(s, settings, TUESDAY)["patrol_tasks"] == 0  # once a day
    assert scan(s, settings, NEXT_MONDAY)["patrol_tasks"] == 2  # the next week's
    assert scan(s, worker_settings(), NEXT_MONDAY)["patrol_tasks"] == 0  # not configured: none
