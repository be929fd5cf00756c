"""Scores, 点位达标率 and ranks of a hand-built round (figures in tests/assessment/case.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geoservice.assessment import rounds, scores
from geoservice.assessment.models import AssessmentResult
from tests.assessment import case

SETTINGS = scores.ScoreSettings(line=85.0, bottom_n=1)


@pytest.fixture
def world(app, db_session, tmp_path):
    return case.recorded(app, db_session, tmp_path)


def by_name(rows):
    return {r["name"]: r for r in rows}


def test_site_scores_are_points_earned_over_applicable(world):
    rows = by_name(
        scores.round_scores(world["session"], world["round"].id, "site", SETTINGS)["rows"]
    )
    assert {n: r["score"] for n, r in rows.items()} == {
        "school1": 75.0,
        "bus1": 100.0,
        "school2": 100.0,  # N1 不适用: out of both sums (15/15)
        "bus2": 66.67,
    }
    assert (rows["school2"]["earned"], rows["school2"]["possible"]) == (15.0, 15.0)
    assert {n: r["passed"] for n, r in rows.items()} == {
        "school1": 0, "bus1": 1, "school2": 1, "bus2": 0
    }  # fmt: skip
    # Equal scores share a rank: 1, 1, 3, 4.
    assert {n: r["rank"] for n, r in rows.items()} == {
        "bus1": 1, "school2": 1, "school1": 3, "bus2": 4
    }  # fmt: skip
    assert rows["bus2"]["negative"] == 1


def test_streets_units_leaders_and_kinds(world):
    session, rid = world["session"], world["round"].id
    streets = by_name(scores.round_scores(session, rid, "street", SETTINGS)["rows"])
    assert streets["东街"]["score"] == 87.5 and streets["东街"]["pass_rate"] == 0.5
    assert streets["西街"]["score"] == 83.33 and streets["西街"]["pass_rate"] == 0.5
    assert streets["西街"]["negative"] == 1 and streets["东街"]["negative"] == 0
    assert [streets["东街"]["rank"], streets["西街"]["rank"]] == [1, 2]
    assert streets["西街"]["below_line"] and not streets["东街"]["below_line"]

    leaders = scores.round_scores(session, rid, "leader", SETTINGS)["rows"]
    assert [(r["name"], r["score"], r["rank"]) for r in leaders] == [
        ("李二", 100.0, 1),
        ("张一", 87.5, 2),
        ("王三", 66.67, 3),
    ]
    # 后三名 with bottom_n = 1: the last one only; the 85 line: 王三.
    assert [r["name"] for r in leaders if r["bottom"]] == ["王三"]
    assert [r["name"] for r in leaders if r["below_line"]] == ["王三"]

    units = by_name(scores.round_scores(session, rid, "unit", SETTINGS)["rows"])
    assert units["县教育局"]["score"] == 87.5 and units["县交通局"]["score"] == 83.33
    assert units["县交通局"]["pass_rate"] == 0.5 and units["县教育局"]["pass_rate"] == 0.5

    kinds = by_name(scores.round_scores(session, rid, "kind", SETTINGS)["rows"])
    assert kinds["学校周边"]["score"] == 87.5 and kinds["公交站台"]["score"] == 83.33


def test_county_totals(world):
    totals = scores.round_scores(world["session"], world["round"].id, "street", SETTINGS)["totals"]
    assert totals == {
        "sites": 4,
        "assessed": 4,
        "passed": 2,
        "pass_rate": 0.5,
        "score": 85.42,  # (75 + 100 + 100 + 66.67) / 4
        "failed": 2,
        "negative": 1,
        "line": 85.0,
    }


def test_every_failure_raised_an_issue_held_to_the_site_and_its_leader(world):
    session = world["session"]
    rows = session.execute(
        text(
            "SELECT r.standard_id, i.source, i.category, i.negative_list, i.primary_place_id,"
            " i.leader_id, i.unit_id, (SELECT count(*) FROM photos p WHERE p.issue_id = i.id)"
            " FROM assessment_results r JOIN issues i ON i.id = r.issue_id ORDER BY r.id"
        )
    ).all()
    std, s, ld = world["standards"], world["sites"], world["leaders"]
    assert [tuple(r) for r in rows] == [
        (std["A2"], "模拟测评", "乱贴乱画", False, s["school1"].id, ld["L1"].id,
         ld["L1"].unit_id, 1),
        (std["N1"], "模拟测评", "环境卫生", True, s["bus2"].id, ld["L3"].id, ld["L3"].unit_id, 1),
    ]  # fmt: skip


def test_a_correction_is_a_new_row_and_changes_the_scores(world):
    session = world["session"]
    failed = (
        session.query(AssessmentResult)
        .filter_by(site_id=world["sites"]["school1"].id, standard_id=world["standards"]["A2"])
        .one()
    )
    fixed = rounds.correct_result(
        session, world["registry"], world["settings"], failed.id, "合格", "照片拍错了点位",
        world["planner"], now=case.NOW,
    )  # fmt: skip
    assert fixed.corrects_id == failed.id and fixed.id != failed.id
    rows = by_name(scores.round_scores(session, world["round"].id, "site", SETTINGS)["rows"])
    assert rows["school1"]["score"] == 100.0 and rows["school1"]["passed"] == 1
    # The first row is untouched, and the database refuses to change it.
    assert session.get(AssessmentResult, failed.id).outcome == "fail"
    with pytest.raises(Exception, match="immutable"), session.begin_nested():
        session.execute(
            text("UPDATE assessment_results SET outcome = 'pass' WHERE id = :id"), {"id": failed.id}
        )


def test_failures_drill_down(world):
    rows = scores.failures(world["session"], world["round"].id, SETTINGS, "street",
                           world["streets"]["西街"])  # fmt: skip
    assert [(r["site_name"], r["code"], r["negative_list"]) for r in rows] == [("bus2", "N1", True)]
    assert rows[0]["photo_id"] is not None and rows[0]["issue_id"] is not None


def test_the_monthly_report_carries_a_sheet_of_the_round(world):
    import io
    from zoneinfo import ZoneInfo

    from openpyxl import load_workbook

    from geoservice.ranking import report
    from geoservice.ranking.periods import month_period

    tz = ZoneInfo("Asia/Shanghai")
    buffer = io.BytesIO()
    wb = report.workbook(world["session"], world["registry"], month_period(2026, 11, tz))
    wb.save(buffer)
    book = load_workbook(io.BytesIO(buffer.getvalue()))
    assert book.sheetnames[-1] == "模拟测评"
    rows = [r for r in book["模拟测评"].iter_rows(values_only=True)]
    streets = {r[1]: r for r in rows if r and r[1] in ("东街", "西街") and isinstance(r[2], float)}
    assert streets["东街"][2] == 87.5 and streets["西街"][2] == 83.33
    assert streets["西街"][5] == 1  # one site not passed
    # 达标率 reads as a percentage (a bare 1 would read as 1 %).
    sheet = book["模拟测评"]
    rates = [r[3] for r in sheet.iter_rows() if r[1].value in ("东街", "西街")]
    assert rates and all(c.number_format == "0.0%" for c in rates if isinstance(c.value, float))
    failing = {r[1] for r in rows if r and r[1] in ("school1", "bus2", "bus1", "school2")}
    assert failing == {"school1", "bus2"}
    october = report.workbook(world["session"], world["registry"], month_period(2026, 10, tz))
    assert "模拟测评" not in october.sheetnames
    october.save(io.BytesIO())  # a write-only workbook left unsaved warns when collected


def test_sites_are_places_for_my_areas_and_the_coverage_audit(world):
    from datetime import UTC, datetime

    from geoservice.responsibility import coverage, myareas

    session, registry = world["session"], world["registry"]
    held = myareas.held_places(
        session, registry, [world["leaders"]["L1"].id], datetime(2026, 11, 20, tzinfo=UTC)
    )
    assert {(h["layer"], h["name"]) for h in held} == {("site", "school1"), ("site", "school2")}
    site = case.sites.create_site(
        session, {"code": "orphan", "name": "无人站台", "kind": "bus",
                  "lon": case.LON0 + 300 * case.M, "lat": case.LAT0},
    )  # fmt: skip
    report = coverage.coverage_report(session, registry, None)
    sites = next(item for item in report["layers"] if item["layer"] == "site")
    codes = [f["properties"]["code"] for f in sites["unassigned"]["features"]["features"]]
    assert codes == [site.code]


def test_a_failure_that_comes_back_after_its_issue_was_closed_is_a_relapse(world):
    from datetime import timedelta

    session = world["session"]
    first = (
        session.query(AssessmentResult)
        .filter_by(site_id=world["sites"]["school1"].id, standard_id=world["standards"]["A2"])
        .one()
    )
    session.execute(
        text("UPDATE issues SET status = 'closed', closed_at = :at WHERE id = :id"),
        {"id": first.issue_id, "at": case.NOW + timedelta(days=3)},
    )
    second = rounds.create_round(
        session,
        {"name": "第二轮", "starts_on": "2026-12-01", "ends_on": "2026-12-02",
         "version_id": world["version"].id,
         "site_ids": [world["sites"]["school1"].id, world["sites"]["bus2"].id],
         "inspector_id": world["inspector"].id},
    )  # fmt: skip
    later = case.NOW + timedelta(days=22)
    for site, code in (("school1", "A2"), ("bus2", "N1"), ("bus2", "B1")):
        lon, lat = rounds.site_anchor(session, world["sites"][site].id)
        rounds.submit_results(
            session, world["registry"], world["settings"], second.id, world["sites"][site].id,
            [rounds.Entry(world["standards"][code], "不合格", "", case.photo(world["settings"]))],
            world["inspector"], lon, lat, now=later,
        )  # fmt: skip
    rows = {(r["site_name"], r["code"]): r["trend"] for r in
            scores.failures(session, second.id, SETTINGS)}  # fmt: skip
    assert rows == {
        ("school1", "A2"): "上轮不合格，已销号后又出现（反弹）",
        ("bus2", "N1"): "上轮也不合格（未整改到位）",
        ("bus2", "B1"): "上轮合格（新发现）",
    }
    trend = scores.trend(session, None, None, SETTINGS)
    assert [t["round"] for t in trend] == ["第一轮", "第二轮"]
    assert trend[0]["score"] == 85.42 and trend[1]["passed"] == 0


def test_the_group_without_a_unit_is_shown_but_never_ranked():
    """「（未落实责任单位）」 takes no rank and pushes no unit into 后N名 (as in the issue
    rankings, docs/rankings.md)."""
    from geoservice.assessment import scores

    rows = [
        {"key": 1, "name": "甲局", "score": 90.0, "pass_rate": 1.0},
        {"key": 2, "name": "乙局", "score": 80.0, "pass_rate": 0.5},
        {"key": None, "name": "（未落实责任单位）", "score": 10.0, "pass_rate": 0.0},
    ]
    ranked = scores._rank(rows, scores.ScoreSettings(bottom_n=1))
    by_name = {r["name"]: r for r in ranked}
    assert [r["name"] for r in ranked] == ["甲局", "乙局", "（未落实责任单位）"]
    assert by_name["（未落实责任单位）"]["rank"] is None
    assert not by_name["（未落实责任单位）"]["bottom"] and by_name["乙局"]["bottom"]


def test_a_failure_corrected_into_a_failure_keeps_its_one_issue(world):
    """Correcting a 不合格 (another photo, another note) is the same failure: its issue gets the
    photo and a note; no second issue against the 点长."""
    from sqlalchemy import func, select

    from geoservice.models import Issue, IssueEvent, Photo

    session = world["session"]
    failed = (
        session.query(AssessmentResult)
        .filter_by(site_id=world["sites"]["school1"].id, standard_id=world["standards"]["A2"])
        .one()
    )
    issues_before = session.scalar(select(func.count()).select_from(Issue))
    again = rounds.correct_result(
        session, world["registry"], world["settings"], failed.id, "不合格", "补拍清晰照片",
        world["planner"], photo=case.photo(world["settings"]), now=case.NOW,
    )  # fmt: skip
    assert again.issue_id == failed.issue_id
    assert session.scalar(select(func.count()).select_from(Issue)) == issues_before
    photo = session.get(Photo, again.photo_id)
    assert photo.issue_id == failed.issue_id and again.photo_id != failed.photo_id
    notes = session.scalars(
        select(IssueEvent.note).where(IssueEvent.issue_id == failed.issue_id)
    ).all()
    assert any("补拍清晰照片" in n for n in notes if n)
