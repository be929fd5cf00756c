"""File imports (all-or-nothing, with a report of rejects), usable from the CLI and the API.

Two steps, kept apart so other imports (admin areas, rosters) can reuse the first:

- `open_features(path, …)` opens any vector file GDAL knows (GeoJSON, Shapefile as .zip or
  folder with its DBF in GBK or UTF-8, GeoPackage, KML, CSV with lon/lat or WKT columns),
  renames attributes (`mapping`), settles the CRS (the file's, or `crs`: an EPSG code such
  as EPSG:4490 (CGCS2000), a PROJ string, WKT, or a .prj file) and refuses what it cannot
  trust before anything is written: projected metres with no CRS, coordinates that do not
  fit the CRS, mojibake (GBK read as Latin-1, UTF-8 read as GBK). Its `batches()` then
  streams rows in EPSG:4326, `READ_BATCH` features at a time (pyogrio skip/max features), so
  a large grid file never sits in memory whole. `read_features` reads everything at once.
- `import_features(session, spec, source, …)` checks those rows as a layer's features (the
  same checks as the API's writes) batch by batch and writes them inside a savepoint, all
  or nothing; the caller commits.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from geoservice.catalogue.editing import insert_features
from geoservice.catalogue.garbled import garbled, garbled_problem
from geoservice.catalogue.gdal_open import DRIVERS, UnsafeFile, dataset_for, restrict_drivers
from geoservice.catalogue.validation import (
    Candidate,
    Problem,
    Rejected,
    validate,
    writable_properties,
)
from geoservice.input_values import shown
from geoservice.registry import LayerSpec

if TYPE_CHECKING:  # callers hand over the service area (geoservice.areas sits above)
    from geoservice.areas.service_area import ServiceArea

CSV_OPTIONS = {
    "X_POSSIBLE_NAMES": "lon,lng,long,longitude,x,经度",
    "Y_POSSIBLE_NAMES": "lat,latitude,y,纬度",
    "GEOM_POSSIBLE_NAMES": "wkt,geometry,geom,the_geom",
    "KEEP_GEOM_COLUMNS": "NO",
    "AUTODETECT_TYPE": "YES",
}
SUFFIXES = tuple(DRIVERS)  # each opened by its one driver (geoservice.catalogue.gdal_open)
BATCH = 2000  # features checked and written per statement
READ_BATCH = 10_000  # features read from the file at a time
GARBLED_SAMPLE = 500  # text values inspected for mojibake
CRS_EXAMPLES = (
    "例如 EPSG:4490（CGCS2000 经纬度）、EPSG:4549（CGCS2000 3 度带 120°E），"
    "或本地坐标系的 PROJ 字符串、WKT"
)
# Where the coordinate system is given: the upload's `crs` field, the commands' --crs.
CRS_WHERE = "坐标系（上传时的 crs 参数，命令行的 --crs）"


def kml_hint(driver: str) -> str:
    """What a KML file can give: GDAL's KML driver reads <name> and <description> only, not
    the attributes of <ExtendedData> (LIBKML, which reads them, also follows network links,
    so it is not registered here: docs/security.md)."""
    if driver != "KML":
        return ""
    return (
        "；KML 文件只能读取名称（Name）和说明（Description），扩展属性（ExtendedData，"
        "如编码）读不到：请在 QGIS 中另存为 GeoJSON 或 GeoPackage 后导入"
    )


class ImportFailed(Exception):
    """The file cannot be read at all; the message is Chinese."""


@dataclass
class ReadFeature:
    number: int  # 1-based position in the file
    geometry: BaseGeometry | None
    properties: dict[str, Any]


@dataclass
class Report:
    source: str
    layer: str = ""
    driver: str = ""
    crs: str = ""
    read: int = 0
    imported: int = 0
    written: bool = False
    rejected: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    geometry_types: Counter = field(default_factory=Counter)

    def reject(self, number: int, message: str, field_: str | None = None, name: Any = None):
        self.rejected.append({"number": number, "name": name, "error": message, "field": field_})

    def note_mixed_types(self, accepted: tuple[str, ...], title: str) -> None:
        """A warning when the file mixes geometry types (the misfits are rejected one by one)."""
        misfits = sum(n for t, n in self.geometry_types.items() if t not in accepted)
        if misfits:
            counts = "、".join(f"{t} {n} 个" for t, n in self.geometry_types.most_common())
            self.warnings.append(
                f"文件混有多种几何类型：{counts}；其中 {misfits} 个不是{title}可用的类型"
                f"（{'、'.join(accepted)}），已拒绝"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "layer": self.layer,
            "driver": self.driver,
            "crs": self.crs,
            "read": self.read,
            "imported": self.imported,
            "written": self.written,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "geometry_types": dict(self.geometry_types),
        }


@dataclass
class FileRead:
    features: list[ReadFeature]
    report: Report
    total: int = 0
    fields: list[str] = field(default_factory=list)  # the file's attribute names
    targets: list[str] = field(default_factory=list)  # the same after --map

    def __post_init__(self) -> None:
        self.total = self.total or len(self.features)
        if not self.targets:
            self.targets = sorted({k for f in self.features for k in f.properties})

    def batches(self, size: int = READ_BATCH) -> Iterator[list[ReadFeature]]:
        for start in range(0, len(self.features), size):
            yield self.features[start : start + size]


def parse_mapping(pairs: list[str] | tuple[str, ...] | None, what: str = "--map") -> dict[str, str]:
    """["源字段=目标", …] → {源字段: 目标}."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ImportFailed(f"{what} 的格式应为 源=目标，收到 {shown(pair)}")
        out[source.strip()] = target.strip()
    return out


