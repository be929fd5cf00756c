"""巡查到位率 beside the other indicators (issue 16): in /api/rankings, the rankings page and
the 通报 workbook, on a hand-built week (2015-W45) with hand-computed figures, and
reproducible: a visit uploaded after the week, or a reassignment, leaves the week as published.

The week (world of tests/test_fieldwork_patrols.py):
- 陈道路 (县城管局): roads r1, r2, twice a week → 4 tasks; 3 walks uploaded on Tuesday.
- 甲网格员 (城南街道): g1 weekly (甲 held it on Monday; 乙 took over on Wednesday noon, so the
  W45 task stays 甲's) → 1 task, walked Tuesday.
- 丙网格员 (城北街道): g2 weekly → 1 task, walked on Sunday but uploaded on Tuesday of W46.

As of the end of W45: 陈道路 3/4 = 75 %, 甲 1/1 = 100 %, 丙 0/1 = 0 %; 县城管局 3/4,
城南街道 1/1, 城北街道 0/1; city-wide 4/6 = 66.67 %.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from openpyxl import load_workbook
from sqlalchemy import text

from geoservice.fieldwork import patrol_visits, patrols
from geoservice.ranking import patrol, publications, ranking, report
from geoservice.ranking.periods import week_period
from tests import test_fieldwork_patrols as fieldwork_patrol_tests
from tests.factories import metres, rect
from tests.issues.helpers import account, add_area
from tests.test_fieldwork_patrols import MONDAY, TZ, schedule, tasks

# The hand-built world of the patrol tests (its fixtures, reused as they are).
world = fieldwork_patrol_tests.world
uploads = fieldwork_patrol_tests.uploads

TUESDAY = datetime(2015, 11, 3, 9, 0, tzinfo=TZ)
SUNDAY = datetime(2015, 11, 8, 20, 0, tzinfo=TZ)
NEXT_TUESDAY = datetime(2015, 11, 10, 9, 0, tzinfo=TZ)
LATER = datetime(2015, 11, 20, tzinfo=TZ)


def walk(w, who, task, at, received):
    user = w["accounts"][who][0]
    lon, lat = metres(200, 200)
    fields = {"task_id": task.id, "visited_at": at.isoformat(), "outcome": "ok",
              "lon": lon, "lat": lat}  # fmt: skip
    return patrol_visits.record_visit(
        w["session"], w["registry"], w["settings"], w["issue_settings"], user, fields, [], [],
        now=received,
    ).visit  # fmt: skip


def build_week(w, late_visit=True):
    schedule(w, "road", "道路长", "week", times=2)
    schedule(w, "grid", "网格员", "week")
    patrols.generate_tasks(w["session"], w["registry"], w["settings"], MONDAY)
    # Generated when the week began (as the field app does when a leader opens the day).
    w["session"].execute(text("UPDATE patrol_tasks SET created_at = period_start"))
    for t in tasks(w, leader_id=w["leaders"]["road"].id)[:3]:
        walk(w, "road", t, TUESDAY, TUESDAY)
    (g1,) = tasks(w, place_id=w["places"]["g1"].id)
    walk(w, "a", g1, TUESDAY, TUESDAY)
    if late_visit:
        (g2,) = tasks(w, place_id=w["places"]["g2"].id)
        walk(w, "c", g2, SUNDAY, NEXT_TUESDAY)  # done in W45, uploaded in W46
    w["session"].flush()


W45 = week_period(2015, 45, TZ)
EXPECTED_LEADERS = {"陈道路": (4, 3, 0.75), "甲网格员": (1, 1, 1.0), "丙网格员": (1, 0, 0.0)}
EXPECTED_UNITS = {"县城管局": (4, 3, 0.75), "城南街道": (1, 1, 1.0), "城北街道": (1, 0, 0.0)}


def _triples(rows):
    return {
        r["name"]: (r["patrol_due"], r["patrol_done"], r["patrol_rate"])
        for r in rows
        if r["patrol_due"] is not None
    }


def test_rates_of_a_closed_week_are_read_as_of_its_end(world):
    w = world
    build_week(w)
    s, reg = w["session"], w["registry"]
    leaders = patrol.figures(s, reg, "leader", W45, now=LATER)
    by_name = {f["name"]: (f["patrol_due"], f["patrol_done"], f["patrol_rate"])
               for f in leaders.values()}  # fmt: skip
    assert by_name == EXPECTED_LEADERS
    assert patrol.totals(s, reg, W45, now=LATER) == {
        "patrol_due": 6, "patrol_done": 4, "patrol_missed": 2, "patrol_rate": 0.6667,
    }  # fmt: skip
    # The running view (fieldwork's own rates, read now) does count the late upload.
    from geoservice.fieldwork import patrol_coverage

    now_rows = patrol_coverage.rates(s, reg, "leader", W45.start, W45.end, LATER)
    assert {r["name"]: r["done"] for r in now_rows}["丙网格员"] == 1


def test_rankings_api_shows_the_rate_beside_the_other_indicators(client, world):
    w = world
    build_week(w)
    _, headers = account(w["session"], "viewer")
    body = client.get(
        "/api/rankings?of=leader&period=week&from=2015-W45", headers=headers
    ).get_json()
    assert body["indicators"]["patrol_rate"] == "巡查到位率"
    # No issues this week: every leader appears on the strength of patrols alone, unranked.
    assert _triples(body["rows"]) == EXPECTED_LEADERS
    assert all(not r["ranked"] and r["received"] == 0 for r in body["rows"])
    units = client.get("/api/rankings?of=unit&period=week&from=2015-W45", headers=headers)
    assert _triples(units.get_json()["rows"]) == EXPECTED_UNITS
    city = client.get("/api/rankings?of=all&period=week&from=2015-W45", headers=headers)
    (row,) = city.get_json()["rows"]
    assert (row["patrol_due"], row["patrol_done"], row["patrol_rate"]) == (6, 4, 0.6667)
    # By street (a street covering every place here): all six tasks.
    add_area(w["session"], "320999001", rect(-2000, -2000, 3000, 3000), level="street")
    streets = client.get("/api/rankings?of=street&period=week&from=2015-W45", headers=headers)
    assert streets.status_code == 200, streets.get_json()
    assert _triples(streets.get_json()["rows"]) == {"测试县": (6, 4, 0.6667)}
    # Groupings without patrols carry no patrol fields.
    grids = client.get("/api/rankings?of=category&period=week&from=2015-W45", headers=headers)
    assert grids.status_code == 200
    assert all("patrol_rate" not in r for r in grids.get_json()["rows"])
    page = client.get("/rankings?of=leader&period=week&from=2015-W45", headers=headers)
    assert page.status_code == 200
    assert "巡查到位率" in page.get_data(as_text=True)


def test_the_workbook_has_a_patrol_sheet_and_the_publication_stays_reproducible(world):
    w = world
    build_week(w, late_visit=False)
    s, reg = w["session"], w["registry"]
    pub = publications.publish(s, reg, W45, ranking.DEFAULT_SETTINGS, None, now=LATER)
    wb = load_workbook(io.BytesIO(pub.workbook))
    ws = wb["巡查到位率"]
    values = [[c for c in row] for row in ws.iter_rows(values_only=True)]
    leader_rows = {v[1]: (v[2], v[3], v[4], v[5]) for v in values if v and v[0] == "包保领导"}
    assert leader_rows == {
        "丙网格员": (1, 0, 1, 0.0), "陈道路": (4, 3, 1, 0.75), "甲网格员": (1, 1, 0, 1.0),
    }  # fmt: skip
    assert values[1][:4] == ["全域", "应巡 6", "已巡 4", "到位率 66.7%"]
    # The flag colour covers exactly each block's rows (below 100 %: 丙 and 陈道路 in red).
    ranges = [str(r.sqref) for r in ws.conditional_formatting]
    assert ranges[0] == "A5:F7"
    unit_rows = {v[1]: (v[2], v[3]) for v in values if v and v[0] == "责任单位"}
    assert unit_rows == {"城北街道": (1, 0), "县城管局": (4, 3), "城南街道": (1, 1)}
    # Lowest rate first: the ones to urge head each block.
    assert next(v[1] for v in values if v and v[0] == "包保领导") == "丙网格员"
    assert pub.figures["patrol"]["leader"]
    # 丙 uploads the Sunday walk in W46, and g1 changes hands again: W45 does not move.
    (g2,) = tasks(w, place_id=w["places"]["g2"].id)
    walk(w, "c", g2, SUNDAY, NEXT_TUESDAY)
    s.flush()
    checked = publications.check(s, reg, pub)
    assert checked["same"] and not checked["patrol_changed"]
    # The workbook built afresh shows the same patrol figures.
    again = report.report_data(s, reg, W45)["patrol"]
    assert {r["name"]: r["patrol_done"] for r in again["leader"]} == {
        "陈道路": 3, "甲网格员": 1, "丙网格员": 0,
    }  # fmt: skip


def test_a_publication_notices_a_changed_patrol_figure(world):
    """If history is rewritten (a visit inserted as received before the end), check says so."""
    w = world
    build_week(w, late_visit=False)
    s, reg = w["session"], w["registry"]
    pub = publications.publish(s, reg, W45, ranking.DEFAULT_SETTINGS, None, now=LATER)
    (g2,) = tasks(w, place_id=w["places"]["g2"].id)
    walk(w, "c", g2, SUNDAY, SUNDAY)  # as if it had arrived on time (a backfilled record)
    s.flush()
    checked = publications.check(s, reg, pub)
    assert checked["patrol_changed"] and not checked["same"]


def test_a_task_generated_after_the_week_does_not_count_for_it(world):
    """Generating last week's tasks afterwards (flask fieldwork generate-tasks --date) leaves
    the closed week as it was: nobody had those tasks to do."""
    w = world
    build_week(w, late_visit=False)
    s, reg = w["session"], w["registry"]
    before = patrol.totals(s, reg, W45, now=LATER)
    # A daily rule for the grids replaces the weekly one, and W45's days are generated now.
    s.execute(text("UPDATE patrol_schedules SET active = false WHERE layer = 'grid'"))
    schedule(w, "grid", "网格员", "day")
    created = sum(
        patrols.generate_tasks(s, reg, w["settings"], MONDAY + timedelta(days=d)) for d in range(7)
    )
    assert created == 14  # 2 grids × 7 days, none of which anyone had to walk
    assert patrol.totals(s, reg, W45, now=LATER) == before
