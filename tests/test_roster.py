"""Excel rosters: import (all-or-nothing, per-row report), template, 一览表 export, CLI, upload."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy import func, select, text, update

from geoservice.models import Assignment, Leader, Unit
from geoservice.registry import layers
from geoservice.responsibility import roster, roster_export, roster_template
from geoservice.vocab import ASSIGNMENT_ROLES, LEADER_LEVELS
from tests.factories import assign
from tests.support_responsibility import add_person, add_place, add_unit, day, token_headers

HEADER = ["姓名", "职务", "单位", "电话", "层级", "角色", "图层", "编码", "名称", "是否主要"]


def workbook(rows: list[list[Any]], header: list[str] = HEADER, title: str | None = None) -> bytes:
    """A real .xlsx, as a planner would make it (optionally with a title row above)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "联点清单"
    if title:
        ws.append([title])
    ws.append(header)
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def run(session, app, data, dry_run=False) -> roster.ImportReport:
    return roster.import_roster(
        session,
        layers(app),
        data,
        roles=ASSIGNMENT_ROLES,
        levels=LEADER_LEVELS,
        timezone="Asia/Shanghai",
        dry_run=dry_run,
    )


def counts(session) -> tuple[int, int, int]:
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Unit, Leader, Assignment)
    )


@pytest.fixture
def places(db_session):
    return {
        "grid": add_place(db_session, "grid", "320999001001001", "城东一网格"),
        "road": add_place(db_session, "road", "R0001", "人民路"),
        "market": add_place(db_session, "market", "M001", "城北农贸市场"),
        "compound": add_place(db_session, "compound", "C001", "幸福小区"),
        "twin_a": add_place(db_session, "compound", "C002", "阳光小区"),
        "twin_b": add_place(db_session, "compound", "C003", "阳光小区"),
    }


GOOD_ROWS = [
    [
        "张伟",
        "县城管局局长",
        "县城市管理局",
        "13812345678",
        "县级",
        "道路长",
        "道路",
        "R0001",
        "",
        "是",
    ],
    [
        "张伟",
        "县城管局局长",
        "县城市管理局",
        "138 1234 5678",
        "县级",
        "联点领导",
        "农贸市场",
        "",
        "城北农贸市场",
        "否",
    ],
    [
        "李娜",
        "社区书记",
        "城东街道办事处",
        "0515-88881234",
        "村社区",
        "网格长",
        "网格",
        "320999001001001",
        "",
        "",
    ],
    ["王强", "副主任", "城东街道办事处", "", "镇街", "楼栋长", "", "C001", "", "是"],
]


def test_happy_path_creates_units_leaders_assignments_and_reimport_changes_nothing(
    app, db_session, places
):
    existing = add_unit(db_session, "县城市管理局", is_lead=True)
    before = counts(db_session)
    report = run(db_session, app, workbook(GOOD_ROWS, title="县领导创文联点清单"))
    assert report.ok and report.applied, [r.as_dict() for r in report.rows]
    assert [r.status for r in report.rows] == ["created"] * 4
    assert [r.row for r in report.rows] == [3, 4, 5, 6]  # Excel row numbers under the title
    assert report.counts["units_created"] == 1  # 城东街道办事处; 县城市管理局 existed
    assert report.counts["leaders_created"] == 3
    assert report.counts["assignments_created"] == 4
    assert counts(db_session) == (before[0] + 1, before[1] + 3, before[2] + 4)

    zhang = db_session.scalar(select(Leader).where(Leader.name == "张伟"))
    assert zhang.unit_id == existing.id and zhang.phone == "13812345678"
    rows = {
        (a.place.code, a.role): a.is_primary
        for a in db_session.scalars(select(Assignment).where(Assignment.valid_to.is_(None)))
    }
    assert rows == {
        ("R0001", "道路长"): True,
        ("M001", "联点领导"): False,
        ("320999001001001", "网格长"): True,  # blank 是否主要 and no primary yet → primary
        ("C001", "楼栋长"): True,
    }
    assert "未填是否主要：按主要负责人处理" in report.rows[2].actions

    again = run(db_session, app, workbook(GOOD_ROWS))
    assert again.ok and [r.status for r in again.rows] == ["unchanged"] * 4
    assert counts(db_session) == (before[0] + 1, before[1] + 3, before[2] + 4)


