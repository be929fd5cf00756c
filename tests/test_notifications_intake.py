"""Bulk intake of a feedback list (.xlsx): a constructed 20-row list with matched, ambiguous,
unmatched and invalid rows; nothing is created until a planner confirms; the list's own row
numbers are kept."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from geoservice.models import Issue
from tests import notify_support
from tests.factories import add_feature, line, rect
from tests.issues.helpers import account

scene = notify_support.scene  # fixture

ROWS = [
    # 序号, 地址, 类别, 描述, 照片
    (101, "人民路88号门前", "环境卫生", "垃圾堆积", "a.jpg,b.jpg"),
    (102, "人民路12号", "占道经营", "出店经营", ""),
    (103, "阳光小区东门", "环境卫生", "垃圾桶满溢", "c.jpg"),
    (104, "阳光小区3栋楼下", "乱贴乱画", "小广告", ""),
    (105, "幸福小区北侧", "车辆违停", "占用消防通道", ""),
    (106, "城南菜市场入口", "环境卫生", "污水横流", "d.jpg"),
    (107, "城南菜市场内", "设施损坏", "灯坏了", ""),
    (108, "书院巷口", "道路破损", "坑洼", ""),
    (109, "城南菜场西侧", "环境卫生", "简称也能认出", ""),
    (110, "幸福小区南门", "绿化损坏", "", ""),
    (111, "锦绣花园门口", "环境卫生", "一期还是二期？", ""),
    (112, "人民路与书院巷交叉口", "交通秩序", "闯红灯", ""),
    (113, "锦绣花园南门", "乱搭乱建", "", ""),
    (114, "火星路99号", "环境卫生", "没有这条路", ""),
    (115, "北京西站", "环境卫生", "不在本地", ""),
    (116, "某某单位附近", "其他", "", ""),
    (117, "", "环境卫生", "没写地址", ""),
    (118, "阳光小区西门", "外星入侵", "类别不对", ""),
    (119, "阳光小区", "", "没写类别", ""),
    (120, "幸福小区", "环境卫生", "", ""),
]
EXPECTED = {
    "matched": {101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 120},
    "ambiguous": {111, 112, 113},
    "unmatched": {114, 115, 116},
    "invalid": {117, 118, 119},
}


def workbook(rows=ROWS, header=("序号", "问题地址", "问题类别", "问题描述", "照片文件名")) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def places(scene):
    s = scene.session
    return {
        "renmin": add_feature(
            s, "road", "R1", line((-100, 200), (900, 200)), grade="主干道", name="人民路"
        ),
        "shuyuan": add_feature(
            s, "road", "R2", line((300, -100), (300, 500)), grade="背街小巷", name="书院巷"
        ),
        "yangguang": add_feature(
            s, "compound", "C1", rect(50, 50, 150, 180), compound_type="老旧小区", name="阳光小区"
        ),
        "xingfu": add_feature(
            s, "compound", "C2", rect(500, 50, 600, 150), compound_type="老旧小区", name="幸福小区"
        ),
        "jinxiu1": add_feature(
            s,
            "compound",
            "C3",
            rect(700, 50, 780, 150),
            compound_type="新建小区",
            name="锦绣花园一期",
        ),
        "jinxiu2": add_feature(
            s,
            "compound",
            "C4",
            rect(800, 50, 880, 150),
            compound_type="新建小区",
            name="锦绣花园二期",
        ),
        "market": add_feature(s, "market", "M1", rect(250, 20, 280, 50), name="城南菜市场"),
    }


def upload(client, headers, data: bytes, name: str = "省测评反馈清单.xlsx"):
    return client.post(
        "/api/intake/batches",
        data={"file": (io.BytesIO(data), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def test_a_twenty_row_list_is_matched_and_nothing_is_created(client, scene, places):
    s = scene.session
    before = s.scalar(select(func.count()).select_from(Issue))
    response = upload(client, scene.headers("planner"), workbook())
    assert response.status_code == 201, response.get_json()
    batch = response.get_json()
    by_status: dict[str, set[int]] = {}
    for row in batch["rows"]:
        by_status.setdefault(row["status"], set()).add(row["row_number"])
    assert by_status == EXPECTED
    assert s.scalar(select(func.count()).select_from(Issue)) == before  # nothing yet
    rows = {r["row_number"]: r for r in batch["rows"]}
    assert rows[101]["place_id"] == places["renmin"].id and "门牌" in rows[101]["message"]
    assert rows[103]["place_id"] == places["yangguang"].id
    assert rows[109]["place_id"] == places["market"].id  # similar name (pg_trgm)
    assert {c["place_id"] for c in rows[111]["candidates"]} == {
        places["jinxiu1"].id,
        places["jinxiu2"].id,
    }
    assert {c["name"] for c in rows[112]["candidates"]} == {"人民路", "书院巷"}
    assert rows[117]["message"] == "没有可用的地址"
    assert "外星入侵" in rows[118]["message"]
    assert rows[101]["photos"] == ["a.jpg", "b.jpg"]
    assert batch["counts"] == {k: len(v) for k, v in EXPECTED.items()}


def test_confirming_creates_issues_once_with_the_list_row_number(client, scene, places):
    s = scene.session
    planner = scene.headers("planner")
    batch = upload(client, planner, workbook()).get_json()
    rows = {r["row_number"]: r for r in batch["rows"]}
    confirmed = client.post(f"/api/intake/batches/{batch['id']}/confirm-matched", headers=planner)
    assert confirmed.status_code == 200, confirmed.get_json()
    assert len(confirmed.get_json()["issue_ids"]) == len(EXPECTED["matched"])
    issue = s.get(Issue, s.scalar(select(Issue.id).where(Issue.description.contains("第 103 行"))))
    assert issue.source == "测评反馈" and issue.category == "环境卫生"
    assert issue.primary_place_id == places["yangguang"].id
    assert "c.jpg" in issue.description
    # An ambiguous row: the planner picks a candidate.
    pick = client.post(
        f"/api/intake/rows/{rows[111]['id']}/confirm",
        json={"place_id": places["jinxiu2"].id},
        headers=planner,
    )
    assert pick.status_code == 200, pick.get_json()
    assert s.get(Issue, pick.get_json()["issue_id"]).primary_place_id == places["jinxiu2"].id
    # An unmatched row: the planner clicks the spot.
    from tests.factories import metres

    lon, lat = metres(560, 100)
    spot = client.post(
        f"/api/intake/rows/{rows[116]['id']}/confirm",
        json={"lon": lon, "lat": lat},
        headers=planner,
    )
    assert spot.status_code == 200
    assert s.get(Issue, spot.get_json()["issue_id"]).primary_place_id == places["xingfu"].id
    # Twice is refused; invalid rows cannot be confirmed; unmatched needs a spot.
    again = client.post(f"/api/intake/rows/{rows[111]['id']}/confirm", json={}, headers=planner)
    assert again.status_code == 409
    invalid = client.post(f"/api/intake/rows/{rows[117]['id']}/confirm", json={}, headers=planner)
    assert invalid.status_code == 409
    need = client.post(f"/api/intake/rows/{rows[115]['id']}/confirm", json={}, headers=planner)
    assert need.status_code == 422 and need.get_json()["field"] == "place_id"
    skipped = client.post(f"/api/intake/rows/{rows[115]['id']}/skip", headers=planner)
    assert skipped.status_code == 200 and skipped.get_json()["status"] == "skipped"
    total = s.scalar(select(func.count()).select_from(Issue).where(Issue.source == "测评反馈"))
    assert total == len(EXPECTED["matched"]) + 2


def test_bad_lists_are_refused_clearly(client, scene, places):
    planner = scene.headers("planner")
    no_address = upload(client, planner, workbook(header=("序号", "名称", "类别", "描述", "照片")))
    assert no_address.status_code == 422 and "地址" in no_address.get_json()["error"]
    not_xlsx = upload(client, planner, b"PK\x03\x04 not really", "list.xlsx")
    assert not_xlsx.status_code == 415 and "xlsx" in not_xlsx.get_json()["error"]
    wrong_type = upload(client, planner, b"a,b", "list.csv")
    assert wrong_type.status_code == 415
    duplicate = upload(client, planner, workbook(rows=[ROWS[0], ROWS[0]]))
    assert duplicate.status_code == 422 and "序号" in duplicate.get_json()["error"]


def test_only_county_wide_dispatchers_import_lists(client, scene, places):
    for who in ("viewer", "leader"):
        assert upload(client, scene.headers(who), workbook()).status_code == 403
    _, bound = account(scene.session, "planner", area_code="320999")
    assert upload(client, bound, workbook()).status_code == 403


def test_the_confirmation_page_lists_rows_as_data_not_markup(client, scene, places):
    planner = scene.headers("planner")
    assert client.get("/intake", headers=planner).status_code == 200
    rows = [*ROWS[:3], (130, "阳光小区</script><script>alert(1)</script>", "环境卫生", "x", "")]
    response = client.post(
        "/intake",
        data={"file": (io.BytesIO(workbook(rows=rows)), "清单.xlsx")},
        headers=planner,
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"], headers=planner)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script>alert(1)" not in html  # user text only inside escaped JSON data
    assert "\\u003c/script\\u003e" in html and "确认全部已匹配的行" in html
    assert client.get("/intake/999999", headers=planner).status_code == 404
    assert client.get("/intake", headers=scene.headers("viewer")).status_code == 403