def _python_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def parse_crs(value: str) -> CRS:
    """--crs on the command line: an EPSG code, PROJ string, WKT, or the path of a .prj/.wkt
    file holding one (the operator's own file; a request's CRS goes through `request_crs`)."""
    text_ = value.strip()
    candidate = Path(text_.removeprefix("@"))
    if len(text_) < 4096 and candidate.suffix.lower() in (".prj", ".wkt", ".txt"):
        if not candidate.is_file():
            raise ImportFailed(f"坐标系文件不存在：{candidate}")
        text_ = candidate.read_text(encoding="utf-8", errors="replace").strip()
    _no_grid_files(text_, value)
    try:
        return CRS.from_user_input(text_)
    except Exception:
        raise ImportFailed(f"无法识别的坐标系 {value!r}（{CRS_EXAMPLES}）") from None


EPSG_CODE = re.compile(r"(?i)(epsg:)?\d{4,6}")
PROJ_TOKEN = re.compile(r"\+[a-z_][a-z_0-9]*(=[A-Za-z0-9_.,+\-]+)?")
PROJ_FILE_KEYS = frozenset({"init", "nadgrids", "geoidgrids", "grids", "file"})
WKT_ROOTS = re.compile(
    r"(?i)(GEOGCS|PROJCS|GEOCCS|COMPD_CS|VERT_CS|LOCAL_CS|GEOGCRS|GEOGRAPHICCRS|PROJCRS|"
    r"PROJECTEDCRS|GEODCRS|GEODETICCRS|COMPOUNDCRS|VERTCRS|VERTICALCRS|ENGCRS|"
    r"ENGINEERINGCRS|BOUNDCRS)\s*[\[(]"
)
REQUEST_CRS_RULE = (
    "坐标系须为 EPSG 代码（如 EPSG:4490）、PROJ 字符串（如 +proj=tmerc …）或 WKT 文本；"
    "不接受文件路径、网址或网格文件"
)


def _no_grid_files(text_: str, value: str) -> None:
    """WKT naming a grid file (PARAMETERFILE) would make PROJ open that path."""
    if "PARAMETERFILE" in text_.upper():
        raise ImportFailed(f"坐标系 {value[:80]!r} 引用了网格文件（PARAMETERFILE），不予使用")


