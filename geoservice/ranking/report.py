"""通报 workbook (.xlsx): cover with city-wide figures, one sheet per ranking, overdue issues.

Written with openpyxl in write-only mode; the large sheets (rankings, overdue issues) are
`geoservice.xlsx_stream.BulkSheet`s, which render their rows without a cell object each.
Flagged rows (后三名, below the threshold) are coloured by conditional formatting on the
标记 column, so the colour follows the data if someone edits the sheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy.orm import Session

from geoservice.assessment.report import add_sheet
from geoservice.ranking import drilldown, patrol, ranking
from geoservice.ranking.periods import Period
from geoservice.registry import LayerRegistry
from geoservice.spreadsheet_text import text_row
from geoservice.xlsx_stream import bulk_sheet

# The rankings a 通报 carries, in sheet order.
REPORT_RANKINGS: tuple[str, ...] = ("leader", "unit", "grid")

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="B71C1C")
FLAG_FILL = PatternFill("solid", fgColor="F8D7DA")
FLAG_FONT = Font(color="9C0006")
TITLE_FONT = Font(bold=True, size=16)
PERCENT = "0.0%"
DECIMAL = "0.00"
DATETIME = "yyyy-mm-dd hh:mm"

DETAIL_COLUMNS: dict[str, list[tuple[str, str, int]]] = {
    # grouping → (detail key, header, width)
    "leader": [("title", "职务", 24), ("unit", "所在单位", 18)],
    "grid": [("code", "网格编码", 18), ("community", "所属社区", 14)],
    "community": [("street", "所属街道", 14)],
}
RANKING_COLUMNS: list[tuple[str, str, str | None, int]] = [
    # (row field, header, number format, width)
    ("score", "综合得分", DECIMAL, 10),
    ("on_time_rate", "按期结案率", PERCENT, 11),
    ("close_rate", "结案率", PERCENT, 9),
    ("rework_rate", "返工率", PERCENT, 9),
    ("satisfaction_rate", "群众满意率", PERCENT, 11),
    *((name, title, None, 9) for name, title in ranking.COUNTS.items()),
    ("avg_hours_to_close", "平均结案时长(h)", DECIMAL, 15),
    ("median_hours_to_close", "结案时长中位数(h)", DECIMAL, 17),
]


def _local(value: str | datetime | None, tz: ZoneInfo) -> datetime | None:
    """Excel has no time zones: aware times become naive local times."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(tz).replace(tzinfo=None)


def _header(ws: WriteOnlyWorksheet, titles: Sequence[str]) -> None:
    cells = []
    for title in titles:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cells.append(cell)
    _append(ws, cells)


def _append(ws: WriteOnlyWorksheet, values: Sequence[Any]) -> None:
    """Every row goes through here: user text (names, titles, descriptions) stays text."""
    ws.append(text_row(ws, values))


def _cell(ws: WriteOnlyWorksheet, value: Any, number_format: str | None) -> Any:
    if number_format is None or value is None:
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.number_format = number_format
    return cell


def _widths(ws: WriteOnlyWorksheet, widths: Sequence[int]) -> None:
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width


def flag_text(row: dict[str, Any], settings: ranking.Settings) -> str:
    marks = []
    if row.get("bottom"):
        marks.append(f"后{settings.bottom_n}名")
    if row.get("below_threshold"):
        marks.append(f"低于{settings.threshold:g}分")
    return "、".join(marks)


def _ranking_sheet(
    wb: Workbook,
    title: str,
    of: str,
    rows: list[dict[str, Any]],
    settings: ranking.Settings,
) -> None:
    ws = bulk_sheet(wb, title)  # the grid sheet of a county has ~30,000 rows
    details = DETAIL_COLUMNS.get(of, [])
    headers = ["排名", "名称", *(h for _, h, _ in details)]
    headers += [h for _, h, _, _ in RANKING_COLUMNS] + ["标记"]
    widths = [6, 18, *(w for _, _, w in details), *(w for _, _, _, w in RANKING_COLUMNS), 16]
    _widths(ws, widths)
    ws.freeze_panes = "C2"
    _header(ws, headers)
    styles = [0] * (2 + len(details))
    styles += [ws.style(number_format=fmt) for _, _, fmt, _ in RANKING_COLUMNS]
    fields = [f for f, _, _, _ in RANKING_COLUMNS]
    ws.write_rows(
        (
            [
                r["rank"] if r["ranked"] else "—",
                r["name"],
                *((r["detail"] or {}).get(k) for k, _, _ in details),
                *(r[f] for f in fields),
                flag_text(r, settings),
            ]
            for r in rows
        ),
        styles,
    )
    last_col = get_column_letter(len(headers))
    if rows:
        ws.conditional_formatting.add(
            f"A2:{last_col}{len(rows) + 1}",
            FormulaRule(formula=[f'${last_col}2<>""'], fill=FLAG_FILL, font=FLAG_FONT),
        )
    ws.auto_filter.ref = f"A1:{last_col}{len(rows) + 1}"


