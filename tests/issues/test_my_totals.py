"""我的包保 and the home page's leader card count each open issue once, however many of the
leader's places it lies at (a road's issue inside the leader's grid is one issue)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.factories import assign
from tests.issues.test_transitions import new_issue


def test_an_issue_at_two_of_a_leaders_places_counts_once(client, layout, db_session):
    road_leader = layout.leaders["road"]
    assign(db_session, road_leader, layout.places["g1"], datetime(2015, 10, 1, tzinfo=UTC),
           role="联点领导", is_primary=False)  # fmt: skip
    new_issue(client, layout, x=100, y=200)  # on 人民路, inside grid G1: both are the leader's
    page = client.get("/my", headers=layout.headers("leader_road")).get_data(as_text=True)
    assert re.search(r"未办结问题</span><b>(\d+)</b>", page).group(1) == "1"
    rows = re.findall(r"<td class=\"num\">(\d+)</td>", page)  # the per-place rows: 1 each
    assert rows.count("1") >= 2
