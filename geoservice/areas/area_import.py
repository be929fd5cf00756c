"""Importing admin areas (街道, 社区 …) from a file, all or nothing, with a report.

Reads through `geoservice.catalogue.importers` (same formats, CRS handling, attribute mapping and
refusals as layer imports) and checks each feature: `code` and `name` present, the code of
the level's GB/T length (or a local code with `local_codes`), a polygon that is valid (or
repaired with `repair`), within reach of the service area, a code used once in the file and
not yet in the database (`replace` updates areas of the same level instead). Rows are
written batch by batch inside a savepoint: one rejected feature and nothing stays written,
unless `skip_invalid`. Linking to parents and children is `geoservice.areas.hierarchy.link`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.accounts import audit
from geoservice.areas.levels import LEVEL_TITLES, code_problem, normalise_code
from geoservice.areas.service_area import ServiceArea
from geoservice.catalogue.garbled import garbled_problem
from geoservice.catalogue.importers import (
    FeatureSource,
    FileRead,
    ImportFailed,
    ReadFeature,
    Report,
    kml_hint,
)
from geoservice.catalogue.importers import format_report as layer_format
from geoservice.catalogue.validation import GeometryRule, check_geometries, check_geometry_type
from geoservice.catalogue.validation import check_location as location_problem

NAME_MAX = 100
BATCH = 1000
AREA_RULE = GeometryRule("行政区划", ("Polygon", "MultiPolygon"))
CODE_HINTS = re.compile(r"code|编码|代码|编号|dm|bm", re.IGNORECASE)
NAME_HINTS = re.compile(r"name|名称|名字|mc", re.IGNORECASE)


def _suggest(fields: list[str], pattern: re.Pattern, what: str, target: str) -> str:
    hits = [f for f in fields if pattern.search(f)]
    listed = "、".join(fields) or "无"
    tip = f"；可能是 {'、'.join(hits)}，如 --map {hits[0]}={target}" if hits else ""
    return (
        f"文件中没有 {target} 字段（{what}）：请用 --map 源字段={target} 指定"
        f"（文件字段：{listed}）{tip}"
    )


def check_fields(source: FeatureSource | FileRead) -> None:
    """Refuses a file that has no code or no name attribute at all (before reading rows)."""
    for target, pattern, what in (("code", CODE_HINTS, "区划代码"), ("name", NAME_HINTS, "名称")):
        if target not in source.targets:
            hint = kml_hint(source.report.driver)
            raise ImportFailed(
                _suggest(source.fields or source.targets, pattern, what, target) + hint
            )


def import_areas(
    session: Session,
    level: str,
    source: FeatureSource | FileRead,
    *,
    local_codes: bool = False,
    repair: bool = False,
    skip_invalid: bool = False,
    replace: bool = False,
    area: ServiceArea | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> Report:
    """Checks and writes the file's areas at `level`; see the module docstring."""
    report = source.report
    title = LEVEL_TITLES[level]
    check_fields(source)
    seen: dict[str, int] = {}
    imported = updated = notices = 0
    unused: set[str] = set()
    savepoint = session.begin_nested()
    try:
        for rows in source.batches():
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                good, fixed = _check(
                    session, level, batch, report, seen, local_codes, repair, area, replace
                )
                notices += fixed
                for f in batch:
                    unused.update(k for k in f.properties if k not in ("code", "name"))
                if good and (skip_invalid or not report.rejected):
                    new, changed = _write(session, level, good, replace)
                    imported += new
                    updated += changed
            progress(len(rows))
    except BaseException:
        savepoint.rollback()
        raise
    report.rejected.sort(key=lambda r: r["number"])
    if unused:
        report.warnings.append(
            f"未导入的字段：{'、'.join(sorted(unused))}（行政区划只导入 code、name）"
        )
    report.note_mixed_types(AREA_RULE.geometry_types, "行政区划")
    if notices:
        report.warnings.append(f"{notices} 个{title}的几何无效，已用 ST_MakeValid 自动修复")
    if updated:
        report.warnings.append(f"已更新 {updated} 个已有的{title}（--replace）")
    if (report.rejected and not skip_invalid) or not (imported or updated):
        savepoint.rollback()
        return report
    savepoint.commit()
    report.imported = imported + updated
    report.written = True
    return report


