"""File imports (all-or-nothing, with a report of rejects), usable from the CLI and the API.

Two steps, kept apart so other imports (admin areas, rosters) can reuse the first:

- `read_features(path, …)` reads any vector file GDAL knows (GeoJSON, Shapefile as .zip or
  folder with its DBF in GBK or UTF-8, GeoPackage, KML, CSV with lon/lat or WKT columns),
  renames attributes (`mapping`), reprojects from the CRS the file declares (or `crs`, e.g.
  EPSG:4490 CGCS2000) to EPSG:4326, and returns plain rows plus a report of what it could
  not read.
- `import_layer(session, spec, path, …)` checks those rows as a layer's features (the same
  checks as the API's writes) and writes them, all or nothing; the caller commits.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from geoservice.editing import insert_features
from geoservice.registry import LayerSpec
from geoservice.validation import (
    Candidate,
    Checked,
    Problem,
    Rejected,
    ServiceArea,
    validate,
    writable_properties,
)

CSV_OPTIONS = {
    "X_POSSIBLE_NAMES": "lon,lng,long,longitude,x,经度",
    "Y_POSSIBLE_NAMES": "lat,latitude,y,纬度",
    "GEOM_POSSIBLE_NAMES": "wkt,geometry,geom,the_geom",
    "KEEP_GEOM_COLUMNS": "NO",
    "AUTODETECT_TYPE": "YES",
}
SUFFIXES = (".geojson", ".json", ".shp", ".zip", ".gpkg", ".kml", ".kmz", ".csv")
BATCH = 2000


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

    def reject(self, number: int, message: str, field_: str | None = None, name: Any = None):
        self.rejected.append({"number": number, "name": name, "error": message, "field": field_})

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
        }


@dataclass
class FileRead:
    features: list[ReadFeature]
    report: Report


def parse_mapping(pairs: list[str] | tuple[str, ...] | None, what: str = "--map") -> dict[str, str]:
    """["源字段=目标", …] → {源字段: 目标}."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ImportFailed(f"{what} 的格式应为 源=目标，收到 {pair!r}")
        out[source.strip()] = target.strip()
    return out


def _dataset_path(path: Path) -> str:
    if path.suffix.lower() in (".zip", ".kmz"):
        return f"/vsizip/{path}"
    return str(path)


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


def _looks_garbled(values: list[str]) -> bool:
    """Text that is GBK read as Latin-1 (mojibake) or undecodable."""
    for text_ in values:
        if "\ufffd" in text_:
            return True
        try:
            raw = text_.encode("latin-1")
        except UnicodeEncodeError:
            continue
        if any(b >= 0x80 for b in raw):
            try:
                raw.decode("gbk")
                return True
            except UnicodeDecodeError:
                continue
    return False


def read_features(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    layer: str | None = None,
) -> FileRead:
    """Reads a vector file into rows in EPSG:4326 (see the module docstring)."""
    from pyogrio import list_layers
    from pyogrio.errors import DataLayerError, DataSourceError
    from pyogrio.raw import read

    path = Path(path)
    report = Report(source=path.name)
    if not path.exists():
        raise ImportFailed(f"文件不存在：{path}")
    if path.is_file() and path.suffix.lower() not in SUFFIXES:
        raise ImportFailed(
            f"不支持的文件类型 {path.suffix!r}：支持 GeoJSON、Shapefile（.zip 或文件夹）、"
            "GeoPackage、KML、CSV"
        )
    if path.suffix.lower() == ".zip" and not zipfile.is_zipfile(path):
        raise ImportFailed("zip 文件已损坏，无法打开")
    dataset = _dataset_path(path)
    options: dict[str, Any] = dict(CSV_OPTIONS) if path.suffix.lower() == ".csv" else {}
    try:
        layers_found = [str(name) for name, _ in list_layers(dataset)]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise ImportFailed(f"无法读取文件：{exc}") from None
    if not layers_found:
        raise ImportFailed("文件中没有图层")
    if layer is None:
        layer = layers_found[0]
        if len(layers_found) > 1:
            report.warnings.append(
                f"文件含多个图层（{'、'.join(layers_found)}），只导入第一个 {layer!r}；"
                "可用 --layer 指定"
            )
    elif layer not in layers_found:
        raise ImportFailed(f"文件中没有图层 {layer!r}（有：{'、'.join(layers_found)}）")
    try:
        meta, _fids, geometry, field_data = read(dataset, layer=layer, encoding=encoding, **options)
    except (DataSourceError, DataLayerError, OSError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"无法读取文件：{exc}") from None
    except Exception as exc:  # GDAL raises assorted errors on broken files
        raise ImportFailed(f"无法读取文件：{exc}") from None
    report.layer = layer
    report.driver = str(meta.get("driver") or "")
    names = [str(n) for n in meta["fields"]]
    mapping = dict(mapping or {})
    by_lower = {n.lower(): n for n in names}
    mapping = {
        (src if src in names else by_lower.get(src.lower(), src)): dst
        for src, dst in mapping.items()
    }  # field names match regardless of case (KML drivers differ: Description/description)
    missing = [src for src in mapping if src not in names]
    if missing:
        raise ImportFailed(
            f"--map 中的源字段不存在：{'、'.join(missing)}（文件字段：{'、'.join(names) or '无'}）"
        )
    targets = [mapping.get(n, n) for n in names]

    declared = meta.get("crs")
    source_crs = declared
    if crs:
        if declared and CRS.from_user_input(declared) != CRS.from_user_input(crs):
            report.warnings.append(f"文件声明的坐标系为 {declared}，按指定的 {crs} 处理")
        source_crs = crs
    if not source_crs:
        source_crs = "EPSG:4326"
        report.warnings.append(
            "文件未声明坐标系，按 WGS-84 经纬度（EPSG:4326）处理；可用 --crs 指定"
        )
    try:
        source = CRS.from_user_input(source_crs)
    except Exception:
        raise ImportFailed(f"无法识别的坐标系 {source_crs!r}") from None
    report.crs = source.to_string()
    target = CRS.from_epsg(4326)
    transformer = None
    if source != target:
        transformer = Transformer.from_crs(source, target, always_xy=True)

    count = len(geometry) if geometry is not None else 0
    report.read = count
    text_samples: list[str] = []
    features: list[ReadFeature] = []
    for i in range(count):
        number = i + 1
        props = {t: _python_value(col[i]) for t, col in zip(targets, field_data, strict=True)}
        text_samples.extend(v for v in props.values() if isinstance(v, str))
        wkb = geometry[i]
        geom: BaseGeometry | None = None
        if wkb is None:
            report.reject(number, "缺少几何", "geometry", props.get("name"))
            continue
        try:
            geom = shapely.force_2d(shapely.from_wkb(wkb))
            if transformer is not None:
                geom = shapely.transform(
                    geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
                )
        except Exception as exc:
            report.reject(number, f"几何无法读取或换算：{exc}", "geometry", props.get("name"))
            continue
        if geom.is_empty:
            report.reject(number, "几何为空", "geometry", props.get("name"))
            continue
        features.append(ReadFeature(number, geom, props))
    if encoding is None and _looks_garbled(text_samples[:500]):
        report.warnings.append("属性文字疑似乱码（GBK 编码被误读），请加 --encoding GBK 重新导入")
    return FileRead(features, report)


