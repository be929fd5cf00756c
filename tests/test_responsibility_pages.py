"""包保 pages: who sees what, 我的包保 shows only one's own places, forms (with CSRF) assign
from the leader page, maps load nothing from outside."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from geoservice.accounts.auth import create_user
from geoservice.models import Assignment
from geoservice.responsibility.responsibility import now as resp_now
from tests.factories import assign, rect
from tests.support_responsibility import add_person, add_place, add_unit, token_headers
from tests.world import PASSWORD
from tests.world import sign_in as world_sign_in

PAGES = ("/units", "/leaders", "/my", "/coverage", "/roster")


def sign_in(client, session, role, leader=None):
    """A browser session (cookie) for a new account, signed in through /login."""
    username = f"web-{role}-{leader.id if leader else 0}"
    user = create_user(session, username, role, password=PASSWORD, leader_id=leader and leader.id)
    response = world_sign_in(client, username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return user


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def map_data(html: str) -> list[dict]:
    """What the page's folium maps label, per layer: the tooltip fields of each feature (the
    JSON data static/js/featuremap.js reads; folium's own script holds geometries only)."""
    found = []
    for match in re.finditer(
        r'<script type="application/json" class="gs-features" id="[^"]+">(.*?)</script>',
        html,
        re.DOTALL,
    ):
        data = json.loads(match.group(1))
        places = data.get("places") or [None] * len(data["values"])
        features = [
            {
                "properties": {
                    name: value
                    for name, value in zip(data["fields"], values, strict=True)
                    if value is not None
                },
                # static/js/featuremap.js: the layer's address with the feature's place id
                "href": data["href"].replace("{place_id}", str(place))
                if data["href"] and place is not None
                else None,
            }
            for values, place in zip(data["values"], places, strict=True)
        ]
        found.append({"link": data["link"], "features": features})
    assert found, "no map data on the page"
    return found


@pytest.fixture
def county(db_session):
    unit = add_unit(db_session, "城北街道办事处")
    mine = add_person(db_session, "罗丽", unit, level="镇街")
    colleague = add_person(db_session, "邓彬", unit, level="镇街")
    places = {
        "own": add_place(
            db_session, "grid", "320999002001001", "东苑第1网格", rect(0, 0, 300, 300)
        ),
        "own_road": add_place(db_session, "road", "R0001", "人民路"),
        "other": add_place(
            db_session, "grid", "320999002001002", "东苑第2网格", rect(300, 0, 600, 300)
        ),
        "free": add_place(db_session, "market", "M001", "城北农贸市场"),
    }
    since = resp_now() - timedelta(days=200)  # whatever today is
    assign(db_session, mine, places["own"], since, role="网格长")
    assign(db_session, mine, places["own_road"], since, role="道路长")
    assign(db_session, colleague, places["other"], since, role="网格长")
    return {"unit": unit, "mine": mine, "colleague": colleague, "since": since, **places}


def test_anonymous_is_sent_to_the_sign_in_page(client):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next="), url


def test_my_areas_shows_only_the_leaders_own_places_zoomed_to_them(client, db_session, county):
    sign_in(client, db_session, "leader", county["mine"])
    response = client.get("/my")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    codes = sorted(f["properties"]["code"] for d in map_data(html) for f in d["features"])
    assert codes == ["320999002001001", "R0001"]
    assert "东苑第2网格" not in html and "城北农贸市场" not in html
    assert "fitBounds" in html
    # Every script and stylesheet comes from this server.
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    assert "cdn" not in html.lower()
    # Not a unit head: no unit view, even when asked.
    unit = client.get("/my?scope=unit").get_data(as_text=True)
    assert "东苑第2网格" not in unit


def test_my_areas_carries_the_leaders_scorecard_for_last_week(client, db_session, county):
    sign_in(client, db_session, "leader", county["mine"])
    html = client.get("/my").get_data(as_text=True)
    leader = county["mine"]
    assert f'class="scorecard" data-leader="{leader.id}"' in html
    assert f"{leader.name} · 包保考核" in html
    assert "本期没有归属于本人的问题" in html  # no issues in this constructed county


def test_a_unit_head_sees_the_units_places(client, db_session, county):
    county["mine"].is_unit_head = True
    db_session.flush()
    sign_in(client, db_session, "leader", county["mine"])
    html = client.get("/my?scope=unit").get_data(as_text=True)
    codes = sorted(f["properties"]["code"] for d in map_data(html) for f in d["features"])
    assert codes == ["320999002001001", "320999002001002", "R0001"]
    assert "邓彬" in html


def test_leader_accounts_read_their_own_page_only(client, db_session, county):
    sign_in(client, db_session, "leader", county["mine"])
    assert client.get(f"/leaders/{county['mine'].id}").status_code == 200
    assert client.get(f"/leaders/{county['colleague'].id}").status_code == 404
    assert client.get("/coverage").status_code == 403
    listed = client.get("/leaders").get_data(as_text=True)
    assert "罗丽" in listed and "邓彬" not in listed
    form = client.post(
        f"/leaders/{county['mine'].id}/assign",
        data={"layer": "market", "code": "M001", "role": "点长", "csrf_token": csrf(listed)},
    )
    assert form.status_code == 403
    assert db_session.query(Assignment).filter_by(place_id=county["free"].id).count() == 0


