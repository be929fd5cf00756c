"""A published 通报 is frozen: stored bytes and figures, downloadable exactly as published,
listed with who published it when; later moves leave the recomputation identical; a later
attribution correction shows "重算结果不同" with the correction; never silently replaced."""

from __future__ import annotations

import hashlib
import re

import pytest

from geoservice.issues import corrections
from geoservice.models import Leader, Publication
from geoservice.ranking import publications, ranking
from geoservice.ranking.periods import week_period
from geoservice.service_errors import Conflict, Forbidden, InvalidInput
from tests.factories import LAYERS
from tests.issues.helpers import account
from tests.ranking_case import TZ, at, build
from tests.ranking_history_case import admin, later_moves, week_moves

W47 = week_period(2015, 47, TZ)


@pytest.fixture
def world(db_session):
    case = build(db_session)
    actor = admin(db_session)
    week_moves(db_session, case, actor)
    planner, headers = account(db_session, "planner")
    pub = publications.publish(db_session, LAYERS, W47, ranking.DEFAULT_SETTINGS, planner,
                               now=at(23, 9))  # fmt: skip
    return case, actor, planner, headers, pub


def test_publishing_freezes_figures_and_workbook(client, db_session, world):
    case, _, planner, headers, pub = world
    a = next(r for r in pub.figures["rankings"]["leader"] if r["key"] == case.leaders["A"])
    assert (a["score"], a["overdue_end"], a["rank"]) == (42.5, 3, 2)
    assert pub.figures_sha256 == hashlib.sha256(publications.canonical(pub.figures)).hexdigest()
    r = client.get(f"/api/rankings/publications/{pub.id}/report.xlsx", headers=headers)
    assert r.status_code == 200
    assert r.data == pub.workbook
    assert hashlib.sha256(r.data).hexdigest() == pub.workbook_sha256 == r.headers["ETag"].strip('"')
    # A client holding that copy revalidates it: 304, no body; a stale tag gets the bytes.
    again = client.get(f"/api/rankings/publications/{pub.id}/report.xlsx",
                       headers={**headers, "If-None-Match": r.headers["ETag"]})  # fmt: skip
    assert (again.status_code, again.data, again.headers["ETag"]) == (304, b"", r.headers["ETag"])
    stale = client.get(f"/api/rankings/publications/{pub.id}/report.xlsx",
                       headers={**headers, "If-None-Match": '"0000"'})  # fmt: skip
    assert (stale.status_code, stale.data) == (200, pub.workbook)
    listing = client.get("/api/rankings/publications", headers=headers).get_json()
    assert listing["total"] == 1
    item = listing["items"][0]
    assert item["published_by"]["id"] == planner.id
    assert (
        item["published_at"] == at(23, 9).isoformat().replace("+08:00", "+00:00")
        or item["published_at"]
    )
    assert item["period"]["label"] == "2015-W47" and item["version"] == 1


def test_later_moves_recompute_identically(db_session, world):
    case, actor, _, _, pub = world
    later_moves(db_session, case, actor)
    check = publications.check(db_session, LAYERS, pub)
    assert check["same"] and check["differences"] == [] and check["corrections"] == []
    assert not check["inputs_changed"]


