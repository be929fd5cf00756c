"""Which GDAL driver opens a file, decided by us, never by the file (docs/security.md).

GDAL picks a driver by a file's content: a file named `x.geojson` that holds an
`<OGRVRTDataSource>` is opened as an OGR VRT, which can wrap any file the server may read or
fetch a URL; GML, WFS, OAPIF and the GDALG pipelines can do the same. pyogrio cannot pass
GDAL the driver to use, so:

- `restrict_drivers()` deregisters every GDAL driver except the few the service reads and
  writes (`KEEP`), once per process: VRT, GML, WFS, OAPIF, HTTP, GDALG … do not exist here.
  It fails closed: if the list cannot be narrowed, nothing is opened.
- `dataset_for(path)` maps the file's extension to exactly one driver (`DRIVERS`), refuses
  every `/vsi…` path, URL and `DRIVER:` connection string, and opens a .zip/.kmz only through
  our own `/vsizip/` of that archive after checking its members (expected kinds only, no
  `..`, no nested archives, bounded uncompressed size).
- the caller checks that the driver GDAL reports after opening is that one driver.
"""

from __future__ import annotations

import ctypes
import re
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# Extension → the one driver that may open it.
DRIVERS: dict[str, str] = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".csv": "CSV",
    ".gpkg": "GPKG",
    ".kml": "KML",
    ".kmz": "KML",  # its .kml member, through /vsizip/
    ".shp": "ESRI Shapefile",
    ".zip": "ESRI Shapefile",  # or the driver of its one GeoJSON/GeoPackage/KML/CSV member
}
# Drivers kept registered in the process (reading uploads, writing exports and test files).
KEEP: frozenset[str] = frozenset(DRIVERS.values())
TITLES = {
    "GeoJSON": "GeoJSON",
    "CSV": "CSV",
    "GPKG": "GeoPackage",
    "KML": "KML",
    "ESRI Shapefile": "Shapefile",
}
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml")
DATA_MEMBERS = (".geojson", ".json", ".gpkg", ".kml", ".csv")
KMZ_EXTRAS = (".png", ".jpg", ".jpeg", ".gif")
ZIP_MAX_MEMBERS = 200
ZIP_MAX_UNCOMPRESSED = 1024 * 1024 * 1024  # all members together, as declared (zip bombs)
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]+:")  # WFS:…, OAPIF:…, GPKG:…, http:…

_lock = threading.Lock()
_restricted = False


class UnsafeFile(ValueError):
    """The file may not be opened; the message is Chinese."""


def _gdal() -> ctypes.CDLL:
    """The libgdal pyogrio uses (symbols resolve through its extension module)."""
    import pyogrio._io

    lib = ctypes.CDLL(pyogrio._io.__file__)
    lib.GDALGetDriverCount.restype = ctypes.c_int
    lib.GDALGetDriver.restype = ctypes.c_void_p
    lib.GDALGetDriver.argtypes = [ctypes.c_int]
    lib.GDALGetDriverShortName.restype = ctypes.c_char_p
    lib.GDALGetDriverShortName.argtypes = [ctypes.c_void_p]
    lib.GDALDeregisterDriver.restype = None
    lib.GDALDeregisterDriver.argtypes = [ctypes.c_void_p]
    return lib


def restrict_drivers() -> None:
    """Deregisters every GDAL driver outside KEEP (once); UnsafeFile if that fails."""
    global _restricted
    if _restricted:
        return
    with _lock:
        if _restricted:
            return
        import pyogrio

        try:
            lib = _gdal()
            handles = [lib.GDALGetDriver(i) for i in range(lib.GDALGetDriverCount())]
            for handle in handles:
                name = (lib.GDALGetDriverShortName(handle) or b"").decode()
                if name not in KEEP:
                    lib.GDALDeregisterDriver(handle)
        except (OSError, AttributeError):
            pass
        left = set(pyogrio.list_drivers())
        if not left <= KEEP:
            raise UnsafeFile(
                "服务器无法限制 GDAL 的文件驱动（仍有 "
                f"{'、'.join(sorted(left - KEEP)[:5])} 等），为安全起见拒绝打开文件"
            )
        _restricted = True