def request_crs(value: str) -> CRS:
    """A CRS sent in a request: an EPSG code, a PROJ string or WKT text, never anything that
    names a file or URL (`+init=`, `+nadgrids=`, a .prj path, file://, PARAMETERFILE)."""
    text_ = value.strip()
    if len(text_) > 16_384:
        raise ImportFailed(f"坐标系文本过长；{REQUEST_CRS_RULE}")
    if EPSG_CODE.fullmatch(text_):
        pass
    elif text_.startswith("+"):
        tokens = text_.split()
        bad = [t for t in tokens if not PROJ_TOKEN.fullmatch(t)]
        keys = {t[1:].partition("=")[0] for t in tokens}
        if bad or keys & PROJ_FILE_KEYS:
            raise ImportFailed(f"坐标系 {text_[:80]!r} 不可用：{REQUEST_CRS_RULE}")
    elif WKT_ROOTS.match(text_):
        _no_grid_files(text_, value)
    else:
        raise ImportFailed(f"坐标系 {text_[:80]!r} 不可用：{REQUEST_CRS_RULE}")
    try:
        return CRS.from_user_input(text_)
    except Exception:
        raise ImportFailed(f"无法识别的坐标系 {text_[:80]!r}（{REQUEST_CRS_RULE}）") from None


# GDAL's and GEOS's reasons, as a planner can read them (the English text stays, after them, as
# technical detail for whoever maintains the server, without the server's file paths).
_UNREADABLE = (
    ("not recognized as", "文件已损坏，或内容不是所声明的格式"),
    ("Failed to read GeoJSON", "不是合法的 GeoJSON（JSON 格式有误或不完整）"),
    ("JSON parsing error", "不是合法的 GeoJSON（JSON 格式有误或不完整）"),
    ("No such file", "文件不完整（压缩包里缺少所需的文件）"),
)
_GEOMETRY_UNREADABLE = (
    ("closed linestring", "面的边界没有闭合：首尾两个坐标须相同"),
    ("must have at least 4", "面的边界至少需要 4 个坐标点（首尾相同）"),
    ("Invalid number of points in LineString", "线至少需要 2 个坐标点"),
)


def _technical(exc: BaseException) -> str:
    detail = str(exc).split("It might help", 1)[0].rstrip(" ;.")
    detail = re.sub(r"'?(/[^\s':;]+)+'?", "…", detail).strip()
    return f"（技术信息：{detail[:200]}）" if detail else ""


def unreadable(exc: BaseException) -> str:
    """Why a file cannot be read, in Chinese."""
    reason = next((text for key, text in _UNREADABLE if key in str(exc)), "文件无法解析")
    return f"无法读取文件：{reason}{_technical(exc)}"


def geometry_unreadable(exc: BaseException) -> str:
    """Why one feature's geometry cannot be read or converted, in Chinese."""
    reason = next((text for key, text in _GEOMETRY_UNREADABLE if key in str(exc)), None)
    return f"几何无法读取或换算：{reason or '坐标不完整或格式有误'}{_technical(exc)}"


def _numbers_from_text(spec: LayerSpec, props: dict[str, Any]) -> dict[str, Any]:
    """A file's numbers may arrive as text (a CSV; a column whose values mix numbers and text,
    which the reader then types as text): "3" for an integer attribute is 3. Text that is no
    number ("5栋") stays text, and that feature alone is refused by the type check."""
    for attribute in spec.attributes:
        value = props.get(attribute.name)
        if attribute.type not in (int, float) or not isinstance(value, str):
            continue
        try:
            number = float(value.strip())
        except ValueError:
            continue
        if not math.isfinite(number):
            continue
        if attribute.type is float:
            props[attribute.name] = number
        elif number.is_integer():
            props[attribute.name] = int(number)
    return props


def _looks_geographic(bounds: tuple[float, float, float, float]) -> bool:
    minx, miny, maxx, maxy = bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


def _looks_projected(bounds: tuple[float, float, float, float]) -> bool:
    """Metres of a projected CRS, not degrees: out of the lon/lat range and far beyond it.
    Degrees merely out of range (latitude and longitude swapped, a 200 typed for 120) are
    left to each feature's location check, which names the feature and the mistake."""
    return not _looks_geographic(bounds) and max(abs(v) for v in bounds) > 1000


