"""A small constructed city written as the files a campaign office would have: streets as a
zipped Shapefile with GBK attributes and no .prj (local Gauss-Krüger metres), communities as
GeoJSON in EPSG:4490, grids as a GeoPackage in the local Gauss-Krüger projection.

Layout in local metres (x east, y north of (X0, Y0) in the "2000SZ" projection):

    street 320599001 (西街道)  x 0…1000, y 0…1000
      community 320599001001 (西一社区) x 0…500       grids: 001001 x 0…520 y 0…500 (straddles
                                                       20 m into 西二: 10,000 m²), 001002 x 0…500
                                                       y 500…900 (西一 uncovered: y 900…1000,
                                                       50,000 m²)
      community 320599001002 (西二社区) x 500…1000    grids: 002001 x 520…1000 y 0…500;
                                                       "001003" x 500…1000 y 500…1000 (code says
                                                       西一, geometry says 西二)
    street 320599002 (东街道)  x 1000…2000, y 0…1000
      community 320599002001 (东一社区) x 1000…2000, y 0…800 (东街道 not tiled: y 800…1000,
                                                       200,000 m²)
                                                       grids: 002001001 x 1000…1500 y 0…800;
                                                       "320599002009001" x 1500…2000 y 0…800
                                                       (its community 320599002009 does not exist)
"""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyogrio.raw import write
from pyproj import CRS, Transformer
from shapely.geometry import box

GK_PROJ = (
    "+proj=tmerc +lat_0=0 +lon_0=120.7833333 +k=1 +x_0=350000 +y_0=-2800000 +ellps=GRS80"
    " +units=m +no_defs"
)
GK = CRS.from_proj4(GK_PROJ)
X0, Y0 = 350_000.0, 664_000.0  # ≈ 120.783°E 31.298°N
TO_LONLAT = Transformer.from_crs(GK, CRS.from_epsg(4490), always_xy=True)

STREETS = [
    ("320599001", "西街道", (0, 0, 1000, 1000)),
    ("320599002", "东街道", (1000, 0, 2000, 1000)),
]
COMMUNITIES = [
    ("320599001001", "西一社区", (0, 0, 500, 1000)),
    ("320599001002", "西二社区", (500, 0, 1000, 1000)),
    ("320599002001", "东一社区", (1000, 0, 2000, 800)),
]
GRIDS = [
    ("320599001001001", "西一社区第一网格", (0, 0, 520, 500)),
    ("320599001001002", "西一社区第二网格", (0, 500, 500, 900)),
    ("320599001002001", "西二社区第一网格", (520, 0, 1000, 500)),
    ("320599001001003", "西二社区第二网格", (500, 500, 1000, 1000)),
    ("320599002001001", "东一社区第一网格", (1000, 0, 1500, 800)),
    ("320599002009001", "东一社区第二网格", (1500, 0, 2000, 800)),
]
STRADDLE_M2 = 20 * 500
UNCOVERED_M2 = 500 * 100
UNTILED_M2 = 1000 * 200


def local(rect: tuple[float, float, float, float]) -> shapely.Polygon:
    x0, y0, x1, y1 = rect
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(
        shapely.segmentize(geom, 50),
        lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1])),
    )


def local_point(x: float, y: float) -> tuple[float, float]:
    """lon/lat of a point given in local metres."""
    return TO_LONLAT.transform(X0 + x, Y0 + y)


@dataclass
class CityFiles:
    streets: Path  # zipped Shapefile, GBK DBF, no .cpg, no .prj (needs --crs)
    communities: Path  # GeoJSON, crs member EPSG:4490
    grids: Path  # GeoPackage, CRS = the local GK projection (declared)


def _objects(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=object)


def write_city(folder: Path) -> CityFiles:
    folder.mkdir(parents=True, exist_ok=True)
    shp = folder / "streets"
    shp.mkdir(exist_ok=True)
    with warnings.catch_warnings():  # no .prj on purpose
        warnings.simplefilter("ignore", UserWarning)
        write(
            str(shp / "街道.shp"),
            np.array(shapely.to_wkb([local(r) for _c, _n, r in STREETS]), dtype=object),
            [_objects([c for c, _n, _r in STREETS]), _objects([n for _c, n, _r in STREETS])],
            ["街道代码", "街道名称"],
            driver="ESRI Shapefile",
            geometry_type="Polygon",
            encoding="GBK",
        )
    for extra in ("街道.cpg", "街道.prj"):
        (shp / extra).unlink(missing_ok=True)
    streets = folder / "streets.zip"
    with zipfile.ZipFile(streets, "w") as z:
        for f in sorted(shp.iterdir()):
            z.write(f, f.name)

    communities = folder / "communities.geojson"
    communities.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"社区代码": c, "社区名称": n},
                        "geometry": shapely.geometry.mapping(lonlat(local(r))),
                    }
                    for c, n, r in COMMUNITIES
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )

    grids = folder / "grids.gpkg"
    write(
        str(grids),
        np.array(shapely.to_wkb([local(r) for _c, _n, r in GRIDS]), dtype=object),
        [_objects([c for c, _n, _r in GRIDS]), _objects([n for _c, n, _r in GRIDS])],
        ["网格编码", "网格名称"],
        driver="GPKG",
        geometry_type="Polygon",
        crs=GK.to_wkt(),
        layer="网格",
    )
    return CityFiles(streets, communities, grids)
