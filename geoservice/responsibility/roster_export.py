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
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from geoservice.placegeom import layer_title_sql
from geoservice.registry import LayerRegistry
from geoservice.responsibility import responsibility as resp
from geoservice.responsibility.roster import COLUMN_BY_KEY
from geoservice.xlsx_stream import BLANK, bulk_sheet

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
    """Writes the 一览表 to `target`; returns the number of assignment rows.

    A write-only workbook whose rows are rendered in bulk (geoservice.xlsx_stream: a city's
    ~94,000 rows × 13 cells took ~20 s through openpyxl's cell objects); the sheet is the one
    a normal openpyxl sheet with `merge_cells` makes (tests/test_roster.py compares them)."""
    rows = roster_rows(session, registry, levels, unit_id)
    tz = ZoneInfo(timezone)
    as_of = (at or resp.now()).astimezone(tz)
    last = get_column_letter(len(EXPORT_COLUMNS))
    keys = [key for key, _h, _w in EXPORT_COLUMNS]

    wb = Workbook(write_only=True)
    ws = bulk_sheet(wb, "包保一览表")
    for col, (_key, _header, col_width) in enumerate(EXPORT_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(col)].width = col_width
    header_row = 3
    ws.freeze_panes = f"A{header_row + 1}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True

    leaders = len({r["leader_id"] for r in rows})
    ws.row_heights[1] = 30
    ws.write_rows([[title]], [ws.style(font=Font(bold=True, size=16), alignment=CENTER)])
    ws.write_rows(
        [
            [
                f"截至 {as_of.year}年{as_of.month}月{as_of.day}日　"
                f"包保领导 {leaders} 人　包保责任 {len(rows)} 条"
            ]
        ],
        [ws.style(alignment=Alignment(horizontal="right", vertical="center"))],
    )
    # Added to the set directly: MultiCellRange.add compares each new range with every range
    # added before (a city's ~25,000 merged ranges took over a minute that way).
    merged = ws.merged_cells.ranges
    merged.update((CellRange(f"A1:{last}1"), CellRange(f"A2:{last}2")))
    ws.row_heights[header_row] = 22
    header = ws.style(font=Font(bold=True), fill=HEADER_FILL, alignment=CENTER, border=BORDER)
    ws.write_rows([[h for _k, h, _w in EXPORT_COLUMNS]], [header] * len(keys))

    styles = []
    for key in keys:
        number_format = {"valid_from": "yyyy-mm-dd", "code": "@", "phone": "@"}.get(key)
        alignment = LEFT if key in ("title", "unit", "place_name", "note") else CENTER
        styles.append(ws.style(border=BORDER, alignment=alignment, number_format=number_format))
    # The lower cells of a leader's merged cells carry the borders openpyxl's merge gives them.
    middle_border, last_border = _merged_borders(BORDER)
    middle = [
        ws.style(border=middle_border) if k in LEADER_KEYS else s
        for k, s in zip(keys, styles, strict=True)
    ]
    bottom = [
        ws.style(border=last_border) if k in LEADER_KEYS else s
        for k, s in zip(keys, styles, strict=True)
    ]

    def blank(value: Any) -> Any:
        return BLANK if value is None or value == "" else value

    row_number = header_row
    for sequence, (_leader, group) in enumerate(groupby(rows, key=itemgetter("leader_id")), 1):
        block = list(group)
        first_row = row_number + 1
        for index, record in enumerate(block):
            row_number += 1
            values = {
                "role": record["role"],
                "layer": record["layer"],
                "code": record["code"],
                "place_name": record["place_name"],
                "primary": "是" if record["is_primary"] else "否",
                "valid_from": record["valid_from"].astimezone(tz).date(),
                "note": record["note"],
            }
            if index == 0:
                values.update(
                    seq=sequence,
                    name=record["name"],
                    title=record["title"],
                    unit=record["unit"],
                    phone=record["phone"],
                    level=record["level"],
                )
                row_styles = styles
            else:
                row_styles = bottom if index == len(block) - 1 else middle
            ws.write_rows([[blank(values.get(key)) for key in keys]], row_styles)
        if len(block) > 1:
            for key in LEADER_KEYS:
                letter = get_column_letter(keys.index(key) + 1)
                merged.add(CellRange(f"{letter}{first_row}:{letter}{row_number}"))
    # Formula-like text is written as text (quote prefix) by the bulk sheet itself.
    if isinstance(target, (str, Path)):
        wb.save(str(target))
    else:
        wb.save(target)
    return len(rows)


def _merged_borders(border: Border) -> tuple[Border, Border]:
    """The borders openpyxl's own merge gives the cells below the first of a one-column range
    whose cells all have `border` (kept on the range's edges): a middle cell's and the last's."""
    scratch = Workbook().active
    for row in (1, 2, 3):
        scratch.cell(row, 1).border = border
    scratch.merge_cells("A1:A3")
    return copy(scratch.cell(2, 1).border), copy(scratch.cell(3, 1).border)
