"""Patrols (issue 16): schedules → tasks for whoever holds the role at the start of each
period, visits (found-nothing counts, far check-ins flagged, another's task refused, retries
idempotent), 巡查到位率 on a hand-built week. Dates are in 2015 (never today)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from geoservice.fieldwork import patrol_coverage, patrol_visits, patrols
from geoservice.fieldwork.models import FieldPhoto, PatrolTask, PatrolVisit
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Issue
from geoservice.registry import layers
from geoservice.service_errors import Conflict
from tests.factories import add_feature, add_leader, assign, line, metres, rect
from tests.issues.helpers import account, add_area, b64, image_bytes

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2015, 10, 1, tzinfo=TZ)
# ISO week 2015-W45: Monday 2015-11-02 … Sunday 2015-11-08 (local time).
MONDAY = date(2015, 11, 2)
WEDNESDAY_NOON = datetime(2015, 11, 4, 12, 0, tzinfo=TZ)
AFTER_THE_WEEK = datetime(2015, 11, 20, tzinfo=TZ)


@pytest.fixture
def uploads(app, tmp_path, monkeypatch):
    path = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(path))
    return path


@pytest.fixture
def world(app, db_session, uploads):
    s = db_session
    add_area(s, "320999", rect(-2000, -2000, 3000, 3000))
    places = {
        "g1": add_feature(s, "grid", "320999001001001", rect(0, 0, 400, 400), name="一网格"),
        "g2": add_feature(s, "grid", "320999001001002", rect(400, 0, 800, 400), name="二网格"),
        "r1": add_feature(
            s, "road", "R1", line((0, 500), (800, 500)), grade="主干道", name="人民路"
        ),
        "r2": add_feature(
            s, "road", "R2", line((0, 600), (800, 600)), grade="主干道", name="解放路"
        ),
    }
    leaders = {
        "a": add_leader(s, "甲网格员", unit="城南街道"),
        "b": add_leader(s, "乙网格员", unit="城南街道"),
        "c": add_leader(s, "丙网格员", unit="城北街道"),
        "road": add_leader(s, "陈道路", unit="县城管局"),
    }
    # g1: 甲 until Wednesday noon of W45, then 乙. g2: 丙 throughout. Roads: 陈道路.
    assign(s, leaders["a"], places["g1"], T0, WEDNESDAY_NOON, role="网格员")
    assign(s, leaders["b"], places["g1"], WEDNESDAY_NOON, role="网格员")
    assign(s, leaders["c"], places["g2"], T0, role="网格员")
    assign(s, leaders["road"], places["r1"], T0, role="道路长")
    assign(s, leaders["road"], places["r2"], T0, role="道路长")
    accounts = {k: account(s, "leader", leader=v) for k, v in leaders.items()}
    accounts["planner"] = account(s, "planner")
    with app.app_context():
        registry = layers(app)
    return {
        "session": s,
        "places": places,
        "leaders": leaders,
        "accounts": accounts,
        "registry": registry,
        "settings": FieldSettings(tz=TZ),
        "issue_settings": IssueSettings.from_config(app.config),
    }


def schedule(w, layer, role, period, times=1):
    return patrols.create_schedule(
        w["session"],
        w["registry"],
        ["网格员", "道路长"],
        {"layer": layer, "role": role, "period": period, "times": times},
        None,
    )


def tasks(w, **where):
    stmt = select(PatrolTask).order_by(
        PatrolTask.period_start, PatrolTask.place_id, PatrolTask.slot
    )
    for key, value in where.items():
        stmt = stmt.where(getattr(PatrolTask, key) == value)
    return w["session"].scalars(stmt).all()


def test_tasks_go_to_whoever_holds_the_role_at_the_start_of_each_period(world):
    w = world
    weekly = schedule(w, "grid", "网格员", "week")
    g1 = w["places"]["g1"].id
    for day in (MONDAY, date(2015, 11, 9)):  # W45 (reassigned on its Wednesday) and W46
        patrols.generate_tasks(w["session"], w["registry"], w["settings"], day)
    # The planner switches the grid to a daily walk: the weekly rule stops, tasks stay.
    patrols.update_schedule(w["session"], w["registry"], [], weekly.id, {"active": False})
    daily = schedule(w, "grid", "网格员", "day")
    for day in (date(2015, 11, 4), date(2015, 11, 5)):
        patrols.generate_tasks(w["session"], w["registry"], w["settings"], day)
    week_tasks = tasks(w, schedule_id=weekly.id, place_id=g1)
    assert [(t.period_start.astimezone(TZ).date(), t.leader_id) for t in week_tasks] == [
        (MONDAY, w["leaders"]["a"].id),  # the running week stays with its holder
        (date(2015, 11, 9), w["leaders"]["b"].id),  # the next week goes to the new holder
    ]
    day_tasks = tasks(w, schedule_id=daily.id, place_id=g1)
    assert [(t.period_start.astimezone(TZ).date(), t.leader_id) for t in day_tasks] == [
        (date(2015, 11, 4), w["leaders"]["a"].id),
        (date(2015, 11, 5), w["leaders"]["b"].id),
    ]
    # Generating again creates nothing (idempotent).
    assert (
        patrols.generate_tasks(w["session"], w["registry"], w["settings"], date(2015, 11, 5)) == 0
    )


def test_twice_a_week_makes_two_slots_per_place(world):
    w = world
    twice = schedule(w, "road", "道路长", "week", times=2)
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], MONDAY)
    rows = tasks(w, schedule_id=twice.id)
    assert len(rows) == 4 and {t.slot for t in rows} == {1, 2}
    assert {t.leader_id for t in rows} == {w["leaders"]["road"].id}


def test_a_second_active_schedule_for_the_same_rule_is_refused(world):
    schedule(world, "road", "道路长", "week", times=2)
    from geoservice.service_errors import Conflict

    with pytest.raises(Conflict):
        schedule(world, "road", "道路长", "day")


def visit(w, who, task, at, outcome="ok", **extra):
    user = w["accounts"][who][0]
    lon, lat = metres(200, 200)
    fields = {"task_id": task.id, "visited_at": at.isoformat(), "outcome": outcome,
              "lon": lon, "lat": lat, **extra}  # fmt: skip
    return patrol_visits.record_visit(
        w["session"], w["registry"], w["settings"], w["issue_settings"], user, fields, [], [],
        now=AFTER_THE_WEEK,
    ).visit  # fmt: skip


def test_rates_on_a_hand_built_week(world):
    w = world
    schedule(w, "road", "道路长", "week", times=2)  # 2 roads × 2 = 4 tasks for 陈道路
    schedule(w, "grid", "网格员", "week")  # g1 → 甲 (holder on Monday), g2 → 丙
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], MONDAY)
    road = tasks(w, leader_id=w["leaders"]["road"].id)
    tuesday = datetime(2015, 11, 3, 9, 0, tzinfo=TZ)
    for t in road[:3]:  # three of four road walks done, one found nothing
        visit(w, "road", t, tuesday)
    (g1_task,) = tasks(w, place_id=w["places"]["g1"].id)
    visit(w, "a", g1_task, tuesday, outcome="problem", note="垃圾桶满溢")
    start, end = datetime(2015, 11, 2, tzinfo=TZ), datetime(2015, 11, 9, tzinfo=TZ)
    by_leader = {
        r["name"]: (r["done"], r["due"], r["rate"])
        for r in patrol_coverage.rates(
            w["session"], w["registry"], "leader", start, end, AFTER_THE_WEEK
        )
    }
    assert by_leader == {"陈道路": (3, 4, 0.75), "甲网格员": (1, 1, 1.0), "丙网格员": (0, 1, 0.0)}
    by_unit = {
        r["name"]: (r["done"], r["due"])
        for r in patrol_coverage.rates(
            w["session"], w["registry"], "unit", start, end, AFTER_THE_WEEK
        )
    }
    assert by_unit == {"县城管局": (3, 4), "城南街道": (1, 1), "城北街道": (0, 1)}
    # During the week nothing is due yet except what was done early.
    during = patrol_coverage.rates(w["session"], w["registry"], "leader", start, end, tuesday)
    assert {r["name"]: r["due"] for r in during}["丙网格员"] == 0
    # The missed ones are flagged overdue after the week.
    overdue = patrol_coverage.overdue_tasks(w["session"], w["registry"], AFTER_THE_WEEK)
    assert sorted(t["leader"] for t in overdue) == ["丙网格员", "陈道路"]
    assert all(t["overdue"] for t in overdue)
    # The map of places not visited this period: g2 and both roads (one walk still open each
    # or both), not g1.
    fc = patrol_coverage.unvisited(
        w["session"], w["registry"], w["settings"], MONDAY, AFTER_THE_WEEK
    )
    names = {f["properties"]["name"]: f["properties"]["open_tasks"] for f in fc["features"]}
    assert names == {"二网格": 1, "解放路": 1} or names == {"二网格": 1, "人民路": 1}
    assert all(f["geometry"]["type"] for f in fc["features"])
    assert (fc["openTasks"], fc["truncated"]) == (2, False)


def test_lists_cut_short_say_how_many_there_are(world, monkeypatch):
    """A city patrols ~30,000 grids: the overdue list and the map of places not visited are
    cut short, and say how many tasks there are in all."""
    w = world
    schedule(w, "road", "道路长", "week", times=2)
    schedule(w, "grid", "网格员", "week")
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], MONDAY)
    session, registry = w["session"], w["registry"]
    listed = patrol_coverage.overdue_tasks(session, registry, AFTER_THE_WEEK, limit=2)
    assert len(listed) == 2
    assert patrol_coverage.count_overdue(session, AFTER_THE_WEEK) == 6  # 4 road walks, 2 grids
    mine = [w["leaders"]["road"].id]
    assert patrol_coverage.count_overdue(session, AFTER_THE_WEEK, leader_ids=mine) == 4
    monkeypatch.setattr(patrol_coverage, "UNVISITED_TASKS", 3)
    fc = patrol_coverage.unvisited(session, registry, w["settings"], MONDAY, AFTER_THE_WEEK)
    assert (fc["openTasks"], fc["truncated"]) == (6, True)


# --- over the API --------------------------------------------------------------------------


def _api_tasks(w):
    schedule(w, "grid", "网格员", "week")
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], MONDAY)
    return {t.place_id: t for t in tasks(w)}


def test_a_visit_for_a_task_that_is_not_the_callers_is_404(client, world):
    w = world
    by_place = _api_tasks(w)
    theirs = by_place[w["places"]["g2"].id]  # 丙's
    response = client.post(
        "/api/fieldwork/visits",
        json={"task_id": theirs.id, "visited_at": "2015-11-03T09:00:00+08:00", "outcome": "ok",
              **dict(zip(("lon", "lat"), metres(600, 200), strict=True))},
        headers=w["accounts"]["a"][1],
    )  # fmt: skip
    assert response.status_code == 404
    assert response.get_json()["field"] == "task_id"
    assert w["session"].scalar(select(func.count()).select_from(PatrolVisit)) == 0


def test_a_far_check_in_is_accepted_and_flagged(client, world):
    w = world
    mine = _api_tasks(w)[w["places"]["g1"].id]
    lon, lat = metres(200, 3000)  # 2.6 km north of the grid
    response = client.post(
        "/api/fieldwork/visits",
        json={"task_id": mine.id, "visited_at": "2015-11-03T09:00:00+08:00", "outcome": "正常",
              "lon": lon, "lat": lat, "idempotency_key": "k-far"},
        headers=w["accounts"]["a"][1],
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["far"] is True and "far" in body["flags"] and body["distance_m"] > 2000
    assert body["outcome"] == "ok"


def test_idempotency_same_key_same_content_returns_the_first_other_content_409(client, world):
    w = world
    mine = _api_tasks(w)[w["places"]["g1"].id]
    lon, lat = metres(200, 200)
    photo = b64(image_bytes(taken="2015:11:03 08:59:00", gps=(lon, lat)))
    body = {"task_id": mine.id, "visited_at": "2015-11-03T09:00:00+08:00", "outcome": "ok",
            "lon": lon, "lat": lat, "idempotency_key": "rec-1", "photos": [photo]}  # fmt: skip
    headers = w["accounts"]["a"][1]
    first = client.post("/api/fieldwork/visits", json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    counts = lambda: tuple(  # noqa: E731
        w["session"].scalar(select(func.count()).select_from(m))
        for m in (PatrolVisit, FieldPhoto, Issue)
    )
    before = counts()
    again = client.post("/api/fieldwork/visits", json=body, headers=headers)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert counts() == before == (1, 1, 0)
    changed = client.post(
        "/api/fieldwork/visits", json={**body, "outcome": "problem"}, headers=headers
    )
    assert changed.status_code == 409
    assert changed.get_json()["field"] == "idempotency_key"
    assert counts() == before


def test_the_same_record_sent_twice_at_once_gets_the_first_ones_answer(client, world, monkeypatch):
    """Two copies of one record at the same moment: both find the key unused, the first takes
    the task's lock and stores the visit, the second then finds the task visited — by this
    very record — and answers 200 with it (a 409 made the phone report a saved record as
    refused)."""
    from geoservice.fieldwork import patrol_visits

    w = world
    mine = _api_tasks(w)[w["places"]["g1"].id]
    lon, lat = metres(200, 200)
    body = {"task_id": mine.id, "visited_at": "2015-11-03T09:00:00+08:00", "outcome": "ok",
            "lon": lon, "lat": lat, "idempotency_key": "twice-1"}  # fmt: skip
    headers = w["accounts"]["a"][1]
    first = client.post("/api/fieldwork/visits", json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    real, calls = patrol_visits.replay, []

    def raced(*args, **kwargs):  # the second copy's first look came before the first's commit
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(patrol_visits, "replay", raced)
    second = client.post("/api/fieldwork/visits", json=body, headers=headers)
    assert second.status_code == 200, second.get_json()
    assert second.get_json()["id"] == first.get_json()["id"] and len(calls) == 2
    calls.clear()
    other = client.post(
        "/api/fieldwork/visits", json={**body, "idempotency_key": "twice-2"}, headers=headers
    )
    assert other.status_code == 409 and other.get_json()["field"] == "task_id"


def test_a_visit_raises_issues_on_the_spot_and_lists_in_my_visits(client, world):
    w = world
    mine = _api_tasks(w)[w["places"]["g1"].id]
    lon, lat = metres(100, 100)
    photo = b64(image_bytes(taken="2015:11:03 08:59:00", gps=(lon, lat)))
    response = client.post(
        "/api/fieldwork/visits",
        json={"task_id": mine.id, "visited_at": "2015-11-03T09:00:00+08:00", "lon": lon,
              "lat": lat, "idempotency_key": "rec-2", "photos": [photo],
              "issues": [{"category": "环境卫生", "description": "垃圾堆放"}]},
        headers=w["accounts"]["a"][1],
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["outcome"] == "problem" and len(body["issue_ids"]) == 1
    issue = w["session"].get(Issue, body["issue_ids"][0])
    assert issue.source == "自查" and issue.grid_id == w["places"]["g1"].id
    mine_list = client.get("/api/fieldwork/visits/mine", headers=w["accounts"]["a"][1])
    assert [v["id"] for v in mine_list.get_json()["visits"]] == [body["id"]]


def test_changing_a_schedule_leaves_its_generated_tasks_as_they_were(world):
    """Three tasks a week generated, then the schedule cut to one: those tasks still read
    1/3, 2/3, 3/3 (not "3 of 1"); a default name follows the change; what it patrols (the
    layer) is not changed once it has tasks."""
    w = world
    made = schedule(w, "grid", "网格员", "week", times=3)
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], MONDAY)
    changed = patrols.update_schedule(
        w["session"], w["registry"], ["网格员", "道路长"], made.id, {"times": 1}
    )
    assert changed.name == "网格员每周1次巡查网格" and changed.times == 1
    rows = patrols.task_rows(
        w["session"], w["registry"], WEDNESDAY_NOON, "t.schedule_id = :s", {"s": made.id}
    )
    assert rows and {(r["slot"], r["times"]) for r in rows} == {(1, 3), (2, 3), (3, 3)}
    with pytest.raises(Conflict) as refused:
        patrols.update_schedule(
            w["session"], w["registry"], ["网格员", "道路长"], made.id, {"layer": "road"}
        )
    assert refused.value.field == "layer"
    # Nor its period: a day's task would hold the week's slot, and the new period's tasks
    # were never made.
    with pytest.raises(Conflict) as refused:
        patrols.update_schedule(
            w["session"], w["registry"], ["网格员", "道路长"], made.id, {"period": "day"}
        )
    assert refused.value.field == "period"


def test_bad_visits_write_nothing(client, world):
    w = world
    mine = _api_tasks(w)[w["places"]["g1"].id]
    lon, lat = metres(100, 100)
    base = {"task_id": mine.id, "visited_at": "2015-11-03T09:00:00+08:00", "lon": lon,
            "lat": lat, "photos": [b64(image_bytes())]}  # fmt: skip
    headers = w["accounts"]["a"][1]

    def counts():
        return tuple(
            w["session"].scalar(select(func.count()).select_from(m))
            for m in (PatrolVisit, FieldPhoto, Issue)
        )

    for body, status, field in (
        ({**base, "photos": [b64(b"not an image")], "outcome": "ok"}, 415, "photos"),
        ({**base, "issues": [{"category": "不存在的类别"}]}, 422, "category"),
        ({**base, "issues": [{"category": "环境卫生", "photos": [5]}]}, 422, "issues"),
        ({**base, "outcome": "maybe"}, 422, "outcome"),
        ({**base, "outcome": "ok", "visited_at": "2015-12-25T09:00:00+08:00"}, 422, "visited_at"),
        ({**base, "outcome": "ok", "lon": 200}, 422, "geometry"),
        ({**base, "outcome": "ok", "idempotency_key": "x" * 65}, 422, "idempotency_key"),
        # A leader may not set what weighs on the rankings (issues.set_report_meta).
        ({**base, "issues": [{"category": "环境卫生", "severity": 3}]}, 403, "issues"),
        ({**base, "issues": [{"category": "环境卫生", "negative_list": True}]}, 403, "issues"),
    ):
        response = client.post("/api/fieldwork/visits", json=body, headers=headers)
        assert response.status_code == status, (body, response.get_json())
        assert response.get_json()["field"] == field, response.get_json()
        assert counts() == (0, 0, 0)


def test_a_planner_configures_schedules_over_the_api(client, world):
    w = world
    headers = w["accounts"]["planner"][1]
    made = client.post(
        "/api/fieldwork/schedules",
        json={"layer": "road", "role": "道路长", "period": "week", "times": 2},
        headers=headers,
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["name"] == "道路长每周2次巡查道路"
    bad = client.post(
        "/api/fieldwork/schedules",
        json={"layer": "nowhere", "role": "道路长", "period": "week"},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.get_json()["field"] == "layer"
    leader = client.post(
        "/api/fieldwork/schedules",
        json={"layer": "road", "role": "道路长", "period": "day"},
        headers=w["accounts"]["a"][1],
    )
    assert leader.status_code == 403
    listed = client.get("/api/fieldwork/schedules", headers=headers).get_json()
    assert [s["times"] for s in listed["schedules"]] == [2]


def test_the_overview_page_shows_rates_overdue_and_unvisited(client, world):
    w = world
    schedule(w, "grid", "网格员", "day")
    page = client.get("/field/overview", headers=w["accounts"]["planner"][1])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "巡查到位率：按责任人" in html and "网格员每天1次巡查网格" in html
    assert "今日尚未巡查的地点（2 处）" in html  # both grids have today's task open
    assert client.get("/field/overview", headers=w["accounts"]["a"][1]).status_code == 403


def test_opening_the_day_generates_the_callers_tasks_with_the_same_rule(world):
    """A phone generates only its own places' tasks, but the holder is still the one at the
    start of the period: the new holder opening the app mid-week gets nothing for that week."""
    w = world
    schedule(w, "grid", "网格员", "week")
    s, reg, cfg = w["session"], w["registry"], w["settings"]
    thursday = date(2015, 11, 5)
    assert (
        patrols.tasks_of_leader(s, reg, cfg, w["leaders"]["b"].id, thursday, AFTER_THE_WEEK) == []
    )
    # Only g1 (the place b touched this week) was generated — and its task went to a.
    assert [(t.place_id, t.leader_id) for t in tasks(w)] == [
        (w["places"]["g1"].id, w["leaders"]["a"].id)
    ]
    mine = patrols.tasks_of_leader(s, reg, cfg, w["leaders"]["a"].id, thursday, AFTER_THE_WEEK)
    assert [t["place"]["name"] for t in mine] == ["一网格"]
    next_week = patrols.tasks_of_leader(
        s, reg, cfg, w["leaders"]["b"].id, date(2015, 11, 10), AFTER_THE_WEEK
    )
    assert [t["place"]["name"] for t in next_week] == ["一网格"]
    # A week still to come is not made early from a phone (its holder would be frozen
    # before a handover): read, it is empty.
    ahead = date(2015, 11, 30)
    assert patrols.tasks_of_leader(s, reg, cfg, w["leaders"]["b"].id, ahead, AFTER_THE_WEEK) == []
    assert all(t.period_start.date() < ahead for t in tasks(w))


def test_a_report_from_the_app_is_stored_once_per_key(client, world):
    w = world
    lon, lat = metres(150, 150)
    body = {"idempotency_key": "rep-1", "lon": lon, "lat": lat, "category": "环境卫生",
            "description": "垃圾桶满溢", "recorded_at": "2015-11-03T09:00:00+08:00",
            "photos": [b64(image_bytes())]}  # fmt: skip
    headers = w["accounts"]["a"][1]

    def issues():
        return w["session"].scalar(select(func.count()).select_from(Issue))

    first = client.post("/api/fieldwork/reports", json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    issue = w["session"].get(Issue, first.get_json()["id"])
    assert issue.source == "自查" and issue.grid_id == w["places"]["g1"].id
    again = client.post("/api/fieldwork/reports", json=body, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.get_json()["id"] == issue.id and issues() == 1
    other = client.post(
        "/api/fieldwork/reports", json={**body, "description": "另一件事"}, headers=headers
    )
    assert other.status_code == 409 and issues() == 1
    no_key = client.post(
        "/api/fieldwork/reports", json={**body, "idempotency_key": ""}, headers=headers
    )
    assert no_key.status_code == 422 and no_key.get_json()["field"] == "idempotency_key"
    backdated = client.post(
        "/api/fieldwork/reports",
        json={**body, "idempotency_key": "rep-2", "reported_at": "2015-11-03T09:00:00+08:00"},
        headers=headers,
    )
    assert backdated.status_code == 403 and backdated.get_json()["field"] == "reported_at"
    assert issues() == 1


def test_a_leaders_own_rate_counts_the_tasks_they_held(client, world):
    """甲 held g1 on the week's Monday (the task is theirs), 乙 holds it now: 甲's /rates shows
    甲's task, 乙's shows none of it (the rankings' rule: the holder at the period start)."""
    w = world
    schedule(w, "grid", "网格员", "week")
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], MONDAY)

    def rates(who: str) -> dict:
        r = client.get(
            "/api/fieldwork/rates?period=week&from=2015-11-02", headers=w["accounts"][who][1]
        )
        assert r.status_code == 200, r.get_json()
        return {row["name"]: row["due"] for row in r.get_json()["rows"]}

    assert "甲网格员" in rates("a")
    assert "甲网格员" not in rates("b")