@dataclass
class Dataset:
    path: str  # what GDAL opens
    driver: str  # the one driver that may open it
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return TITLES.get(self.driver, self.driver)


def _virtual(text: str) -> bool:
    lowered = text.lower()
    return lowered.startswith("/vsi") or "://" in text or bool(_PREFIX.match(text))


def _safe_member(name: str) -> bool:
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        return False
    return ".." not in PurePosixPath(name).parts


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _members(path: Path, allowed: tuple[str, ...], what: str) -> list[str]:
    """The archive's file members, once every one is of an `allowed` kind."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise UnsafeFile(f"{what} 文件已损坏，无法打开") from None
    if len(infos) > ZIP_MAX_MEMBERS:
        raise UnsafeFile(f"{what} 中的文件超过 {ZIP_MAX_MEMBERS} 个，请只打包要导入的数据")
    if sum(i.file_size for i in infos) > ZIP_MAX_UNCOMPRESSED:
        raise UnsafeFile(f"{what} 解压后超过 {ZIP_MAX_UNCOMPRESSED // 1024 // 1024} MB，请分批导入")
    names = []
    for info in infos:
        name = info.filename
        if not _safe_member(name):
            raise UnsafeFile(f"{what} 中有不安全的文件名 {name!r}")
        if info.is_dir() or name.startswith("__MACOSX/"):
            continue
        if PurePosixPath(name).name.startswith("._"):
            continue
        lowered = name.lower()
        if not (lowered.endswith(".shp.xml") or _suffix(name) in allowed):
            raise UnsafeFile(
                f"{what} 中有不支持的文件 {name!r}：只能包含 {'、'.join(allowed)} 文件"
            )
        names.append(name)
    return names


def _zip(path: Path) -> Dataset:
    names = _members(path, SHAPEFILE_PARTS + DATA_MEMBERS, "zip")
    shapes = [n for n in names if _suffix(n) == ".shp"]
    if shapes:
        folder = str(PurePosixPath(shapes[0]).parent)
        inner = "" if folder in ("", ".") else f"/{folder}"
        return Dataset(f"/vsizip/{path}{inner}", "ESRI Shapefile")
    data = [n for n in names if _suffix(n) in DATA_MEMBERS]
    if len(data) != 1:
        raise UnsafeFile(
            "zip 中应有一套 Shapefile（.shp/.shx/.dbf/.prj），或恰好一个 GeoJSON、GeoPackage、"
            f"KML 或 CSV 文件（找到 {len(data)} 个数据文件）"
        )
    return Dataset(f"/vsizip/{path}/{data[0]}", DRIVERS[_suffix(data[0])])


def _kmz(path: Path) -> Dataset:
    names = _members(path, (".kml", *KMZ_EXTRAS), "kmz")
    kml = [n for n in names if _suffix(n) == ".kml"]
    if not kml:
        raise UnsafeFile("kmz 中没有 .kml 文件")
    chosen = next((n for n in kml if n.lower() == "doc.kml"), kml[0])
    return Dataset(f"/vsizip/{path}/{chosen}", "KML")


def dataset_for(path: str | Path) -> Dataset:
    """What to open for `path` and with which driver; UnsafeFile when it may not be opened."""
    text = str(path)
    if _virtual(text):
        raise UnsafeFile(
            f"只能导入本机上的文件，不能打开 {text.split(':')[0]!r} 这类虚拟路径或网址"
        )
    path = Path(text)
    if not path.exists():
        raise UnsafeFile(f"文件不存在：{path}")
    if path.is_dir():
        if not any(p.suffix.lower() == ".shp" for p in path.iterdir()):
            raise UnsafeFile(f"文件夹 {path.name} 中没有 Shapefile（.shp）")
        return Dataset(str(path), "ESRI Shapefile")
    suffix = path.suffix.lower()
    if suffix not in DRIVERS:
        raise UnsafeFile(
            f"不支持的文件类型 {suffix!r}：支持 GeoJSON、Shapefile（.zip 或文件夹）、"
            "GeoPackage、KML、CSV"
        )
    if suffix == ".zip":
        return _zip(path)
    if suffix == ".kmz":
        return _kmz(path)
    return Dataset(str(path), DRIVERS[suffix])