def test_a_primary_row_takes_over_and_the_old_primary_becomes_history(app, db_session, places):
    old = add_person(db_session, "赵敏", add_unit(db_session, "县交通局"))
    held = assign(db_session, old, places["road"], day("2026-01-01"), role="道路长")
    report = run(
        db_session,
        app,
        workbook([["钱进", "局长", "县交通局", "", "县级", "道路长", "道路", "R0001", "", "是"]]),
    )
    assert report.ok, report.as_dict()
    assert "接替原主要负责人 赵敏（道路长）" in report.rows[0].actions
    db_session.refresh(held)
    assert held.valid_to is not None


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (["刘洋", "", "县水利局", "", "县级", "道路长", "道路", "R9999", "", "是"], "未知地点"),
        (
            ["刘洋", "", "县水利局", "", "县级", "楼栋长", "居民小区", "", "阳光小区", "是"],
            "地点不明确",
        ),
        (["刘洋", "", "县水利局", "", "县级", "网格长", "", "", "不存在的地方", ""], "未知地点"),
        (
            ["刘洋", "", "县水利局", "1234567", "县级", "道路长", "道路", "R0001", "", ""],
            "电话号码",
        ),
        (["刘洋", "", "县水利局", "", "县级", "大队长", "道路", "R0001", "", ""], "未知角色"),
        (["刘洋", "", "县水利局", "", "县级", "道路长", "河道", "R0001", "", ""], "未知图层"),
        (["刘洋", "", "县水利局", "", "省级", "道路长", "道路", "R0001", "", ""], "未知层级"),
        (["刘洋", "", "县水利局", "", "", "道路长", "道路", "R0001", "", ""], "须填写层级"),
        (["Liu", "", "县水利局", "", "县级", "道路长", "道路", "R0001", "", ""], "姓名"),
        (["刘洋", "", "县水利局", "", "县级", "", "道路", "R0001", "", ""], "未填写角色"),
        (
            ["刘洋", "", "县水利局", "", "县级", "道路长", "道路", "", "", ""],
            "编码与名称至少填一项",
        ),
    ],
)
def test_each_rejection_reason_is_reported_and_nothing_is_written(
    app, db_session, places, bad_row, message
):
    before = counts(db_session)
    report = run(db_session, app, workbook([GOOD_ROWS[0], bad_row, GOOD_ROWS[2]]))
    assert not report.ok and not report.applied
    assert [r.status for r in report.rows] == ["created", "rejected", "created"]
    assert any(message in e for e in report.rows[1].errors), report.rows[1].errors
    assert report.rows[1].row == 3
    assert counts(db_session) == before  # all or nothing
    assert "未写入任何数据" in report.summary()


def test_duplicate_rows_and_two_primaries_for_one_place_are_rejected(app, db_session, places):
    rows = [
        GOOD_ROWS[0],
        GOOD_ROWS[0],
        ["孙丽", "局长", "县商务局", "", "县级", "道路长", "道路", "R0001", "", "是"],
    ]
    report = run(db_session, app, workbook(rows))
    assert [r.status for r in report.rows] == ["created", "rejected", "rejected"]
    assert "与第2行重复" in report.rows[1].errors[0]
    assert "与第2行同为该地点的主要负责人" in report.rows[2].errors[0]


