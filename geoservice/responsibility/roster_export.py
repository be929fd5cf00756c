"""Export of the current 包保责任情况一览表 as .xlsx, the way meetings read it.

One row per active assignment, grouped by leader (leaders ordered by level as configured,
then unit and name); a title row, the date, a bold header, the leader's cells merged over their
rows, column widths, borders, and print settings (landscape, header repeated on every page).
The header uses the roster import's column names, so the sheet imports back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.merge import MergedCellRange
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from geoservice.placegeom import layer_title_sql
from geoservice.registry import LayerRegistry
from geoservice.responsibility import responsibility as resp
from geoservice.responsibility.roster import COLUMN_BY_KEY
from geoservice.spreadsheet_text import workbook_as_text

DEFAULT_TITLE = "包保责任情况一览表"
# (key, header, width); leader columns are merged over the leader's rows.
EXPORT_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("seq", "序号", 6),
    *(
        (key, COLUMN_BY_KEY[key].header, COLUMN_BY_KEY[key].width)
        for key in (
            "name",
            "title",
            "unit",
            "phone",
            "level",
            "role",
            "layer",
            "code",
            "place_name",
            "primary",
            "valid_from",
            "note",
        )
    ),
)
LEADER_KEYS = ("seq", "name", "title", "unit", "phone", "level")

THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)


def roster_rows(
    session: Session,
    registry: LayerRegistry,
    levels: Sequence[str],
    unit_id: int | None = None,
) -> list[dict[str, Any]]:
    """Active assignments with leader, unit and place, in 一览表 order."""
    layer_order = " ".join(
        f"WHEN '{spec.name}' THEN {index}" for index, spec in enumerate(registry)
    )
    sql = text(f"""
SELECT l.id AS leader_id, l.name, l.title, u.name AS unit, l.phone, l.level,
       a.role, {layer_title_sql(registry, "p.layer")} AS layer, p.code, p.name AS place_name,
       a.is_primary, a.valid_from, a.note
FROM assignments a
JOIN leaders l ON l.id = a.leader_id
LEFT JOIN units u ON u.id = l.unit_id
JOIN places p ON p.id = a.place_id
WHERE a.valid_to IS NULL AND (CAST(:unit_id AS integer) IS NULL OR l.unit_id = :unit_id)
ORDER BY COALESCE(array_position(CAST(:levels AS text[]), l.level::text), 999),
         u.is_lead DESC NULLS LAST, u.name NULLS LAST, l.is_unit_head DESC, l.name, l.id,
         CASE p.layer {layer_order} ELSE 999 END, p.code, a.is_primary DESC, a.role
