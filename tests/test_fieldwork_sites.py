"""Field work on 点位 (issue 15's sites): schedules by site kind and 点长, checklists of the
standards that apply to the site's kind, 暗访 samples by kind and street. Uses the assessment
tests' hand-built county (tests/assessment/case.py): schools and bus stops, 点长 张一 (both
schools), 李二 and 王三 (bus stops)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from geoservice.fieldwork import inspections, patrol_visits, patrols
from geoservice.fieldwork.settings import FieldSettings
from geoservice.models import User
from geoservice.registry import layers
from geoservice.service_errors import InvalidInput
from tests.assessment.case import build, issue_settings

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 9)
TUESDAY = datetime(2026, 11, 10, 9, 0, tzinfo=TZ)
LATER = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def case(app, db_session, tmp_path):
    with app.app_context():
        registry = layers(app)
    settings = issue_settings(app.config, tmp_path)
    built = build(db_session, registry, settings)
    leader = User(username="zhangyi", role="leader", leader_id=built["leaders"]["L1"].id)
    db_session.add(leader)
    db_session.flush()
    return {**built, "session": db_session, "registry": registry, "settings": settings,
            "field": FieldSettings(tz=TZ), "account": leader}  # fmt: skip


def test_a_schedule_by_site_kind_gives_the_schools_to_their_dianzhang(case):
    s, registry = case["session"], case["registry"]
    schedule = patrols.create_schedule(
        s, registry, [], {"layer": "site", "site_kind": "school", "role": "点长", "period": "week"},
        None,
    )  # fmt: skip
    assert schedule.name.endswith("（学校周边）")  # the kind's name, not its code
    with pytest.raises(InvalidInput):
        patrols.create_schedule(
            s, registry, [], {"layer": "site", "site_kind": "nope", "role": "点长",
                              "period": "week"}, None,
        )  # fmt: skip
    tasks = patrols.tasks_of_leader(
        s, registry, case["field"], case["leaders"]["L1"].id, MONDAY, LATER
    )
    assert sorted(t["place"]["code"] for t in tasks) == ["school1", "school2"]
    # Only schools: the bus stops' 点长 have no task.
    assert (
        patrols.tasks_of_leader(s, registry, case["field"], case["leaders"]["L2"].id, MONDAY, LATER)
        == []
    )
    codes = [st["code"] for st in tasks[0]["standards"]]
    assert codes == ["A1", "A2", "N1"]


def test_a_visit_checks_the_applicable_standards(case):
    s, registry = case["session"], case["registry"]
    patrols.create_schedule(
        s, registry, [], {"layer": "site", "role": "点长", "period": "week"}, None
    )
    tasks = patrols.tasks_of_leader(
        s, registry, case["field"], case["leaders"]["L1"].id, MONDAY, LATER
    )
    task = next(t for t in tasks if t["place"]["code"] == "school1")
    std = case["standards"]

    def visit(checklist, key):
        return patrol_visits.record_visit(
            s, registry, case["field"], case["settings"], case["account"],
            {"task_id": task["id"], "visited_at": TUESDAY.isoformat(), "checklist": checklist,
             "idempotency_key": key},
            [], [], now=LATER,
        )  # fmt: skip

    with pytest.raises(InvalidInput) as refused:
        visit([{"standard_id": std["B1"], "outcome": "ok"}], "k1")  # a bus-stop standard
    assert refused.value.field == "checklist"
    # As the field app sends it (multipart: the checklist as JSON text).
    done = visit(
        json.dumps([{"standard_id": std["A1"], "outcome": "ok"},
                    {"standard_id": std["A2"], "outcome": "problem", "note": "墙面小广告"}]),
        "k2",
    ).visit  # fmt: skip
    assert done.outcome == "problem"
    assert [c["code"] for c in done.checklist] == ["A1", "A2"]


def test_an_inspection_samples_sites_by_kind_and_street(case):
    s, registry = case["session"], case["registry"]
    planner = case["planner"]
    both = inspections.create_plan(
        s, registry, {"layer": "site", "site_kind": "bus", "date": "2026-11-11", "count": 5,
                      "seed": 3}, planner,
    )  # fmt: skip
    body = inspections.plan_json(s, registry, both, planner)
    assert sorted(p["place"]["code"] for p in body["places"]) == ["bus1", "bus2"]
    west = inspections.create_plan(
        s, registry, {"layer": "site", "site_kind": "bus", "date": "2026-11-11", "count": 5,
                      "street": "西街"}, planner,
    )  # fmt: skip
    body = inspections.plan_json(s, registry, west, planner)
    assert [p["place"]["code"] for p in body["places"]] == ["bus2"]
    # 王三 answers for bus2: the plan does not exist for him.
    wang = User(username="wangsan", role="leader", leader_id=case["leaders"]["L3"].id)
    s.add(wang)
    s.flush()
    assert not inspections.may_see(s, wang, west)


def test_an_inspection_of_sites_checks_their_standards_and_raises_issues_like_a_round(case):
    from geoservice.models import Issue
    from tests.assessment.case import photo

    s, registry, planner = case["session"], case["registry"], case["planner"]
    std = case["standards"]
    plan = inspections.create_plan(
        s, registry, {"layer": "site", "site_kind": "school", "date": "2026-11-11", "count": 2,
                      "seed": 1}, planner,
    )  # fmt: skip
    by_code = {p["place"]["code"]: p["place"]["id"] for p in
               inspections.plan_json(s, registry, plan, planner)["places"]}  # fmt: skip

    def record(code, checklist, photos=()):
        return inspections.record_result(
            s, registry, case["field"], case["settings"], plan, planner,
            {"place_id": by_code[code], "checklist": checklist}, list(photos), now=LATER,
        )  # fmt: skip

    with pytest.raises(InvalidInput) as wrong:
        record("school1", [{"standard_id": std["B1"], "outcome": "合格"}])  # a bus standard
    assert wrong.value.field == "checklist"
    with pytest.raises(InvalidInput) as no_photo:
        record("school1", [{"standard_id": std["N1"], "outcome": "不合格"}])
    assert no_photo.value.field == "photos"
    one = record(
        "school1",
        [{"standard_id": std["A1"], "outcome": "合格"},
         {"standard_id": std["A2"], "outcome": "不合格", "note": "电线杆小广告"},
         {"standard_id": std["N1"], "outcome": "不合格"}],
        [photo(case["settings"])],
    )  # fmt: skip
    assert one.outcome == "fail" and one.category == "乱贴乱画" and one.negative_list
    two = record("school2", [{"standard_id": std[c], "outcome": "合格"} for c in ("A1", "A2")])
    assert two.outcome == "pass"
    (issue_id,) = inspections.complete_plan(
        s, registry, case["field"], case["settings"], plan, planner, now=LATER
    )
    issue = s.get(Issue, issue_id)
    assert issue.source == "暗访督查" and issue.category == "乱贴乱画" and issue.negative_list
    assert "不合格标准 A2：电线杆小广告；N1" in issue.description
    assert (
        issue.primary_place_id == by_code["school1"] and issue.leader_id == case["leaders"]["L1"].id
    )


def test_a_schedules_site_kind_follows_its_layer_in_a_change(case):
    """Changed alone, a site kind is checked against the schedule's own layer (it was a 422
    saying kinds are for the site layer, to a site schedule); a schedule moved off the site
    layer drops its kind (it kept it, and generated nothing)."""
    s, registry = case["session"], case["registry"]
    made = patrols.create_schedule(
        s, registry, [], {"layer": "site", "site_kind": "school", "role": "点长", "period": "week"},
        None,
    )  # fmt: skip
    changed = patrols.update_schedule(s, registry, [], made.id, {"site_kind": "bus"})
    assert changed.site_kind == "bus"
    change = {"layer": "grid", "role": "网格员"}
    moved = patrols.update_schedule(s, registry, ["网格员"], made.id, change)
    assert (moved.layer, moved.site_kind) == ("grid", None)