def test_ambiguous_leader_name_needs_a_unit(app, db_session, places):
    add_person(db_session, "周杰", add_unit(db_session, "县教育局"))
    add_person(db_session, "周杰", add_unit(db_session, "县财政局"))
    report = run(
        db_session,
        app,
        workbook([["周杰", "", "", "", "县级", "道路长", "道路", "R0001", "", ""]]),
    )
    assert "姓名不明确" in report.rows[0].errors[0]
    with_unit = run(
        db_session,
        app,
        workbook([["周杰", "", "县财政局", "", "县级", "道路长", "道路", "R0001", "", ""]]),
    )
    assert with_unit.ok


def test_namesakes_in_one_unit_are_told_apart_by_their_phones(app, db_session, places):
    """Two 周杰 in one bureau (as the export lists them, each with a phone): each row goes to
    the one with that phone; without a phone the row says how to tell them apart."""
    unit = add_unit(db_session, "县教育局")
    first = add_person(db_session, "周杰", unit, phone="13800000011")
    add_person(db_session, "周杰", unit, phone="13800000022")
    row = ["周杰", "", "县教育局", "13800000011", "县级", "道路长", "道路", "R0001", "", ""]
    report = run(db_session, app, workbook([row]))
    assert report.ok, report.rows[0].errors
    held = (
        db_session.execute(
            text("SELECT leader_id FROM assignments WHERE place_id = :p"), {"p": places["road"].id}
        )
        .scalars()
        .all()
    )
    assert held == [first.id]
    no_phone = run(db_session, app, workbook([[*row[:3], "", *row[4:]]]))
    assert "请填写联系电话以区分" in no_phone.rows[0].errors[0]


def test_a_row_reports_all_its_problems_at_once(app, db_session, places):
    row = ["刘洋", "", "县水利局", "999", "省级", "大队长", "河道", "X", "", ""]
    report = run(db_session, app, workbook([row]))
    errors = " ".join(report.rows[0].errors)
    for message in ("未知角色", "未知图层", "电话号码", "未知层级"):
        assert message in errors


def test_dry_run_reports_but_writes_nothing(app, db_session, places):
    before = counts(db_session)
    report = run(db_session, app, workbook(GOOD_ROWS), dry_run=True)
    assert report.ok and not report.applied
    assert report.counts["assignments_created"] == 4
    assert counts(db_session) == before


def test_files_that_are_not_rosters_are_clear_4xx(app, db_session):
    with pytest.raises(roster.RosterFileError) as not_a_workbook:
        run(db_session, app, b"not a workbook at all")
    assert "xlsx" in not_a_workbook.value.message
    with pytest.raises(roster.RosterFileError) as exc:
        run(db_session, app, workbook([["x"]], header=["甲", "乙"]))
    assert "表头" in exc.value.message
    with pytest.raises(roster.RosterFileError):
        run(db_session, app, workbook([]))


def test_template_has_instructions_and_drop_downs_and_round_trips(app, db_session, places):
    buffer = io.BytesIO()
    roster_template.write_template(buffer, layers(app), ASSIGNMENT_ROLES, LEADER_LEVELS)
    wb = load_workbook(io.BytesIO(buffer.getvalue()))
    assert wb.sheetnames[:1] == [roster.SHEET_NAME] and "说明" in wb.sheetnames
    ws = wb[roster.SHEET_NAME]
    headers = [c.value for c in ws[1]]
    assert headers[:10] == HEADER
    options = wb["选项"]
    assert options.sheet_state == "hidden"
    lists = {}
    for validation in ws.data_validations.dataValidation:
        column = str(validation.sqref).split(":")[0].rstrip("0123456789")
        letter = validation.formula1.split("!")[1].split(":")[0].strip("$")[0]
        values = [c.value for c in options[letter][1:] if c.value is not None]
        lists[headers[ord(column) - ord("A")]] = values
    assert lists["角色"] == list(ASSIGNMENT_ROLES)
    assert lists["层级"] == list(LEADER_LEVELS)
    assert sorted(lists["图层"]) == sorted(s.title for s in layers(app))
    assert lists["是否主要"] == ["是", "否"]

    for row in GOOD_ROWS:
        ws.append(row)
    filled = io.BytesIO()
    wb.save(filled)
    report = run(db_session, app, filled.getvalue())
    assert report.ok and report.counts["assignments_created"] == 4


