"""The weekly 通报 workbook: openpyxl round-trip of its content and formatting; the CLI."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from geoservice.ranking import report
from geoservice.ranking.periods import week_period
from tests.factories import LAYERS
from tests.ranking_case import TZ, build

W47 = week_period(2015, 47, TZ)


@pytest.fixture
def case(db_session):
    return build(db_session)


def roundtrip(wb):
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    return load_workbook(buffer)


def test_weekly_workbook_content_and_formatting(db_session, case):
    wb = roundtrip(report.weekly_workbook(db_session, LAYERS, W47))
    assert wb.sheetnames == ["封面", "包保领导排名", "责任单位排名", "网格排名", "超期问题"]

    cover = wb["封面"]
    assert cover["A1"].value == "测试县创文工作周通报（2015年第47周（11月16日—11月22日））"
    figures = {row[0].value: row[1].value for row in cover.iter_rows(min_row=7) if row[0].value}
    assert figures["受理数"] == 9
    assert figures["应结案数"] == 9
    assert figures["结案数"] == 6
    assert figures["期末超期数"] == 3
    assert figures["结案率"] == pytest.approx(0.6667)
    assert figures["综合得分"] == 47.5
    names = [row[2].value for row in cover.iter_rows(min_row=7) if row[0].value]
    assert any(v and "丙领导（20.00分）" in v for v in names)

    leaders = wb["包保领导排名"]
    assert leaders.freeze_panes == "C2"
    header = [c.value for c in leaders[1]]
    assert header[:6] == ["排名", "名称", "职务", "所在单位", "综合得分", "按期结案率"]
    assert header[-1] == "标记"
    body = [[c.value for c in row] for row in leaders.iter_rows(min_row=2)]
    assert [(r[0], r[1], r[4]) for r in body] == [
        (1, "乙领导", 100),
        (2, "甲领导", 49.5),
        (3, "丁领导", 40),
        (4, "丙领导", 20),
        ("—", "（未落实包保领导）", None),
    ]
    assert body[1][-1] == "后3名、低于85分" and body[0][-1] is None
    assert leaders.cell(row=3, column=6).number_format == "0.0%"
    rules = [r for cf in leaders.conditional_formatting for r in cf.rules]
    assert rules and rules[0].formula == [
        f'${leaders.cell(row=1, column=len(header)).column_letter}2<>""'
    ]
    assert leaders.column_dimensions["B"].width == 18

    overdue = wb["超期问题"]
    assert overdue.freeze_panes == "A2"
    rows = [[c.value for c in row] for row in overdue.iter_rows(min_row=2)]
    ids = [r[1] for r in rows]
    assert ids == [case.issues["I14"], case.issues["I6"], case.issues["I8"]]  # most overdue first
    by_id = {r[1]: r for r in rows}
    i6 = by_id[case.issues["I6"]]
    assert i6[7] == "甲领导" and i6[11] == 7.5 and i6[12] == "整改中"
    assert i6[10] == datetime(2015, 11, 15, 11, 0)  # local time, no time zone in Excel


def test_cli_writes_the_weekly_report(app, db_session, case, tmp_path):
    target = tmp_path / "w47.xlsx"
    result = app.test_cli_runner().invoke(
        args=["report", "weekly", "--week", "2015-W47", "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert "2015年第47周" in result.output
    wb = load_workbook(target)
    assert wb["包保领导排名"]["B2"].value == "乙领导"
    bad = app.test_cli_runner().invoke(args=["report", "weekly", "--week", "2015-W99"])
    assert bad.exit_code != 0 and "没有第99周" in bad.output
