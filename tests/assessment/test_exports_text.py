"""The assessment's spreadsheets keep formula-like text as text (docs/security.md): the 点位清单,
the 测评体系 sheet and the 通报's 模拟测评 sheet store it as a string with Excel's quote prefix —
not as a formula, and not with an apostrophe added to the text, so an exported 点位清单
imports back unchanged."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from geoservice.assessment import report, sites, standards
from tests.assessment import case
from tests.test_export_formulas import EVIL, HYPERLINK, assert_no_formula


@pytest.fixture
def world(app, db_session, tmp_path):
    return case.recorded(app, db_session, tmp_path)


def saved(wb) -> Workbook:
    buffer = io.BytesIO()
    wb.save(buffer)
    return load_workbook(io.BytesIO(buffer.getvalue()))


def test_assessment_spreadsheets_write_formula_like_text_as_text(world):
    session = world["session"]
    school1 = world["sites"]["school1"].id
    session.execute(text("UPDATE assessment_rounds SET name = :n"), {"n": HYPERLINK})
    session.execute(
        text("UPDATE places SET name = :n WHERE id = :id"), {"n": EVIL[2], "id": school1}
    )
    session.execute(
        text("UPDATE sites SET address = :a WHERE id = :id"), {"a": EVIL[3], "id": school1}
    )
    session.execute(
        text("UPDATE standards SET text = :t WHERE id = :id"),
        {"t": EVIL[1], "id": world["standards"]["A2"]},
    )
    session.expire_all()
    # The 通报's sheet: the round's title row and the failing site (school1, 75 points).
    wb = Workbook(write_only=True)
    assert report.add_sheet(wb, session, date(2026, 11, 1), date(2026, 11, 30), 85.0, 3)
    assert_no_formula(saved(wb), [f"{HYPERLINK}（2026-11-09—2026-11-12）", EVIL[2]])

    assert_no_formula(
        load_workbook(io.BytesIO(standards.export_sheet(session, world["version"].id))), [EVIL[1]]
    )

    exported = sites.export_site_list(session)
    assert_no_formula(load_workbook(io.BytesIO(exported)), [EVIL[2], EVIL[3]])
    imported = sites.import_site_list(session, exported)
    assert imported.updated == 4 and not imported.errors
    name, address = session.execute(
        text("SELECT p.name, s.address FROM places p JOIN sites s ON s.id = p.id WHERE p.id = :id"),
        {"id": school1},
    ).one()
    assert (name, address) == (EVIL[2], EVIL[3])
