"""The hierarchy audit's code findings on a city imported with --local-codes: malformed codes
(digits of the wrong length let in as local codes), local codes, a code shared by an area and a
grid, same-named siblings, and areas left without a parent."""

from __future__ import annotations

import json
from pathlib import Path

from shapely.geometry import MultiLineString, box, mapping

from geoservice.areas import hierarchy_audit
from geoservice.registry import BASE_LAYER
from tests.api_support import auth
from tests.factories import LAYERS, add_feature


def cell(i: int, j: int = 0, size: float = 0.01):
    return box(120.7 + i * size, 31.3 + j * size, 120.7 + (i + 1) * size, 31.3 + (j + 1) * size)


def write(path: Path, rows: list[tuple[str, str, object]]) -> str:
    features = [
        {"type": "Feature", "properties": {"code": c, "name": n}, "geometry": mapping(g)}
        for c, n, g in rows
    ]
    body = {"type": "FeatureCollection", "features": features}
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_code_findings_of_a_locally_coded_city(app, db_session, tmp_path):
    run = app.test_cli_runner().invoke
    streets = write(
        tmp_path / "s.geojson",
        [("320599001", "西街道", cell(0)), ("32059900", "八位街道", cell(1))],
    )
    assert run(args=["import-areas", "street", streets, "--local-codes"]).exit_code == 0
    west, east = cell(0), cell(1)
    communities = write(
        tmp_path / "c.geojson",
        [
            ("320599001001", "西一社区", box(*west.bounds[:2], west.bounds[2] - 0.005, 31.31)),
            ("320599001002", "西一社区", box(west.bounds[0] + 0.005, 31.3, *west.bounds[2:])),
            ("SQ-1", "东社区", east),
            ("320599009001", "远社区", cell(5)),  # no street by code or by place
        ],
    )
    result = run(args=["import-areas", "community", communities, "--local-codes"])
    assert result.exit_code == 0, result.output
    grids = write(
        tmp_path / "g.geojson",
        [("32059900100101", "十四位网格", west), ("SQ-1", "与社区同码的网格", east)],
    )
    result = run(args=["import-layer", "grids", grids, "--local-codes"])
    assert result.exit_code == 0, result.output

    # Two feature layers numbering alike is not a hierarchy finding; only an area's code is.
    road = MultiLineString([[(120.705, 31.301), (120.706, 31.302)]])
    add_feature(db_session, "road", "X1", road, grade="支路")
    add_feature(db_session, "market", "X1", cell(0, 0, 0.001))

    found = hierarchy_audit.audit(db_session, LAYERS, BASE_LAYER, 1.0)
    codes = found["codes"]
    malformed = {(m["level"], m["code"]) for m in codes["malformed"]}
    assert malformed == {("street", "32059900"), ("grid", "32059900100101")}
    assert {(m["level"], m["code"]) for m in codes["local"]} == {
        ("community", "SQ-1"),
        ("grid", "SQ-1"),
    }
    assert [(d["code"], d["source"]) for d in codes["duplicates"]] == [("SQ-1", "社区/村、网格")]
    names = codes["duplicate_names"]
    assert [(n["parent_code"], n["name"], n["codes"]) for n in names] == [
        ("320599001", "西一社区", ["320599001001", "320599001002"])
    ]
    unlinked = {u["edge"]: [i["code"] for i in u["items"]] for u in found["unlinked"]}
    assert unlinked == {"社区/村 → 街道/镇": ["320599009001"]}
    s = found["summary"]
    assert (s["malformed_codes"], s["duplicate_codes"], s["duplicate_names"], s["unlinked"]) == (
        2,
        1,
        1,
        1,
    )
    text_ = "\n".join(hierarchy_audit.report_lines(found))
    assert "编码：格式错误 2 个，重复 1 个，同一上级下重名 1 组" in text_
    assert "编码 SQ-1 被 社区/村、网格 共用" in text_
    assert "街道/镇 32059900 八位街道：街道/镇代码应为 9 位数字，'32059900' 为 8 位" in text_
    headers = auth(db_session, "admin", "codes_admin")
    page = app.test_client().get("/coverage", headers=headers).get_data(as_text=True)
    assert "SQ-1" in page and "社区/村、网格 共用" in page and "32059900100101" in page
