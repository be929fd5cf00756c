"""The roster template: an empty 包保清单 workbook with the columns, drop-down lists of the
layers, roles and levels, and a sheet of notes (`flask roster-template`, GET
/api/roster/template)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from geoservice.registry import LayerRegistry
from geoservice.responsibility.roster import COLUMN_BY_KEY, COLUMNS, SHEET_NAME
from geoservice.spreadsheet_text import workbook_as_text

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="3B6EA8")
THIN = Side(style="thin", color="999999")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
TEXT_COLUMNS = ("phone", "code")


def write_template(
    target: str | Path | IO[bytes],
    registry: LayerRegistry,
    roles: Sequence[str],
    levels: Sequence[str],
    rows: int = 1000,
) -> None:
    """A workbook to fill in: the roster sheet with drop-down lists, a 说明 sheet and the
    option lists on a hidden sheet."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_NAME
    for index, column in enumerate(COLUMNS, start=1):
        cell = ws.cell(1, index, column.header)
        cell.font, cell.fill, cell.border = HEADER_FONT, HEADER_FILL, BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center")
        letter = get_column_letter(index)
        ws.column_dimensions[letter].width = column.width
        if column.key in TEXT_COLUMNS:
            for row in range(2, rows + 2):
                ws.cell(row, index).number_format = "@"
    ws.freeze_panes = "A2"

    options = wb.create_sheet("选项")
    lists = {
        "role": list(roles),
        "layer": [s.title for s in registry],
        "level": list(levels),
        "primary": ["是", "否"],
    }
    for index, (key, values) in enumerate(lists.items(), start=1):
        options.cell(1, index, COLUMN_BY_KEY[key].header).font = Font(bold=True)
        for row, value in enumerate(values, start=2):
            options.cell(row, index, value)
        letter = get_column_letter(index)
        target_col = get_column_letter([c.key for c in COLUMNS].index(key) + 1)
        validation = DataValidation(
            type="list",
            formula1=f"'选项'!${letter}$2:${letter}${len(values) + 1}",
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="输入有误",
            error=f"请从下拉列表中选择{COLUMN_BY_KEY[key].header}",
        )
        validation.add(f"{target_col}2:{target_col}{rows + 1}")
        ws.add_data_validation(validation)
    options.sheet_state = "hidden"

    notes = wb.create_sheet("说明")
    notes.column_dimensions["A"].width = 14
    notes.column_dimensions["B"].width = 80
    notes["A1"] = "包保责任清单填写说明"
    notes["A1"].font = Font(bold=True, size=14)
    lines = [
        (
            "用途",
            "每行一条包保责任：哪位领导、以什么角色、包保哪个地点（网格、道路、市场、小区等）。",
        ),
        (
            "导入",
            "在“包保清单”页填写后上传（网页“包保清单导入”或命令 flask import-roster 文件.xlsx）。",
        ),
        (
            "全部或不导入",
            "任何一行有误时整份清单都不会导入，系统逐行说明原因；修改后重新上传即可。",
        ),
        (
            "重复导入",
            "已存在的包保责任不会重复创建；“是否主要”为“是”时会接替该地点原主要负责人（原记录保留为历史）。",
        ),
    ]
    lines += [(c.header, c.help) for c in COLUMNS]
    lines += [
        ("图层可选", "、".join(s.title for s in registry)),
        ("角色可选", "、".join(roles)),
        ("层级可选", "、".join(levels)),
        (
            "示例",
            "张伟｜县城市管理局局长｜县城市管理局｜13812345678｜县级｜道路长｜道路｜R0001｜人民路｜是",
        ),
    ]
    for row, (key, text) in enumerate(lines, start=3):
        notes.cell(row, 1, key).font = Font(bold=True)
        notes.cell(row, 2, text).alignment = Alignment(wrap_text=True, vertical="top")
    workbook_as_text(wb)
    if isinstance(target, (str, Path)):
        wb.save(str(target))
    else:
        wb.save(target)