def _describe(bounds: tuple[float, float, float, float]) -> str:
    minx, miny, maxx, maxy = bounds
    return f"X {minx:.6g}…{maxx:.6g}，Y {miny:.6g}…{maxy:.6g}"


def _settle_crs(
    declared: str | None,
    given: str | CRS | None,
    total_bounds: tuple[float, float, float, float] | None,
    report: Report,
) -> CRS:
    """The source CRS, or ImportFailed when coordinates and CRS cannot both be right."""
    source = None
    if isinstance(given, CRS):  # already checked (a request's CRS: `request_crs`)
        source, given = given, given.to_string()
    elif given:
        source = parse_crs(given)
    if given:
        if declared:
            try:
                same = CRS.from_user_input(declared) == source
            except Exception:
                same = False
            if not same:
                report.warnings.append(f"文件声明的坐标系为 {declared}，按指定的 {given} 处理")
    elif declared:
        _no_grid_files(declared, declared)
        source = CRS.from_user_input(declared)
    usable = total_bounds is not None and all(math.isfinite(v) for v in total_bounds)
    if source is None:
        if usable and _looks_projected(total_bounds):
            raise ImportFailed(
                f"文件未声明坐标系，坐标范围（{_describe(total_bounds)}）看起来是投影坐标（米），"
                f"不是经纬度；请指定文件的{CRS_WHERE}：{CRS_EXAMPLES}"
            )
        report.warnings.append(
            f"文件未声明坐标系，按 WGS-84 经纬度（EPSG:4326）处理；如不是，请指定{CRS_WHERE}"
        )
        return CRS.from_epsg(4326)
    if usable and source.is_geographic and _looks_projected(total_bounds):
        said = f"指定的坐标系 {given}" if given else f"文件声明的坐标系 {declared}"
        raise ImportFailed(
            f"{said}是经纬度，但坐标范围（{_describe(total_bounds)}）看起来是投影坐标（米）："
            f"请指定实际的{CRS_WHERE}：{CRS_EXAMPLES}"
        )
    if usable and source.is_projected and _looks_geographic(total_bounds):
        width = max(total_bounds[2] - total_bounds[0], total_bounds[3] - total_bounds[1])
        if width < 5:  # a few degrees: lon/lat, not metres of a city
            said = f"指定的坐标系 {given}" if given else f"文件声明的坐标系 {declared}"
            raise ImportFailed(
                f"{said}是投影坐标系（米），但坐标范围（{_describe(total_bounds)}）看起来是经纬度："
                f"请检查{CRS_WHERE}（经纬度文件用 EPSG:4490 或 EPSG:4326）"
            )
    return source


