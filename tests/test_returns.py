"""申请退回 and 确权: a granted return takes the time before it off the returning leader (it
counts for nobody), the leader named gets it from the grant with a fresh deadline; a refused
return changes nothing."""

from __future__ import annotations

import pytest

from geoservice.issues import returns
from geoservice.models import Issue, Leader
from geoservice.ranking import ranking
from geoservice.ranking.periods import week_period
from geoservice.service_errors import Conflict, Forbidden, InvalidInput
from tests.factories import LAYERS
from tests.issues.helpers import account
from tests.ranking_case import TZ, at, build, row
from tests.ranking_history_case import SETTINGS, admin, move, report

W47 = week_period(2015, 47, TZ)
W48 = W47.previous(-1)


@pytest.fixture
def world(db_session):
    case = build(db_session)
    actor = admin(db_session)
    d_user, d_headers = account(db_session, "leader", leader=db_session.get(Leader,
                                case.leaders["D"]))  # fmt: skip
    planner, p_headers = account(db_session, "planner")
    s = db_session
    # R1 (grid 3, D's): due Tue 10:00; D asks to return it on Wed 09:00 ("住建局的工地").
    r1 = report(s, case, "R1", "g3", at(16, 9))
    move(s, actor, r1, "accepted", at(16, 9, 30))
    move(s, actor, r1, "dispatched", at(16, 10))
    returns.request_return(s, r1, d_user, "属住建局在建工地，不在包保范围", now=at(18, 9))
    return case, actor, d_user, planner, d_headers, p_headers


def rows(session, period, of="leader"):
    return {r["key"]: r for r in ranking.ranking(session, LAYERS, of, period)}


def test_granted_return(db_session, world):
    case, _, _, planner, *_ = world
    d, b = case.leaders["D"], case.leaders["B"]
    # Before the decision R1 is D's, overdue at the end of W47.
    assert rows(db_session, W47)[d]["overdue_end"] == 1
    returns.decide_return(db_session, SETTINGS, case.issues["R1"], planner, True, "确属住建局",
                          leader_id=b, now=at(24, 10))  # fmt: skip
    r1 = db_session.get(Issue, case.issues["R1"])
    assert (r1.leader_id, r1.deadline) == (b, at(25, 10))  # 24 h from the grant
    w47 = rows(db_session, W47)
    # D: only the hand-built week's I15 is left (closed late).
    expected_d = row(received=1, should_close=1, closed=1, closed_late=1, handled=1, score=40.0)
    assert {k: w47[d][k] for k in expected_d} == expected_d
    # The time before the grant counts for nobody: the unassigned row (I12 and R1).
    expected_none = row(received=2, should_close=1, open_end=2, overdue_end=1, score=0.0, rank=None)
    assert {k: w47[None][k] for k in expected_none} == expected_none
    # B has R1 from Tue 24th 10:00, due Wed 25th 10:00, overdue at the end of W48; the grant
    # is no 超期转出 for anybody.
    w48 = rows(db_session, W48)
    assert (w48[b]["overdue_end"], w48[b]["received"]) == (1, 0)
    assert all(r["handed_overdue"] == 0 for r in w48.values())
    assert d not in w48 or w48[d]["open_end"] == 0


def test_refused_return_and_rules(db_session, world):
    case, _, d_user, planner, *_ = world
    r1 = case.issues["R1"]
    with pytest.raises(Conflict):
        returns.request_return(db_session, r1, d_user, "再次申请", now=at(18, 10))
    with pytest.raises(Forbidden):
        returns.decide_return(db_session, SETTINGS, r1, d_user, True, now=at(18, 10))
    with pytest.raises(InvalidInput):
        returns.decide_return(db_session, SETTINGS, r1, planner, False, "", now=at(18, 10))
    before = rows(db_session, W47)
    returns.decide_return(db_session, SETTINGS, r1, planner, False, "位于网格3，属包保范围",
                          now=at(18, 11))  # fmt: skip
    assert db_session.get(Issue, r1).leader_id == case.leaders["D"]
    assert rows(db_session, W47) == before
    with pytest.raises(Conflict):  # nothing pending any more
        returns.decide_return(db_session, SETTINGS, r1, planner, True, now=at(18, 12))


def test_return_api(client, db_session, world):
    case, _, _, _, d_headers, p_headers = world
    r1 = case.issues["R1"]
    r = client.post(f"/api/issues/{r1}/return", json={"reason": "x"}, headers=d_headers)
    assert r.status_code == 409  # one pending already
    r = client.post(f"/api/issues/{r1}/return/decision", json={"grant": True}, headers=d_headers)
    assert r.status_code == 403
    r = client.post(f"/api/issues/{r1}/return/decision", json={"grant": True}, headers=p_headers)
    assert r.status_code == 200, r.get_json()
    props = r.get_json()["properties"]
    assert props["leader_id"] is None  # back to the 待派遣 queue
    actions = [e["action"] for e in props["timeline"]]
    assert actions[-3:] == ["return_request", "attribution_correction", "return_grant"]
