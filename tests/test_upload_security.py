"""Uploads an attacker crafts (issue 13 §1 and §6): GIS files that would make GDAL read server
files or fetch URLs, request CRSs that name files, and uploads that would hold a worker (feature
caps; docs/security.md)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyogrio.raw import write
from sqlalchemy import text

from geoservice.catalogue.importers import ImportFailed, open_features
from tests.api_support import auth
from tests.test_import_export import layer_count, point_spec

SECRET = "TOPSECRET-d41d8cd98f00"
WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]'
)


def secret_csv(tmp_path: Path) -> Path:
    """A file on the server an attacker wants to read: a CSV GDAL could turn into features."""
    path = tmp_path / "secret.csv"
    path.write_text(f"name,code,wkt\n{SECRET},{SECRET},POINT (120.26 33.78)\n", encoding="utf-8")
    return path


def vrt_over(target: Path) -> bytes:
    return (
        "<OGRVRTDataSource>"
        '<OGRVRTLayer name="secret">'
        f"<SrcDataSource>{target}</SrcDataSource>"
        "<GeometryType>wkbPoint</GeometryType>"
        '<GeometryField encoding="WKT" field="wkt"/>'
        "</OGRVRTLayer>"
        "</OGRVRTDataSource>"
    ).encode()


def upload(client, url, headers, data: bytes, filename: str, **form):
    return client.post(
        url,
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), filename), **form},
    )


def assert_refused_without(response, secret: str = SECRET) -> None:
    body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, body[:500]
    assert secret not in body
    assert response.is_json and response.get_json()["error"]


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# §1: a file's content never chooses the GDAL driver.


def test_a_vrt_disguised_as_geojson_is_refused_and_reads_nothing(app, client, db_session, tmp_path):
    spec = point_spec(app)
    planner = auth(db_session, "planner")
    vrt = vrt_over(secret_csv(tmp_path))
    url = f"/api/collections/{spec.collection}/import"
    for name in ("x.geojson", "x.json", "x.kml", "x.csv", "x.gpkg"):
        assert_refused_without(upload(client, url, planner, vrt, name, skip_invalid="true"))
    assert layer_count(db_session, spec) == 0


def test_the_area_import_refuses_a_disguised_vrt(app, client, db_session, tmp_path):
    admin = auth(db_session, "admin")
    vrt = vrt_over(secret_csv(tmp_path))
    response = upload(client, "/api/areas/import", admin, vrt, "streets.geojson", level="street")
    assert_refused_without(response)


def test_a_zip_may_hold_only_the_expected_kinds_of_member(app, client, db_session, tmp_path):
    spec = point_spec(app)
    planner = auth(db_session, "planner")
    url = f"/api/collections/{spec.collection}/import"
    vrt = vrt_over(secret_csv(tmp_path))
    for members in (
        {"secret.vrt": vrt},
        {"a/secret.vrt": vrt, "a/readme.txt": b"x"},
        {"inner.zip": zipped({"secret.vrt": vrt})},
        {"../escape.geojson": b"{}"},
    ):
        response = upload(client, url, planner, zipped(members), "x.zip")
        assert_refused_without(response)
        assert "zip" in response.get_json()["error"]
    # A .kmz is a zip too: only KML (and its images) inside.
    response = upload(client, url, planner, zipped({"doc.vrt": vrt}), "x.kmz")
    assert_refused_without(response)


def test_a_geojson_in_a_zip_is_still_opened_as_geojson(app, client, db_session):
    spec = point_spec(app)
    planner = auth(db_session, "planner")
    body = (
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
        '{"code":"Z1","name":"压缩包市场"},"geometry":{"type":"Point","coordinates":[120.26,33.78]}}]}'
    ).encode()
    url = f"/api/collections/{spec.collection}/import"
    done = upload(client, url, planner, zipped({"markets.geojson": body}), "m.zip")
    assert done.status_code == 201, done.get_json()
    assert done.get_json()["driver"] == "GeoJSON"


def test_a_request_crs_never_names_a_file(app, client, db_session, tmp_path):
    spec = point_spec(app)
    planner = auth(db_session, "planner")
    prj = tmp_path / "server.prj"
    prj.write_text(WGS84_WKT, encoding="utf-8")
    data = "code,name,lon,lat\nC1,坐标系市场,120.26,33.78\n".encode()
    url = f"/api/collections/{spec.collection}/import"
    for crs in (str(prj), f"@{prj}", f"+proj=longlat +init={prj}", f"file://{prj}"):
        refused = upload(client, url, planner, data, "m.csv", crs=crs)
        assert refused.status_code == 400, (crs, refused.get_json())
        assert refused.get_json()["field"] == "crs"
    assert layer_count(db_session, spec) == 0
    # EPSG codes, PROJ strings and WKT text are accepted.
    for n, crs in enumerate(("EPSG:4326", "+proj=longlat +datum=WGS84 +no_defs", prj.read_text())):
        done = upload(
            client, url, planner, data.replace(b"C1", f"C{n + 2}".encode()), "m.csv", crs=crs
        )
        assert done.status_code == 201, (crs, done.get_json())


def test_the_cli_refuses_a_disguised_vrt_but_reads_an_operators_prj(app, db_session, tmp_path):
    spec = point_spec(app)
    disguised = tmp_path / "x.geojson"
    disguised.write_bytes(vrt_over(secret_csv(tmp_path)))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-layer", spec.collection, str(disguised)])
    assert result.exit_code != 0
    assert SECRET not in result.output
    result = runner.invoke(args=["import-areas", "street", str(disguised)])
    assert result.exit_code != 0
    assert SECRET not in result.output
    with pytest.raises(ImportFailed):
        open_features(disguised)
    for virtual in ("/vsicurl/http://127.0.0.1:9/x.geojson", f"/vsizip/{tmp_path}/a.zip/x.vrt"):
        with pytest.raises(ImportFailed):
            open_features(virtual)
    # The operator's own .prj file is still read on the command line.
    prj = tmp_path / "own.prj"
    prj.write_text("EPSG:4326", encoding="utf-8")
    plain = tmp_path / "m.csv"
    plain.write_text("code,name,lon,lat\nP1,命令行市场,120.26,33.78\n", encoding="utf-8")
    assert open_features(plain, crs=str(prj)).report.crs == "EPSG:4326"


# ---------------------------------------------------------------------------------------------
# §6: spreadsheet uploads are bounded before any work (geoservice/xlsx_guard.py).

OOXML = "http://schemas.openxmlformats.org"
PKG = f"{OOXML}/package/2006"
DOC = f"{OOXML}/officeDocument/2006/relationships"
SHEET_NS = f"{OOXML}/spreadsheetml/2006/main"
MIME = "application/vnd.openxmlformats"
CONTENT_TYPES = (
    f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{PKG}/content-types">'
    f'<Default Extension="rels" ContentType="{MIME}-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    f'ContentType="{MIME}-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    f'ContentType="{MIME}-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{DOC}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{SHEET_NS}" xmlns:r="{DOC}">'
    '<sheets><sheet name="包保清单" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)
HEADER_ROW = (
    '<row r="1">'
    + "".join(
        f'<c r="{col}1" t="inlineStr"><is><t>{text}</t></is></c>'
        for col, text in zip("ABC", ("姓名", "角色", "编码"), strict=True)
    )
    + "</row>"
)


def crafted_xlsx(
    rows: str = HEADER_ROW,
    *,
    dimension: str = "A1:C1",
    merges: tuple[str, ...] = (),
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """An .xlsx written as XML by hand, as an attacker would (a few KB)."""
    merged = (
        f'<mergeCells count="{len(merges)}">'
        + "".join(f'<mergeCell ref="{m}"/>' for m in merges)
        + "</mergeCells>"
        if merges
        else ""
    )
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<worksheet xmlns="{SHEET_NS}">'
        f'<dimension ref="{dimension}"/><sheetData>{rows}</sheetData>{merged}</worksheet>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buffer.getvalue()


def roster_upload(client, headers, data: bytes):
    return client.post(
        "/api/roster/import",
        data={"file": (io.BytesIO(data), "清单.xlsx")},
        headers=headers,
        content_type="multipart/form-data",
    )


def assert_limit_named(response, *words: str) -> None:
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    message = response.get_json()["error"]
    assert "上限" in message or "过大" in message, message
    for word in words:
        assert word in message, message


def test_a_merged_range_over_the_whole_sheet_is_refused_before_any_work(app, client, db_session):
    from geoservice.xlsx_guard import MAX_COLUMNS

    admin = auth(db_session, "admin")
    bomb = crafted_xlsx(merges=("A2:XFD200000",))
    assert len(bomb) < 4096
    response = roster_upload(client, admin, bomb)
    assert_limit_named(response, "A2:XFD200000", f"{MAX_COLUMNS} 列")


def test_a_huge_dimension_or_too_many_rows_are_refused(app, client, db_session):
    from geoservice.responsibility.roster import HEADER_SCAN_ROWS, MAX_ROWS

    admin = auth(db_session, "admin")
    response = roster_upload(client, admin, crafted_xlsx(dimension="A1:XFD1048576"))
    assert_limit_named(response, "XFD1048576")
    limit = MAX_ROWS + HEADER_SCAN_ROWS
    rows = HEADER_ROW + "".join(
        f'<row r="{n}"><c r="A{n}"><v>1</v></c></row>' for n in range(2, limit + 2)
    )
    response = roster_upload(client, admin, crafted_xlsx(rows, dimension="A1"))
    assert_limit_named(response, f"{limit} 行")
    far = HEADER_ROW + '<row r="900000"><c r="A900000"><v>1</v></c></row>'
    response = roster_upload(client, admin, crafted_xlsx(far, dimension="A1"))
    assert_limit_named(response, f"{limit} 行")


def test_too_many_merged_cells_are_refused(app, client, db_session):
    from geoservice.xlsx_guard import MAX_MERGED_CELLS

    admin = auth(db_session, "admin")
    merges = tuple(f"A{r}:CV{r}" for r in range(2, 20_000, 1))  # 100 columns each
    response = roster_upload(client, admin, crafted_xlsx(merges=merges))
    assert_limit_named(response, str(MAX_MERGED_CELLS))


def test_a_zip_bomb_inside_the_workbook_is_refused(app, client, db_session):
    from geoservice.xlsx_guard import MAX_MEMBER_BYTES

    admin = auth(db_session, "admin")
    bomb = crafted_xlsx(extra={"xl/sharedStrings.xml": b" " * (MAX_MEMBER_BYTES + 1)})
    assert len(bomb) < 200_000
    response = roster_upload(client, admin, bomb)
    assert_limit_named(response, f"{MAX_MEMBER_BYTES // 1024 // 1024} MB")


def test_the_cli_roster_import_is_bounded_too(app, db_session, tmp_path):
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(crafted_xlsx(merges=("A2:XFD200000",)))
    result = app.test_cli_runner().invoke(args=["import-roster", str(path)])
    assert result.exit_code != 0
    assert "A2:XFD200000" in result.output and "上限" in result.output


def test_exports_run_under_a_finite_statement_timeout(app, client, db_session, monkeypatch):
    """Issue 13 §6: exports lifted the statement timeout for every reader."""
    import geoservice.api.exports as exports

    spec = point_spec(app)
    viewer = auth(db_session, "viewer")
    seen = []
    real = exports.export_rows

    def spy(session, *args, **kwargs):
        seen.append(session.execute(text("SHOW statement_timeout")).scalar_one())
        return real(session, *args, **kwargs)

    monkeypatch.setattr(exports, "export_rows", spy)
    monkeypatch.setitem(app.config, "EXPORT_STATEMENT_TIMEOUT_MS", 123_456)
    url = f"/api/collections/{spec.collection}/export"
    assert client.get(f"{url}?f=geojson", headers=viewer).status_code == 200
    assert seen == ["123456ms"]
    monkeypatch.setitem(app.config, "EXPORT_STATEMENT_TIMEOUT_MS", 300_000)  # the default
    assert client.get(f"{url}?f=csv", headers=viewer).status_code == 200
    assert seen[-1] == "5min"


def test_gis_imports_have_a_feature_cap(app, client, db_session, tmp_path, monkeypatch):
    spec = point_spec(app)
    planner = auth(db_session, "planner")
    monkeypatch.setitem(app.config, "IMPORT_MAX_FEATURES", 2)
    rows = "".join(f"C{i},市场{i},120.26,33.78\n" for i in range(3))
    data = f"code,name,lon,lat\n{rows}".encode()
    url = f"/api/collections/{spec.collection}/import"
    response = upload(client, url, planner, data, "m.csv")
    assert response.status_code == 422
    assert "上限 2 个" in response.get_json()["error"]
    assert layer_count(db_session, spec) == 0
    path = tmp_path / "m.csv"
    path.write_bytes(data)
    result = app.test_cli_runner().invoke(args=["import-layer", spec.collection, str(path)])
    assert result.exit_code != 0 and "上限 2 个" in result.output
    result = app.test_cli_runner().invoke(args=["import-areas", "street", str(path)])
    assert result.exit_code != 0 and "上限 2 个" in result.output
    # Two features are within the cap.
    small = f"code,name,lon,lat\n{''.join(rows.splitlines(True)[:2])}".encode()
    assert upload(client, url, planner, small, "m.csv").status_code == 201


def test_the_content_must_match_the_extension_and_other_drivers_are_gone(app, tmp_path):
    import pyogrio

    from geoservice.catalogue.gdal_open import KEEP

    real = tmp_path / "real.gpkg"
    write(
        str(real),
        np.array(shapely.to_wkb([shapely.Point(120.26, 33.78)]), dtype=object),
        [np.array(["甲"], dtype=object)],
        ["name"],
        driver="GPKG",
        geometry_type="Point",
        crs="EPSG:4326",
    )
    assert open_features(real).report.driver == "GPKG"
    disguised = tmp_path / "x.geojson"
    disguised.write_bytes(real.read_bytes())
    with pytest.raises(ImportFailed, match="不是 GeoJSON"):
        open_features(disguised)
    assert set(pyogrio.list_drivers()) <= KEEP
    assert "OGR_VRT" not in pyogrio.list_drivers() and "GDALG" not in pyogrio.list_drivers()