def _label(feature: ReadFeature) -> str:
    name = feature.properties.get("name")
    return f"第 {feature.number} 个要素" + (f"（{name}）" if name else "")


def import_layer(
    session: Session,
    spec: LayerSpec,
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    **options: Any,
) -> Report:
    """Reads `path` and writes its features to the layer (see `import_features`)."""
    read = read_features(path, mapping=mapping, crs=crs, encoding=encoding, layer=layer)
    return import_features(session, spec, read, **options)


def import_features(
    session: Session,
    spec: LayerSpec,
    read: FileRead,
    *,
    defaults: Mapping[str, Any] | None = None,
    repair: bool = False,
    skip_invalid: bool = False,
    generate_codes: bool = False,
    area: ServiceArea | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> Report:
    """Checks the rows read from a file as features of the layer and writes them, all or
    nothing.

    With `skip_invalid`, the valid features are written and the rest reported; otherwise one
    rejected feature means nothing is written (`report.written` is False). The caller commits
    when `report.written` is True, and rolls back otherwise."""
    report = read.report
    allowed = set(writable_properties(spec))
    present = {k for f in read.features for k in f.properties}
    unused = sorted(present - allowed)
    if unused:
        report.warnings.append(
            f"未导入的字段：{'、'.join(unused)}（{spec.title}的属性：{'、'.join(sorted(allowed))}；"
            "可用 --map 源字段=属性 对应）"
        )
    stem = Path(report.source).stem
    candidates: list[Candidate] = []
    for f in read.features:
        props = {k: v for k, v in f.properties.items() if k in allowed}
        for key, value in (defaults or {}).items():
            if props.get(key) in (None, ""):
                props[key] = value
        if generate_codes and props.get("code") in (None, ""):
            props["code"] = f"{spec.name}-{stem}-{f.number:05d}"[:64]
        candidates.append(Candidate(f.number, f.geometry, props, _label(f)))
    checked: list[Checked] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}
    for start in range(0, len(candidates), BATCH):
        batch = candidates[start : start + BATCH]
        good, bad = validate(session, spec, batch, repair=repair, area=area)
        rejected.extend(bad)
        for row in good:
            if row.code in seen:
                label = next(c.label for c in batch if c.index == row.index)
                rejected.append(
                    Rejected(
                        row.index,
                        label,
                        [
                            Problem(
                                f"编码 {row.code!r} 在文件中重复"
                                f"（与第 {seen[row.code]} 个要素相同）",
                                "properties.code",
                                status=409,
                            )
                        ],
                    )
                )
                continue
            seen[row.code] = row.index
            checked.append(row)
        progress(len(batch))
    for r in sorted(rejected, key=lambda r: r.index):
        first = r.problems[0]
        name = next((c.properties.get("name") for c in candidates if c.index == r.index), None)
        report.reject(r.index, "；".join(p.message for p in r.problems), first.field, name)
    report.rejected.sort(key=lambda r: r["number"])
    notices = sum(len(c.notices) for c in checked)
    if notices:
        report.warnings.append(f"{notices} 个要素的几何无效，已用 ST_MakeValid 自动修复")
    if report.rejected and not skip_invalid:
        return report
    if not checked:
        return report
    for start in range(0, len(checked), BATCH):
        report.ids.extend(insert_features(session, spec, checked[start : start + BATCH]))
    report.imported = len(checked)
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
    for r in report.rejected[:200]:
        name = f"（{r['name']}）" if r.get("name") else ""
        lines.append(f"  ✗ 第 {r['number']} 个要素{name}：{r['error']}")
    if len(report.rejected) > 200:
        lines.append(f"  … 另有 {len(report.rejected) - 200} 个")
    for w in report.warnings:
        lines.append(f"  ! {w}")
    return "\n".join(lines)
