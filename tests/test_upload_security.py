"""Uploads an attacker crafts (issue 13 §1 and §6): GIS files that would make GDAL read server
files or fetch URLs, request CRSs that name files, and uploads that would hold a worker (feature
caps; docs/security.md)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from geoservice.importers import ImportFailed, open_features
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
