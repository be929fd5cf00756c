"""延期: requested by the responsible side, granted or refused by a planner; both are events,
counted per holder in the rankings; a grant after a period leaves that period alone.
Optional 立案/交办 time limits with their own overdue flags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from geoservice.issues import extensions
from geoservice.models import Issue, Leader
from geoservice.ranking import drilldown, ranking
from geoservice.ranking.periods import week_period
from geoservice.service_errors import Conflict, Forbidden, InvalidInput
from tests.factories import LAYERS
from tests.issues.helpers import account
from tests.ranking_case import TZ, at, build, row
from tests.ranking_history_case import SETTINGS, admin, move, raw_moves, report

W47 = week_period(2015, 47, TZ)


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@pytest.fixture
def world(db_session):
    case = build(db_session)
    actor = admin(db_session)
    leader = db_session.get(Leader, case.leaders["D"])
    d_user, d_headers = account(db_session, "leader", leader=leader)
    planner, p_headers = account(db_session, "planner")
    s = db_session
    # E1: due Tue 10:00; D asks Tue 08:00 for Thu 10:00, granted Tue 09:00; closed Wed 12:00.
    e1 = report(s, case, "E1", "g3", at(16, 9))
    move(s, actor, e1, "accepted", at(16, 9, 30))
    move(s, actor, e1, "dispatched", at(16, 10))
    extensions.request_extension(s, e1, d_user, "需要协调施工队", at(19, 10), now=at(17, 8))
    extensions.decide_extension(s, e1, planner, True, now=at(17, 9))
    raw_moves(
        s,
        e1,
        [
            (at(17, 10), "dispatched", "in_progress"),
            (at(18, 10), "in_progress", "fixed"),
            (at(18, 12), "fixed", "closed"),
        ],
    )
    # E2: due Tue 12:00; D asks Tue 10:00 for Fri 12:00, refused Tue 11:00; open at the end.
    e2 = report(s, case, "E2", "g3", at(16, 11))
    move(s, actor, e2, "accepted", at(16, 11, 30))
    move(s, actor, e2, "dispatched", at(16, 12))
    extensions.request_extension(s, e2, d_user, "人手不足", at(20, 12), now=at(17, 10))
    extensions.decide_extension(s, e2, planner, False, "理由不充分", now=at(17, 11))
    # E3: due Sat 10:00, overdue at the week end; an extension granted only the next week.
    e3 = report(s, case, "E3", "g3", at(20, 9))
    move(s, actor, e3, "accepted", at(20, 9, 30))
    move(s, actor, e3, "dispatched", at(20, 10))
    return case, actor, d_user, planner, d_headers, p_headers


# D in W47: the hand-built week's I15 (closed late) plus E1 (closed on time after a granted
# 延期), E2 (refused, overdue at the end), E3 (overdue at the end).
EXPECTED_D = row(
    received=4,
    should_close=4,  # closed I15 E1 + overdue E2 E3
    closed=2,
    closed_on_time=1,  # E1: closed Wed 12:00, deadline extended to Thu 10:00
    closed_late=1,  # I15
    open_end=2,
    overdue_end=2,
    handled=2,
    extension_requested=2,
    extension_granted=1,
    extension_refused=1,
    close_rate=0.5,
    on_time_rate=0.25,
    rework_rate=0.0,
    score=40.0,  # 60·1/4 + 30·1/2 + 10·1
)


def test_extension_granted_and_refused_in_the_rankings(db_session, world):
    case, _actor, d_user, planner, *_ = world
    d = case.leaders["D"]
    rows = {r["key"]: r for r in ranking.ranking(db_session, LAYERS, "leader", W47)}
    assert {k: rows[d][k] for k in EXPECTED_D} == EXPECTED_D
    granted = drilldown.issues_behind(db_session, LAYERS, "leader", d, "extension_granted", W47)
    assert [i["id"] for i in granted["issues"]] == [case.issues["E1"]]
    unit = {r["key"]: r for r in ranking.ranking(db_session, LAYERS, "unit", W47)}
    assert unit[case.units["二局"]]["extension_requested"] == 2

    before = ranking.ranking(db_session, LAYERS, "leader", W47)
    e3 = case.issues["E3"]
    extensions.request_extension(db_session, e3, d_user, "雨天", at(30, 10), now=at(23, 9))
    extensions.decide_extension(db_session, e3, planner, True, now=at(23, 10))
    assert db_session.get(Issue, e3).deadline == at(30, 10)
    # W47 is unchanged: E3 was overdue at its end, whatever was granted later.
    assert ranking.ranking(db_session, LAYERS, "leader", W47) == before
    w48 = {r["key"]: r for r in ranking.ranking(db_session, LAYERS, "leader", W47.previous(-1))}
    assert (w48[d]["extension_granted"], w48[d]["overdue_end"]) == (1, 1)  # E2 only


def test_who_may_ask_and_decide(db_session, world):
    case, actor, d_user, planner, *_ = world
    e3 = case.issues["E3"]
    a_user, _ = account(db_session, "leader", leader=db_session.get(Leader, case.leaders["A"]))
    with pytest.raises(Forbidden):
        extensions.request_extension(db_session, e3, a_user, "不是我的", at(30, 10), now=at(23, 9))
    with pytest.raises(Conflict):  # nothing pending
        extensions.decide_extension(db_session, e3, planner, True, now=at(23, 9))
    with pytest.raises(InvalidInput):  # no reason
        extensions.request_extension(db_session, e3, d_user, " ", at(30, 10), now=at(23, 9))
    with pytest.raises(InvalidInput):  # not later than the running deadline
        extensions.request_extension(db_session, e3, d_user, "雨天", at(21, 9), now=at(23, 9))
    extensions.request_extension(db_session, e3, d_user, "雨天", at(30, 10), now=at(23, 9))
    with pytest.raises(Conflict):  # one pending request at a time
        extensions.request_extension(db_session, e3, d_user, "再申请", at(30, 12), now=at(23, 9))
    with pytest.raises(Forbidden):  # the responsible side does not decide its own request
        extensions.decide_extension(db_session, e3, d_user, True, now=at(23, 10))
    with pytest.raises(InvalidInput):  # a refusal needs a reason
        extensions.decide_extension(db_session, e3, planner, False, "", now=at(23, 10))
    # 改派 never gives time.
    move(db_session, actor, e3, "dispatched", at(23, 11), case.leaders["C"], "改派")
    assert db_session.get(Issue, e3).deadline == at(21, 10)


def test_extension_api(client, db_session, world):
    case, _, _, _, d_headers, p_headers = world
    e3 = case.issues["E3"]
    url = f"/api/issues/{e3}/extensions"
    r = client.post(url, json={"reason": "雨天"}, headers=d_headers)
    assert r.status_code == 422 and r.get_json()["field"] == "deadline"
    r = client.post(url, json={"reason": "雨天", "deadline": "2015-11-30T10:00:00"},
                    headers=d_headers)  # fmt: skip
    assert r.status_code == 422  # no time zone
    r = client.post(url, json={"reason": "雨天", "deadline": "2015-11-30T10:00:00+08:00"},
                    headers=p_headers)  # fmt: skip
    assert r.status_code == 403
    r = client.post(url, json={"reason": "雨天", "deadline": "2015-11-30T10:00:00+08:00"},
                    headers=d_headers)  # fmt: skip
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["properties"]["extensions"]["pending"]["requested_deadline"]
    # The issue page shows the asked-for deadline in local time (the stored ISO text is UTC).
    page = client.get(f"/issues/{e3}", headers=p_headers).get_data(as_text=True)
    assert "待审批的延期申请：至 2015-11-30 10:00" in page
    r = client.post(f"{url}/decision", json={"grant": "yes"}, headers=p_headers)
    assert r.status_code == 422
    # An empty deadline is no deadline, not "the one asked for" (leave the field out for that).
    r = client.post(f"{url}/decision", json={"grant": True, "deadline": ""}, headers=p_headers)
    assert r.status_code == 422 and r.get_json()["field"] == "deadline"
    r = client.post(
        f"{url}/decision",
        json={"grant": True, "deadline": "2015-11-28T18:00:00+08:00"},
        headers=p_headers,
    )
    assert r.status_code == 200, r.get_json()
    props = r.get_json()["properties"]
    assert datetime.fromisoformat(props["deadline"]) == datetime(2015, 11, 28, 18, tzinfo=TZ)
    assert props["extensions"]["pending"] is None
    assert [i["action"] for i in client.get(url, headers=d_headers).get_json()["items"]] == [
        "extension_request",
        "extension_grant",
    ]


def test_accept_and_dispatch_time_limits(db_session, world):
    case, *_ = world
    settings = SETTINGS.__class__(**{**SETTINGS.__dict__, "accept_sla_hours": 1,
                                     "dispatch_sla_hours": 2})  # fmt: skip
    e3 = db_session.get(Issue, case.issues["E3"])  # reported 09:00, 立案 09:30, 交办 10:00
    flags = extensions.sla_flags(db_session, settings, e3, now=at(23, 0))
    assert flags["accept"] == {
        "due": utc(at(20, 10)),
        "done_at": utc(at(20, 9, 30)),
        "overdue": False,
        "hours": 1,
    }
    assert flags["dispatch"]["overdue"] is False
    late = SETTINGS.__class__(**{**SETTINGS.__dict__, "dispatch_sla_hours": 0.25})
    assert extensions.sla_flags(db_session, late, e3, now=at(23, 0))["dispatch"]["overdue"]
    assert "accept" not in extensions.sla_flags(db_session, late, e3, now=at(23, 0))
    # Not yet accepted: overdue once the limit has passed, by the clock.
    e4 = db_session.get(Issue, report(db_session, case, "E4", "g3", at(20, 9)))
    assert not extensions.sla_flags(db_session, settings, e4, now=at(20, 9, 59))["accept"][
        "overdue"
    ]
    assert extensions.sla_flags(db_session, settings, e4, now=at(20, 10, 1))["accept"]["overdue"]


def test_issue_page_offers_the_rule_actions(client, db_session, world):
    case, _, d_user, _, d_headers, p_headers = world
    e3 = case.issues["E3"]
    page = client.get(f"/issues/{e3}", headers=d_headers).get_data(as_text=True)
    assert "申请延期" in page and "申请退回" in page and "纠正责任归属" not in page
    extensions.request_extension(db_session, e3, d_user, "雨天<b>", at(30, 10), now=at(23, 9))
    page = client.get(f"/issues/{e3}", headers=p_headers).get_data(as_text=True)
    assert "待审批的延期申请" in page and "雨天&lt;b&gt;" in page and "纠正责任归属" in page
