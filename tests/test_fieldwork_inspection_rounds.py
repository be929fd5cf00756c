"""暗访 results shown like a 模拟测评 round's (issue 16): a completed inspection of 点位 becomes
an assessment round of kind 暗访 with per-site, per-standard results, scores by street / 点长 /
unit / kind, and the failures pointing at the issues the inspection raised. Before completion
nothing of the plan shows in /assessment to the sampled sites' leaders.

The county of tests/assessment/case.py (its round 「第一轮」 exists already). The 暗访 samples
both schools (点长 张一, 县教育局):
- school1 (东街): A1 合格, A2 不合格, N1 不合格 (负面清单) → 10/20 = 50, not 达标;
- school2 (西街): 合格 without a checklist → A1, A2, N1 all 合格 → 20/20 = 100, 达标.
Hand-computed: 东街 50, 西街 100; 张一 75; county 75, 达标率 50 %, 2 failures, 1 negative.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from geoservice.assessment import rounds as round_service
from geoservice.assessment import scores
from geoservice.assessment.models import AssessmentResult, AssessmentRound, Standard
from geoservice.fieldwork import inspections
from geoservice.service_errors import Conflict
from tests import test_fieldwork_sites as site_tests
from tests.assessment.case import photo
from tests.issues.helpers import account

case = site_tests.case
LATER = site_tests.LATER


def sample(c, fields: dict) -> tuple:
    """A 暗访 of sites (`fields` beside the layer), and its sampled places' ids by code."""
    s, registry, planner = c["session"], c["registry"], c["planner"]
    plan = inspections.create_plan(s, registry, {"layer": "site", **fields}, planner)
    places = inspections.plan_json(s, registry, plan, planner)["places"]
    return plan, {p["place"]["code"]: p["place"]["id"] for p in places}


def _plan(c):
    s, registry, planner = c["session"], c["registry"], c["planner"]
    plan, by_code = sample(
        c,
        {
            "site_kind": "school",
            "date": "2026-11-11",
            "count": 2,
            "seed": 1,
            "name": "十一月学校周边暗访",
        },
    )
    std = c["standards"]

    def record(code, fields, photos=()):
        return inspections.record_result(
            s, registry, c["field"], c["settings"], plan, planner,
            {"place_id": by_code[code], **fields}, list(photos), now=LATER,
        )  # fmt: skip

    record(
        "school1",
        {"checklist": [{"standard_id": std["A1"], "outcome": "合格"},
                       {"standard_id": std["A2"], "outcome": "不合格", "note": "小广告"},
                       {"standard_id": std["N1"], "outcome": "不合格"}]},
        [photo(c["settings"])],
    )  # fmt: skip
    record("school2", {"outcome": "合格"})
    return plan, by_code


def _complete(c, plan):
    return inspections.complete_plan(
        c["session"], c["registry"], c["field"], c["settings"], plan, c["planner"], now=LATER
    )


def _inspection_round(s):
    return s.scalar(select(AssessmentRound).where(AssessmentRound.kind == "inspection"))


def test_a_completed_inspection_shows_as_a_round_with_its_scores(case):
    c = case
    s = c["session"]
    plan, by_code = _plan(c)
    assert _inspection_round(s) is None  # nothing before completion
    (issue_id,) = _complete(c, plan)
    found = _inspection_round(s)
    assert (
        found.inspection_plan_id == plan.id
        and found.name == f"暗访：十一月学校周边暗访（#{plan.id}）"
    )
    body = round_service.round_json(s, found)
    assert (body["kind_title"], body["sites"], body["failed"]) == ("暗访", 2, 2)
    settings = scores.ScoreSettings()
    by_street = scores.round_scores(s, found.id, "street", settings)
    assert {r["name"]: r["score"] for r in by_street["rows"]} == {"东街": 50.0, "西街": 100.0}
    totals = by_street["totals"]
    assert (totals["score"], totals["pass_rate"], totals["failed"], totals["negative"]) == (
        75.0, 0.5, 2, 1,
    )  # fmt: skip
    by_leader = scores.round_scores(s, found.id, "leader", settings)["rows"]
    assert [(r["name"], r["score"]) for r in by_leader] == [("张一", 75.0)]
    # The failures point at the one issue the inspection raised (no second issue per standard).
    failed = s.scalars(
        select(AssessmentResult).where(
            AssessmentResult.round_id == found.id, AssessmentResult.outcome == "fail"
        )
    ).all()
    assert {r.issue_id for r in failed} == {issue_id} and all(r.photo_id for r in failed)
    assert {r.site_id for r in failed} == {by_code["school1"]}
    passed_whole = s.scalars(
        select(AssessmentResult.note).where(
            AssessmentResult.round_id == found.id, AssessmentResult.site_id == by_code["school2"]
        )
    ).all()
    assert passed_whole == ["整体合格（未逐条检查）"] * 3
    # Results come from the inspection: none is entered or assigned in /assessment.
    with pytest.raises(Conflict):
        round_service.assign_inspectors(s, found.id, c["inspector"].id, [by_code["school1"]])