class FeatureSource:
    """An opened vector file: checked header, CRS settled; `batches()` streams its rows."""

    def __init__(
        self,
        path: str | Path,
        *,
        mapping: Mapping[str, str] | None = None,
        crs: str | CRS | None = None,
        encoding: str | None = None,
        layer: str | None = None,
        batch_size: int = READ_BATCH,
        max_features: int | None = None,
    ) -> None:
        from pyogrio import list_layers, read_info
        from pyogrio.errors import DataLayerError, DataSourceError

        self.report = Report(source=Path(str(path)).name)
        self.batch_size = batch_size
        self.encoding = encoding
        self.max_features = max_features or None
        try:
            restrict_drivers()
            found = dataset_for(path)
        except UnsafeFile as exc:
            raise ImportFailed(str(exc)) from None
        self.dataset = found.path
        self.options: dict[str, Any] = dict(CSV_OPTIONS) if found.driver == "CSV" else {}
        try:
            layers_found = [str(name) for name, _ in list_layers(self.dataset)]
        except (DataSourceError, DataLayerError, OSError) as exc:
            raise ImportFailed(unreadable(exc)) from None
        if not layers_found:
            raise ImportFailed("文件中没有图层")
        if layer is None:
            layer = layers_found[0]
            if len(layers_found) > 1:
                self.report.warnings.append(
                    f"文件含多个图层（{'、'.join(layers_found)}），只导入第一个 {layer!r}；"
                    "可用 --layer 指定"
                )
        elif layer not in layers_found:
            raise ImportFailed(f"文件中没有图层 {layer!r}（有：{'、'.join(layers_found)}）")
        self.layer = layer
        try:
            info = read_info(
                self.dataset,
                layer=layer,
                encoding=encoding,
                force_feature_count=True,
                force_total_bounds=True,
                **self.options,
            )
        except UnicodeDecodeError:
            raise ImportFailed(self._undecodable()) from None
        except Exception as exc:  # GDAL raises assorted errors on broken files
            raise ImportFailed(unreadable(exc)) from None
        self.report.layer = layer
        self.report.driver = str(info.get("driver") or "")
        if self.report.driver != found.driver:  # never by content (geoservice.catalogue.gdal_open)
            raise ImportFailed(
                f"文件内容不是 {found.title} 格式（按扩展名应为 {found.title}），拒绝读取"
            )
        self.fields = [str(n) for n in info["fields"]]
        self.total = int(info.get("features") or 0)
        self._check_cap(self.total)
        mapping = dict(mapping or {})
        by_lower = {n.lower(): n for n in self.fields}
        mapping = {
            (src if src in self.fields else by_lower.get(src.lower(), src)): dst
            for src, dst in mapping.items()
        }  # field names match regardless of case (KML drivers differ: Description/description)
        missing = [src for src in mapping if src not in self.fields]
        problem = garbled(self.fields)
        if problem:
            raise ImportFailed(problem.replace("属性文字", "字段名"))
        if missing:
            raise ImportFailed(
                f"--map 中的源字段不存在：{'、'.join(missing)}"
                f"（文件字段：{'、'.join(self.fields) or '无'}）{kml_hint(self.report.driver)}"
            )
        self.targets = [mapping.get(n, n) for n in self.fields]
        total_bounds = info.get("total_bounds")
        source = _settle_crs(
            info.get("crs"),
            crs,
            tuple(float(v) for v in total_bounds) if total_bounds is not None else None,
            self.report,
        )
        self.report.crs = source.to_string()
        self.transformer = None
        if source != CRS.from_epsg(4326):
            self.transformer = Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True)

    def _check_cap(self, count: int) -> None:
        if self.max_features and count > self.max_features:
            raise ImportFailed(
                f"文件有 {count} 个以上要素，超过单次导入上限 {self.max_features} 个"
                "（IMPORT_MAX_FEATURES），请拆分后分批导入"
            )

    def _undecodable(self) -> str:
        said = self.encoding or "文件声明的编码（默认 UTF-8）"
        return (
            f"属性文字无法按 {said} 解码：请用 --encoding 指定正确的编码"
            "（中文 Shapefile 多为 GBK，GeoJSON 为 UTF-8）"
        )

    def _read(self, offset: int) -> tuple[Any, Any]:
        from pyogrio.raw import read

        try:
            with warnings.catch_warnings():
                # GDAL warns when text does not convert; garbled() says what is wrong instead.
                warnings.simplefilter("ignore", RuntimeWarning)
                _meta, _fids, geometry, field_data = read(
                    self.dataset,
                    layer=self.layer,
                    encoding=self.encoding,
                    skip_features=offset,
                    max_features=self.batch_size,
                    **self.options,
                )
        except UnicodeDecodeError:
            raise ImportFailed(self._undecodable()) from None
        except Exception as exc:  # GDAL raises assorted errors on broken files
            raise ImportFailed(unreadable(exc)) from None
        return geometry, field_data

    def _rows(self, geometry: Any, field_data: Any, offset: int) -> list[ReadFeature]:
        report = self.report
        transformer = self.transformer
        out: list[ReadFeature] = []
        for i in range(len(geometry) if geometry is not None else 0):
            number = offset + i + 1
            props = {
                t: _python_value(col[i]) for t, col in zip(self.targets, field_data, strict=True)
            }
            wkb = geometry[i]
            if wkb is None:
                report.reject(number, "缺少几何", "geometry", props.get("name"))
                continue
            try:
                geom = shapely.force_2d(shapely.from_wkb(wkb))
                if transformer is not None:
                    geom = shapely.transform(
                        geom,
                        lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])),
                    )
            except Exception as exc:
                report.reject(number, geometry_unreadable(exc), "geometry", props.get("name"))
                continue
            report.geometry_types[geom.geom_type] += 1
            if geom.is_empty:
                report.reject(number, "几何为空", "geometry", props.get("name"))
                continue
            out.append(ReadFeature(number, geom, props))
        return out

    def batches(self) -> Iterator[list[ReadFeature]]:
        """The rows, `batch_size` at a time; mojibake in the first batch raises ImportFailed."""
        offset = 0
        while offset < self.total:
            geometry, field_data = self._read(offset)
            count = len(geometry) if geometry is not None else 0
            if count == 0:
                break
            if offset == 0:
                texts = [
                    v
                    for col in field_data
                    for v in col[:GARBLED_SAMPLE]
                    if isinstance(v, str) and v.strip()
                ][: GARBLED_SAMPLE * 4]
                problem = garbled(texts)
                if problem:
                    raise ImportFailed(problem)
            self._check_cap(offset + count)
            rows = self._rows(geometry, field_data, offset)
            self.report.read += count
            offset += count
            yield rows
            if count < self.batch_size:
                break


