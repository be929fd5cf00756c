"""Large sheets of write-only openpyxl workbooks, written in bulk.

openpyxl's write-only sheets stream, but spend ~20 µs on every cell (a cell object, its
coordinate, an lxml element context per cell): a 通报 of the demo county (about 1.5 million
cells) took ~14 s in openpyxl alone. A `BulkSheet` renders its rows itself, as the XML openpyxl
writes (inline strings, style ids from the workbook's own style table), into a temporary file,
and puts them into the sheet openpyxl writes around an empty `sheetData` when it is closed:
a few µs a cell (writing the 通报 of the 30,000-grid bench: 13.0–17.1 s → 3.7–4.3 s at load
5). Everything else of the sheet (column widths, freeze panes, conditional formats, filters)
and of the workbook stays openpyxl's.

Text stays text (docs/security.md, geoservice.spreadsheet_text): no cell is ever written as a
formula, and a formula-like string gets Excel's quote prefix, as `text_row` gives it. Strings
are cut to Excel's 32,767 characters and characters XML cannot carry are dropped (openpyxl
raises on them); empty strings are left out, as openpyxl reads them back (None).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, get_time_format
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook import Workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from geoservice.spreadsheet_text import formula_like

CHUNK_ROWS = 500
MAX_TEXT = 32767


class _Blank:
    def __repr__(self) -> str:
        return "BLANK"


# A cell with its column's style and no value (a bordered empty cell, the lower cells of a
# merged range): written as `<c r=… s=…/>`; None leaves the cell out.
BLANK = _Blank()
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _text(value: str) -> str:
    value = value[:MAX_TEXT]
    if ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f"<is><t{space}>{value.translate(_ESCAPES)}</t></is>"


class BulkSheet(WriteOnlyWorksheet):
    """A write-only sheet with `write_rows` for its large parts (create with `bulk_sheet`).

    `append` still takes a row of values or openpyxl cells (headers, titles), with formula-like
    text kept as text; row numbers continue across both."""

    def __init__(self, parent: Workbook, title: str | None) -> None:
        super().__init__(parent, title)
        self._row_no = 0
        self._styles: dict[tuple, int] = {}
        self._specs: dict[int, dict[str, Any]] = {0: {}}
        self._letters = [get_column_letter(i) for i in range(1, 101)]
        self._out: Any = None  # the rendered rows, until the sheet is closed
        self.row_heights: dict[int, float] = {}  # row number → height in points

    # -- styles ---------------------------------------------------------------------------
    def style(self, **spec: Any) -> int:
        """The workbook's style id for the given cell style attributes (number_format, font,
        fill, alignment, border, quotePrefix …); 0 is the default style."""
        key = tuple(sorted((k, repr(v)) for k, v in spec.items() if v is not None))
        if not key:
            return 0
        if key not in self._styles:
            cell = WriteOnlyCell(self)
            for name, value in spec.items():
                if value is not None:
                    setattr(cell, name, value)
            self._styles[key] = cell.style_id
            self._specs[cell.style_id] = {k: v for k, v in spec.items() if v is not None}
        return self._styles[key]

    def _quoted(self, style_id: int) -> int:
        return self.style(**{**self._specs[style_id], "quotePrefix": True})

    def _dated(self, style_id: int, kind: type) -> int:
        """A date or time without a number format gets openpyxl's default one for its type."""
        spec = self._specs[style_id]
        if "number_format" in spec:
            return style_id
        return self.style(**{**spec, "number_format": get_time_format(kind)})

    # -- rows -----------------------------------------------------------------------------
    def append(self, row: Iterable[Any]) -> None:
        """One row of values or openpyxl cells (a cell brings its style)."""
        values, styles = [], []
        for value in row:
            if isinstance(value, Cell):
                styles.append(value.style_id if value.has_style else 0)
                values.append(value.value)
            else:
                styles.append(0)
                values.append(value)
        self.write_rows([values], styles)

    def write_rows(self, rows: Iterable[Sequence[Any]], styles: Sequence[int] = ()) -> int:
        """Appends `rows` (plain values: str, int, float, Decimal, bool, naive date/datetime,
        None, BLANK); `styles[i]` is the style id (`style(...)`) of column i. Returns the rows
        written."""
        if self._out is None:
            # Lives until close() (or the sheet's end): not a with-block.
            self._out = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        parts: list[str] = []
        count = 0
        for row in rows:
            self._row_no += 1
            count += 1
            parts.append(self._render(row, styles))
            if len(parts) >= CHUNK_ROWS:
                self._out.write("".join(parts))
                parts = []
        self._out.write("".join(parts))
        return count

    def close(self) -> None:
        """openpyxl writes the sheet around an empty sheetData; the rows go inside it."""
        super().close()
        if self._out is None:
            return
        path = self._writer.out
        with open(path, encoding="utf-8") as f:
            xml = f.read()
        empty = "<sheetData></sheetData>" if "<sheetData></sheetData>" in xml else "<sheetData/>"
        head, tail = xml.split(empty, 1)
        self._out.seek(0)
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + "<sheetData>")
            shutil.copyfileobj(self._out, f)
            f.write("</sheetData>" + tail)
        self._out.close()
        self._out = None

    def _render(self, row: Sequence[Any], styles: Sequence[int]) -> str:
        n = self._row_no
        height = self.row_heights.get(n)
        out = [f'<row r="{n}" ht="{height:g}" customHeight="1">' if height else f'<row r="{n}">']
        letters = self._letters
        for i, value in enumerate(row):
            if value is None:
                continue
            while i >= len(letters):
                letters.append(get_column_letter(len(letters) + 1))
            style = styles[i] if i < len(styles) else 0
            if value is BLANK:
                if style:
                    out.append(f'<c r="{letters[i]}{n}" s="{style}"/>')
                continue
            kind = type(value)
            if kind is str:
                if not value:
                    continue
                if formula_like(value):
                    style = self._quoted(style)
                body, t = _text(value), "inlineStr"
            elif kind is int or kind is Decimal:
                body, t = f"<v>{value}</v>", "n"
            elif kind is float:
                if math.isnan(value) or math.isinf(value):
                    continue
                body, t = f"<v>{value:.16g}</v>", "n"
            elif kind is bool:
                body, t = f"<v>{int(value)}</v>", "b"
            elif isinstance(value, datetime | date | time | timedelta):
                if getattr(value, "tzinfo", None) is not None:
                    raise TypeError("Excel has no time zones: pass naive local times")
                body, t = f"<v>{to_excel(value):.16g}</v>", "n"
                style = self._dated(style, kind)
            else:
                raise TypeError(f"cannot write {kind.__name__} to a sheet")
            s = f' s="{style}"' if style else ""
            out.append(f'<c r="{letters[i]}{n}"{s} t="{t}">{body}</c>')
        out.append("</row>")
        return "".join(out)


def bulk_sheet(wb: Workbook, title: str) -> BulkSheet:
    """A new `BulkSheet` at the end of write-only workbook `wb`."""
    ws = BulkSheet(parent=wb, title=title)
    wb._add_sheet(ws)
    return ws
