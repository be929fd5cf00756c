"""通报 published → the units named in it: on the demo county, last week's unit ranking goes
to each unit's contact and head, with the figures of the published ranking; once only."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import text

from geoservice.notifications import bulletin, manage
from geoservice.notifications.worker import render
from geoservice.ranking import ranking
from geoservice.ranking.periods import parse_period
from geoservice.registry import layers
from tests import clock
from tests.notify_support import worker_settings


def test_last_weeks_unit_ranking_reaches_each_units_contact_and_head(app, demo_session):
    s = demo_session
    tz = ZoneInfo(app.config["TIMEZONE"])
    period = parse_period("week", None, None, tz, clock.local_today())
    settings = ranking.Settings.from_config(app.config)
    rows = [r for r in ranking.ranking(s, layers(app), "unit", period, settings) if r["ranked"]]
    assert rows, "the demo county has a ranked unit last week"
    worst = rows[-1]
    contact = s.execute(
        text("SELECT id FROM leaders WHERE unit_id = :u ORDER BY id LIMIT 1"), {"u": worst["key"]}
    ).scalar_one()
    manage.set_unit_contacts(s, worst["key"], contact, None)
    with app.app_context():
        made = bulletin.publish(s, layers(app), period, settings)
        assert bulletin.publish(s, layers(app), period, settings) == 0  # once only
    assert made >= 1
    message = s.execute(
        text(
            "SELECT subject, data FROM notify_messages WHERE kind = 'bulletin' AND leader_id = :l"
        ),
        {"l": contact},
    ).one()
    assert message.subject == f"【通报】{period.title}：{worst['name']}"
    assert message.data["rank"] == worst["rank"] and message.data["score"] == worst["score"]
    assert message.data["link"] == f"/rankings?period=week&from={period.label}&of=unit"
    if worst["flagged"]:
        assert message.data["flags"]
    body = render("bulletin", message.subject, message.data, worker_settings())
    assert f"排名 {worst['rank']}/{len(rows)}" in body
    assert f"https://cw.example.gov.cn/rankings?period=week&from={period.label}&of=unit" in body
