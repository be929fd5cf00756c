"""Snapshots of closed weeks and months (geoservice.ranking.snapshot): a closed week's (or
month's) rankings are aggregated from its stored per-issue facts while the period's
`written_before(end)` values are the ones stored with them, and are then exactly the
pipeline's rows; any write that could move the period (a backdated event, an issue's grid or
category changed, a reattribution) makes the snapshot unused until it is built again, a
report after the period leaves it in use.

The test's transaction is rolled back at the end, so a commit is simulated where one matters:
the write counters of the tables it touched are bumped and the trigger's flags cleared (what
data_bump does at commit, migration 0027)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from geoservice.models import IssueEvent
from geoservice.ranking import publications, ranking, snapshot
from geoservice.ranking import report as notice
from geoservice.ranking.periods import (
    custom_period,
    month_period,
    period_containing,
    quarter_period,
    week_period,
)
from tests.factories import LAYERS
from tests.ranking_case import TZ, at, build
from tests.ranking_history_case import admin, move, raw_moves, report, week_moves

W47 = week_period(2015, 47, TZ)
NOVEMBER = month_period(2015, 11, TZ)
Q4 = quarter_period(2015, 4, TZ)
OFS = list(ranking.groupings(LAYERS))


@pytest.fixture(autouse=True)
def _no_label_copies_left():
    """`committed` lets the grid's label copy be kept (ranking._cached_labels) under counters
    that the rollback takes back: another test could meet them again."""
    yield
    ranking._LABEL_CACHE.clear()


@pytest.fixture
def world(db_session):
    case = build(db_session)
    actor = admin(db_session)
    week_moves(db_session, case, actor)
    # A 延期 request inside the week (an extension row of the snapshot).
    h1 = db_session.get(IssueEvent, _last_event(db_session, case.issues["H1"]))
    db_session.add(
        IssueEvent(
            issue_id=case.issues["H1"],
            at=at(19, 9),
            from_status="dispatched",
            to_status="dispatched",
            note="申请延期",
            data={"action": "extension_request"},
            leader_id=h1.leader_id,
            unit_id=h1.unit_id,
        )
    )
    committed(db_session)
    return case, actor


def _last_event(session, issue_id: int) -> int:
    return session.scalar(
        text("SELECT max(id) FROM issue_events WHERE issue_id = :id"), {"id": issue_id}
    )


def committed(session) -> None:
    """What a commit would do to the write counters: each table this transaction touched
    counted once, the transaction-local flags cleared."""
    session.flush()
    session.execute(
        text(
            "UPDATE data_generations SET generation = generation + 1"
            " WHERE current_setting('geoservice.touched_' || subject, true) = '1'"
        )
    )
    session.execute(
        text("SELECT set_config('geoservice.touched_' || subject, '', true) FROM data_generations")
    )


def in_use(session, period=W47) -> bool:
    return ranking.snapshot_status(session, LAYERS, period)["current"]


def pipeline_and_default(session, period=W47) -> dict:
    """Every grouping's rows from the pipeline, checking that the default path (the snapshot
    when current) gives exactly them, and the 通报's shared run too."""
    out = {}
    for of in OFS:
        pipeline = ranking.ranking(session, LAYERS, of, period, snapshots=False)
        assert ranking.ranking(session, LAYERS, of, period) == pipeline, of
        out[of] = pipeline
    kinds = ["all", *notice.REPORT_RANKINGS]
    shared = ranking.figures_and_overdue(session, LAYERS, kinds, period)
    assert shared == ranking.figures_and_overdue(session, LAYERS, kinds, period, snapshots=False)
    for of in kinds:
        assert shared[0][of] == out[of], of
    return out


def assert_read_from_the_snapshot(session, period, leaders_before: list) -> None:
    """The leader ranking of `period` really reads its stored figures: a change to them (not
    counted anywhere) shows."""
    session.execute(
        text(
            "UPDATE ranking_snapshot_figures f SET received = received + 100"
            " FROM ranking_snapshots s WHERE f.snapshot_id = s.id AND f.grouping = 'leader'"
            " AND s.period_start = :f AND s.period_end = :t"
        ),
        {"f": period.start, "t": period.end},
    )
    leaders = ranking.ranking(session, LAYERS, "leader", period)
    assert [r["received"] for r in leaders] == [r["received"] + 100 for r in leaders_before]