def test_a_correction_shows_recomputed_differs_with_its_reason(client, db_session, world):
    case, _, planner, headers, pub = world
    frozen = bytes(pub.workbook)
    # I3 (reported Mon 16th, closed late on the 19th) was recorded as A's but the place was C's.
    with pytest.raises(InvalidInput):
        corrections.correct_attribution(db_session, case.issues["I3"], planner,
                                        case.leaders["C"], " ", now=at(25, 9))  # fmt: skip
    leader_user, _ = account(db_session, "leader", leader=db_session.get(Leader, case.leaders["A"]))
    with pytest.raises(Forbidden):
        corrections.correct_attribution(db_session, case.issues["I3"], leader_user,
                                        case.leaders["C"], "不是我的", now=at(25, 9))  # fmt: skip
    corrections.correct_attribution(
        db_session, case.issues["I3"], planner, case.leaders["C"], "网格边界录入错误",
        now=at(25, 9),
    )  # fmt: skip
    check = publications.check(db_session, LAYERS, pub)
    assert not check["same"]
    diff = {
        (d["of"], d["key"], d["field"]): (d["published"], d["recomputed"])
        for d in check["differences"]
    }
    a, c = case.leaders["A"], case.leaders["C"]
    # A loses I3 (received, closed late); C gains it.
    assert diff[("leader", a, "received")] == (6, 5)
    assert diff[("leader", a, "closed_late")] == (1, 0)
    assert diff[("leader", c, "received")] == (1, 2)
    assert diff[("leader", c, "closed_late")] == (1, 2)
    assert ("all", 0, "received") not in diff  # the county total is unchanged
    assert [(x["issue_id"], x["reason"]) for x in check["corrections"]] == [
        (case.issues["I3"], "网格边界录入错误")
    ]
    assert check["corrections"][0]["from_leader"] == "甲领导"
    assert check["corrections"][0]["to_leader"] == "丙领导"
    # The published one is untouched, and still downloads byte for byte.
    stored = db_session.get(Publication, pub.id)
    assert stored.workbook == frozen and stored.figures == pub.figures
    assert client.get(f"/api/rankings/publications/{pub.id}/report.xlsx",
                      headers=headers).data == frozen  # fmt: skip
    page = client.get(f"/rankings/publications/{pub.id}", headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "重算结果不同" in html and "网格边界录入错误" in html
    body = client.get(f"/api/rankings/publications/{pub.id}", headers=headers).get_json()
    assert body["check"]["same"] is False and body["figures"] == pub.figures


def test_never_silently_replaced(client, db_session, world):
    _, _, planner, headers, pub = world
    with pytest.raises(Conflict):
        publications.publish(db_session, LAYERS, W47, ranking.DEFAULT_SETTINGS, planner,
                             now=at(24, 9))  # fmt: skip
    r = client.post("/api/rankings/publications", json={"period": "week", "from": "2015-W47"},
                    headers=headers)  # fmt: skip
    assert r.status_code == 409 and r.get_json()["field"] == "note"
    r = client.post("/api/rankings/publications",
                    json={"period": "week", "from": "2015-W47", "note": "补录事件后重新发布"},
                    headers=headers)  # fmt: skip
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["version"] == 2
    from sqlalchemy import text

    assert (
        db_session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'publication.create'")
        ).scalar()
        == 1
    )
    assert db_session.get(Publication, pub.id).workbook == pub.workbook
    assert client.get("/api/rankings/publications", headers=headers).get_json()["total"] == 2
    with pytest.raises(Conflict):  # a period not over yet
        publications.publish(db_session, LAYERS, W47, ranking.DEFAULT_SETTINGS, planner,
                             now=at(22, 9))  # fmt: skip
    viewer = account(db_session, "viewer")[1]
    r = client.post("/api/rankings/publications", json={"from": "2015-W46"}, headers=viewer)
    assert r.status_code == 403
    assert client.get("/rankings/publications", headers=headers).status_code == 200


def test_the_page_shows_the_first_rows_and_the_bottom_of_a_long_ranking(client, world, monkeypatch):
    """A city's 通报 carries ~30,000 grids: the page shows the head of each ranking and its
    bottom rows, and says where the rest is (the workbook)."""
    from geoservice.web import publications as page_module

    _, _, _, headers, pub = world
    monkeypatch.setattr(page_module, "PUBLISHED_TABLE_ROWS", 1)
    html = client.get(f"/rankings/publications/{pub.id}", headers=headers).get_data(as_text=True)
    leaders = pub.figures["rankings"]["leader"]
    bottom = [r for r in leaders[1:] if r["bottom"]]
    assert len(leaders) > 2 and bottom
    section = html.split("包保领导排名（发布时）")[1].split("</table>")[0]
    names = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td>", section)
    assert names == [leaders[0]["name"]] + [r["name"] for r in bottom[:10]]
    assert f"其余 {len(leaders) - 1} 个从略" in section and "以下为后" in section


def test_the_list_reads_sizes_and_titles_not_workbooks_and_figures(client, db_session, world):
    """A city's weekly 通报 is ~8 MB of workbook and ~2 MB of figures (a year: half a
    gigabyte): the list reads its size and period title in SQL, never the bytes."""
    from sqlalchemy import event

    _, _, _, headers, pub = world
    seen: list[str] = []
    keep = lambda *args: seen.append(args[2])  # noqa: E731
    connection = db_session.connection()
    event.listen(connection, "before_cursor_execute", keep)
    try:
        listing = client.get("/api/rankings/publications", headers=headers).get_json()
    finally:
        event.remove(connection, "before_cursor_execute", keep)
    (item,) = listing["items"]
    assert item["size_bytes"] == len(pub.workbook) > 0
    assert item["period"]["title"] == pub.inputs["period"]["title"]
    read = [s for s in seen if "FROM publications" in s]
    assert read
    for sql in read:
        sql = sql.replace("octet_length(publications.workbook)", "")
        sql = re.sub(r"publications\.inputs ?(->|\[)", "", sql)  # a path into it, not it
        assert re.search(r"publications\.(workbook|figures|inputs)\b", sql) is None, sql
