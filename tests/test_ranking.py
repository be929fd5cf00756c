"""Every indicator on a hand-built week with known answers (tests/ranking_case.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geoservice.ranking import drilldown, ranking
from geoservice.ranking.periods import month_period, week_period
from tests.factories import LAYERS
from tests.ranking_case import EXPECTED_LEADERS, TZ, build, row

W47 = week_period(2015, 47, TZ)
FIELDS = [*ranking.COUNTS, *ranking.RATES, *ranking.HOURS, "score"]


@pytest.fixture
def case(db_session):
    return build(db_session)


def by_key(rows):
    return {r["key"]: r for r in rows}


def pick(r, expected):
    return {k: r[k] for k in expected}


def test_every_leader_indicator_rank_and_flag(db_session, case):
    rows = by_key(ranking.ranking(db_session, LAYERS, "leader", W47))
    assert set(rows) == {*case.leaders.values(), None}
    for name, expected in EXPECTED_LEADERS.items():
        key = case.leaders[name] if name else None
        assert pick(rows[key], expected) == expected, name


def test_responsibility_is_the_one_recorded_at_report_time(db_session, case):
    # I8 (reported on the 17th) stays with A; I9 (the 19th) goes to B who took grid 1 over.
    a, b = case.leaders["A"], case.leaders["B"]
    assert {i["id"] for i in _drill(db_session, "leader", a, "received")} == {
        case.issues[n] for n in ("I3", "I4", "I5", "I7", "I8")
    }
    assert [i["id"] for i in _drill(db_session, "leader", b, "received")] == [case.issues["I9"]]


def test_status_at_period_end_comes_from_events_not_the_current_status(db_session, case):
    # I8 is closed now (on the 24th) but was only fixed when W47 ended.
    overdue = _drill(db_session, "leader", case.leaders["A"], "overdue_end")
    assert {i["id"] for i in overdue} == {case.issues["I6"], case.issues["I8"]}
    i8 = next(i for i in overdue if i["id"] == case.issues["I8"])
    assert (i8["status_at_end"], i8["status_now"]) == ("fixed", "closed")
    # Overdue days at the period end (Mon 23rd 00:00): I6 was due on the 15th 11:00.
    i6 = next(i for i in overdue if i["id"] == case.issues["I6"])
    assert i6["overdue_days"] == 7.5


def test_rows_of_units_grids_areas_and_layers(db_session, case):
    unit = by_key(ranking.ranking(db_session, LAYERS, "unit", W47))
    one, two = case.units["一局"], case.units["二局"]
    assert pick(unit[one], EXP_UNIT_ONE) == EXP_UNIT_ONE
    assert pick(unit[two], EXP_UNIT_TWO) == EXP_UNIT_TWO
    assert (unit[one]["rank"], unit[two]["rank"]) == (1, 2)
    # Two ranked rows: fewer than three, so nobody is "bottom three"; both are under 85.
    assert not unit[one]["bottom"] and unit[one]["below_threshold"]

    grid = by_key(ranking.ranking(db_session, LAYERS, "grid", W47))
    g = case.grids
    assert grid[g["g1"]]["score"] == 58.0 and grid[g["g1"]]["received"] == 6
    assert grid[g["g2"]]["score"] == 20.0
    assert grid[g["g3"]]["score"] == 40.0
    # Grid 4 had only an unaccepted report: nothing was due, so no score and no rank.
    assert pick(grid[g["g4"]], {"received": 1, "open_end": 1, "score": None, "rank": None}) == {
        "received": 1,
        "open_end": 1,
        "score": None,
        "rank": None,
    }
    assert grid[g["g1"]]["detail"]["community"] == "甲社区"

    community = by_key(ranking.ranking(db_session, LAYERS, "community", W47))
    assert pick(community[case.areas["甲"]], EXP_COMMUNITY_A) == EXP_COMMUNITY_A
    assert community[case.areas["乙"]]["score"] == 40.0

    street = by_key(ranking.ranking(db_session, LAYERS, "street", W47))
    assert pick(street[case.areas["street"]], EXP_ALL) == EXP_ALL

    layer = ranking.ranking(db_session, LAYERS, "layer", W47)
    assert [(r["key"], r["name"], r["received"]) for r in layer] == [("grid", "网格", 9)]
    assert pick(ranking.totals(db_session, LAYERS, W47), EXP_ALL) == EXP_ALL


def test_labels_joined_in_the_figures_are_the_labels_of_each_key(db_session, case):
    """Names and details come from the figures' own statement (a lookup per key for one
    grouping, a hash join per grouping in the 通报's shared run; not a second query); they
    are exactly what the labels of each key say, in the ranking and in the shared run."""
    many = ranking.compute_many(db_session, LAYERS, ["all", "leader", "unit", "grid"], W47)
    for of, g in ranking.groupings(LAYERS).items():
        if g.label_sql is None:
            continue
        rows = ranking.ranking(db_session, LAYERS, of, W47)
        keys = [r["key"] for r in rows if r["key"] is not None]
        assert keys, of
        labels = ranking._labels(db_session, g, keys, LAYERS)
        assert {r["key"]: (r["name"], r["detail"]) for r in rows if r["key"] is not None} == {
            k: labels[k] for k in keys
        }, of
        assert all(isinstance(r["detail"], dict) for r in rows), of
        if of in many:
            assert many[of] == rows, of
    leaders = by_key(ranking.ranking(db_session, LAYERS, "leader", W47))
    a = leaders[case.leaders["A"]]
    assert set(a["detail"]) == {"title", "unit", "level"}


def test_grid_labels_kept_per_process_follow_every_counted_write(request, db_session, case):
    """The grid's labels come from a per-process copy filed under the write generations of
    places, grids and admin_areas (ranking._cached_labels): used only while that sum is
    unchanged and the transaction has written none of them; the same rows as labels read
    with the figures. A commit is simulated here (the test's transaction is rolled back):
    the counters bumped and the trigger's transaction-local flags cleared."""
    g = ranking.grouping(LAYERS, "grid")
    g1 = case.grids["g1"]

    def as_committed():
        db_session.flush()
        for table in g.label_tables:
            db_session.execute(
                text("UPDATE data_generations SET generation = generation + 1 WHERE subject = :t"),
                {"t": table},
            )
            db_session.execute(
                text("SELECT set_config('geoservice.touched_' || :t, '', true)"), {"t": table}
            )

    def grid_rows():
        return by_key(ranking.ranking(db_session, LAYERS, "grid", W47))

    # This transaction wrote the case (places, grids, areas): no copy, labels read with figures.
    assert ranking._cached_labels(db_session, g) is None
    request.addfinalizer(ranking._LABEL_CACHE.clear)  # copies of rolled-back rows
    joined = ranking.ranking(db_session, LAYERS, "grid", W47)
    as_committed()
    copy = ranking._cached_labels(db_session, g)
    assert copy is not None and set(copy) >= set(case.grids.values())
    assert ranking.ranking(db_session, LAYERS, "grid", W47) == joined  # byte for byte
    # A row's detail is its own: changing it leaves the copy alone.
    grid_rows()[g1]["detail"]["code"] = "x"
    assert grid_rows()[g1]["detail"] == by_key(joined)[g1]["detail"]

    # An uncommitted rename (flag set): read with the figures, not from the copy.
    db_session.execute(text("UPDATE places SET name = '改名网格' WHERE id = :id"), {"id": g1})
    assert ranking._cached_labels(db_session, g) is None
    assert grid_rows()[g1]["name"] == "改名网格"
    # Committed: the counters moved, the copy is read again.
    as_committed()
    assert grid_rows()[g1]["name"] == "改名网格"

    # The copy really is what is served: a write the counters did not count (flag cleared,
    # no bump) is not seen; once counted, it is.
    db_session.execute(text("UPDATE places SET name = '再改名' WHERE id = :id"), {"id": g1})
    db_session.execute(text("SELECT set_config('geoservice.touched_places', '', true)"))
    assert grid_rows()[g1]["name"] == "改名网格"
    as_committed()
    assert grid_rows()[g1]["name"] == "再改名"
    # A community renamed (admin_areas): the detail follows.
    db_session.execute(
        text("UPDATE admin_areas SET name = '丙社区' WHERE name = '甲社区'"),
    )
    as_committed()
    assert grid_rows()[g1]["detail"]["community"] == "丙社区"


def test_duplicates_are_left_out_of_everything(db_session, case):
    for indicator in ranking.DRILLABLE:
        ids = {i["id"] for i in _drill(db_session, "all", 0, indicator)}
        assert case.issues["I11"] not in ids, indicator


def test_a_note_is_not_a_state_change(db_session, case):
    # I1 got a note on the 17th (closed → closed), I6 on the 19th: neither was handled.
    handled = {i["id"] for i in _drill(db_session, "all", 0, "handled")}
    assert case.issues["I1"] not in handled and case.issues["I6"] not in handled
    closed = {i["id"] for i in _drill(db_session, "all", 0, "closed")}
    assert case.issues["I1"] not in closed


def test_every_count_drills_to_exactly_its_issues(db_session, case):
    rows = ranking.ranking(db_session, LAYERS, "leader", W47)
    for r in rows:
        for indicator in ranking.DRILLABLE:
            found = drilldown.issues_behind(db_session, LAYERS, "leader", r["key"], indicator, W47)
            assert found["total"] == len(found["issues"]) == r[indicator], (r["name"], indicator)


def test_period_boundaries_are_half_open(db_session, case):
    # A change at exactly the period end belongs to the next period.
    db_session.execute(
        text(
            "INSERT INTO issue_events (issue_id, at, from_status, to_status)"
            " VALUES (:id, :at, 'dispatched', 'in_progress')"
        ),
        {"id": case.issues["I7"], "at": W47.end},
    )
    a = by_key(ranking.ranking(db_session, LAYERS, "leader", W47))[case.leaders["A"]]
    assert a["handled"] == 4 and a["open_end"] == 3
    nxt = W47.previous(-1)
    assert nxt.label == "2015-W48"
    i7 = _drill(db_session, "leader", case.leaders["A"], "open_end", period=nxt)
    assert case.issues["I7"] in {i["id"] for i in i7}


def test_a_month_reads_the_same_events(db_session, case):
    november = month_period(2015, 11, TZ)
    a = by_key(ranking.ranking(db_session, LAYERS, "leader", november))[case.leaders["A"]]
    # All of A's issues were reported in November; I1 I2 I3 I4 I8 were closed by the 30th.
    assert pick(a, {"received": 8, "closed": 5, "rejected": 1, "open_end": 2}) == {
        "received": 8,
        "closed": 5,
        "rejected": 1,
        "open_end": 2,
    }


def test_trend_gives_one_value_per_period(db_session, case):
    periods = [W47.previous(1), W47]
    series = ranking.trend(db_session, LAYERS, "leader", periods)
    assert series["periods"] == ["2015-W46", "2015-W47"]
    a = next(s for s in series["rows"] if s["key"] == case.leaders["A"])
    assert a["score"][1] == 49.5
    assert a["received"][0] == 3  # I1 I2 I6 in W46


def test_weights_threshold_and_bottom_n_are_configurable(db_session, case):
    settings = ranking.Settings.from_config(
        {
            "RANKING_WEIGHTS": {"on_time_rate": 50, "close_rate": 50, "rework_free": 0},
            "RANKING_THRESHOLD": 45,
            "RANKING_BOTTOM_N": 1,
        }
    )
    rows = by_key(ranking.ranking(db_session, LAYERS, "leader", W47, settings))
    a, c, d = (rows[case.leaders[n]] for n in "ACD")
    assert a["score"] == 50.0  # 100 × (50·0.4 + 50·0.6) / 100
    assert (a["below_threshold"], a["bottom"]) == (False, False)
    assert (c["score"], c["bottom"], c["below_threshold"]) == (25.0, True, True)
    assert (d["score"], d["bottom"]) == (50.0, False)
    with pytest.raises(ValueError):
        ranking.Settings.from_config({"RANKING_WEIGHTS": {"speed": 10}})


def test_ties_share_a_rank_and_bottom_three_follows_ties():
    rows = [
        {"key": k, "name": str(k), "score": s}
        for k, s in enumerate([90.0, 80.0, 80.0, 70.0, 60.0, 60.0, None], start=1)
    ]
    ranked = by_key(ranking._rank(rows, ranking.DEFAULT_SETTINGS, True))
    assert [ranked[k]["rank"] for k in range(1, 8)] == [1, 2, 2, 4, 5, 5, None]
    assert [ranked[k]["bottom"] for k in range(1, 8)] == [
        False,
        False,
        False,
        True,
        True,
        True,
        False,
    ]
    assert [ranked[k]["below_threshold"] for k in range(1, 8)] == [
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize("ranked", [True, False])
def test_rows_ranked_on_tuples_equal_the_ranking_of_dicts(ranked):
    """`_finish` ranks rows as tuples and builds each dict last (`_ranked`): the same ranks,
    flags, order and keys as `_rank` on the dicts, with tied scores and names, rows without a
    score, the unassigned row and a name that is not a string."""
    import random

    settings = ranking.Settings(weights=ranking.DEFAULT_WEIGHTS, threshold=85, bottom_n=3)
    rnd = random.Random(17)
    for size in (0, 1, 2, 3, 4, 7, 40, 400):
        tuples, dicts = [], []
        for i in range(size):
            score = rnd.choice(
                [None, 0.0, 50.0, 84.99, 85.0, 90.5, 100.0, rnd.randrange(10000) / 100]
            )
            key = None if i == size // 2 and rnd.random() < 0.5 else i
            name = rnd.choice(["网格甲", "网格乙", f"网格{i}", 7, None])
            name = "（未落实）" if key is None else name
            counts = tuple(rnd.randrange(5) for _ in ranking.COUNTS)
            values = (key, name, {"code": str(i)}, *counts, 1.5, None, 0.5, None, 0.25, 0, None)
            tuples.append(((*values, score), score, key is None, name))
            row = dict(zip(ranking._ROW_KEYS[: len(values)], values, strict=True))
            row["score"] = score
            dicts.append(row)
        got = ranking._ranked(tuples, settings, ranked)
        want = ranking._rank(dicts, settings, ranked)
        assert [list(r.items()) for r in got] == [list(r.items()) for r in want], size


@pytest.mark.parametrize(
    ("on_time", "close", "rework", "score"),
    [
        ((2, 5), (3, 5), (1, 4), "49.5"),
        ((1, 1), (1, 1), None, "100"),  # nothing handled: rework weight drops out
        ((1, 3), (2, 3), None, "44.4444"),  # 100 × (60/3 + 30·2/3) / 90
        (None, None, (0, 1), None),  # nothing due: no score
    ],
)
def test_composite_score_and_zero_denominators(on_time, close, rework, score):
    from decimal import Decimal
    from fractions import Fraction

    def f(pair):
        return None if pair is None else Fraction(*pair)

    got = ranking.composite_score(f(on_time), f(close), f(rework), ranking.DEFAULT_WEIGHTS)
    if score is None:
        assert got is None
    else:
        assert round(Decimal(got.numerator) / Decimal(got.denominator), 4) == Decimal(score)


@pytest.mark.parametrize(
    "weights",
    [
        ranking.DEFAULT_WEIGHTS,
        {"on_time_rate": 12.5, "close_rate": 0.1, "rework_free": 7, "satisfaction": 3.3},
        {"on_time_rate": 0, "close_rate": 0, "rework_free": 1, "satisfaction": 0},
    ],
)
def test_integer_scoring_equals_the_exact_fraction_definition(weights):
    """Rates and scores are computed in integers (fast for 30,000 grid rows): the same floats
    as the definition with fractions, rounded half-up, on every small combination of counts."""
    settings = ranking.Settings(weights=weights)
    # Half-way cases round up (away from zero), as Decimal's ROUND_HALF_UP does.
    assert ranking._half_up(1, 8, 2) == 0.13 and ranking._half_up(-1, 8, 2) == -0.13
    assert ranking._half_up(1, 20000, 4) == 0.0001 and ranking._half_up(1, 20001, 4) == 0.0
    for should_close, closed, on_time, handled, reworked, answers, satisfied in (
        (s, c, o, h, r, a, sa)
        for s in range(0, 7)
        for c in range(0, s + 1)
        for o in range(0, c + 1)
        for h in range(0, 5)
        for r in range(0, h + 1)
        for a in (0, 1, 3, 7)
        for sa in range(0, a + 1, 2)
    ):
        row = {
            "should_close": should_close,
            "closed": closed,
            "closed_on_time": on_time,
            "handled": handled,
            "reworked": reworked,
        }
        ranking._finish_row(row, settings, (satisfied, answers))
        rates = {n: ranking._ratio(row[a], row[b]) for n, (a, b) in ranking.RATE_PARTS.items()}
        exact = ranking.composite_score(
            rates["on_time_rate"],
            rates["close_rate"],
            rates["rework_rate"],
            weights,
            ranking._ratio(satisfied, answers),
        )
        assert row["score"] == ranking._round(exact, 2), row
        assert row["satisfaction_rate"] == ranking._round(ranking._ratio(satisfied, answers), 4)
        for name, value in rates.items():
            assert row[name] == ranking._round(value, 4), (name, row)


def test_unknown_grouping_and_indicator_are_refused(db_session):
    with pytest.raises(ranking.RankingError) as err:
        ranking.ranking(db_session, LAYERS, "planet", W47)
    assert err.value.field == "of"
    with pytest.raises(ranking.RankingError) as err:
        drilldown.issues_behind(db_session, LAYERS, "leader", 1, "score", W47)
    assert err.value.field == "indicator"


def _drill(session, of, key, indicator, period=W47):
    return drilldown.issues_behind(session, LAYERS, of, key, indicator, period)["issues"]


EXP_UNIT_ONE = row(
    received=6,
    should_close=6,
    closed=4,
    closed_on_time=3,
    closed_late=1,
    open_end=3,
    overdue_end=2,
    handled=5,
    reworked=1,
    relapses=1,
    rejected=1,
    close_rate=0.6667,
    on_time_rate=0.5,
    rework_rate=0.2,
    score=58.0,
)
EXP_UNIT_TWO = row(
    received=2,
    should_close=3,
    closed=2,
    closed_late=2,
    open_end=1,
    overdue_end=1,
    handled=3,
    reworked=1,
    close_rate=0.6667,
    on_time_rate=0.0,
    rework_rate=0.3333,
    score=26.67,
)
EXP_COMMUNITY_A = row(
    received=7,
    should_close=8,
    closed=5,
    closed_on_time=3,
    closed_late=2,
    open_end=4,
    overdue_end=3,
    handled=7,
    reworked=2,
    relapses=1,
    rejected=1,
    close_rate=0.625,
    on_time_rate=0.375,
    rework_rate=0.2857,
    score=48.39,
)
EXP_ALL = row(
    received=9,
    should_close=9,
    closed=6,
    closed_on_time=3,
    closed_late=3,
    open_end=5,
    overdue_end=3,
    handled=8,
    reworked=2,
    relapses=1,
    rejected=1,
    close_rate=0.6667,
    on_time_rate=0.3333,
    rework_rate=0.25,
    score=47.5,
)
