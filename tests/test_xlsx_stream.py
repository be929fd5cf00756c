"""Bulk-written sheets (geoservice.xlsx_stream) read back as openpyxl's own write-only sheets do."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Font, PatternFill

from geoservice.spreadsheet_text import text_row
from geoservice.xlsx_stream import MAX_TEXT, bulk_sheet

ROWS = [
    [1, "网格一", " 前后有空格 ", 0.25, Decimal("2.50"), True, None, datetime(2015, 11, 16, 9, 30)],
    [2, '=HYPERLINK("http://x","点击")', "@SUM(A1)", -3.5, 0, False, "", date(2015, 11, 17)],
    [3, "<b>&amp;</b>", "+1", 1e-7, 10**12, None, "a\x01b", None],
]


def _read(wb: Workbook):
    buffer = io.BytesIO()
    wb.save(buffer)
    return load_workbook(io.BytesIO(buffer.getvalue()))


def test_bulk_rows_read_back_like_openpyxls_own_cells():
    plain = Workbook(write_only=True)
    ws = plain.create_sheet("a")
    for row in ROWS:
        cells = []
        for i, value in enumerate(row):
            if i == 3:
                cell = WriteOnlyCell(ws, value=value)
                cell.number_format = "0.0%"
                value = cell
            elif isinstance(value, str):
                value = value.replace("\x01", "") or None  # openpyxl refuses the character
            cells.append(value)
        ws.append(text_row(ws, cells))
    bulk = Workbook(write_only=True)
    bs = bulk_sheet(bulk, "a")
    bs.write_rows(ROWS, [0, 0, 0, bs.style(number_format="0.0%")])

    ours, theirs = _read(bulk)["a"], _read(plain)["a"]
    read = [[(c.value, c.data_type, c.number_format, c.quotePrefix) for c in r] for r in ours]
    expected = [[(c.value, c.data_type, c.number_format, c.quotePrefix) for c in r] for r in theirs]
    assert read == expected
    # Formula-like text is text with Excel's quote prefix; no cell is a formula.
    assert ours["B2"].value.startswith("=HYPERLINK") and ours["B2"].quotePrefix
    assert ours["C3"].value == "+1" and ours["C3"].quotePrefix
    assert all(c.data_type != "f" for r in ours.iter_rows() for c in r)
    assert ours["H1"].value == datetime(2015, 11, 16, 9, 30)
    assert ours["C1"].value == " 前后有空格 " and ours["B3"].value == "<b>&amp;</b>"
    assert ours["G3"].value == "ab" and ours["G2"].value is None


def test_headers_rows_and_sheet_settings_around_the_bulk_rows():
    wb = Workbook(write_only=True)
    ws = bulk_sheet(wb, "排名")
    ws.column_dimensions["B"].width = 18
    ws.freeze_panes = "C2"
    head = WriteOnlyCell(ws, value="名称")
    head.font = Font(bold=True, color="FFFFFF")
    head.fill = PatternFill("solid", fgColor="B71C1C")
    ws.append(["排名", head, "=1+1"])
    ws.write_rows([[1, "甲", ""], [2, "乙", "后3名"]])
    ws.write_rows(([n, f"丙{n}", None] for n in range(3, 1203)), [])
    ws.append(["合计", 1202])
    ws.conditional_formatting.add(
        "A2:C1203", FormulaRule(formula=['$C2<>""'], fill=PatternFill("solid", fgColor="F8D7DA"))
    )
    ws.auto_filter.ref = "A1:C1203"
    read = _read(wb)["排名"]
    assert read.freeze_panes == "C2" and read.column_dimensions["B"].width == 18
    assert read["B1"].font.b and read["B1"].fill.fgColor.rgb.endswith("B71C1C")
    assert read["C1"].value == "=1+1" and read["C1"].quotePrefix
    assert [c.value for c in read[3]] == [2, "乙", "后3名"]
    assert read["A1202"].value == 1201 and read["B1203"].value == "丙1202"
    assert [c.value for c in read[1204]][:2] == ["合计", 1202]
    assert read.auto_filter.ref == "A1:C1203"
    assert [r.formula for cf in read.conditional_formatting for r in cf.rules] == [['$C2<>""']]


def test_long_text_is_cut_and_aware_times_are_refused():
    wb = Workbook(write_only=True)
    ws = bulk_sheet(wb, "a")
    ws.write_rows([["长" * (MAX_TEXT + 10)]])
    assert len(_read(wb)["a"]["A1"].value) == MAX_TEXT
    with pytest.raises(TypeError):
        ws.write_rows([[datetime(2015, 11, 16).astimezone()]])