def _overdue_sheet(
    wb: Workbook, issues: list[dict[str, Any]], period: Period, tz: ZoneInfo
) -> None:
    ws = bulk_sheet(wb, "超期问题")  # tens of thousands of rows in a county
    columns = [
        ("序号", 6),
        ("问题编号", 10),
        ("问题类别", 12),
        ("问题来源", 12),
        ("问题描述", 44),
        ("所在位置", 22),
        ("图层", 10),
        ("包保领导", 12),
        ("责任单位", 18),
        ("上报时间", 17),
        ("整改时限", 17),
        ("超期天数", 10),
        ("期末状态", 12),
    ]
    _widths(ws, [w for _, w in columns])
    ws.freeze_panes = "A2"
    _header(ws, [c for c, _ in columns])
    ordered = sorted(issues, key=lambda i: (-(i["overdue_days"] or 0), i["id"]))
    when = ws.style(number_format=DATETIME)
    ws.write_rows(
        (
            [
                n,
                issue["id"],
                issue["category"],
                issue["source"],
                issue["description"],
                issue["place"],
                issue["layer"],
                issue["leader"] or "（未落实）",
                issue["unit"] or "（未落实）",
                _local(issue["reported_at"], tz),
                _local(issue["deadline"], tz),
                issue["overdue_days"],
                issue["status_at_end_title"],
            ]
            for n, issue in enumerate(ordered, start=1)
        ),
        [0] * 9 + [when, when, ws.style(number_format="0.0")],
    )
    if ordered:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(ordered) + 1}"


def _cover(
    wb: Workbook,
    title: str,
    period: Period,
    totals: dict[str, Any],
    rankings: dict[str, list[dict[str, Any]]],
    titles: dict[str, str],
    settings: ranking.Settings,
    generated_at: datetime,
) -> None:
    ws = wb.create_sheet("封面")
    _widths(ws, [26, 16, 60])
    head = WriteOnlyCell(ws, value=title)
    head.font = TITLE_FONT
    _append(ws, [head])
    _append(ws, ["统计周期", period.title])
    span = f"{period.start:%Y-%m-%d %H:%M} 至 {period.end:%Y-%m-%d %H:%M}"
    _append(ws, ["起止时间", span, "含起点、不含终点"])
    _append(ws, ["生成时间", generated_at.strftime("%Y-%m-%d %H:%M")])
    _append(ws, [])
    _header(ws, ["全域指标", "数值", "说明"])
    notes = {
        "received": "本期上报（不含重复件）",
        "should_close": "本期结案数 + 期末超期未结数",
        "closed": "本期销号且期末仍为已销号",
        "closed_on_time": "销号时间不晚于整改时限",
        "open_end": "期末（按事件记录还原）未结",
        "overdue_end": "期末未结且已过整改时限",
        "handled": "本期提交整改反馈或完成复核",
        "reworked": "本期复核不通过、退回整改",
        "relapses": "本期上报的反弹问题",
    }
    for name, label in ranking.COUNTS.items():
        _append(ws, [label, totals[name], notes.get(name, "")])
    for name, label in ranking.RATES.items():
        num, den = ranking.RATE_PARTS[name]
        _append(
            ws,
            [
                label,
                _cell(ws, totals[name], PERCENT),
                f"{ranking.COUNTS[num]} ÷ {ranking.COUNTS[den]}",
            ],
        )
    _append(ws, ["综合得分", _cell(ws, totals["score"], DECIMAL), score_formula(settings)])
    for name, label in ranking.HOURS.items():
        _append(ws, [label, _cell(ws, totals[name], DECIMAL)])
    _append(ws, [])
    _header(ws, ["通报对象", "后三名 / 低于阈值", "名单"])
    for of, rows in rankings.items():
        bottom = [r for r in rows if r["bottom"]]
        below = [r for r in rows if r["below_threshold"]]
        ranked = sum(1 for r in rows if r["ranked"])
        _append(
            ws,
            [
                f"{titles[of]}（参与排名 {ranked}）",
                f"后{settings.bottom_n}名 {len(bottom)}",
                "、".join(f"{r['name']}（{r['score']:.2f}分）" for r in bottom) or "—",
            ],
        )
        _append(
            ws,
            [
                "",
                f"低于{settings.threshold:g}分 {len(below)}",
                "、".join(r["name"] for r in below[:60])
                + (f" 等{len(below)}个" if len(below) > 60 else "")
                or "—",
            ],
        )


def score_formula(settings: ranking.Settings) -> str:
    w = settings.weights
    satisfaction = f" + 群众满意率×{w['satisfaction']:g}" if w.get("satisfaction") else ""
    return (
        f"按期结案率×{w['on_time_rate']:g} + 结案率×{w['close_rate']:g} + "
        f"(1−返工率)×{w['rework_free']:g}{satisfaction}（折算为百分制）"
    )


