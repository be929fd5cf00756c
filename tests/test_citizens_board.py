"""The public 红黑榜: a planner publishes a period's unit ranking with the 通报; the public page
shows unit names and scores only, as published (a snapshot), until withdrawn."""

from __future__ import annotations

from sqlalchemy import select

from geoservice.citizens.models import PublishedBoard
from tests.issues.helpers import account
from tests.ranking_case import build

pytest_plugins = ("tests.citizens_fixtures",)


def test_a_published_board_names_units_only(public_on, client, db_session, monkeypatch):
    monkeypatch.setitem(public_on.config, "RANKING_BOTTOM_N", 1)
    case = build(db_session)
    planner = account(db_session, "planner")[1]
    viewer = account(db_session, "viewer")[1]
    assert "暂无公开的红黑榜" in client.get("/public/board").get_data(as_text=True)
    form = {"period": "week", "from": "2015-W47"}
    assert client.post("/citizens/boards", data=form, headers=viewer).status_code == 403
    response = client.post("/citizens/boards", data=form, headers=planner)
    assert response.status_code == 303
    stored = db_session.scalar(select(PublishedBoard))
    assert (stored.kind, stored.label) == ("week", "2015-W47")
    names = {e["name"] for e in stored.board["red"] + stored.board["black"]}
    assert names == {"一局", "二局"} and len(stored.board["black"]) == 1

    html = client.get("/public/board").get_data(as_text=True)
    assert "2015年第47周" in html and "一局" in html and "二局" in html
    for leader in ("甲领导", "乙领导", "丙领导", "丁领导", "13800000000"):
        assert leader not in html
    # Republishing replaces the snapshot; withdrawing takes it down.
    assert client.post("/citizens/boards", data=form, headers=planner).status_code == 303
    assert len(db_session.scalars(select(PublishedBoard)).all()) == 1
    withdrawn = client.post(f"/citizens/boards/{stored.id}/withdraw", headers=planner)
    assert withdrawn.status_code == 303
    assert "一局" not in client.get("/public/board").get_data(as_text=True)
    assert case.units  # the week's units existed all along


def test_a_bad_period_is_a_message(public_on, client, db_session):
    planner = account(db_session, "planner")[1]
    response = client.post(
        "/citizens/boards", data={"period": "week", "from": "W99"}, headers=planner
    )
    assert response.status_code == 303
    page = client.get("/citizens/", headers=planner).get_data(as_text=True)
    assert "无法识别" in page and db_session.scalar(select(PublishedBoard)) is None


def test_the_board_form_is_in_the_page_once_and_the_title_is_text(public_on, client, db_session):
    planner = account(db_session, "planner")[1]
    page = client.get("/citizens/", headers=planner).get_data(as_text=True)
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title == "群众反映 · 创文包保 GIS"
    body = page.split("</head>", 1)[1]
    assert body.count("公开红黑榜（责任单位）") == 1 and body.count('name="from"') == 1


def test_a_period_that_has_not_ended_is_not_published(public_on, client, db_session):
    """Its figures are not final (every open issue still counts as overdue at its end): the
    running week, next year's week, a quarter decades ahead — refused, nothing published."""
    from datetime import UTC, datetime, timedelta

    planner = account(db_session, "planner")[1]
    today = datetime.now(UTC) + timedelta(hours=8)
    year, week, _ = today.isocalendar()
    for form in (
        {"period": "week", "from": f"{year}-W{week:02d}"},
        {"period": "week", "from": f"{year + 1}-W10"},
        {"period": "quarter", "from": "2099-Q4"},
    ):
        assert client.post("/citizens/boards", data=form, headers=planner).status_code == 303
        page = client.get("/citizens/", headers=planner).get_data(as_text=True)
        assert "尚未结束，不能发布红黑榜" in page, form
    assert db_session.scalar(select(PublishedBoard)) is None


def test_the_board_scores_by_the_rules_in_force_at_the_periods_start(
    public_on, client, db_session, monkeypatch
):
    """As the office's own ranking of the period: a 后N名 rule in force then, not the
    configuration's default, decides the 黑榜."""
    from datetime import UTC, datetime

    from geoservice.models import RuleSetting

    monkeypatch.setitem(public_on.config, "RANKING_BOTTOM_N", 2)
    build(db_session)
    db_session.add(
        RuleSetting(
            key="ranking_bottom_n",
            value=1,
            note="测试",
            valid_from=datetime(2015, 1, 1, tzinfo=UTC),
        )
    )
    db_session.flush()
    planner = account(db_session, "planner")[1]
    form = {"period": "week", "from": "2015-W47"}
    assert client.post("/citizens/boards", data=form, headers=planner).status_code == 303
    stored = db_session.scalar(select(PublishedBoard))
    ranked = client.get(
        "/api/rankings?of=unit&period=week&from=2015-W47", headers=planner
    ).get_json()
    assert ranked["settings"]["bottom_n"] == 1
    assert len(stored.board["black"]) == 1