def test_assessment_views_do_not_reveal_an_unfinished_plan_to_the_sampled_leaders(client, case):
    c = case
    s = c["session"]
    plan, _ = _plan(c)
    _, zhang = account(s, "leader", leader=c["leaders"]["L1"])  # 点长 of both schools
    _, planner = account(s, "planner")
    s.commit()
    for headers in (zhang, planner):
        listed = client.get("/api/assessment/rounds", headers=headers).get_json()["rounds"]
        assert [r["name"] for r in listed] == ["第一轮"]
    page = client.get("/assessment", headers=zhang)
    assert page.status_code == 200
    assert "暗访" not in page.get_data(as_text=True)
    # The inspection's own API stays 404 for him.
    assert client.get(f"/api/fieldwork/inspections/{plan.id}", headers=zhang).status_code == 404
    _complete(c, plan)
    s.commit()
    listed = client.get("/api/assessment/rounds", headers=zhang).get_json()["rounds"]
    done = next(r for r in listed if r["kind"] == "inspection")
    assert done["inspection_id"] == plan.id and done["failed"] == 2
    scored = client.get(f"/api/assessment/rounds/{done['id']}/scores?of=street", headers=zhang)
    assert scored.status_code == 200
    assert scored.get_json()["totals"]["score"] == 75.0
    page = client.get(f"/assessment?round={done['id']}", headers=zhang).get_data(as_text=True)
    assert "【暗访】" in page and "十一月学校周边暗访" in page
    # Nothing can be recorded into it over the API either.
    refused = client.post(
        f"/api/assessment/rounds/{done['id']}/inspectors",
        json={"inspector_id": c["inspector"].id, "site_ids": [c["sites"]["school1"].id]},
        headers=planner,
    )
    assert refused.status_code == 409


def test_a_whole_site_failure_never_counts_a_veto_it_did_not_check(case):
    """school1 不合格 as a whole, category 环境卫生: A1 (环境卫生) fails; N1 (环境卫生, 负面清单)
    is not counted on the category's guess."""
    c = case
    s, registry, planner, std = c["session"], c["registry"], c["planner"], c["standards"]
    plan, by_code = sample(
        c,
        {"site_kind": "school", "date": "2026-11-11", "count": 2, "seed": 1, "name": "整体不合格"},
    )
    fields = {"outcome": "不合格", "category": "环境卫生", "note": "地面有烟头"}
    for code, given, photos in (("school1", fields, [photo(c["settings"])]),
                                ("school2", {"outcome": "合格"}, [])):  # fmt: skip
        inspections.record_result(
            s, registry, c["field"], c["settings"], plan, planner,
            {"place_id": by_code[code], **given}, photos, now=LATER,
        )  # fmt: skip
    _complete(c, plan)
    found = _inspection_round(s)
    failed = s.scalars(
        select(AssessmentResult.standard_id).where(
            AssessmentResult.round_id == found.id, AssessmentResult.outcome == "fail"
        )
    ).all()
    assert failed == [std["A1"]]
    totals = scores.round_scores(s, found.id, "street", scores.ScoreSettings())["totals"]
    assert totals["negative"] == 0


def test_a_checklist_names_each_standard_once_and_any_failure_fails_the_place(case):
    from geoservice.service_errors import InvalidInput

    c = case
    s, registry, planner, std = c["session"], c["registry"], c["planner"], c["standards"]
    plan, by_code = sample(
        c, {"site_kind": "school", "date": "2026-11-11", "count": 2, "seed": 1, "name": "检查单"}
    )
    place_id = next(iter(by_code.values()))

    def record(fields, photos=()):
        return inspections.record_result(
            s, registry, c["field"], c["settings"], plan, planner,
            {"place_id": place_id, **fields}, list(photos), now=LATER,
        )  # fmt: skip

    twice = [{"standard_id": std["A1"], "outcome": "合格"},
             {"standard_id": std["A1"], "outcome": "不合格"}]  # fmt: skip
    with pytest.raises(InvalidInput, match="重复"):
        record({"checklist": twice})
    mixed = [{"standard_id": std["A1"], "outcome": "合格"},
             {"standard_id": std["A2"], "outcome": "不合格"}]  # fmt: skip
    recorded = record({"outcome": "合格", "checklist": mixed}, [photo(c["settings"])])
    assert recorded.outcome == "fail"  # a 合格 beside a failed standard is no 合格


def test_a_failure_on_another_standards_version_is_not_dropped(case):
    """A newer 测评体系 for schools only: the school's checklist names its standard (A9), the
    bus stop's the older version's (B1). The round takes one version; the school's failure
    still counts (by its category), where it was silently dropped."""
    from geoservice.assessment import standards

    c = case
    s, registry, planner = c["session"], c["registry"], c["planner"]
    tree = [{"code": "9", "title": "新版", "contents": [{"code": "9.1", "title": "校园",
             "standards": [{"code": "A9", "text": "校门口整洁", "score": 10,
                            "kinds": ["school"], "category": "环境卫生"}]}]}]  # fmt: skip
    newer = standards.create_version(
        s, "学校新版", standards.rows_from_tree(tree), list(c["settings"].categories)
    )
    a9 = s.scalar(select(Standard.id).where(Standard.version_id == newer.id))
    plan, by_code = sample(c, {"date": "2026-11-11", "count": 10, "seed": 1, "name": "两版检查单"})
    for code, place_id in by_code.items():
        fields: dict = {"outcome": "合格"}
        photos = []
        if code == "school1":
            fields = {"checklist": [{"standard_id": a9, "outcome": "不合格"}]}
            photos = [photo(c["settings"])]
        elif code == "bus1":
            fields = {"checklist": [{"standard_id": c["standards"]["B1"], "outcome": "合格"}]}
        inspections.record_result(
            s, registry, c["field"], c["settings"], plan, planner,
            {"place_id": place_id, **fields}, photos, now=LATER,
        )  # fmt: skip
    _complete(c, plan)
    found = _inspection_round(s)
    failed = s.scalars(
        select(AssessmentResult.site_id).where(
            AssessmentResult.round_id == found.id, AssessmentResult.outcome == "fail"
        )
    ).all()
    assert by_code["school1"] in failed
