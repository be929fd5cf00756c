"""回访 after 销号: the reporter answers on the ticket page, 不满意 goes to a planner who
reopens or keeps the issue closed; 群众满意率 per leader/unit/street on the hand-built week,
weight 0 by default."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from geoservice.citizens.models import CitizenFeedback, CitizenReport
from geoservice.models import Issue, IssueEvent
from geoservice.ranking import ranking
from geoservice.ranking.periods import week_period
from tests.citizens_support import file_report, headers
from tests.factories import LAYERS
from tests.issues.helpers import b64, image_bytes
from tests.ranking_case import TZ, at, build

pytest_plugins = ("tests.citizens_fixtures",)

W47 = week_period(2015, 47, TZ)
AFTER = [b64(image_bytes(color=(30, 200, 30)))]


def _move(client, layout, issue_id, who, to, **fields):
    response = client.post(
        f"/api/issues/{issue_id}/transitions",
        json={"to": to, **fields},
        headers=layout.headers(who),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["properties"]


def _close(client, layout, issue_id, first=True):
    if first:  # a reopened issue is already 已交办
        _move(client, layout, issue_id, "planner", "accepted")
        _move(client, layout, issue_id, "planner", "dispatched")
    _move(client, layout, issue_id, "leader_new", "in_progress")
    _move(client, layout, issue_id, "leader_new", "fixed", note="已清理", photos=AFTER)
    _move(client, layout, issue_id, "planner", "closed")


def _answer(client, link, answer, comment=""):
    html = client.get(link).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token, "no 回访 form on the ticket page"
    return client.post(
        link, data={"answer": answer, "comment": comment, "csrf_token": token.group(1)}
    )


def test_the_reporter_answers_and_a_planner_reopens(public_on, client, layout, db_session):
    link = file_report(client).get_json()["link"]
    issue_id = db_session.scalar(select(CitizenReport.issue_id))
    assert "回访" not in client.get(link).get_data(as_text=True)  # not closed yet
    _close(client, layout, issue_id)

    form_token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(link).get_data(True))
    response = _answer(client, link, "unsatisfied", "垃圾桶旁边还是很脏")
    assert response.status_code == 303
    html = client.get(link).get_data(as_text=True)
    assert "不满意" in html and "垃圾桶旁边还是很脏" in html and "提交评价" not in html
    # The form sent again (a second tap, the back button): refused, and the page says why.
    again = client.post(link, data={"answer": "satisfied", "csrf_token": form_token.group(1)})
    assert again.status_code == 422 and "您已评价过本次办理结果" in again.get_data(as_text=True)
    feedback = db_session.scalar(select(CitizenFeedback))
    assert (feedback.answer, feedback.decision) == ("unsatisfied", None)
    note = db_session.scalar(
        select(IssueEvent.note).where(IssueEvent.data["action"].astext == "feedback")
    )
    assert note.startswith("群众回访：不满意")

    # Pending for planners; a leader may not decide.
    pending = client.get("/citizens/api/feedback/pending", headers=layout.headers("planner"))
    assert [f["id"] for f in pending.get_json()["feedback"]] == [feedback.id]
    url = f"/citizens/api/feedback/{feedback.id}/decision"
    refused = client.post(url, json={"decision": "reopen"}, headers=layout.headers("leader_new"))
    assert refused.status_code == 403
    keep_without_reason = client.post(
        url, json={"decision": "keep"}, headers=layout.headers("planner")
    )
    assert keep_without_reason.status_code == 422
    decided = client.post(url, json={"decision": "reopen"}, headers=layout.headers("planner"))
    assert decided.status_code == 200 and decided.get_json()["decision"] == "reopened"
    issue = db_session.get(Issue, issue_id)
    db_session.refresh(issue)
    assert issue.status == "dispatched" and issue.closed_at is None and issue.deadline
    # The new deadline is history, as for every handover: the rankings of periods before the
    # reopening read the deadline they had (geoservice.issues.holder_history).
    reopened = db_session.scalar(
        select(IssueEvent).where(IssueEvent.data["action"].astext == "reopen")
    )
    before_deadline = db_session.scalar(
        select(IssueEvent.deadline)
        .where(
            IssueEvent.issue_id == issue_id,
            IssueEvent.id < reopened.id,
            IssueEvent.deadline.is_not(None),
        )
        .order_by(IssueEvent.id.desc())
        .limit(1)
    )
    assert reopened.holder_change and reopened.prev_deadline == before_deadline
    assert reopened.deadline == issue.deadline != before_deadline
    assert issue.holder_since == reopened.at
    twice = client.post(
        url, json={"decision": "keep", "note": "x"}, headers=layout.headers("planner")
    )
    assert twice.status_code == 409
    assert "群众不满意，已重新交办整改" in client.get(link).get_data(as_text=True)

    # Fixed and closed again: the reporter is asked again.
    _close(client, layout, issue_id, first=False)
    assert _answer(client, link, "satisfied").status_code == 303
    answers = db_session.scalars(select(CitizenFeedback.answer).order_by(CitizenFeedback.id)).all()
    assert answers == ["unsatisfied", "satisfied"]


def test_one_answer_per_closing_and_only_after_it(public_on, client, layout, db_session):
    link = file_report(client).get_json()["link"]
    token = link.rsplit("/", 1)[1]
    api = f"/public/api/tickets/{token}/feedback"
    hdrs = {"Accept": "application/json"}
    early = client.post(api, json={"answer": "satisfied"}, headers=headers(client))
    assert early.status_code == 409 and "尚未销号" in early.get_json()["error"]
    issue_id = db_session.scalar(select(CitizenReport.issue_id))
    _close(client, layout, issue_id)
    bad = client.post(api, json={"answer": "great"}, headers=headers(client))
    assert bad.status_code == 422 and bad.get_json()["field"] == "answer"
    for body, field in (
        ({"answer": ["satisfied"]}, "answer"),
        ({"answer": {"x": 1}}, "answer"),
        ({"answer": "satisfied", "comment": {"text": "好"}}, "comment"),
    ):
        wrong = client.post(api, json=body, headers=headers(client))
        assert wrong.status_code == 422 and wrong.get_json()["field"] == field, body
    ok = client.post(api, json={"answer": "basically", "comment": "还行"}, headers=headers(client))
    assert ok.status_code == 200 and ok.get_json()["feedback"]["answer_label"] == "基本满意"
    again = client.post(api, json={"answer": "satisfied"}, headers=headers(client))
    assert again.status_code == 409
    assert (
        client.get(f"/public/api/tickets/{token}", headers=hdrs).get_json()["can_answer"] is False
    )


# --- 群众满意率 on the hand-built week (tests/ranking_case.py) ---------------------------------

# (issue, answer, when): W47 is Mon 16 – Sun 22 Nov 2015.
FEEDBACK = [
    ("I1", "satisfied", at(15, 20)),  # W46: not counted
    ("I2", "satisfied", at(17, 12)),  # A
    ("I3", "unsatisfied", at(19, 12)),  # A
    ("I4", "basically", at(18, 13)),  # A
    ("I9", "satisfied", at(23, 10)),  # B, W48: B's only activity that week
    ("I15", "unsatisfied", at(18, 16)),  # D
    ("I10", "satisfied", at(23, 9)),  # C, W48: not counted
]


@pytest.fixture
def week(db_session):
    case = build(db_session)
    for name, answer, when in FEEDBACK:
        issue_id = case.issues[name]
        close = db_session.scalar(
            select(IssueEvent.id)
            .where(
                IssueEvent.issue_id == issue_id,
                IssueEvent.to_status == "closed",
                IssueEvent.from_status != "closed",
            )
            .order_by(IssueEvent.at.desc())
        )
        db_session.add(
            CitizenFeedback(issue_id=issue_id, close_event_id=close, answer=answer, at=when)
        )
    db_session.flush()
    return case


def _rows(db_session, of, settings=ranking.DEFAULT_SETTINGS):
    return {r["key"]: r for r in ranking.ranking(db_session, LAYERS, of, W47, settings)}


def test_satisfaction_rate_per_leader_unit_and_street(db_session, week):
    leaders = _rows(db_session, "leader")
    got = {
        name: (leaders[week.leaders[name]]["satisfaction_answers"],
               leaders[week.leaders[name]]["satisfaction_rate"])
        for name in "ABCD"
    }  # fmt: skip
    assert got == {"A": (3, 0.6667), "B": (0, None), "C": (0, None), "D": (1, 0.0)}
    units = _rows(db_session, "unit")
    assert units[week.units["一局"]]["satisfaction_rate"] == 0.6667  # 2 of 3
    assert units[week.units["二局"]]["satisfaction_rate"] == 0.0
    street = _rows(db_session, "street")[week.areas["street"]]
    assert (street["satisfaction_answers"], street["satisfaction_rate"]) == (4, 0.5)


def test_a_row_with_only_answers_shows_its_rate_unranked(db_session, week):
    w48 = week_period(2015, 48, TZ)
    rows = {r["key"]: r for r in ranking.ranking(db_session, LAYERS, "leader", w48)}
    b = rows[week.leaders["B"]]
    assert (b["satisfaction_answers"], b["satisfaction_rate"]) == (1, 1.0)
    assert b["received"] == 0 and b["score"] is None and b["ranked"] is False
    assert b["name"] == "乙领导"
    one = ranking.compute(db_session, LAYERS, "leader", [w48], key=week.leaders["B"])[0]
    assert [r["key"] for r in one] == [week.leaders["B"]]


def test_satisfaction_weighs_nothing_by_default(db_session, week):
    leaders = _rows(db_session, "leader")
    assert [leaders[week.leaders[n]]["score"] for n in "ABCD"] == [49.5, 100.0, 20.0, 40.0]


def test_satisfaction_weight_is_configurable(db_session, week):
    settings = ranking.Settings.from_config({"RANKING_WEIGHTS": {"satisfaction": 100}})
    leaders = _rows(db_session, "leader", settings)
    # A: (60·0.4 + 30·0.6 + 10·0.75 + 100·2/3) / 200 × 100; C has no answers: unchanged.
    assert [leaders[week.leaders[n]]["score"] for n in "ABCD"] == [58.08, 100.0, 20.0, 20.0]


def test_a_street_planner_reopens_only_to_its_own_streets_leaders(
    public_on, client, layout, db_session
):
    from tests.factories import rect
    from tests.issues.helpers import account, add_area

    link = file_report(client).get_json()["link"]  # in grid G1
    issue_id = db_session.scalar(select(CitizenReport.issue_id))
    _close(client, layout, issue_id)
    assert _answer(client, link, "unsatisfied", "还是很脏").status_code == 303
    feedback = db_session.scalar(select(CitizenFeedback))
    add_area(db_session, "320999001", rect(0, 0, 400, 400), level="street")
    _, west = account(db_session, "planner", area_code="320999001")
    url = f"/citizens/api/feedback/{feedback.id}/decision"

    g2 = layout.leaders["g2"].id  # answers for grid G2, outside the street
    elsewhere = client.post(url, json={"decision": "reopen", "leader_id": g2}, headers=west)
    unknown = client.post(url, json={"decision": "reopen", "leader_id": 987654}, headers=west)
    assert elsewhere.status_code == unknown.status_code == 422
    assert elsewhere.get_json() == unknown.get_json()
    assert db_session.get(Issue, issue_id).status == "closed"
    own = layout.leaders["grid"].id
    decided = client.post(url, json={"decision": "reopen", "leader_id": own}, headers=west)
    assert decided.status_code == 200
    db_session.expire_all()
    assert db_session.get(Issue, issue_id).leader_id == own