def test_a_closed_week_ranked_from_its_snapshot_has_the_pipelines_rows(db_session, world):
    assert not ranking.snapshot_status(db_session, LAYERS, W47)["stored"]
    before = pipeline_and_default(db_session)
    built = ranking.ensure_snapshot(db_session, LAYERS, W47)
    assert built["built"] and built["rows"] > 0
    assert in_use(db_session)
    kinds = dict(
        db_session.execute(
            text("SELECT kind, count(*) FROM ranking_snapshot_rows GROUP BY 1")
        ).all()
    )
    assert set(kinds) == {"f", "h", "x"}  # facts, H1's handover past its deadline, the 延期
    stored = db_session.scalars(text("SELECT DISTINCT grouping FROM ranking_snapshot_figures"))
    assert set(stored) == set(OFS)
    assert pipeline_and_default(db_session) == before
    # Built again only when asked to (or once it is no longer current).
    assert not ranking.ensure_snapshot(db_session, LAYERS, W47)["built"]

    # The rankings really read it: a change to the stored rows (not counted anywhere) shows.
    assert_read_from_the_snapshot(db_session, W47, before["leader"])
    assert ranking.ranking(db_session, LAYERS, "leader", W47, snapshots=False) == before["leader"]
    ranking.ensure_snapshot(db_session, LAYERS, W47, force=True)
    assert pipeline_and_default(db_session) == before

    # Neither a week or month not yet ended nor a period of another kind has one.
    later = (datetime.now(TZ) + timedelta(days=40)).date()
    for period in (
        period_containing("week", later, TZ),
        period_containing("month", later, TZ),
        period_containing("quarter", later, TZ),
        custom_period(at(16, 0), at(22, 0)),
    ):
        with pytest.raises(ranking.RankingError):
            ranking.build_snapshot(db_session, LAYERS, period)


@pytest.mark.parametrize("period", [NOVEMBER, Q4], ids=["month", "quarter"])
def test_a_closed_month_or_quarter_ranked_from_its_snapshot_has_the_pipelines_rows(
    db_session, world, period
):
    """A month or a quarter is read as the pipeline reads it (whole weeks, then the days at its
    ends), not as a week: its snapshot holds exactly the pipeline's rows, beside the week's."""
    week = pipeline_and_default(db_session)
    before = pipeline_and_default(db_session, period)
    assert before != week
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    built = ranking.ensure_snapshot(db_session, LAYERS, period)
    assert built["built"] and built["rows"] > 0
    assert in_use(db_session, period) and in_use(db_session)
    assert pipeline_and_default(db_session, period) == before
    assert pipeline_and_default(db_session) == week
    assert not ranking.ensure_snapshot(db_session, LAYERS, period)["built"]
    assert_read_from_the_snapshot(db_session, period, before["leader"])
    assert pipeline_and_default(db_session) == week


def test_a_trend_reads_each_closed_period_with_a_current_snapshot_from_it(db_session, world):
    """Several periods (a trend, the 收结案 chart), or one key's row: periods with a current
    snapshot are read from it, the others computed by the pipeline in one run; the rows are
    the pipeline's."""
    weeks = [W47.previous(2), W47.previous(1), W47, W47.previous(-1)]
    expected = {of: ranking.compute(db_session, LAYERS, of, weeks, snapshots=False) for of in OFS}
    assert any(expected["leader"][:3])
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    ranking.ensure_snapshot(db_session, LAYERS, W47.previous(2))
    for of in OFS:
        assert ranking.compute(db_session, LAYERS, of, weeks) == expected[of], of
    # One row's figures (a leader's scorecard trend, a drill-down's row) too, every key, and
    # a key with no row in any week.
    for of in OFS:
        nobody = 987_654_321 if ranking.grouping(LAYERS, of).key_type is int else "（无）"
        for key in {r["key"] for rows in expected[of] for r in rows} | {nobody}:
            pipeline = ranking.compute(db_session, LAYERS, of, weeks, key=key, snapshots=False)
            assert ranking.compute(db_session, LAYERS, of, weeks, key=key) == pipeline, (of, key)
            one = ranking.compute(db_session, LAYERS, of, [W47], key=key)
            assert one == ranking.compute(db_session, LAYERS, of, [W47], key=key, snapshots=False)
    assert_read_from_the_snapshot(db_session, W47, expected["leader"][2])
    first = expected["leader"][2][0]
    (mine,) = ranking.compute(db_session, LAYERS, "leader", [W47], key=first["key"])[0]
    assert mine["received"] == first["received"] + 100
    trend = ranking.compute(db_session, LAYERS, "leader", weeks)
    received = [r["received"] + 100 for r in expected["leader"][2]]
    assert [r["received"] for r in trend[2]] == received
    assert trend[0] == expected["leader"][0] and trend[1] == expected["leader"][1]
    assert trend[3] == expected["leader"][3]


