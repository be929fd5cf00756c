"""Bulk import (GeoJSON, zipped Shapefile with GBK DBF, GeoPackage in EPSG:4490, CSV, KML)
and export (GeoJSON, GeoPackage, CSV) of collections, from the service, the CLI and the API."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyogrio.raw import write
from sqlalchemy import text

from geoservice.catalogue.importers import ImportFailed, import_layer, read_features
from geoservice.registry import layers
from tests.api_support import auth, insert_place
from tests.test_api_read import attrs_for, road_spec

REAL = Path("/work/shared/testdata/real")
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="real test data not available")


def point_spec(app):
    # Not sites: a site needs a kind (imported through the 点位清单, tests/assessment/).
    return next(s for s in layers(app) if "Point" in s.geometry_types and s.name != "site")


def coded_polygon_spec(app):
    return next(s for s in layers(app) if s.code_pattern and "Polygon" in s.geometry_types)


def compound_like_spec(app):
    return next(
        s
        for s in layers(app)
        if set(s.geometry_types) == {"Polygon", "MultiPolygon"} and not s.code_pattern
    )


def required_defaults(spec) -> dict[str, str]:
    return {a.name: str(a.choices[0]) for a in spec.attributes if a.required and a.choices}


def layer_count(session, spec) -> int:
    return session.execute(text(f"SELECT count(*) FROM {spec.table}")).scalar()


@needs_real
def test_import_real_geojson_roads_with_defaults_and_generated_codes(app, db_session):
    spec = road_spec(app)
    source = REAL / "hangzhou_xiacheng_roads.geojson"
    report = import_layer(
        db_session,
        spec,
        source,
        mapping={"RNAME": "road_name"},
        defaults=required_defaults(spec),
        generate_codes=True,
    )
    assert report.written and report.rejected == []
    assert report.imported == report.read == 22
    assert any("road_name" in w for w in report.warnings)  # unused fields are reported
    first = json.loads(source.read_text())["features"][0]
    row = db_session.execute(
        text(
            f"SELECT p.name, ST_AsText(ST_PointN(ST_GeometryN(l.geom, 1), 1)) FROM places p"
            f" JOIN {spec.table} l USING (id) WHERE p.code = :c"
        ),
        {"c": f"{spec.name}-hangzhou_xiacheng_roads-00001"},
    ).one()
    lon, lat = first["geometry"]["coordinates"][0]
    assert row[0] == first["properties"]["name"]
    assert row[1] == f"POINT({lon} {lat})"


@needs_real
def test_import_is_all_or_nothing_unless_skip_invalid(app, db_session):
    spec = compound_like_spec(app)
    source = REAL / "hangzhou_xiacheng_compounds_osm.geojson"
    features = json.loads(source.read_text())["features"]
    unnamed = sum(1 for f in features if not f["properties"].get("name"))
    options = {
        "mapping": {"osm_id": "code", "code": "osm_code"},
        "defaults": required_defaults(spec),
    }
    report = import_layer(db_session, spec, source, **options)
    assert not report.written and report.imported == 0
    assert len(report.rejected) == unnamed > 0
    assert all("name" in r["error"] for r in report.rejected)
    assert layer_count(db_session, spec) == 0
    report = import_layer(db_session, spec, source, skip_invalid=True, **options)
    assert report.written and report.imported == len(features) - unnamed
    assert layer_count(db_session, spec) == report.imported


def test_zipped_shapefile_with_gbk_dbf(app, db_session, tmp_path):
    spec = road_spec(app)
    folder = tmp_path / "shp"
    folder.mkdir()
    lines = [
        shapely.LineString([(120.1 + i / 100, 33.7), (120.11 + i / 100, 33.71)]) for i in range(3)
    ]
    names = np.array(["人民路", "解放路", "背街小巷一"], dtype=object)
    codes = np.array(["L1", "L2", "L3"], dtype=object)
    write(
        str(folder / "roads.shp"),
        np.array(shapely.to_wkb(lines), dtype=object),
        [names, codes],
        ["名称", "编码"],
        driver="ESRI Shapefile",
        geometry_type="LineString",
        crs="EPSG:4326",
        encoding="GBK",
    )
    (folder / "roads.cpg").unlink(missing_ok=True)  # as most Chinese shapefiles: no .cpg
    raw = (folder / "roads.dbf").read_bytes()
    assert "人民路".encode("gbk") in raw
    archive = tmp_path / "roads.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.iterdir():
            z.write(f, f.name)
    mapping = {"名称": "name", "编码": "code"}
    with pytest.raises(ImportFailed, match="--encoding GBK") as refused:
        import_layer(db_session, spec, archive, mapping=mapping)
    assert "名称" in str(refused.value)  # names what the field should have been
    assert layer_count(db_session, spec) == 0
    report = import_layer(
        db_session, spec, archive, mapping=mapping, encoding="GBK", defaults=required_defaults(spec)
    )
    assert report.written and report.imported == 3
    stored = (
        db_session.execute(
            text("SELECT name FROM places WHERE layer = :l ORDER BY code"), {"l": spec.name}
        )
        .scalars()
        .all()
    )
    assert stored == ["人民路", "解放路", "背街小巷一"]


@needs_real
def test_geopackage_in_cgcs2000_epsg4490(app, db_session, tmp_path):
    spec = coded_polygon_spec(app)
    grids = json.loads((REAL / "suzhou_sip_grids.geojson").read_text())["features"]
    community = grids[0]["properties"]["community_code"]
    chosen = [g for g in grids if g["properties"]["community_code"] == community][:5]
    db_session.execute(
        text(
            "INSERT INTO admin_areas (level, code, name, geom) VALUES ('community', :c, :n,"
            " ST_Multi(ST_MakeEnvelope(120, 31, 121, 32, 4326)))"
        ),
        {"c": community, "n": chosen[0]["properties"]["community"]},
    )
    geoms = [shapely.geometry.shape(g["geometry"]) for g in chosen]
    path = tmp_path / "grids.gpkg"
    fields = ["网格编码", "网格全称", "community_code"]
    data = [
        np.array([g["properties"][k] for g in chosen], dtype=object)
        for k in ("code", "name", "community_code")
    ]
    write(
        str(path),
        np.array(shapely.to_wkb(geoms), dtype=object),
        data,
        fields,
        driver="GPKG",
        geometry_type="Unknown",
        crs="EPSG:4490",
        layer="grids",
    )
    report = import_layer(db_session, spec, path, mapping={"网格编码": "code", "网格全称": "name"})
    assert report.crs == "EPSG:4490"
    assert report.written and report.imported == 5, report.rejected
    row = db_session.execute(
        text(
            f"SELECT ST_Area(l.geom), a.code FROM places p JOIN {spec.table} l USING (id)"
            f" LEFT JOIN admin_areas a ON a.id = l.community_id WHERE p.code = :c"
        ),
        {"c": chosen[0]["properties"]["code"]},
    ).one()
    assert row[0] == pytest.approx(geoms[0].area, rel=1e-6)
    assert row[1] == community


def test_csv_with_lon_lat_columns(app, db_session, tmp_path):
    spec = point_spec(app)
    path = tmp_path / "markets.csv"
    path.write_text(
        "编码,名称,经度,纬度\nM1,东门菜市场,120.2601,33.7801\nM2,西街农贸市场,120.2502,33.7702\n",
        encoding="utf-8",
    )
    report = import_layer(db_session, spec, path, mapping={"编码": "code", "名称": "name"})
    assert report.written and report.imported == 2, (report.rejected, report.warnings)
    assert any("坐标系" in w for w in report.warnings)  # CSV declares none: assumed WGS-84
    lon, lat = db_session.execute(
        text(
            f"SELECT ST_X(l.geom), ST_Y(l.geom) FROM places p JOIN {spec.table} l USING (id)"
            " WHERE p.code = 'M1'"
        )
    ).one()
    assert (lon, lat) == pytest.approx((120.2601, 33.7801))


def test_kml_and_projected_csv(app, db_session, tmp_path):
    spec = point_spec(app)
    kml = tmp_path / "markets.kml"
    points = [shapely.Point(120.25, 33.78), shapely.Point(120.26, 33.79)]
    write(
        str(kml),
        np.array(shapely.to_wkb(points), dtype=object),
        [np.array(["东市", "西市"], dtype=object), np.array(["K1", "K2"], dtype=object)],
        ["Name", "Description"],
        driver="KML",
        geometry_type="Point",
        crs="EPSG:4326",
    )
    report = import_layer(db_session, spec, kml, mapping={"Name": "name", "Description": "code"})
    assert report.written and report.imported == 2, report.rejected
    # Web-Mercator metres, declared on the command line.
    csv = tmp_path / "projected.csv"
    csv.write_text("code,name,x,y\nP1,投影市场,13387000.0,3998000.0\n", encoding="utf-8")
    report = import_layer(db_session, spec, csv, crs="EPSG:3857")
    assert report.written, report.rejected
    lon = db_session.execute(
        text(
            f"SELECT ST_X(l.geom) FROM places p JOIN {spec.table} l USING (id) WHERE p.code = 'P1'"
        )
    ).scalar()
    assert lon == pytest.approx(120.26, abs=0.01)


def test_unreadable_files_and_bad_options(app, db_session, tmp_path):
    spec = road_spec(app)
    broken = tmp_path / "broken.geojson"
    broken.write_text("{nope", encoding="utf-8")
    with pytest.raises(ImportFailed):
        import_layer(db_session, spec, broken)
    with pytest.raises(ImportFailed, match="源字段不存在"):
        import_layer(
            db_session, spec, REAL / "hangzhou_xiacheng_roads.geojson", mapping={"nothing": "name"}
        )
    other = tmp_path / "x.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(ImportFailed, match="不支持"):
        import_layer(db_session, spec, other)


@needs_real
def test_cli_import_layer_reports_and_exits_nonzero_on_rejects(app, db_session):
    spec = compound_like_spec(app)
    runner = app.test_cli_runner()
    source = str(REAL / "hangzhou_xiacheng_compounds_osm.geojson")
    defaults = [f"--default={k}={v}" for k, v in required_defaults(spec).items()]
    result = runner.invoke(
        args=[
            "import-layer",
            spec.collection,
            source,
            "--map",
            "osm_id=code",
            "--map",
            "code=osm_code",
            *defaults,
        ]
    )
    assert result.exit_code == 1
    assert "全部未写入" in result.output and "缺少必填属性：name" in result.output
    assert layer_count(db_session, spec) == 0
    result = runner.invoke(
        args=[
            "import-layer",
            spec.collection,
            source,
            "--map",
            "osm_id=code",
            "--map",
            "code=osm_code",
            "--skip-invalid",
            *defaults,
        ]
    )
    assert result.exit_code == 0, result.output
    assert f"导入{spec.title} 60 个" in result.output
    assert layer_count(db_session, spec) == 60


def test_export_geojson_gpkg_csv_from_api_and_cli(app, client, db_session, tmp_path):
    spec = road_spec(app)
    viewer = auth(db_session, "viewer")
    line = "MULTILINESTRING((120.1 33.7, 120.2 33.71))"
    for i in range(3):
        insert_place(db_session, spec, f"E{i}", f"导出路{i}", line, **attrs_for(spec))
    base = f"/api/collections/{spec.collection}/export"
    geojson = client.get(f"{base}?f=geojson", headers=viewer)
    assert geojson.status_code == 200
    body = json.loads(geojson.get_data())
    assert [f["properties"]["name"] for f in body["features"]] == ["导出路0", "导出路1", "导出路2"]
    csv = client.get(f"{base}?f=csv&q=导出路1", headers=viewer)
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"  # the parameter once
    text_ = csv.get_data().decode("utf-8")
    assert text_.startswith("\ufeffid,")
    assert "导出路1" in text_ and "MULTILINESTRING ((120.1 33.7, 120.2 33.71))" in text_
    assert "导出路0" not in text_
    gpkg = client.get(f"{base}?f=gpkg", headers=viewer)
    assert gpkg.status_code == 200
    path = tmp_path / "out.gpkg"
    path.write_bytes(gpkg.get_data())
    read = read_features(path)
    assert sorted(f.properties["name"] for f in read.features) == ["导出路0", "导出路1", "导出路2"]
    assert read.report.crs == "EPSG:4326"
    assert client.get(f"{base}?f=shp", headers=viewer).status_code == 400
    out = tmp_path / "cli.gpkg"
    result = app.test_cli_runner().invoke(args=["export-layer", spec.collection, str(out)])
    assert result.exit_code == 0, result.output
    assert len(read_features(out).features) == 3


def test_api_upload_import(app, client, db_session, tmp_path):
    spec = point_spec(app)
    planner = auth(db_session, "planner")
    data = "code,name,lon,lat\nU1,上传市场,120.26,33.78\nU2,,120.25,33.77\n".encode()
    url = f"/api/collections/{spec.collection}/import"

    def upload(**form):
        return client.post(
            url,
            headers=planner,
            content_type="multipart/form-data",
            data={"file": (io.BytesIO(data), "m.csv"), **form},
        )

    refused = upload()
    assert refused.status_code == 422
    assert refused.get_json()["detail"]["rejected"][0]["number"] == 2
    assert layer_count(db_session, spec) == 0
    done = upload(skip_invalid="true")
    assert done.status_code == 201, done.get_json()
    assert done.get_json()["imported"] == 1
    wrong = client.post(
        url,
        headers=planner,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"x"), "m.exe")},
    )
    assert wrong.status_code == 415
