"""flask import-areas on bad input: each case a clear Chinese message, nothing half-imported."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyogrio.raw import write
from pyproj import CRS
from shapely.geometry import box, mapping
from sqlalchemy import text

from geoservice.areas.area_import import import_areas
from geoservice.catalogue.importers import ImportFailed, open_features
from tests.city_files import GK_PROJ, X0, Y0

REAL = Path("/work/shared/testdata/real")
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="real test data not available")


def feature(code, name, geometry) -> dict:
    props = {}
    if code is not None:
        props["code"] = code
    if name is not None:
        props["name"] = name
    geom = geometry if geometry is None or isinstance(geometry, dict) else mapping(geometry)
    return {"type": "Feature", "properties": props, "geometry": geom}


def geojson(path: Path, features: list[dict], crs: str | None = None) -> Path:
    body: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        body["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return path


def cell(i: int, j: int = 0, size: float = 0.01) -> shapely.Polygon:
    return box(120.7 + i * size, 31.3 + j * size, 120.7 + (i + 1) * size, 31.3 + (j + 1) * size)


def area_count(session) -> int:
    return session.execute(text("SELECT count(*) FROM admin_areas")).scalar()


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["import-areas", *args])


def streets(n: int) -> list[dict]:
    return [feature(f"32059900{i + 1}", f"第{i + 1}街道", cell(i)) for i in range(n)]


def test_projected_metres_without_a_crs_ask_for_crs(app, db_session, tmp_path):
    metres = [box(X0, Y0, X0 + 1000, Y0 + 1000)]
    path = geojson(tmp_path / "metres.geojson", [feature("320599001", "西街道", metres[0])])
    result = cli(app, "street", str(path))
    assert result.exit_code == 1
    assert "看起来是投影坐标（米）" in result.output and "--crs" in result.output
    csv = tmp_path / "metres.csv"
    csv.write_text(
        f'code,name,wkt\n320599001,西街道,"{box(X0, Y0, X0 + 1000, Y0 + 1000).wkt}"\n',
        encoding="utf-8",
    )
    result = cli(app, "street", str(csv))
    assert "文件未声明坐标系" in result.output and "--crs" in result.output
    assert area_count(db_session) == 0
    # With the projection (a PROJ string, or a .prj file holding its WKT) it imports.
    prj = tmp_path / "2000SZ.prj"
    prj.write_text(CRS(GK_PROJ).to_wkt())
    result = cli(app, "street", str(csv), "--crs", str(prj))
    assert result.exit_code == 0, result.output
    assert area_count(db_session) == 1
    # A lon/lat file with a projected --crs is refused too.
    lonlat = geojson(tmp_path / "lonlat.geojson", [feature("320599002", "东街道", cell(1))])
    result = cli(app, "street", str(lonlat), "--crs", "EPSG:4549")
    assert "看起来是经纬度" in result.output
    assert "无法识别的坐标系" in cli(app, "street", str(lonlat), "--crs", "EPSG:99999").output


def test_mixed_geometry_types_are_rejected_one_by_one(app, db_session, tmp_path):
    path = geojson(
        tmp_path / "mixed.geojson",
        [
            *streets(2),
            feature("320599003", "一条线", shapely.LineString([(120.7, 31.3), (120.8, 31.4)])),
            feature("320599004", "一个点", shapely.Point(120.7, 31.3)),
        ],
    )
    result = cli(app, "street", str(path))
    assert result.exit_code == 1
    assert "第 3 个要素（一条线）：几何类型 LineString 不适用于行政区划" in result.output
    assert "第 4 个要素（一个点）：几何类型 Point" in result.output
    assert "文件混有多种几何类型" in result.output and "全部未写入" in result.output
    assert area_count(db_session) == 0


def test_empty_null_and_invalid_geometries(app, db_session, tmp_path):
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[120.7, 31.3], [120.8, 31.4], [120.8, 31.3], [120.7, 31.4], [120.7, 31.3]]
        ],
    }
    path = geojson(
        tmp_path / "bad.geojson",
        [
            feature("320599001", "好街道", cell(0)),
            feature("320599002", "空街道", {"type": "Polygon", "coordinates": []}),
            feature("320599003", "无几何街道", None),
            feature("320599004", "自相交街道", bowtie),
        ],
    )
    result = cli(app, "street", str(path))
    assert result.exit_code == 1
    output = result.output
    assert "（空街道）：几何为空" in output
    assert "（无几何街道）：缺少几何" in output
    assert "（自相交街道）：几何图形无效：自相交" in output and "--repair" in output
    assert area_count(db_session) == 0
    fixed = geojson(tmp_path / "bowtie.geojson", [feature("320599004", "自相交街道", bowtie)])
    result = cli(app, "street", str(fixed), "--repair")
    assert result.exit_code == 0, result.output
    assert "已用 ST_MakeValid 自动修复" in result.output
    assert db_session.execute(
        text("SELECT ST_IsValid(geom) FROM admin_areas WHERE code = '320599004'")
    ).scalar()


def test_duplicate_codes_in_the_file_and_in_the_database(app, db_session, tmp_path):
    twice = geojson(
        tmp_path / "twice.geojson",
        [*streets(2), feature("320599001", "重复街道", cell(3))],
    )
    result = cli(app, "street", str(twice))
    assert "第 3 个要素（重复街道）：代码 '320599001' 在文件中重复（与第 1 个要素相同）" in (
        result.output
    )
    assert area_count(db_session) == 0
    once = geojson(tmp_path / "once.geojson", streets(2))
    assert cli(app, "street", str(once)).exit_code == 0
    again = cli(app, "street", str(once))
    assert again.exit_code == 1 and "已存在（街道/镇 第1街道）" in again.output
    assert "--replace" in again.output
    # --replace updates the areas of the same level; the old geometry stays in the audit log.
    moved = geojson(
        tmp_path / "moved.geojson", [feature("320599001", "第一街道（新）", cell(0, 1))]
    )
    result = cli(app, "street", str(moved), "--replace")
    assert result.exit_code == 0, result.output
    name, ymin = db_session.execute(
        text("SELECT name, ST_YMin(geom) FROM admin_areas WHERE code = '320599001'")
    ).one()
    assert name == "第一街道（新）" and ymin == pytest.approx(31.31)
    before = db_session.execute(
        text("SELECT before FROM audit_log WHERE action = 'area.replace'")
    ).scalar_one()
    assert before["name"] == "第1街道"
    assert before["geom"]["coordinates"][0][0][0][1] == pytest.approx(31.3)
    community = geojson(tmp_path / "c.geojson", [feature("320599001", "不同层级", cell(0))])
    output = cli(app, "community", str(community), "--replace", "--local-codes").output
    assert "已是街道/镇 第一街道（新），不能改为社区/村" in output


def test_codes_of_the_wrong_length_and_local_codes(app, db_session, tmp_path):
    path = geojson(
        tmp_path / "codes.geojson",
        [
            feature("320599", "太短", cell(0)),
            feature("3205990010", "太长", cell(1)),
            feature("SQ", "字母", cell(2)),
            feature(None, "无代码", cell(3)),
            feature("320599005", None, cell(4)),
        ],
    )
    output = cli(app, "street", str(path)).output
    assert "（太短）：街道/镇代码应为 9 位数字，'320599' 为 6 位" in output
    assert "（太长）：街道/镇代码应为 9 位数字，'3205990010' 为 10 位" in output
    assert "（字母）：街道/镇代码应为 9 位数字，'SQ' 含非数字字符" in output
    assert "本地编码（如 SQ-3）请勾选本地编码" in output and "--local-codes" in output
    assert "第 4 个要素（无代码）：缺少区划代码（code）" in output
    assert "第 5 个要素：缺少名称（name）" in output
    assert area_count(db_session) == 0
    community = geojson(tmp_path / "c.geojson", [feature("320599001", "九位社区", cell(0))])
    assert "社区/村代码应为 12 位数字" in cli(app, "community", str(community)).output
    county = geojson(tmp_path / "x.geojson", [feature("3205991", "七位县", cell(0))])
    assert "县代码应为 6 位数字，'3205991' 为 7 位" in cli(app, "county", str(county)).output
    assert "区代码应为 6 位数字" in cli(app, "district", str(county)).output
    grid = geojson(tmp_path / "g.geojson", [feature("32059900100101", "十四位网格", cell(0))])
    output = app.test_cli_runner().invoke(args=["import-layer", "grids", str(grid)]).output
    assert "'32059900100101' 格式不对：网格编码为15位数字" in output
    bad_local = geojson(tmp_path / "l.geojson", [feature("石桥/1", "斜杠", cell(0))])
    output = cli(app, "street", str(bad_local), "--local-codes").output
    assert "不符合本地编码格式" in output


def test_no_code_or_name_attribute_suggests_the_mapping(app, db_session, tmp_path):
    path = tmp_path / "fields.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"街道编码": "320599001", "街道名称": "西街道"},
                        "geometry": mapping(cell(0)),
                    }
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    result = cli(app, "street", str(path))
    assert result.exit_code == 1
    assert "文件中没有 code 字段" in result.output and "--map 街道编码=code" in result.output
    result = cli(app, "street", str(path), "--map", "街道编码=code")
    assert "文件中没有 name 字段" in result.output and "--map 街道名称=name" in result.output
    result = cli(app, "street", str(path), "--map", "街道编码=code", "--map", "街道名称=name")
    assert result.exit_code == 0, result.output


def _shapefile(folder: Path, names: list[str], encoding: str) -> Path:
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        write(
            str(folder / "areas.shp"),
            np.array(shapely.to_wkb([cell(i) for i in range(len(names))]), dtype=object),
            [
                np.array([f"32059900{i + 1}" for i in range(len(names))], dtype=object),
                np.array(names, dtype=object),
            ],
            ["code", "name"],
            driver="ESRI Shapefile",
            geometry_type="Polygon",
            crs="EPSG:4326",
            encoding=encoding,
        )
    (folder / "areas.cpg").unlink(missing_ok=True)
    return folder


def test_gbk_and_utf8_mix_ups_are_named(app, db_session, tmp_path):
    names = ["人民路街道", "解放路街道", "背街小巷街道"]
    gbk = _shapefile(tmp_path / "gbk", names, "GBK")
    output = cli(app, "street", str(gbk)).output
    assert "GBK 编码的中文被当作 Latin-1 读取" in output and "应为 '人民路街道'" in output
    assert "--encoding GBK" in output
    utf8 = _shapefile(tmp_path / "utf8", names, "UTF-8")
    output = cli(app, "street", str(utf8)).output
    assert "UTF-8 编码的中文被当作 Latin-1 读取" in output and "--encoding UTF-8" in output
    output = cli(app, "street", str(utf8), "--encoding", "GBK").output
    assert "UTF-8 编码的中文被当作 GBK 读取" in output
    assert area_count(db_session) == 0
    assert cli(app, "street", str(gbk), "--encoding", "GBK").exit_code == 0
    stored = db_session.execute(text("SELECT name FROM admin_areas ORDER BY code")).scalars()
    assert list(stored) == names


def test_three_character_names_in_utf8_read_as_gbk_are_named(app, db_session, tmp_path):
    """A 3-character name is 9 UTF-8 bytes: read as GBK, GDAL drops the odd last byte, and
    the name comes back one replacement character short ("长江\ufffd")."""
    names = ["人民路", "长江路", "新华街", "松陵镇", "解放路"]
    utf8 = _shapefile(tmp_path / "utf8", names, "UTF-8")
    output = cli(app, "street", str(utf8), "--encoding", "GBK").output
    assert "UTF-8 编码的中文被当作 GBK 读取" in output
    assert area_count(db_session) == 0


def test_a_few_rows_in_the_other_encoding_are_refused_one_by_one(app, db_session, tmp_path):
    # A file merged from two systems: one name was UTF-8 read as GBK, one GBK read as Latin-1;
    # the file as a whole reads right, so each garbled row is refused and nothing is written.
    names = ["人民路街道", "西一社区".encode().decode("gbk"), "背街小巷街道", "和平街道", "东街道"]
    names[4] = names[4].encode("gbk").decode("latin-1")
    path = geojson(
        tmp_path / "mixed.geojson",
        [feature(f"32059900{i + 1}", n, cell(i)) for i, n in enumerate(names)],
    )
    output = cli(app, "street", str(path)).output
    assert "第 2 个要素（瑗夸竴绀惧尯）：属性 name 疑似乱码" in output
    assert "UTF-8 编码的中文被当作 GBK 读取（应为 '西一社区'）" in output
    assert "GBK 编码的中文被当作 Latin-1 读取（应为 '东街道'）" in output
    assert "混用了 GBK 与 UTF-8" in output and "全部未写入" in output
    assert area_count(db_session) == 0
    # The same for a layer import: only what would be written is checked.
    rows = [
        feature("320599001001001", "人民网格", cell(0)),
        feature("320599001001002", "西一网格".encode().decode("gbk"), cell(1)),
        feature("320599001001003", "和平网格", cell(2)),
        feature("320599001001004", "解放网格", cell(3)),
        feature("320599001001005", "胜利网格", cell(4)),
    ]
    rows[2]["properties"]["备注"] = "张三".encode().decode("gbk")  # not a grid attribute
    grids = geojson(tmp_path / "grids.geojson", rows)
    result = app.test_cli_runner().invoke(args=["import-layer", "grids", str(grids)])
    assert result.exit_code == 1
    assert "第 2 个要素" in result.output and "属性 name 疑似乱码" in result.output
    assert "第 3 个要素" not in result.output  # an attribute not imported is not held against it


def test_far_outside_the_service_area_is_refused(app, db_session, tmp_path):
    assert cli(app, "street", str(geojson(tmp_path / "s.geojson", streets(2)))).exit_code == 0
    far = box(100.0, 25.0, 100.01, 25.01)  # Yunnan, 2,000 km away
    path = geojson(
        tmp_path / "c.geojson",
        [feature("320599001001", "近社区", cell(0)), feature("320599001002", "远社区", far)],
    )
    output = cli(app, "community", str(path)).output
    assert "（远社区）：坐标远离服务范围" in output
    assert area_count(db_session) == 2


def test_a_reject_late_in_a_streamed_file_undoes_the_earlier_batches(app, db_session, tmp_path):
    features = [feature(f"3205990{i:02d}", f"第{i}街道", cell(i % 10, i // 10)) for i in range(25)]
    features[21]["properties"]["code"] = "32059"  # in the last batch of 10
    path = geojson(tmp_path / "many.geojson", features)
    source = open_features(path, batch_size=10)
    sizes = []
    report = import_areas(db_session, "street", source, progress=sizes.append)
    assert sizes == [10, 10, 5]  # read in three batches, never the whole file at once
    assert not report.written and [r["number"] for r in report.rejected] == [22]
    assert area_count(db_session) == 0  # the first two batches were written, then undone
    source = open_features(path, batch_size=10)
    report = import_areas(db_session, "street", source, skip_invalid=True)
    assert report.written and report.imported == 24 and area_count(db_session) == 24


def test_a_grid_file_is_streamed_and_a_late_reject_undoes_it_all(app, db_session, tmp_path):
    from geoservice.catalogue.importers import import_features
    from tests.factories import LAYERS

    rows = [feature(f"320599001001{i:03d}", f"第{i}网格", cell(i % 10, i // 10)) for i in range(25)]
    rows[23]["properties"]["code"] = "3205990010010231"  # 16 digits, in the last batch
    path = geojson(tmp_path / "grids.geojson", rows)
    spec = LAYERS.get("grid")
    sizes = []
    report = import_features(
        db_session, spec, open_features(path, batch_size=10), progress=sizes.append
    )
    assert sizes == [10, 10, 5]
    assert not report.written and [r["number"] for r in report.rejected] == [24]
    assert db_session.execute(text("SELECT count(*) FROM grids")).scalar() == 0


def test_broken_and_unsupported_files(app, db_session, tmp_path):
    broken = tmp_path / "broken.geojson"
    broken.write_text("{nope", encoding="utf-8")
    assert "无法读取文件" in cli(app, "street", str(broken)).output
    zipped = tmp_path / "broken.zip"
    zipped.write_bytes(b"PK not a zip")
    assert "zip 文件已损坏" in cli(app, "street", str(zipped)).output
    other = tmp_path / "x.txt"
    other.write_text("x", encoding="utf-8")
    assert "不支持的文件类型" in cli(app, "street", str(other)).output
    with pytest.raises(ImportFailed, match="文件中没有图层 'nope'"):
        open_features(geojson(tmp_path / "ok.geojson", streets(1)), layer="nope")
    assert area_count(db_session) == 0
    assert os.path.exists(broken)


@needs_real
def test_real_sip_duplicate_community_code_is_refused_with_both_positions(app, db_session):
    assert cli(app, "street", str(REAL / "suzhou_sip_streets.geojson")).exit_code == 0
    result = cli(app, "community", str(REAL / "suzhou_sip_communities.geojson"))
    assert result.exit_code == 1
    assert "第 179 个要素（金胜社区）：代码 '320506010009' 在文件中重复（与第 178 个要素相同）" in (
        result.output
    )
    count = db_session.execute(
        text("SELECT count(*) FROM admin_areas WHERE level = 'community'")
    ).scalar()
    assert count == 0


@needs_real
def test_real_hangzhou_letter_codes_need_local_codes_and_then_link(app, db_session):
    streets_file = str(REAL / "hangzhou_xiacheng_streets.geojson")
    result = cli(app, "street", streets_file)
    assert result.exit_code == 1 and "--local-codes" in result.output
    assert cli(app, "street", streets_file, "--local-codes").exit_code == 0
    communities = cli(
        app, "community", str(REAL / "hangzhou_xiacheng_communities.geojson"), "--local-codes"
    )
    assert communities.exit_code == 0, communities.output
    grids = app.test_cli_runner().invoke(
        args=[
            "import-layer",
            "grids",
            str(REAL / "hangzhou_xiacheng_grids_sample.geojson"),
            "--local-codes",
        ]
    )
    assert grids.exit_code == 0, grids.output
    rows = db_session.execute(
        text(
            "SELECT c.code, s.code FROM admin_areas c JOIN admin_areas s ON s.id = c.parent_id"
            " WHERE c.level = 'community'"
        )
    ).all()
    assert len(rows) == 75 and all(child.startswith(parent + "-") for child, parent in rows)
    grid = db_session.execute(
        text(
            "SELECT a.code FROM grids g JOIN places p ON p.id = g.id"
            " JOIN admin_areas a ON a.id = g.community_id WHERE p.code = 'TS-3-3'"
        )
    ).scalar_one()
    assert grid == "TS-3"


def test_a_kml_whose_codes_sit_in_extended_data_says_to_save_it_otherwise(
    app, db_session, tmp_path
):
    path = tmp_path / "streets.kml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        write(
            str(path),
            np.array(shapely.to_wkb([cell(0), cell(1)]), dtype=object),
            [np.array(["320599001", "320599002"], dtype=object),
             np.array(["西街道", "东街道"], dtype=object)],
            ["编码", "街道名称"],
            driver="KML",
            geometry_type="Polygon",
            crs="EPSG:4326",
        )  # fmt: skip
    assert "ExtendedData" in path.read_text(encoding="utf-8")
    result = cli(app, "street", str(path), "--map", "编码=code")
    assert result.exit_code != 0
    assert "ExtendedData" in result.output and "GeoJSON 或 GeoPackage" in result.output
    assert area_count(db_session) == 0