def test_a_write_inside_the_month_after_the_week_makes_only_the_months_snapshot_unused(
    db_session, world
):
    case, _ = world
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    ranking.ensure_snapshot(db_session, LAYERS, NOVEMBER)
    week = pipeline_and_default(db_session)
    month = pipeline_and_default(db_session, NOVEMBER)
    report(db_session, case, "N1", "g1", at(24, 9))  # after W47, inside November
    committed(db_session)
    assert in_use(db_session) and not in_use(db_session, NOVEMBER)
    assert pipeline_and_default(db_session) == week
    after = pipeline_and_default(db_session, NOVEMBER)
    assert after != month
    assert ranking.ensure_snapshot(db_session, LAYERS, NOVEMBER)["built"]
    assert in_use(db_session, NOVEMBER)
    assert pipeline_and_default(db_session, NOVEMBER) == after
    # A report in December leaves both in use.
    report(db_session, case, "N2", "g1", at(2, 9, month=12))
    committed(db_session)
    assert in_use(db_session) and in_use(db_session, NOVEMBER)


def _backdated_closure(session, case, actor) -> None:
    # I7 (open, due next week) closed on Friday, entered afterwards.
    raw_moves(session, case.issues["I7"], [(at(20, 16), "dispatched", "closed")])


def _backdated_handover(session, case, actor) -> None:
    # H1 改派 to B on Saturday, entered afterwards: B's at the week end, not A's.
    move(session, actor, case.issues["H1"], "dispatched", at(21, 9), case.leaders["B"], "改派")


def _grid_changed(session, case, actor) -> None:
    session.execute(
        text("UPDATE issues SET grid_id = :g WHERE id = :id"),
        {"g": case.grids["g3"], "id": case.issues["I2"]},
    )


def _category_changed(session, case, actor) -> None:
    session.execute(
        text("UPDATE issues SET category = '道路破损' WHERE id = :id"), {"id": case.issues["I3"]}
    )


def _grid_moved_to_another_community(session, case, actor) -> None:
    table = LAYERS.get("grid").table
    session.execute(
        text(f"UPDATE {table} SET community_id = :c WHERE id = :id"),
        {"c": case.areas["乙"], "id": case.grids["g1"]},
    )


def _reattributed(session, case, actor) -> None:
    from geoservice.issues.issues import reattribute
    from geoservice.models import Leader
    from tests.factories import assign

    grid4 = session.get(LAYERS.get("grid").model, case.grids["g4"])
    assign(session, session.get(Leader, case.leaders["B"]), grid4, at(1, 0, month=10))
    reattribute(session, LAYERS, at(1, 0), actor.id, now=at(25, 9))
    session.flush()
    session.expire_all()


@pytest.mark.parametrize(
    ("change", "moves_the_week"),
    [
        (_backdated_closure, True),
        (_backdated_handover, True),
        (_grid_changed, True),
        (_category_changed, True),
        (_grid_moved_to_another_community, True),
        (_reattributed, False),  # a closed period never moves; the snapshot is unused all the same
    ],
)
def test_a_write_that_could_move_the_week_makes_the_snapshot_unused(
    db_session, world, change, moves_the_week
):
    case, actor = world
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    before = pipeline_and_default(db_session)
    change(db_session, case, actor)
    db_session.flush()
    assert not in_use(db_session)  # uncommitted writes of this transaction: not yet counted
    committed(db_session)
    assert not in_use(db_session)  # committed: the counters moved
    after = pipeline_and_default(db_session)  # the pipeline's rows, not the stored ones
    assert (after != before) is moves_the_week
    built = ranking.ensure_snapshot(db_session, LAYERS, W47)
    assert built["built"] and in_use(db_session)
    assert pipeline_and_default(db_session) == after


