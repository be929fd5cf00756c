"""Spreadsheet uploads are bombs until bounded (docs/security.md, issue 13 §6).

An .xlsx of a few KB can declare one merged range `A2:XFD200000` (3.3 billion cells that
openpyxl's normal mode materialises), a `<dimension>` of a million rows that read-only mode
pads every row to, or a member that inflates to gigabytes. `check_xlsx` looks at the archive
and streams each worksheet's XML with expat *before* openpyxl touches it:

- the zip: at most `MAX_MEMBERS` members, each at most `MAX_MEMBER_BYTES` and all together at
  most `MAX_TOTAL_BYTES` uncompressed (as declared in the central directory; Python's zipfile
  never inflates a member past its declared size, so the declaration bounds the work);
- every worksheet: `<dimension>`, each `<row r>` and `<c r>`, and each `<mergeCell ref>`
  within `max_rows` × `max_columns`; at most `MAX_MERGED_RANGES` merged ranges covering at most
  `MAX_MERGED_CELLS` cells; no DOCTYPE (no entity tricks).

It returns the merged ranges per worksheet (read-only openpyxl does not load them), so the
caller reads the workbook with `load_workbook(read_only=True)` and fills merged cells itself.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import IO
from xml.parsers import expat

from openpyxl import Workbook, load_workbook
from openpyxl.utils.cell import range_boundaries
from openpyxl.utils.exceptions import InvalidFileException

from geoservice.service_errors import InvalidInput, UnsupportedMedia

MAX_MEMBERS = 1_000
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 96 * 1024 * 1024
MAX_COLUMNS = 256
MAX_MERGED_RANGES = 50_000
MAX_MERGED_CELLS = 300_000
CHUNK = 64 * 1024
WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")

Range = tuple[int, int, int, int]  # min_row, min_col, max_row, max_col


class SpreadsheetRefused(ValueError):
    """The workbook exceeds a limit or is not a workbook; the message is Chinese and names
    the limit."""


class NotAWorkbook(SpreadsheetRefused):
    """The file is no .xlsx workbook at all (a 415 where an upload is refused)."""


NOT_A_WORKBOOK = "无法读取该文件：请上传 Excel 工作簿（.xlsx）"


def _bounds(ref: str) -> Range | None:
    try:
        min_col, min_row, max_col, max_row = range_boundaries(ref.replace("$", ""))
    except (ValueError, TypeError):
        return None
    if None in (min_col, min_row, max_col, max_row):
        return None  # whole rows or columns ("A:A", "2:2")
    return min_row, min_col, max_row, max_col


class _Sheet:
    def __init__(self, name: str, max_rows: int, max_columns: int) -> None:
        self.name = name
        self.max_rows = max_rows
        self.max_columns = max_columns
        self.rows = 0
        self.row = 0
        self.merged: list[Range] = []
        self.merged_cells = 0

    def too_big(self, what: str) -> SpreadsheetRefused:
        return SpreadsheetRefused(
            f"工作表 {self.name} 的{what}超出上限（最多 {self.max_rows} 行、"
            f"{self.max_columns} 列），请删除多余的行列后重新上传"
        )

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        name = tag.rpartition(" ")[2]
        if name == "row":
            self.rows += 1
            self.row = int(attrs["r"]) if attrs.get("r", "").isdigit() else self.row + 1
            if self.rows > self.max_rows or self.row > self.max_rows:
                raise self.too_big(f"行数（第 {self.row} 行）")
        elif name == "c":
            ref = attrs.get("r")
            if ref:
                found = _bounds(ref)
                if found is None or found[3] > self.max_columns or found[2] > self.max_rows:
                    raise self.too_big(f"单元格 {ref}")
        elif name == "dimension":
            ref = attrs.get("ref", "")
            found = _bounds(ref) if ref else (1, 1, 1, 1)
            if found is None or found[2] > self.max_rows or found[3] > self.max_columns:
                raise self.too_big(f"范围（dimension {ref}）")
        elif name == "mergeCell":
            ref = attrs.get("ref", "")
            found = _bounds(ref)
            if found is None or found[2] > self.max_rows or found[3] > self.max_columns:
                raise self.too_big(f"合并单元格 {ref}")
            self.merged.append(found)
            self.merged_cells += (found[2] - found[0] + 1) * (found[3] - found[1] + 1)
            if len(self.merged) > MAX_MERGED_RANGES or self.merged_cells > MAX_MERGED_CELLS:
                raise SpreadsheetRefused(
                    f"工作表 {self.name} 的合并单元格超出上限（最多 {MAX_MERGED_RANGES} 处、"
                    f"共 {MAX_MERGED_CELLS} 个单元格），请取消不必要的合并后重新上传"
                )


def _scan(archive: zipfile.ZipFile, member: str, sheet: _Sheet) -> None:
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = sheet.start

    def no_doctype(*_args) -> None:
        raise SpreadsheetRefused("工作表含 DOCTYPE 声明，不是正常的 Excel 文件")

    parser.StartDoctypeDeclHandler = no_doctype
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise SpreadsheetRefused(f"工作表 {member} 的 XML 已损坏：{exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SpreadsheetRefused(f"工作簿已损坏：{exc}") from None


def check_xlsx(
    source: str | Path | IO[bytes], *, max_rows: int, max_columns: int = MAX_COLUMNS
) -> dict[str, list[Range]]:
    """Refuses (SpreadsheetRefused) a workbook beyond the limits, before any parsing; returns
    {worksheet member path: merged ranges}."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise NotAWorkbook(NOT_A_WORKBOOK) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise SpreadsheetRefused(f"工作簿内的部件超过上限 {MAX_MEMBERS} 个")
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                raise SpreadsheetRefused(
                    f"工作簿解压后过大（单个部件最多 {MAX_MEMBER_BYTES // 1024 // 1024} MB、"
                    f"合计最多 {MAX_TOTAL_BYTES // 1024 // 1024} MB），请删除无关内容或分批上传"
                )
        merged: dict[str, list[Range]] = {}
        for info in infos:
            if WORKSHEET.fullmatch(info.filename):
                sheet = _Sheet(Path(info.filename).stem, max_rows, max_columns)
                _scan(archive, info.filename, sheet)
                merged[info.filename] = sheet.merged
    return merged


def open_xlsx(
    source: str | Path | bytes | IO[bytes], *, max_rows: int, max_columns: int = MAX_COLUMNS
) -> tuple[Workbook, dict[str, list[Range]]]:
    """`check_xlsx`, then the workbook in openpyxl's read-only mode (close it when done) and
    its merged ranges. NotAWorkbook when it is no workbook, SpreadsheetRefused beyond a limit."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    merged = check_xlsx(source, max_rows=max_rows, max_columns=max_columns)
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise NotAWorkbook(NOT_A_WORKBOOK) from None
    return workbook, merged


def open_upload(source: bytes | IO[bytes], max_rows: int) -> Workbook:
    """An uploaded workbook for an import, read-only (close it when done): 415 when it is no
    workbook, 422 beyond a limit (service errors, naming the field `file`)."""
    try:
        workbook, _merged = open_xlsx(source, max_rows=max_rows)
    except NotAWorkbook as exc:
        raise UnsupportedMedia(str(exc), field="file") from None
    except SpreadsheetRefused as exc:
        raise InvalidInput(str(exc), field="file") from None
    return workbook