def test_viewer_reads_without_forms(client, db_session, county):
    sign_in(client, db_session, "viewer")
    for url in ("/units", "/leaders", f"/leaders/{county['colleague'].id}", "/coverage", "/roster"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert not re.search(r'method="post"[^>]*action="/(units|leaders|assignments|places)', html)
    coverage = client.get("/coverage").get_data(as_text=True)
    assert "城北农贸市场" in coverage  # the unassigned market is listed and drawn
    drawn = [f["properties"].get("code") for d in map_data(coverage) for f in d["features"]]
    assert "M001" in drawn


def test_planner_assigns_from_the_leader_page_with_csrf(client, db_session, county):
    sign_in(client, db_session, "planner")
    page = client.get(f"/leaders/{county['mine'].id}")
    token = csrf(page.get_data(as_text=True))
    form = {"layer": "market", "code": "城北农贸市场", "role": "点长", "is_primary": "on"}

    refused = client.post(f"/leaders/{county['mine'].id}/assign", data=form)
    assert refused.status_code == 400  # no CSRF token
    assert db_session.query(Assignment).filter_by(place_id=county["free"].id).count() == 0

    done = client.post(
        f"/leaders/{county['mine'].id}/assign",
        data=form | {"csrf_token": token},
        follow_redirects=True,
    )
    assert done.status_code == 200
    assert "已将“城北农贸市场”（M001）分配为点长" in done.get_data(as_text=True)
    row = db_session.query(Assignment).filter_by(place_id=county["free"].id).one()
    assert row.leader_id == county["mine"].id and row.is_primary

    unknown = client.post(
        f"/leaders/{county['mine'].id}/assign",
        data=form | {"code": "M404", "csrf_token": token},
        follow_redirects=True,
    )
    assert "没有编码或名称为“M404”的要素" in unknown.get_data(as_text=True)


def test_planner_reassigns_from_the_place_page_and_history_shows(client, db_session, county):
    sign_in(client, db_session, "planner")
    place = county["other"]
    page = client.get(f"/places/{place.id}/responsibility").get_data(as_text=True)
    held = db_session.query(Assignment).filter_by(place_id=place.id).one()
    at = (county["since"] + timedelta(days=100)).date().isoformat()  # between start and today
    response = client.post(
        f"/assignments/{held.id}/reassign",
        data={
            "leader_id": county["mine"].id,
            "at": at,
            "next": f"/places/{place.id}/responsibility",
            "csrf_token": csrf(page),
        },
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "已由 邓彬 调整为 罗丽" in html
    history = html.split("历史责任人")[1]
    assert "邓彬" in history and at in history


def test_planner_hands_a_place_over_from_the_leader_page_by_the_leaders_list(
    client, db_session, county
):
    """The leader page lists the other leaders once (a <datalist>, not a <select> per row) and
    its 调整 form takes the picked entry ("姓名（单位） #id"); free text is refused, plainly."""
    sign_in(client, db_session, "planner")
    colleague, mine = county["colleague"], county["mine"]
    page = client.get(f"/leaders/{colleague.id}").get_data(as_text=True)
    rows = page.count('name="leader_id" list="other-leaders"')
    assert rows >= 1 and page.count('<datalist id="other-leaders">') == 1
    assert '<select name="leader_id"' not in page
    entry = f"罗丽（城北街道办事处） #{mine.id}"
    assert f'<option value="{entry}">' in page
    held = db_session.query(Assignment).filter_by(leader_id=colleague.id, valid_to=None).first()
    form = {"next": f"/leaders/{colleague.id}", "csrf_token": csrf(page)}
    refused = client.post(
        f"/assignments/{held.id}/reassign",
        data={**form, "leader_id": "罗丽"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "“罗丽”不是列表中的领导" in refused
    assert db_session.query(Assignment).filter_by(id=held.id).one().valid_to is None
    moved = client.post(
        f"/assignments/{held.id}/reassign",
        data={**form, "leader_id": entry},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "已由 邓彬 调整为 罗丽" in moved


def test_planner_assigns_a_place_from_its_page_by_the_leaders_list(client, db_session, county):
    sign_in(client, db_session, "planner")
    place, mine = county["own_road"], county["colleague"]
    page = client.get(f"/places/{place.id}/responsibility").get_data(as_text=True)
    assert (
        page.count('<datalist id="place-leaders">') == 1 and '<select name="leader_id"' not in page
    )
    entry = f"邓彬（城北街道办事处） #{mine.id}"
    assert f'<option value="{entry}">' in page
    form = {"role": "道路长", "csrf_token": csrf(page)}
    refused = client.post(
        f"/places/{place.id}/assign", data={**form, "leader_id": "邓"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "“邓”不是列表中的领导" in refused
    done = client.post(
        f"/places/{place.id}/assign", data={**form, "leader_id": entry}, follow_redirects=True
    ).get_data(as_text=True)
    assert "已分配 邓彬 为道路长" in done, re.findall(r'class="flash[^"]*">([^<]*)', done)
    assert db_session.query(Assignment).filter_by(place_id=place.id, leader_id=mine.id).count()


def test_leader_page_delete_refusal_is_shown(client, db_session, county):
    sign_in(client, db_session, "planner")
    page = client.get(f"/leaders/{county['mine'].id}").get_data(as_text=True)
    response = client.post(
        f"/leaders/{county['mine'].id}/delete",
        data={"csrf_token": csrf(page)},
        follow_redirects=True,
    )
    assert "仍有 2 项在岗包保责任，不能删除" in response.get_data(as_text=True)


def test_api_token_pages_need_no_csrf(client, db_session, county):
    headers = token_headers(db_session, "planner")
    response = client.post(
        "/units", data={"name": "县城市管理局", "is_lead": "on"}, headers=headers
    )
    assert response.status_code == 302
    assert "县城市管理局" in client.get("/units", headers=headers).get_data(as_text=True)


def test_names_from_imports_cannot_inject_html_into_map_tooltips(client, db_session, county):
    evil = add_place(db_session, "market", "M666", '<img src=x onerror="alert(1)">')
    assign(db_session, county["mine"], evil, county["since"], role="点长", is_primary=True)
    sign_in(client, db_session, "leader", county["mine"])
    html = client.get("/my").get_data(as_text=True)
    assert "<img src=x" not in html
    # The name reaches the page as JSON data only (shown as text by static/js/featuremap.js).
    names = [f["properties"]["name"] for d in map_data(html) for f in d["features"]]
    assert '<img src=x onerror="alert(1)">' in names


def test_coverage_map_links_unassigned_features_to_their_page(client, db_session, county):
    sign_in(client, db_session, "planner")
    html = client.get("/coverage").get_data(as_text=True)
    links = [
        (d["link"], f["href"])
        for d in map_data(html)
        for f in d["features"]
        if f["properties"].get("code") == "M001"
    ]
    url = f"/places/{county['free'].id}/responsibility"
    assert links == [("查看 / 分配包保领导", url)]


def test_accounts_without_a_leader_get_an_explanation_on_my_areas(client, db_session, county):
    sign_in(client, db_session, "viewer")
    response = client.get("/my")
    assert response.status_code == 200
    assert "没有关联包保领导" in response.get_data(as_text=True)


def test_an_area_bound_planner_cannot_bind_another_streets_leader_from_the_place_page(
    world, world_client
):
    """As POST /api/assignments does: the place must be within the account's area and the
    leader one it may change; a leader of another street is refused and nothing is written."""
    from sqlalchemy import func, select

    world_sign_in(world_client, "planner")  # bound to 西城街道 (S1)
    place = world["places"]["G1"]  # in S1
    page = world_client.get(f"/places/{place}/responsibility").get_data(as_text=True)
    form = {"role": "网格员", "csrf_token": csrf(page)}
    session = world["session"]

    def held(leader: int) -> int:
        return session.scalar(
            select(func.count()).select_from(Assignment).filter_by(place_id=place, leader_id=leader)
        )

    other = world["leaders"]["L2"]  # 东城街道's secretary: holds places in S2 only
    refused = world_client.post(
        f"/places/{place}/assign",
        data={**form, "leader_id": f"李强 #{other}"},
        follow_redirects=True,
    )
    assert f"没有编号为 {other} 的包保领导" in refused.get_data(as_text=True)
    assert held(other) == 0
    own = world["leaders"]["L3"]  # 西一社区主任: within S1
    done = world_client.post(
        f"/places/{place}/assign", data={**form, "leader_id": f"王芳 #{own}"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "已分配 王芳 为网格员" in done and held(own) == 1


def test_a_leaders_page_reads_the_other_leaders_units_with_them(client, db_session):
    """The page's list of other leaders (to hand a place over to) names each one's unit: read
    in the list's statement, not one per unit (a city's ~400 units were 400 statements)."""
    from sqlalchemy import event

    sign_in(client, db_session, "planner")
    leader = add_person(db_session, "页面领导", add_unit(db_session, "页面单位"))
    since = resp_now() - timedelta(days=1)  # held since yesterday, whatever today is
    assign(db_session, leader, add_place(db_session, "grid", "320999001009001"), since)
    leader_id = leader.id

    def statements() -> tuple[int, str]:
        seen: list[str] = []
        keep = lambda *args: seen.append(args[2])  # noqa: E731
        connection = db_session.connection()
        event.listen(connection, "before_cursor_execute", keep)
        try:
            page = client.get(f"/leaders/{leader_id}")
        finally:
            event.remove(connection, "before_cursor_execute", keep)
        assert page.status_code == 200
        return len(seen), page.get_data(as_text=True)

    statements()
    few, _ = statements()
    for n in range(8):
        add_person(db_session, f"其他领导{n}", add_unit(db_session, f"其他单位{n}"))
    db_session.expire_all()  # nothing of theirs already in the session's identity map
    many, html = statements()
    assert many == few
    assert "其他领导7（其他单位7）" in html