def _check(
    session: Session,
    level: str,
    batch: list[ReadFeature],
    report: Report,
    seen: dict[str, int],
    local_codes: bool,
    repair: bool,
    area: ServiceArea | None,
    replace: bool,
) -> tuple[list[dict[str, Any]], int]:
    """The good rows of a batch (code, name, ewkb, existing id); rejects go to the report."""
    problems: dict[int, list[tuple[str, str]]] = {f.number: [] for f in batch}
    values: dict[int, dict[str, Any]] = {}
    for f in batch:
        code = normalise_code(f.properties.get("code"))
        name = f.properties.get("name")
        name = str(name).strip() if name is not None else ""
        found = problems[f.number]
        if code is None:
            found.append(("缺少区划代码（code）", "properties.code"))
        else:
            why = code_problem(level, code, local_codes)
            if why:
                found.append((why, "properties.code"))
            elif code in seen:
                found.append(
                    (
                        f"代码 {code!r} 在文件中重复（与第 {seen[code]} 个要素相同）",
                        "properties.code",
                    )
                )
            else:
                seen[code] = f.number
        garbled = garbled_problem({"code": code, "name": name}, ("name", "code"))
        if garbled is not None:
            found.append((garbled.message, garbled.field))
        if not name:
            found.append(("缺少名称（name）", "properties.name"))
        elif len(name) > NAME_MAX:
            found.append((f"名称过长：最多 {NAME_MAX} 字", "properties.name"))
        for check in (
            check_geometry_type(AREA_RULE, f.geometry),
            location_problem(f.geometry, area),
        ):
            if check is not None:
                found.append((check.message, check.field))
        values[f.number] = {"code": code, "name": name}
    codes = [v["code"] for n, v in values.items() if v["code"] and not problems[n]]
    existing = {
        code: (area_id, lv, name)
        for code, area_id, lv, name in session.execute(
            text("SELECT code, id, level, name FROM admin_areas WHERE code = ANY(:codes)"),
            {"codes": codes},
        )
    }
    for f in batch:
        code = values[f.number]["code"]
        if code in existing and not problems[f.number]:
            area_id, lv, name = existing[code]
            if replace and lv == level:
                values[f.number]["id"] = area_id
            elif replace:
                problems[f.number].append(
                    (
                        f"代码 {code!r} 已是{LEVEL_TITLES[lv]} {name}，"
                        f"不能改为{LEVEL_TITLES[level]}",
                        "properties.code",
                    )
                )
            else:
                problems[f.number].append(
                    (
                        f"代码 {code!r} 已存在（{LEVEL_TITLES[lv]} {name}）；"
                        "如需以本文件更新已有区划，加 --replace",
                        "properties.code",
                    )
                )
    to_check = [
        f for f in batch if not any(fld.startswith("geometry") for _m, fld in problems[f.number])
    ]
    fixed = 0
    results = check_geometries(session, AREA_RULE, [f.geometry for f in to_check], repair)
    ewkbs: dict[int, bytes] = {}
    for f, (ewkb, problem, notice) in zip(to_check, results, strict=True):
        if problem is not None:
            problems[f.number].append(
                (problem.message.replace("参数 repair=true", "--repair"), problem.field)
            )
        else:
            ewkbs[f.number] = ewkb
            fixed += notice is not None
    good = []
    for f in batch:
        if problems[f.number]:
            report.reject(
                f.number,
                "；".join(m for m, _f in problems[f.number]),
                problems[f.number][0][1],
                values[f.number]["name"] or None,
            )
        else:
            good.append(values[f.number] | {"ewkb": ewkbs[f.number]})
    return good, fixed


def _write(
    session: Session, level: str, rows: list[dict[str, Any]], replace: bool
) -> tuple[int, int]:
    new = [r for r in rows if "id" not in r]
    old = [r for r in rows if "id" in r]
    if new:
        session.execute(
            text(
                "INSERT INTO admin_areas (level, code, name, geom)"
                " SELECT :level, c, n, ST_GeomFromEWKB(g)"
                " FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]),"
                " CAST(:geoms AS bytea[])) AS v(c, n, g)"
            ),
            {
                "level": level,
                "codes": [r["code"] for r in new],
                "names": [r["name"] for r in new],
                "geoms": [r["ewkb"] for r in new],
            },
        )
    if old and replace:
        before = session.execute(
            text(
                "SELECT id, code, name, ST_AsGeoJSON(geom, 7)::json FROM admin_areas"
                " WHERE id = ANY(:ids)"
            ),
            {"ids": [r["id"] for r in old]},
        ).all()
        for area_id, code, name, geometry in before:
            audit.record(
                session,
                None,
                "area.replace",
                "admin_area",
                area_id,
                {"code": code, "name": name, "geom": geometry},
                {"name": next(r["name"] for r in old if r["id"] == area_id)},
                actor="import-areas",
            )
        session.execute(
            text(
                "UPDATE admin_areas a SET name = v.n, geom = ST_GeomFromEWKB(v.g),"
                " updated_at = now()"
                " FROM unnest(CAST(:ids AS int[]), CAST(:names AS text[]),"
                " CAST(:geoms AS bytea[])) AS v(id, n, g) WHERE a.id = v.id"
            ),
            {
                "ids": [r["id"] for r in old],
                "names": [r["name"] for r in old],
                "geoms": [r["ewkb"] for r in old],
            },
        )
    return len(new), len(old)


def format_report(report: Report, level: str) -> str:
    return layer_format(report, LEVEL_TITLES[level])