""").bindparams(bindparam("levels"))
    rows = session.execute(sql, {"levels": list(levels), "unit_id": unit_id}).mappings()
    return [dict(r) for r in rows]


def export_roster(
    session: Session,
    registry: LayerRegistry,
    target: str | Path | IO[bytes],
    *,
    levels: Sequence[str],
    timezone: str,
    title: str = DEFAULT_TITLE,
    unit_id: int | None = None,
    at: datetime | None = None,
) -> int:
    """Writes the 一览表 to `target`; returns the number of assignment rows."""
    rows = roster_rows(session, registry, levels, unit_id)
    tz = ZoneInfo(timezone)
    as_of = (at or resp.now()).astimezone(tz)
    width = len(EXPORT_COLUMNS)
    last = get_column_letter(width)

    wb = Workbook()
    ws = wb.active
    ws.title = "包保一览表"
    ws.merge_cells(f"A1:{last}1")
    ws["A1"] = title
    ws["A1"].font = Font(bold=True, size=16)
    ws["A1"].alignment = CENTER
    ws.row_dimensions[1].height = 30
    leaders = len({r["leader_id"] for r in rows})
    ws.merge_cells(f"A2:{last}2")
    ws["A2"] = (
        f"截至 {as_of.year}年{as_of.month}月{as_of.day}日　"
        f"包保领导 {leaders} 人　包保责任 {len(rows)} 条"
    )
    ws["A2"].alignment = Alignment(horizontal="right", vertical="center")

    header_row = 3
    for col, (_key, header, col_width) in enumerate(EXPORT_COLUMNS, start=1):
        cell = ws.cell(header_row, col, header)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = CENTER
        cell.border = BORDER
        ws.column_dimensions[get_column_letter(col)].width = col_width
    ws.row_dimensions[header_row].height = 22

    keys = [key for key, _h, _w in EXPORT_COLUMNS]
    row_number = header_row
    sequence = 0
    block_start = None
    previous_leader = None

    def close_block(start: int | None, end: int) -> None:
        if start is None or end <= start:
            return
        for key in LEADER_KEYS:
            _merge(ws, keys.index(key) + 1, start, end, *merged_styles[key])

    # Each column's cell style, made once and copied into every cell of the column: setting a
    # border and an alignment on a cell hashes the style objects each time (a city's ~94,000
    # rows × 12 cells took over four minutes that way).
    styles = []
    for key in keys:
        model = Cell(ws)  # not placed in the sheet: a carrier of the column's style
        model.border = BORDER
        model.alignment = LEFT if key in ("title", "unit", "place_name", "note") else CENTER
        if key == "valid_from":
            model.number_format = "yyyy-mm-dd"
        elif key in ("code", "phone"):
            model.number_format = "@"
        styles.append(copy(model._style))
    merged_styles = {key: _merged_styles(wb, styles[keys.index(key)]) for key in LEADER_KEYS}

    for record in rows:
        row_number += 1
        if record["leader_id"] != previous_leader:
            close_block(block_start, row_number - 1)
            block_start = row_number
            previous_leader = record["leader_id"]
            sequence += 1
            leader_values = {
                "seq": sequence,
                "name": record["name"],
                "title": record["title"],
                "unit": record["unit"] or "",
                "phone": record["phone"] or "",
                "level": record["level"],
            }
        else:
            leader_values = {}
        values = {
            **leader_values,
            "role": record["role"],
            "layer": record["layer"],
            "code": record["code"],
            "place_name": record["place_name"],
            "primary": "是" if record["is_primary"] else "否",
            "valid_from": record["valid_from"].astimezone(tz).date(),
            "note": record["note"] or "",
        }
        for col, (key, style) in enumerate(zip(keys, styles, strict=True), start=1):
            # Placed directly (ws.cell looks the cell up and checks the coordinates first).
            ws._cells[row_number, col] = Cell(
                ws, row=row_number, column=col, value=values.get(key), style_array=copy(style)
            )
    close_block(block_start, row_number)

    ws.freeze_panes = ws.cell(header_row + 1, 1)
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    workbook_as_text(wb)  # names, titles, notes … stay text (no formulas)
    if isinstance(target, (str, Path)):
        wb.save(str(target))
    else:
        wb.save(target)
    return len(rows)


def _merged_styles(wb: Workbook, first: StyleArray) -> tuple[StyleArray, StyleArray]:
    """The styles openpyxl's own merge gives the cells below the first of a one-column range
    whose cells all have style `first` (borders kept on the range's edges): a middle cell's
    and the last cell's. Merged on a scratch sheet of the same workbook (style ids are the
    workbook's), which is then removed."""
    scratch = wb.create_sheet("merge styles")
    for row in (1, 2, 3):
        scratch.cell(row, 1)._style = copy(first)
    scratch.merge_cells("A1:A3")
    middle, last = copy(scratch.cell(2, 1)._style), copy(scratch.cell(3, 1)._style)
    wb.remove(scratch)
    return middle, last


def _merge(
    ws: Worksheet, column: int, start: int, end: int, middle: StyleArray, last: StyleArray
) -> None:
    """Merges rows start..end of one column, with the cells openpyxl's `merge_cells` would
    leave (`_merged_styles`) but without its work per range: a check of the new range against
    every range merged so far and a restyling of every cell (a city's ~4,000 leaders × six
    merged columns took minutes). The leader blocks merged here never overlap."""
    letter = get_column_letter(column)
    # Not MergedCellRange(ws, …): its constructor adds the last cell's right and bottom border
    # to the first cell's (a new style looked up per range) — the column's cells share one
    # style, so the first cell's border already is that sum.
    merged = MergedCellRange.__new__(MergedCellRange)
    CellRange.__init__(merged, f"{letter}{start}:{letter}{end}")
    merged.ws, merged.start_cell = ws, ws._cells[start, column]
    ws.merged_cells.ranges.add(merged)
    for row in range(start + 1, end + 1):
        cell = MergedCell(ws, row=row, column=column)
        cell._style = copy(last if row == end else middle)
        ws._cells[row, column] = cell