def workbook(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    settings: ranking.Settings = ranking.DEFAULT_SETTINGS,
    kinds: Sequence[str] = REPORT_RANKINGS,
    generated_at: datetime | None = None,
    data: dict[str, Any] | None = None,
    visible: tuple[str, dict[str, Any]] | None = None,
) -> Workbook:
    """The 通报 workbook of a period (weekly, monthly, …). `data` (from `report_data`) reuses
    figures already computed (publishing stores them next to the workbook). `visible`: an
    SQL condition on the issues (alias `i`) keeping the 超期问题 sheet to the caller's scope;
    the rankings stay county-wide."""
    tz = period.start.tzinfo
    assert isinstance(tz, ZoneInfo)
    available = ranking.groupings(registry)
    data = data or report_data(session, registry, period, settings, kinds, visible)
    kinds = list(data["rankings"])
    totals, rankings, overdue = data["totals"], data["rankings"], data["overdue"]
    titles = {of: available[of].title for of in kinds}
    kind_title = {"week": "周", "month": "月", "quarter": "季度"}.get(period.kind, "")
    title = f"{totals['name']}创文工作{kind_title}通报（{period.title}）"

    wb = Workbook(write_only=True)
    _cover(
        wb,
        title,
        period,
        totals,
        rankings,
        titles,
        settings,
        generated_at or datetime.now(tz),
    )
    for of in kinds:
        _ranking_sheet(wb, f"{titles[of]}排名", of, rankings[of], settings)
    _overdue_sheet(wb, overdue, period, tz)
    if any(data.get("patrol", {}).values()):  # 巡查到位率 (issue 16), when tasks were due
        _patrol_sheet(wb, data["patrol"], available)
    # 模拟测评 (issue 15): a sheet when a round ended in the period.
    add_sheet(
        wb, session, period.start.date(), period.last_day, settings.threshold, settings.bottom_n
    )
    return wb


def report_data(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    settings: ranking.Settings = ranking.DEFAULT_SETTINGS,
    kinds: Sequence[str] = REPORT_RANKINGS,
    visible: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything a 通报 shows: city totals, the rankings of `kinds`, the overdue issues
    (within `visible`, as for workbook)."""
    available = ranking.groupings(registry)
    kinds = [k for k in kinds if k in available]
    # The totals, every ranking and the overdue issues from one run of the pipeline.
    figures, overdue = ranking.figures_and_overdue(
        session, registry, ["all", *kinds], period, settings
    )
    listed = (
        drilldown.overdue_listed(session, registry, period, overdue, visible=visible)
        if overdue is not None
        else drilldown.issues_behind(
            session, registry, "all", 0, "overdue_end", period, limit=None, visible=visible
        )
    )
    return {
        "totals": figures["all"][0] if figures["all"] else ranking.empty_totals(settings),
        "rankings": {of: figures[of] for of in kinds},
        "overdue": listed["issues"],
        # 巡查到位率 as of the period end (geoservice.ranking.patrol).
        "patrol": patrol.report_rows(session, registry, period),
    }


def _patrol_sheet(
    wb: Workbook, groups: dict[str, list[dict[str, Any]]], available: dict[str, Any]
) -> None:
    """One block per grouping (责任人, 单位, 街道): 应巡, 已巡, 逾期未巡, 巡查到位率, lowest
    rate first; 到位率 below 100 % is flagged."""
    ws = wb.create_sheet("巡查到位率")
    _widths(ws, [16, 22, 9, 9, 11, 12])
    _append(ws, ["巡查到位率 = 已巡 ÷ 应巡：本期结束的巡查任务（按任务周期开始时的责任人），"
                 "以本期结束时已上传的巡查记录为准"])  # fmt: skip
    leaders = groups.get("leader") or []  # every task belongs to exactly one leader
    due = sum(r["patrol_due"] for r in leaders)
    done = sum(r["patrol_done"] for r in leaders)
    if due:
        _append(ws, ["全域", f"应巡 {due}", f"已巡 {done}", f"到位率 {done / due:.1%}"])
    row_no = 2 if due else 1
    for of, rows in groups.items():
        if not rows:
            continue
        _append(ws, [])
        _header(ws, ["统计对象", "名称", "应巡", "已巡", "逾期未巡", "巡查到位率"])
        row_no += 2
        first = row_no + 1
        for r in rows:
            _append(ws, [available[of].title, r["name"], r["patrol_due"], r["patrol_done"],
                         r["patrol_missed"], _cell(ws, r["patrol_rate"], PERCENT)])  # fmt: skip
            row_no += 1
        ws.conditional_formatting.add(
            f"A{first}:F{row_no}",
            FormulaRule(formula=[f"$F{first}<1"], fill=FLAG_FILL, font=FLAG_FONT),
        )


def weekly_workbook(
    session: Session,
    registry: LayerRegistry,
    period: Period,
    settings: ranking.Settings = ranking.DEFAULT_SETTINGS,
) -> Workbook:
    return workbook(session, registry, period, settings)


def filename(period: Period) -> str:
    kind = {"week": "周", "month": "月", "quarter": "季"}.get(period.kind, "")
    return f"创文{kind}通报-{period.label}.xlsx"
