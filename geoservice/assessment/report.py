"""The 测评 sheet of the 通报 workbook: the mock-evaluation rounds that ended in the period,
streets and units ranked (score, 点位达标率, 未达标点位, 负面清单, 后三名, the line), and the
sites that did not pass (点位未达标)."""

from __future__ import annotations

from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.styles import Font, PatternFill
from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.assessment import scores
from geoservice.assessment.models import AssessmentRound
from geoservice.spreadsheet_text import as_text, text_row

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="B71C1C")
FLAG_FILL = PatternFill("solid", fgColor="F8D7DA")


def rounds_in(session: Session, first_day, last_day) -> list[AssessmentRound]:
    return list(
        session.scalars(
            select(AssessmentRound)
            .where(AssessmentRound.ends_on >= first_day, AssessmentRound.ends_on <= last_day)
            .order_by(AssessmentRound.ends_on, AssessmentRound.id)
        )
    )


def _rate(value: float | None) -> str:
    return "" if value is None else f"达标率 {value * 100:.1f}%"


def _header(ws, titles: list[str]) -> None:
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for title in titles:
        cell = WriteOnlyCell(ws, value=title)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        cells.append(cell)
    ws.append(cells)


def _percent(ws, fraction: float | None) -> Any:
    """A 达标率 cell: the fraction shown as 48.3% (bare, 1 read as 1%)."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=fraction)
    cell.number_format = "0.0%"
    return cell


def _row(ws, values: list[Any], flagged: bool = False) -> None:
    """A row of the sheet; text that looks like a formula stays text (spreadsheet_text)."""
    if not flagged:
        ws.append(text_row(ws, values))
        return
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for v in values:
        cell = v if isinstance(v, Cell) else WriteOnlyCell(ws, value=v)
        cell.fill = FLAG_FILL
        cells.append(as_text(cell))
    ws.append(cells)


def add_sheet(
    wb: Workbook, session: Session, first_day, last_day, line: float, bottom_n: int
) -> bool:
    """Adds the sheet 模拟测评 when a round ended between the two days; returns whether it did."""
    found = rounds_in(session, first_day, last_day)
    if not found:
        return False
    settings = scores.ScoreSettings(line=line, bottom_n=bottom_n)
    ws = wb.create_sheet("模拟测评")
    for column, width in zip("ABCDEFGHI", (8, 22, 10, 10, 10, 12, 10, 18, 30), strict=True):
        ws.column_dimensions[column].width = width
    for r in found:
        sites = scores.site_scores(session, r.id, settings)
        totals = scores.totals(sites, settings)
        _row(ws, [f"{r.name}（{r.starts_on}—{r.ends_on}）"])
        ws.append(
            [
                "全县",
                f"测评点位 {totals['assessed']}",
                f"平均得分 {totals['score'] if totals['score'] is not None else '—'}",
                f"达标率 {totals['pass_rate'] * 100:.1f}%"
                if totals["pass_rate"] is not None
                else "",
                f"不合格 {totals['failed']}",
                f"负面清单 {totals['negative']}",
            ]
        )
        for of in ("street", "unit"):
            ws.append([])
            ws.append([f"按{scores.GROUPINGS[of]}排名（点未达标月评）"])
            _header(ws, ["名次", scores.GROUPINGS[of], "得分", "达标率", "测评点位",
                         "未达标点位", "负面清单", "标记"])  # fmt: skip
            for g in scores.group_scores(sites, of, settings):
                marks = "、".join(
                    m
                    for m, on in (
                        (f"后{bottom_n}名", g["bottom"]),
                        (f"低于{line:g}分", g["below_line"]),
                    )
                    if on
                )
                _row(
                    ws,
                    [g["rank"] or "—", g["name"], g["score"], _percent(ws, g["pass_rate"]),
                     g["assessed"], g["assessed"] - g["passed"], g["negative"], marks],
                    bool(marks),
                )  # fmt: skip
        ws.append([])
        ws.append(["未达标点位"])
        _header(ws, ["序号", "点位", "类别", "得分", "不合格", "负面清单", "街道", "点长", "编码"])
        failing = [s for s in sites if s["assessed"] and not s["passed"]]
        failing.sort(key=lambda s: (s["score"] if s["score"] is not None else 101, s["code"]))
        for i, s in enumerate(failing, start=1):
            _row(
                ws,
                [i, s["name"], s["kind_name"], s["score"], s["failed"], s["negative"],
                 s["street_name"], s["leader_name"], s["code"]],
            )  # fmt: skip
        ws.append([])
    return True