def open_features(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    crs: str | CRS | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    batch_size: int = READ_BATCH,
    max_features: int | None = None,
) -> FeatureSource:
    """Opens a vector file for streaming (see the module docstring); more than `max_features`
    features raise ImportFailed."""
    return FeatureSource(
        path,
        mapping=mapping,
        crs=crs,
        encoding=encoding,
        layer=layer,
        batch_size=batch_size,
        max_features=max_features,
    )


def read_features(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    crs: str | CRS | None = None,
    encoding: str | None = None,
    layer: str | None = None,
) -> FileRead:
    """Reads a whole vector file into rows in EPSG:4326 (small files; see `open_features`)."""
    source = open_features(path, mapping=mapping, crs=crs, encoding=encoding, layer=layer)
    features = [f for batch in source.batches() for f in batch]
    return FileRead(features, source.report, source.total, source.fields, source.targets)


def _label(feature: ReadFeature) -> str:
    name = feature.properties.get("name")
    return f"第 {feature.number} 个要素" + (f"（{name}）" if name else "")


def import_layer(
    session: Session,
    spec: LayerSpec,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    crs: str | CRS | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    max_features: int | None = None,
    **options: Any,
) -> Report:
    """Reads `path` and writes its features to the layer (see `import_features`)."""
    source = open_features(
        path, mapping=mapping, crs=crs, encoding=encoding, layer=layer, max_features=max_features
    )
    return import_features(session, spec, source, **options)