def test_handovers_after_a_period_leave_its_snapshot_in_use(db_session, world):
    """改派 and 交办 after W47 of issues reported in it cannot move the week (its holders at the
    end are read from the handovers' events): its snapshot stays in use. Made on 24 November,
    they are inside the month, whose snapshot is unused until rebuilt; a 改派 in December then
    leaves both in use."""
    case, actor = world
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    ranking.ensure_snapshot(db_session, LAYERS, NOVEMBER)
    week = pipeline_and_default(db_session)
    move(db_session, actor, case.issues["H1"], "dispatched", at(24, 9), case.leaders["B"], "改派")
    move(db_session, actor, case.issues["H2"], "dispatched", at(24, 10), case.leaders["C"])
    committed(db_session)
    assert in_use(db_session) and not in_use(db_session, NOVEMBER)
    assert pipeline_and_default(db_session) == week
    assert ranking.ensure_snapshot(db_session, LAYERS, NOVEMBER)["built"]
    month = pipeline_and_default(db_session, NOVEMBER)
    december = at(2, 9, month=12)
    move(db_session, actor, case.issues["H1"], "dispatched", december, case.leaders["A"], "改派")
    committed(db_session)
    assert in_use(db_session) and in_use(db_session, NOVEMBER)
    assert pipeline_and_default(db_session, NOVEMBER) == month
    assert pipeline_and_default(db_session) == week


def test_a_report_after_the_week_leaves_the_snapshot_in_use(db_session, world):
    case, _ = world
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    before = pipeline_and_default(db_session)
    report(db_session, case, "N1", "g1", at(24, 9))
    assert not in_use(db_session)  # this transaction's own write: not counted until commit
    committed(db_session)
    assert in_use(db_session)
    assert pipeline_and_default(db_session) == before


def test_the_status_changes_of_older_issues_after_the_week_leave_it_in_use(db_session, world):
    """A closure, a fix, a rejection after the week of issues reported before its end: only
    their status columns change (and events dated after the week), so the snapshot stays in
    use, and the pipeline's answer is the same."""
    case, _ = world
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    before = pipeline_and_default(db_session)
    raw_moves(db_session, case.issues["I7"], [(at(24, 9), "dispatched", "closed")])
    raw_moves(db_session, case.issues["I8"], [(at(24, 10), "fixed", "closed")])
    raw_moves(db_session, case.issues["H2"], [(at(25, 9), "accepted", "rejected")])
    committed(db_session)
    assert in_use(db_session)
    assert pipeline_and_default(db_session) == before
    # …whereas a changed column the rankings read (the issue's source) makes it unused.
    db_session.execute(
        text("UPDATE issues SET source = '12345热线' WHERE id = :id"), {"id": case.issues["I7"]}
    )
    committed(db_session)
    assert not in_use(db_session)
    assert pipeline_and_default(db_session) != before


def test_the_published_notice_and_its_recompute_are_unchanged(db_session, world):
    """Published from the snapshot, the 通报 holds the pipeline's figures; a backdated event
    afterwards makes the recompute (the pipeline again) report 重算结果不同, as before."""
    case, actor = world
    settings = ranking.DEFAULT_SETTINGS
    expected = publications.figures_of(notice.report_data(db_session, LAYERS, W47, settings))
    ranking.ensure_snapshot(db_session, LAYERS, W47)
    pub = publications.publish(db_session, LAYERS, W47, settings, actor)
    assert pub.figures == expected
    committed(db_session)
    assert in_use(db_session)
    assert publications.check(db_session, LAYERS, pub)["same"]
    _backdated_closure(db_session, case, actor)
    committed(db_session)
    assert not in_use(db_session)
    checked = publications.check(db_session, LAYERS, pub)
    assert not checked["same"] and checked["differences"]


