"""The staff side of citizens' reports: the 群众反映 overview, the reporter's phone for
planners only, the public switches and photo approvals as forms, 回访 taken by phone and the
decision on a 不满意."""

from __future__ import annotations

from sqlalchemy import select

from geoservice.citizens.models import CitizenFeedback, CitizenReport, IssuePublic
from geoservice.models import IssueEvent, Photo
from tests.citizens_support import file_report
from tests.issues.helpers import b64, image_bytes

pytest_plugins = ("tests.citizens_fixtures",)
PHONE = "13812345678"


def _move(client, layout, issue_id, who, to, **fields):
    response = client.post(
        f"/api/issues/{issue_id}/transitions",
        json={"to": to, **fields},
        headers=layout.headers(who),
    )
    assert response.status_code == 200, response.get_json()


def _reported(client, db_session) -> int:
    assert file_report(client, phone=PHONE, description="桥下堆放建筑垃圾").status_code == 201
    return db_session.scalar(select(CitizenReport.issue_id).order_by(CitizenReport.issue_id.desc()))


def _closed(client, layout, db_session) -> int:
    issue_id = _reported(client, db_session)
    _move(client, layout, issue_id, "planner", "accepted")
    _move(client, layout, issue_id, "planner", "dispatched")
    _move(client, layout, issue_id, "leader_new", "in_progress")
    _move(
        client, layout, issue_id, "leader_new", "fixed", note="已清运", photos=[b64(image_bytes())]
    )
    _move(client, layout, issue_id, "planner", "closed")
    return issue_id


def test_the_overview_lists_reports_waiting_for_screening(public_on, client, layout, db_session):
    issue_id = _reported(client, db_session)
    html = client.get("/citizens/", headers=layout.headers("planner")).get_data(as_text=True)
    assert f"#{issue_id}" in html and "桥下堆放建筑垃圾" in html
    detail = client.get(f"/issues/{issue_id}", headers=layout.headers("planner"))
    assert f"/citizens/issues/{issue_id}" in detail.get_data(as_text=True)


def test_the_overview_says_how_many_wait_when_it_lists_the_oldest(
    public_on, client, layout, db_session, monkeypatch
):
    from geoservice.web import citizens as page

    first, second = _reported(client, db_session), _reported(client, db_session)
    monkeypatch.setattr(page, "WAITING_LISTED", 1)
    html = client.get("/citizens/", headers=layout.headers("planner")).get_data(as_text=True)
    assert "待受理的随手拍（2）" in html and "列出最早的 1 件" in html
    assert f"#{first}" in html and f"#{second}" not in html


def test_the_phone_is_for_planners_only(public_on, client, layout, db_session):
    issue_id = _reported(client, db_session)
    planner = client.get(f"/citizens/issues/{issue_id}", headers=layout.headers("planner"))
    assert PHONE in planner.get_data(as_text=True)
    viewer = client.get(f"/citizens/issues/{issue_id}", headers=layout.headers("viewer"))
    assert viewer.status_code == 200 and PHONE not in viewer.get_data(as_text=True)
    assert "保存公开设置" not in viewer.get_data(as_text=True)


def test_switches_and_photo_approvals_by_form(public_on, client, layout, db_session):
    issue_id = _closed(client, layout, db_session)
    photos = dict(
        db_session.execute(select(Photo.kind, Photo.id).where(Photo.issue_id == issue_id)).all()
    )
    url = f"/citizens/issues/{issue_id}/public"
    form = {"sensitive": "1", "published": "1", "approved": [str(photos["after"])]}
    refused = client.post(url, data=form, headers=layout.headers("leader_new"))
    assert refused.status_code == 403
    response = client.post(url, data=form, headers=layout.headers("planner"))
    assert response.status_code == 303
    row = db_session.get(IssuePublic, issue_id)
    db_session.refresh(row)
    assert (row.sensitive, row.published) == (True, True)
    assert client.get(f"/public/photos/{photos['after']}").status_code == 200
    assert client.get(f"/public/photos/{photos['before']}").status_code == 404
    # Unticking withdraws.
    client.post(url, data={"published": "1"}, headers=layout.headers("planner"))
    assert client.get(f"/public/photos/{photos['after']}").status_code == 404


def test_a_phone_answer_and_a_decision_to_keep(public_on, client, layout, db_session):
    issue_id = _closed(client, layout, db_session)
    page = client.get(f"/citizens/issues/{issue_id}", headers=layout.headers("planner"))
    assert "记录电话/热线回访结果" in page.get_data(as_text=True)
    recorded = client.post(
        f"/citizens/issues/{issue_id}/feedback",
        data={"answer": "unsatisfied", "channel": "hotline", "comment": "仍有异味"},
        headers=layout.headers("planner"),
    )
    assert recorded.status_code == 303
    feedback = db_session.scalar(
        select(CitizenFeedback).where(CitizenFeedback.issue_id == issue_id)
    )
    assert (feedback.answer, feedback.channel) == ("unsatisfied", "hotline")
    assert db_session.scalar(
        select(IssueEvent.note).where(IssueEvent.note.like("热线回访：不满意%"))
    )
    decided = client.post(
        f"/citizens/feedback/{feedback.id}/decision",
        data={"decision": "keep", "note": "经核实已清理到位"},
        headers=layout.headers("planner"),
    )
    assert decided.status_code == 303
    db_session.refresh(feedback)
    assert (feedback.decision, feedback.decision_note) == ("kept", "经核实已清理到位")
    html = client.get(f"/citizens/issues/{issue_id}", headers=layout.headers("planner")).get_data(
        as_text=True
    )
    assert "维持销号：经核实已清理到位" in html and "记录电话/热线回访结果" not in html