def test_export_is_the_meeting_format_and_imports_back_unchanged(app, db_session, places):
    run(db_session, app, workbook(GOOD_ROWS))
    ended = add_person(db_session, "冯巩", add_unit(db_session, "县民政局"))
    assign(db_session, ended, places["twin_a"], day("2025-01-01"), day("2025-06-01"), "楼栋长")

    buffer = io.BytesIO()
    written = roster_export.export_roster(
        db_session, layers(app), buffer, levels=LEADER_LEVELS, timezone="Asia/Shanghai"
    )
    assert written == 4  # the ended assignment is not listed
    ws = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert ws["A1"].value == "包保责任情况一览表" and ws["A1"].font.b
    header = [c.value for c in ws[3]]
    assert header[:3] == ["序号", "姓名", "职务"] and all(c.font.b for c in ws[3])
    data = [[c.value for c in row] for row in ws.iter_rows(min_row=4)]
    assert len(data) == 4
    # 县级 before 镇街 before 村社区; 张伟's two rows grouped with merged leader cells.
    assert [r[1] for r in data] == ["张伟", None, "王强", "李娜"]
    # Within a leader, places follow the layer registry's order (market before road).
    assert [r[header.index("编码")] for r in data[:2]] == ["M001", "R0001"]
    assert data[0][header.index("名称")] == "城北农贸市场"
    assert "B4:B5" in {str(r) for r in ws.merged_cells.ranges}
    assert ws.column_dimensions["J"].width >= 20

    reimport = run(db_session, app, buffer.getvalue())
    assert reimport.ok and [r.status for r in reimport.rows] == ["unchanged"] * 4


def test_cli_import_template_export_and_exit_code(app, db_session, places, tmp_path):
    runner = app.test_cli_runner()
    template = tmp_path / "模板.xlsx"
    assert runner.invoke(args=["roster-template", str(template)]).exit_code == 0
    assert load_workbook(template).sheetnames[0] == roster.SHEET_NAME

    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(
        workbook([GOOD_ROWS[0], ["刘洋", "", "", "1", "县级", "道路长", "道路", "R0001", "", ""]])
    )
    result = runner.invoke(args=["import-roster", str(bad)])
    assert result.exit_code == 1
    assert "第3行 [拒绝]" in result.output and "未写入任何数据" in result.output
    assert "第2行 [可导入]" in result.output and "[已导入]" not in result.output  # nothing was

    good = tmp_path / "good.xlsx"
    good.write_bytes(workbook(GOOD_ROWS))
    trial = runner.invoke(args=["import-roster", str(good), "--dry-run"])
    assert trial.exit_code == 0 and "[可导入]" in trial.output and "[已导入]" not in trial.output
    result = runner.invoke(args=["import-roster", str(good)])
    assert result.exit_code == 0, result.output
    assert "新增包保 4 条" in result.output
    assert "[已导入]" in result.output

    out = tmp_path / "一览表.xlsx"
    result = runner.invoke(args=["export-roster", str(out)])
    assert result.exit_code == 0 and "4 条" in result.output
    assert load_workbook(out).active.max_row == 3 + 4