def test_the_worker_task_keeps_the_last_closed_weeks_month_and_quarter_current(db_session, world):
    from geoservice.notifications.worker import WorkerSettings, rankings_snapshot

    settings = WorkerSettings(tz=TZ, registry=LAYERS)
    kept_weeks = snapshot.KEPT_PERIODS["week"]
    monday = at(23, 0, 30)
    # A stopping worker ends a run between two periods; the next run goes on from there.
    asked = iter([False, True])
    stopped = rankings_snapshot(db_session, settings, monday, lambda: next(asked))
    assert stopped == {"built": 1, "week": stopped["week"], "stopped": True}
    assert in_use(db_session, W47) and not in_use(db_session, W47.previous(1))
    done = rankings_snapshot(db_session, settings, monday)
    assert not done["week"]["built"] and done["week"]["period"] == "2015-W47"  # the first run's
    assert done["month"]["built"] and done["month"]["period"] == "2015-10"
    assert done["quarter"]["built"] and done["quarter"]["period"] == "2015-Q3"
    assert done["built"] == sum(snapshot.KEPT_PERIODS.values()) - 1
    for n in range(kept_weeks):
        assert in_use(db_session, W47.previous(n))
    assert rankings_snapshot(db_session, settings, at(23, 1, 30))["built"] == 0
    # A report entered late, dated in W46: W46 and W47 are built again, the weeks before not.
    report(db_session, world[0], "N0", "g1", at(10, 9))
    committed(db_session)
    assert [in_use(db_session, W47.previous(n)) for n in (2, 1, 0)] == [True, False, False]
    assert rankings_snapshot(db_session, settings, at(23, 2, 30))["built"] == 2
    assert in_use(db_session, W47.previous(1)) and in_use(db_session, W47)
    # Early on the 1st: the month that just closed (and the week still the last closed one).
    first = rankings_snapshot(db_session, settings, at(1, 0, 30, month=12))
    assert first["month"]["built"] and first["month"]["period"] == "2015-11"
    assert first["week"]["period"] == "2015-W48"
    assert in_use(db_session, NOVEMBER)
    assert pipeline_and_default(db_session, NOVEMBER)
    # Months later: what ended more than KEEP_WEEKS before the last week's end is dropped, but
    # the last eight months and the last closed quarter (Q4, ended 1 January) are kept.
    spring = datetime(2016, 3, 22, 0, 30, tzinfo=TZ)
    later = rankings_snapshot(db_session, settings, spring)
    assert later["quarter"]["period"] == "2015-Q4" and later["dropped"] >= 4
    stored = db_session.execute(text("SELECT period_start, period_end FROM ranking_snapshots"))
    last_week = week_period(2016, 11, TZ)
    february = month_period(2016, 2, TZ)
    weeks = [last_week.previous(n) for n in range(kept_weeks)]
    months = [february.previous(n) for n in range(snapshot.KEPT_PERIODS["month"])]
    assert {(s.astimezone(TZ), e.astimezone(TZ)) for s, e in stored} == {
        (p.start, p.end) for p in (Q4, *months, *weeks)
    }
    assert Q4.end < last_week.end - timedelta(weeks=snapshot.KEEP_WEEKS)


def test_the_snapshot_command_refuses_a_period_it_cannot_hold(app):
    runner = app.test_cli_runner()
    both = runner.invoke(args=["rankings", "snapshot", "--week", "2015-W47", "--month", "2015-11"])
    assert both.exit_code != 0 and "只能选一个" in both.output
    both = runner.invoke(args=["rankings", "snapshot", "--month", "--quarter"])
    assert both.exit_code != 0 and "只能选一个" in both.output
    future = (datetime.now(TZ) + timedelta(days=40)).strftime("%Y-%m")
    running = runner.invoke(args=["rankings", "snapshot", "--month", future])
    assert running.exit_code != 0 and "已结束的整周、整月或整季度" in running.output
    bad = runner.invoke(args=["rankings", "snapshot", "--month", "2015-13"])
    assert bad.exit_code != 0 and "月份 13" in bad.output


def test_the_snapshot_command_keeps_what_the_worker_keeps(app, engine):
    """`--kept` does the worker's hourly task now (committed); run twice, the second builds
    nothing. The snapshots it made are dropped afterwards (other tests count them)."""
    runner = app.test_cli_runner()
    with engine.begin() as conn:
        before = conn.scalar(text("SELECT coalesce(max(id), 0) FROM ranking_snapshots"))
    try:
        first = runner.invoke(args=["rankings", "snapshot", "--kept"])
        assert first.exit_code == 0, first.output
        kept = sum(snapshot.KEPT_PERIODS.values())
        assert f"新生成 {kept} 个" in first.output
        again = runner.invoke(args=["rankings", "snapshot", "--kept"])
        assert again.exit_code == 0 and "新生成 0 个" in again.output
        both = runner.invoke(args=["rankings", "snapshot", "--kept", "--month"])
        assert both.exit_code != 0 and "只能选一个" in both.output
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM ranking_snapshots WHERE id > :id"), {"id": before})