def code_text(value: Any) -> Any:
    """A code as read (a DBF number column gives 320505006023001.0) → text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def import_features(
    session: Session,
    spec: LayerSpec,
    read: FileRead | FeatureSource,
    *,
    defaults: Mapping[str, Any] | None = None,
    repair: bool = False,
    skip_invalid: bool = False,
    generate_codes: bool = False,
    local_codes: bool = False,
    area: ServiceArea | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> Report:
    """Checks the rows read from a file as features of the layer and writes them, all or
    nothing.

    Rows are checked and inserted `BATCH` at a time inside a savepoint. With `skip_invalid`,
    the valid features are written and the rest reported; otherwise one rejected feature
    means the savepoint is rolled back and nothing stays written (`report.written` False).
    The caller commits when `report.written` is True."""
    report = read.report
    allowed = set(writable_properties(spec))
    unused: set[str] = set()
    stem = Path(report.source).stem
    seen: dict[str, int] = {}
    rejected: list[Rejected] = []
    names: dict[int, Any] = {}
    imported = 0
    notices = 0
    savepoint = session.begin_nested()
    try:
        for rows in read.batches():
            candidates: list[Candidate] = []
            for f in rows:
                unused.update(k for k in f.properties if k not in allowed)
                props = _numbers_from_text(
                    spec, {k: v for k, v in f.properties.items() if k in allowed}
                )
                for key, value in (defaults or {}).items():
                    if props.get(key) in (None, ""):
                        props[key] = value
                if generate_codes and props.get("code") in (None, ""):
                    props["code"] = f"{spec.name}-{stem}-{f.number:05d}"[:64]
                props["code"] = code_text(props.get("code"))
                code = props["code"]
                problem = garbled_problem(props, sorted(props))
                if problem is not None:
                    rejected.append(Rejected(f.number, _label(f), [problem]))
                    names[f.number] = props.get("name")
                    continue
                if isinstance(code, str) and code in seen:
                    rejected.append(
                        Rejected(
                            f.number,
                            _label(f),
                            [
                                Problem(
                                    f"编码 {code!r} 在文件中重复（与第 {seen[code]} 个要素相同）",
                                    "properties.code",
                                    status=409,
                                )
                            ],
                        )
                    )
                    names[f.number] = props.get("name")
                    continue
                if isinstance(code, str) and code:
                    seen[code] = f.number
                candidates.append(Candidate(f.number, f.geometry, props, _label(f)))
            for start in range(0, len(candidates), BATCH):
                batch = candidates[start : start + BATCH]
                good, bad = validate(
                    session, spec, batch, repair=repair, area=area, local_codes=local_codes
                )
                rejected.extend(bad)
                by_index = {c.index: c for c in batch}
                names.update((r.index, by_index[r.index].properties.get("name")) for r in bad)
                notices += sum(len(c.notices) for c in good)
                if good and (skip_invalid or not (rejected or report.rejected)):
                    report.ids.extend(insert_features(session, spec, good))
                    imported += len(good)
            progress(len(rows))
    except BaseException:
        savepoint.rollback()
        raise
    for r in sorted(rejected, key=lambda r: r.index):
        first = r.problems[0]
        report.reject(
            r.index, "；".join(p.message for p in r.problems), first.field, names.get(r.index)
        )
    report.rejected.sort(key=lambda r: r["number"])
    if unused:
        report.warnings.append(
            f"未导入的字段：{'、'.join(sorted(unused))}（{spec.title}的属性：{'、'.join(sorted(allowed))}；"
            "可用 --map 源字段=属性 对应）"
        )
    report.note_mixed_types(spec.geometry_types, spec.title)
    if notices:
        report.warnings.append(f"{notices} 个要素的几何无效，已用 ST_MakeValid 自动修复")
    if (report.rejected and not skip_invalid) or not imported:
        savepoint.rollback()
        report.ids = []
        return report
    savepoint.commit()
    report.imported = imported
    report.written = True
    return report


def format_report(report: Report, spec_title: str) -> str:
    """The report as Chinese text for the terminal."""
    lines = [
        f"文件：{report.source}（图层 {report.layer}，{report.driver}，坐标系 {report.crs}）",
        f"读取 {report.read} 个要素；导入{spec_title} {report.imported} 个；"
        f"拒绝 {len(report.rejected)} 个",
    ]
    if report.rejected and not report.written:
        lines.append(
            "有要素被拒绝，全部未写入（可修正后重试，或加 --skip-invalid 只导入合格的要素）"
        )
    elif not report.written:
        lines.append("文件中没有可导入的要素，未写入")
    for r in report.rejected[:200]:
        name = f"（{r['name']}）" if r.get("name") else ""
        lines.append(f"  ✗ 第 {r['number']} 个要素{name}：{r['error']}")
    if len(report.rejected) > 200:
        lines.append(f"  … 另有 {len(report.rejected) - 200} 个")
    for w in report.warnings:
        lines.append(f"  ! {w}")
    return "\n".join(lines)