def test_upload_endpoint_reports_422_on_rejects_and_applies_when_clean(client, db_session, places):
    planner = token_headers(db_session, "planner")
    viewer = token_headers(db_session, "viewer")

    def upload(data, headers, **form):
        return client.post(
            "/api/roster/import",
            data={"file": (io.BytesIO(data), "清单.xlsx"), **form},
            headers=headers,
            content_type="multipart/form-data",
        )

    assert upload(workbook(GOOD_ROWS), viewer).status_code == 403
    bad = upload(
        workbook([["刘洋", "", "", "", "县级", "道路长", "道路", "R404", "", ""]]), planner
    )
    assert bad.status_code == 422
    assert bad.get_json()["detail"]["rows"][0]["status"] == "rejected"
    trial = upload(workbook(GOOD_ROWS), planner, dry_run="1")
    assert trial.status_code == 200 and trial.get_json()["applied"] is False
    assert db_session.scalar(select(func.count()).select_from(Assignment)) == 0
    done = upload(workbook(GOOD_ROWS), planner)
    assert done.status_code == 200 and done.get_json()["applied"] is True
    assert db_session.scalar(select(func.count()).select_from(Assignment)) == 4
    broken = upload(b"PK\x03\x04 garbage", planner)
    assert broken.status_code == 400 and broken.get_json()["field"] == "file"

    export = client.get("/api/roster.xlsx", headers=viewer)
    assert export.status_code == 200
    assert load_workbook(io.BytesIO(export.data)).active.max_row == 3 + 4
    template = client.get("/api/roster/template.xlsx", headers=viewer)
    assert (
        template.status_code == 200
        and "说明" in load_workbook(io.BytesIO(template.data)).sheetnames
    )


