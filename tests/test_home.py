"""The 工作台 (home page) on the demo county: its numbers equal counts written here in plain
SQL, for the whole county and for an account bound to one street; a leader sees their own
figures, an inspector their own reports; links the permission table denies are absent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from geoservice.accounts.auth import create_user, issue_token
from geoservice.models import Issue
from geoservice.registry import BASE_LAYER, layers
from geoservice.responsibility.coverage import coverage_report

OPEN = "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'fixed')"
EXPECTED = {
    "open": OPEN,
    "overdue": f"{OPEN} AND deadline < now()",  # 超期未办结, as the map and the rankings
    "rework": f"{OPEN} AND rework_count > 0",
    "relapse": f"{OPEN} AND relapse_of_id IS NOT NULL",
    "negative": f"{OPEN} AND negative_list",
}
UNASSIGNED = "leader_id IS NULL AND status IN ('reported', 'accepted') AND duplicate_of_id IS NULL"
TILE = re.compile(r'href="(/issues(?:\?view=\w+|/unassigned))"><span>[^<]*</span><b>(\d+)</b>')


@pytest.fixture(autouse=True)
def live_coverage(app, monkeypatch):
    monkeypatch.setitem(app.config, "HOME_CACHE_SECONDS", 0)


@pytest.fixture
def client(app, demo_session):
    """A client on the demo county (after demo_session has bound the app's sessions)."""
    return app.test_client()


def home(client, session, username, role, **binding):
    user = create_user(session, username, role, **binding)
    headers = {"Authorization": f"Bearer {issue_token(session, user)}"}
    response = client.get("/", headers=headers)
    assert response.status_code == 200
    return user, headers, response.get_data(as_text=True)


def tiles(html: str) -> dict[str, int]:
    return {href: int(n) for href, n in TILE.findall(html)}


def count(session, where: str, area_code: str | None = None) -> int:
    """Counts with the app's clock: the page judges 超期 by the time of the request, while the
    test's long-lived transaction would answer `now()` with the time it began."""
    if area_code is not None:
        where += " AND ST_Covers((SELECT geom FROM admin_areas WHERE code = :code), geom)"
    where = where.replace("now()", ":now")
    return session.execute(
        text(f"SELECT count(*) FROM issues WHERE {where}"),
        {"code": area_code, "now": datetime.now(UTC)},
    ).scalar_one()


def test_planner_figures_are_the_county_counts(app, demo_session, client):
    _, headers, html = home(client, demo_session, "home_planner", "planner")
    shown = tiles(html)
    for view, where in EXPECTED.items():
        assert shown[f"/issues?view={view}"] == count(demo_session, where), view
    assert shown["/issues/unassigned"] == count(demo_session, UNASSIGNED)
    assert shown["/issues?view=open"] > 0 and shown["/issues?view=overdue"] > 0
    # Each figure is the length of the list it links to.
    listed = client.get("/issues?view=overdue", headers=headers).get_data(as_text=True)
    assert f"共 {shown['/issues?view=overdue']} 件" in listed

    # The coverage headline agrees with the coverage audit.
    summary = coverage_report(demo_session, layers(app), BASE_LAYER)["summary"]
    unassigned = demo_session.execute(
        text("""SELECT count(*) FROM places p WHERE NOT EXISTS (
                  SELECT 1 FROM assignments a JOIN leaders l ON l.id = a.leader_id
                  WHERE a.place_id = p.id AND a.valid_to IS NULL AND l.active)""")
    ).scalar_one()
    assert summary["unassigned"] == unassigned > 0
    for number, label in (
        (unassigned, "个要素无包保领导"),
        (summary["gaps"], "处网格空白"),
        (summary["overlaps"], "处网格重叠"),
        (summary["hierarchy"], "项层级问题"),
    ):
        assert f"<b>{number}</b> {label}" in html, label
    assert 'href="/coverage"' in html

    # Every street of the county, with its open and overdue issues.
    streets = demo_session.execute(
        text(f"""SELECT a.name, (SELECT count(*) FROM issues i
                   WHERE ST_Covers(a.geom, i.geom) AND i.{OPEN}),
                 (SELECT count(*) FROM issues i
                   WHERE ST_Covers(a.geom, i.geom) AND i.{OPEN} AND i.deadline < now())
                 FROM admin_areas a WHERE a.level = 'street' ORDER BY a.code""")
    ).all()
    assert streets and any(overdue for _, _, overdue in streets)
    for name, open_issues, overdue in streets:
        row = re.search(rf"<td>{name}<small.*?</tr>", html, re.S)
        assert row, name
        assert f'<td class="num">{open_issues}</td>' in row.group(0)
        assert re.search(rf'<td class="num[^"]*">{overdue}</td></tr>', row.group(0)), name
    # The rankings' bottom rows are named.
    assert "上周后3名" in html and 'href="/rankings?' in html


def test_area_bound_planner_sees_only_their_street(demo_session, client):
    street, name = demo_session.execute(
        text("SELECT code, name FROM admin_areas WHERE level = 'street' ORDER BY code LIMIT 1")
    ).one()
    other = demo_session.execute(
        text("SELECT name FROM admin_areas WHERE level = 'street' AND code <> :c LIMIT 1"),
        {"c": street},
    ).scalar_one()
    _, headers, html = home(client, demo_session, "home_street", "planner", area_code=street)
    shown = tiles(html)
    for view, where in EXPECTED.items():
        assert shown[f"/issues?view={view}"] == count(demo_session, where, street), view
    assert shown["/issues/unassigned"] == count(demo_session, UNASSIGNED, street)
    assert shown["/issues?view=open"] < count(demo_session, OPEN)
    assert f"{name}范围内" in html
    # Whole-county pages are not offered; the areas shown are the street's communities.
    assert 'href="/coverage"' not in html and "覆盖检查" not in html
    assert f"{name}下辖" in html and f"<td>{other}<small" not in html
    communities = demo_session.execute(
        text("""SELECT name FROM admin_areas WHERE parent_id =
                  (SELECT id FROM admin_areas WHERE code = :c)"""),
        {"c": street},
    ).scalars()
    for community in communities:
        assert f"<td>{community}<small" in html
    listed = client.get("/issues?view=open", headers=headers).get_data(as_text=True)
    assert f"共 {shown['/issues?view=open']} 件" in listed


def test_leader_sees_their_own_figures(demo_session, client):
    leader_id = demo_session.execute(
        text("""SELECT leader_id FROM issues WHERE status IN ('dispatched', 'in_progress')
                AND leader_id IS NOT NULL GROUP BY leader_id ORDER BY count(*) DESC, leader_id
                LIMIT 1""")
    ).scalar_one()
    places = demo_session.execute(
        text("""SELECT count(DISTINCT place_id) FROM assignments
                WHERE leader_id = :l AND valid_to IS NULL"""),
        {"l": leader_id},
    ).scalar_one()
    todo = count(
        demo_session, f"leader_id = {leader_id} AND status IN ('dispatched', 'in_progress')"
    )
    _, _, html = home(client, demo_session, "home_leader", "leader", leader_id=leader_id)
    assert re.search(rf"<span>包保点位</span><b>{places}</b>", html)
    assert re.search(rf"<span>交办给我、待整改</span><b>{todo}</b>", html)
    assert todo > 0
    most_urgent = demo_session.execute(
        text("""SELECT id FROM issues WHERE leader_id = :l
                AND status IN ('dispatched', 'in_progress')
                ORDER BY deadline NULLS LAST, id LIMIT 1"""),
        {"l": leader_id},
    ).scalar_one()
    assert f'href="/issues/{most_urgent}"' in html
    assert 'href="/my"' in html and "进入我的包保" in html
    # A leader does not dispatch and does not see the whole-county audit.
    assert 'href="/issues/unassigned"' not in html and 'href="/coverage"' not in html


def test_inspector_sees_a_report_button_and_their_own_reports(demo_session, client):
    user = create_user(demo_session, "home_inspector", "inspector")
    mine = (
        demo_session.query(Issue)
        .filter(Issue.status.in_(("dispatched", "closed", "rejected")))
        .order_by(Issue.id)
        .limit(5)
        .all()
    )
    for issue in mine:
        issue.reported_by_id = user.id
    demo_session.flush()
    headers = {"Authorization": f"Bearer {issue_token(demo_session, user)}"}
    html = client.get("/", headers=headers).get_data(as_text=True)
    assert 'class="report-big" href="/issues/new"' in html
    assert "全部 5 件" in html
    statuses = {"dispatched": "已交办", "closed": "已销号", "rejected": "不予立案"}
    for issue in mine:
        row = re.search(rf'href="/issues/{issue.id}">#{issue.id}</a>.*?</tr>', html, re.S)
        assert row and statuses[issue.status] in row.group(0)
    assert "今日待办" not in html
    # Not in the inspector's permissions: dispatch, rankings, 包保 data.
    for href in ('href="/issues/unassigned"', 'href="/rankings', 'href="/coverage"'):
        assert href not in html
    assert "无包保领导" not in html
    # Their issue lists hold their own reports only.
    listed = client.get("/issues?view=open", headers=headers).get_data(as_text=True)
    open_mine = sum(1 for i in mine if i.status == "dispatched")
    assert f"共 {open_mine} 件" in listed


def test_links_follow_the_permission_table(demo_session, client):
    _, _, viewer = home(client, demo_session, "home_viewer", "viewer")
    assert "今日待办" in viewer and 'href="/rankings?' in viewer
    assert 'href="/issues/unassigned"' not in viewer and 'href="/issues/new"' not in viewer

    # A planner's token narrowed to reading layers: no issue figures, no issue links.
    user = create_user(demo_session, "home_narrow", "planner")
    token = issue_token(demo_session, user, scopes=["layers.read"])
    html = client.get("/", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert "今日待办" not in html
    for href in ('href="/issues', 'href="/map', 'href="/rankings', 'href="/coverage"'):
        assert href not in html
    assert "要素清单" in html
    denied = client.get("/issues?view=open", headers={"Authorization": f"Bearer {token}"})
    assert denied.status_code == 403


def test_unknown_list_is_404(demo_session, client):
    _, headers, _ = home(client, demo_session, "home_planner2", "planner")
    assert client.get("/issues?view=nonsense", headers=headers).status_code == 404


def test_a_coverage_check_too_slow_for_the_home_page_is_said_not_fatal(
    app, demo_session, client, monkeypatch
):
    from geoservice.web import home as home_page

    monkeypatch.setattr(home_page, "COVERAGE_BUDGET_MS", 1)  # the geometry work cannot finish
    _, _, html = home(client, demo_session, "home_slow", "planner")
    assert "未能在工作台上及时算完" in html and 'href="/coverage"' in html
    # The rest of the page was computed after the cancelled statement, in the same transaction.
    shown = tiles(html)
    assert shown["/issues?view=open"] == count(demo_session, EXPECTED["open"])
    assert "处网格空白" not in html


def test_the_bottom_lists_name_ten_rows_and_count_the_tied_rest():
    """A city's last week put hundreds of leaders at 0 分, all tied for the bottom three: the
    home page names ten of them and counts the others."""
    from geoservice.ranking import dashboard
    from geoservice.registry import LayerRegistry

    def row(n, score, rank, bottom):
        return {"ranked": True, "rank": rank, "score": score, "bottom": bottom,
                "below_threshold": score < 85, "name": f"领导{n}"}  # fmt: skip

    rows = [row(n, 90.0, 1, False) for n in range(5)] + [row(n, 0.0, 6, True) for n in range(5, 30)]
    (group,) = dashboard.bottom_rows(LayerRegistry.discover("layers"), {"leader": rows})
    assert len(group["bottom"]) == 10 and group["more"] == 15
    assert group["ranked"] == 30 and group["below_threshold"] == 25
    (few,) = dashboard.bottom_rows(LayerRegistry.discover("layers"), {"leader": rows[3:8]})
    assert [r["name"] for r in few["bottom"]] == ["领导5", "领导6", "领导7"] and few["more"] == 0