def cell_styles_as_written(data: bytes) -> dict[str, str]:
    """Each written cell's style (number format id, border, alignment) as the sheet's XML says
    it: openpyxl re-derives merged cells' borders when it loads a workbook, which would hide
    what was written."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
        styles = ElementTree.fromstring(z.read("xl/styles.xml"))
    borders = [ElementTree.tostring(b) for b in styles.find("m:borders", ns)]
    xfs = styles.find("m:cellXfs", ns)

    def alignment(xf) -> bytes:
        found = xf.find("m:alignment", ns)
        return b"" if found is None else ElementTree.tostring(found)

    described = [
        (xf.get("numFmtId"), borders[int(xf.get("borderId", 0))], alignment(xf)) for xf in xfs
    ]
    return {c.get("r"): repr(described[int(c.get("s", 0))]) for c in sheet.iter(f"{{{ns['m']}}}c")}


def openpyxl_roster(rows: list[dict[str, Any]], title: str, as_of_line: str) -> bytes:
    """The 一览表 as openpyxl's own normal sheet makes it (each cell styled, `merge_cells` per
    leader block): the reference the streamed export is compared with."""
    ex = roster_export
    wb = Workbook()
    ws = wb.active
    ws.title = "包保一览表"
    last = get_column_letter(len(ex.EXPORT_COLUMNS))
    ws.merge_cells(f"A1:{last}1")
    ws["A1"], ws["A1"].font, ws["A1"].alignment = title, Font(bold=True, size=16), ex.CENTER
    ws.row_dimensions[1].height = 30
    ws.merge_cells(f"A2:{last}2")
    ws["A2"] = as_of_line
    ws["A2"].alignment = Alignment(horizontal="right", vertical="center")
    keys = [key for key, _h, _w in ex.EXPORT_COLUMNS]
    for col, (_key, header, width) in enumerate(ex.EXPORT_COLUMNS, start=1):
        cell = ws.cell(3, col, header)
        cell.font, cell.fill, cell.alignment, cell.border = (
            Font(bold=True),
            ex.HEADER_FILL,
            ex.CENTER,
            ex.BORDER,
        )
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.row_dimensions[3].height = 22
    row, blocks, sequence, previous = 3, [], 0, object()
    for record in rows:
        row += 1
        values = {
            "role": record["role"], "layer": record["layer"], "code": record["code"],
            "place_name": record["place_name"], "primary": "是" if record["is_primary"] else "否",
            "valid_from": record["valid_from"].date(), "note": record["note"] or "",
        }  # fmt: skip
        if record["leader_id"] != previous:
            previous, sequence = record["leader_id"], sequence + 1
            blocks.append([row, row])
            values.update(
                seq=sequence, name=record["name"], title=record["title"],
                unit=record["unit"] or "", phone=record["phone"] or "", level=record["level"],
            )  # fmt: skip
        blocks[-1][1] = row
        for col, key in enumerate(keys, start=1):
            cell = ws.cell(row, col, values.get(key))
            cell.border = ex.BORDER
            cell.alignment = (
                ex.LEFT if key in ("title", "unit", "place_name", "note") else ex.CENTER
            )
            if key in ("valid_from", "code", "phone"):
                cell.number_format = "yyyy-mm-dd" if key == "valid_from" else "@"
    for start, end in blocks:
        for key in roster_export.LEADER_KEYS if end > start else ():
            letter = get_column_letter(keys.index(key) + 1)
            ws.merge_cells(f"{letter}{start}:{letter}{end}")
    ws.freeze_panes = "A4"
    ws.print_title_rows = "3:3"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def test_export_is_the_sheet_openpyxl_itself_makes(app, db_session, places):
    """The export streams its rows (geoservice.xlsx_stream: a city's roster took ~20 s through
    openpyxl's cells, and minutes with its per-range merge checks); the workbook is the one
    openpyxl's own normal sheet and `merge_cells` make — every cell's value, style and merge."""
    run(db_session, app, workbook(GOOD_ROWS))
    boss = add_person(db_session, "赵六", add_unit(db_session, "县住建局"), level="县级")
    for key in ("twin_a", "twin_b", "grid"):
        assign(
            db_session, boss, places[key], day("2026-01-01"), role="包保责任人", is_primary=False
        )
    db_session.execute(
        update(Assignment).where(Assignment.leader_id == boss.id).values(note="=1+1")
    )
    buffer = io.BytesIO()
    count = roster_export.export_roster(
        db_session, layers(app), buffer, levels=LEADER_LEVELS, timezone="Asia/Shanghai",
        at=day("2026-06-01"),
    )  # fmt: skip
    streamed = buffer.getvalue()
    rows = roster_export.roster_rows(db_session, layers(app), LEADER_LEVELS)
    for record in rows:  # the export writes local days
        record["valid_from"] = record["valid_from"].astimezone(ZoneInfo("Asia/Shanghai"))
    leaders = len({r["leader_id"] for r in rows})
    line = f"截至 2026年6月1日　包保领导 {leaders} 人　包保责任 {count} 条"
    reference = openpyxl_roster(rows, roster_export.DEFAULT_TITLE, line)
    assert cell_styles_as_written(streamed) == cell_styles_as_written(reference)
    mine, theirs = (load_workbook(io.BytesIO(b)).active for b in (streamed, reference))
    assert any(r.max_row - r.min_row >= 2 for r in mine.merged_cells.ranges)  # a 3-row block
    assert sorted(map(str, mine.merged_cells.ranges)) == sorted(
        map(str, theirs.merged_cells.ranges)
    )
    for name in ("freeze_panes", "print_title_rows"):
        assert getattr(mine, name) == getattr(theirs, name)
    assert {k: d.height for k, d in mine.row_dimensions.items() if d.height} == {1: 30, 3: 22}
    assert {k: d.width for k, d in mine.column_dimensions.items()} == {
        k: d.width for k, d in theirs.column_dimensions.items()
    }
    for a_row, b_row in zip(mine.iter_rows(), theirs.iter_rows(), strict=True):
        for a, b in zip(a_row, b_row, strict=True):
            # Styles compared by their parameters (openpyxl's style proxies compare by identity).
            assert (type(a), a.value, a.number_format) == (type(b), b.value, b.number_format)
            assert [repr(x) for x in (a.border, a.alignment, a.font, a.fill)] == [
                repr(x) for x in (b.border, b.alignment, b.font, b.fill)
            ], a.coordinate
    notes = [c for row in mine.iter_rows() for c in row if c.value == "=1+1"]
    assert notes and all(c.data_type == "s" and c.quotePrefix for c in notes)  # text, no formula
