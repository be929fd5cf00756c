"""Sites (点位): writing them with their kind's attributes checked, the office's 点位清单 (.xlsx)
in and out, and QR codes that open the report page placed at a site."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from geoalchemy2.shape import from_shape
from openpyxl import Workbook
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.assessment.kinds import check_attribute_values, kind_by_code
from geoservice.assessment.models import Site, SiteKind
from geoservice.coords import to_wgs84
from geoservice.input_values import shown, text_value
from geoservice.models import AdminArea, Assignment, Leader, Place
from geoservice.service_errors import Conflict, Forbidden, InvalidInput, NotFound
from geoservice.spreadsheet_text import text_row
from geoservice.xlsx_guard import open_upload

SITE_LAYER = "site"
MAX_IMPORT_ROWS = 20_000
MAX_IMPORT_COLUMNS = 40
CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_ROLE = "点长"


# --- reading one site ----------------------------------------------------------------------


def get_site(session: Session, site_id: int) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"没有编号为 {site_id} 的点位", field="id")
    return site


def site_json(session: Session, site_id: int) -> dict[str, Any]:
    row = session.execute(
        text(
            """SELECT p.id, p.code, p.name, k.code AS kind, k.name AS kind_name, s.address,
  s.attributes, c.code AS community_code, c.name AS community_name, st.name AS street_name,
  ST_AsGeoJSON(s.geom, 7)::json AS geometry,
  ST_X(ST_PointOnSurface(s.geom)) AS lon, ST_Y(ST_PointOnSurface(s.geom)) AS lat,
  ld.id AS leader_id, ld.name AS leader_name
FROM sites s JOIN places p ON p.id = s.id JOIN site_kinds k ON k.id = s.kind_id
LEFT JOIN admin_areas c ON c.id = s.community_area_id
LEFT JOIN admin_areas st ON st.id = c.parent_id
LEFT JOIN LATERAL (
  SELECT l.id, l.name FROM assignments a JOIN leaders l ON l.id = a.leader_id
  WHERE a.place_id = s.id AND a.is_primary AND a.valid_to IS NULL ORDER BY a.valid_from DESC
  LIMIT 1) ld ON TRUE
WHERE s.id = :id"""
        ),
        {"id": site_id},
    ).first()
    if row is None:
        raise NotFound(f"没有编号为 {site_id} 的点位", field="id")
    out = dict(row._mapping)
    out["collection"] = f"site-{out['kind']}"
    return out


# --- geometry --------------------------------------------------------------------------------


def parse_geometry(payload: Mapping[str, Any], kind: SiteKind) -> BaseGeometry:
    """The site's geometry from `geometry` (GeoJSON, WGS-84) or `lon`/`lat` (+ `coord_sys`
    wgs84|gcj02), of the kind's geometry type."""
    raw = payload.get("geometry")
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise InvalidInput("geometry 必须是 GeoJSON 几何对象", field="geometry")
        try:
            geom = shape(raw)
        except Exception:
            raise InvalidInput("geometry 不是合法的 GeoJSON 几何", field="geometry") from None
    elif payload.get("lon") not in (None, "") or payload.get("lat") not in (None, ""):
        lon, lat = _lonlat(payload.get("lon"), payload.get("lat"))
        coord_sys = text_value(
            payload.get("coord_sys"), "coord_sys", "坐标系", default="wgs84"
        ).lower()
        if coord_sys not in ("wgs84", "gcj02"):
            raise InvalidInput("坐标系只能是 wgs84 或 gcj02", field="coord_sys")
        geom = Point(*to_wgs84(lon, lat, coord_sys))
    else:
        raise InvalidInput("缺少位置：请给出 geometry 或 lon/lat", field="geometry")
    return check_geometry(geom, kind, "geometry")


def _lonlat(raw_lon: Any, raw_lat: Any, field_prefix: str = "") -> tuple[float, float]:
    out = []
    for name, raw, lo, hi in (("lon", raw_lon, -180, 180), ("lat", raw_lat, -90, 90)):
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"{name} 应为数字，收到 {shown(raw)}", field=field_prefix + name
            ) from None
        if not lo <= value <= hi:
            raise InvalidInput(f"{name} 超出范围", field=field_prefix + name)
        out.append(value)
    return out[0], out[1]


def check_geometry(geom: BaseGeometry, kind: SiteKind, field_name: str) -> BaseGeometry:
    wanted = ("Point",) if kind.geometry_type == "point" else ("Polygon", "MultiPolygon")
    if geom.geom_type not in wanted:
        title = "点" if kind.geometry_type == "point" else "面（Polygon/MultiPolygon）"
        raise InvalidInput(
            f"类别「{kind.name}」的点位应为{title}，收到 {geom.geom_type}", field=field_name
        )
    if geom.is_empty or not geom.is_valid:
        raise InvalidInput("几何无效（为空或自相交）", field=field_name)
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InvalidInput("坐标超出经纬度范围（应为 WGS-84 经纬度）", field=field_name)
    return geom


# --- writing ---------------------------------------------------------------------------------


def _community(session: Session, code: Any) -> int | None:
    value = str(code or "").strip()
    if not value:
        return None
    area = session.scalar(
        select(AdminArea).where(AdminArea.code == value, AdminArea.level == "community")
    )
    if area is None:
        raise InvalidInput(f"没有代码为 {value} 的社区", field="community_code")
    return area.id


def _link_community(session: Session, site_id: int) -> None:
    """A site without a community gets the community its point lies in."""
    session.execute(
        text(
            """UPDATE sites s SET community_area_id = (
  SELECT a.id FROM admin_areas a WHERE a.level = 'community'
    AND ST_Covers(a.geom, ST_PointOnSurface(s.geom)) ORDER BY a.id LIMIT 1)
WHERE s.id = :id AND s.community_area_id IS NULL"""
        ),
        {"id": site_id},
    )


def _name(payload: Mapping[str, Any]) -> str:
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("缺少点位名称", field="name")
    if len(name.strip()) > 200:
        raise InvalidInput("点位名称过长（最多 200 字）", field="name")
    return name.strip()


def _code(session: Session, raw: Any, exclude_id: int | None = None) -> str:
    if isinstance(raw, bool | list | dict):  # a number is a code as a file may hold it
        raise InvalidInput(f"点位编码应为文字，收到 {shown(raw)}", field="code")
    code = str(raw or "").strip()
    if not CODE.match(code):
        raise InvalidInput("点位编码须为 1–64 位字母、数字、下划线或连字符", field="code")
    clash = session.scalar(select(Place.id).where(Place.layer == SITE_LAYER, Place.code == code))
    if clash is not None and clash != exclude_id:
        raise Conflict(f"点位编码 {code} 已存在", field="code")
    return code


def _address(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("address")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise InvalidInput("地址应为不超过 200 字的文字", field="address")
    return value.strip() or None


def create_site(session: Session, payload: Mapping[str, Any]) -> Site:
    """A new site: kind (code or name), code, name, location, attributes checked against the
    kind; nothing is written when any field is wrong."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("请求体必须是 JSON 对象")
    kind = kind_by_code(session, payload.get("kind"))
    if kind.retired:
        raise InvalidInput(f"类别「{kind.name}」已停用，不能新增点位", field="kind")
    code = _code(session, payload.get("code"))
    name = _name(payload)
    geom = parse_geometry(payload, kind)
    raw_attributes = payload.get("attributes")
    if raw_attributes is None:  # a GeoJSON feature may carry them as properties of their own
        names = {d["name"] for d in kind.attributes or []}
        raw_attributes = {k: v for k, v in payload.items() if k in names}
    attributes = check_attribute_values(list(kind.attributes or []), raw_attributes)
    community_id = _community(session, payload.get("community_code"))
    site = Site(
        code=code,
        name=name,
        kind_id=kind.id,
        geom=from_shape(geom, srid=4326),
        address=_address(payload),
        community_area_id=community_id,
        attributes=attributes,
    )
    session.add(site)
    session.flush()
    _link_community(session, site.id)
    return site


def update_site(session: Session, site_id: int, payload: Mapping[str, Any]) -> Site:
    """Changes the given fields; attributes are checked against the (possibly new) kind."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("请求体必须是 JSON 对象")
    site = get_site(session, site_id)
    kind = session.get(SiteKind, site.kind_id)
    if "kind" in payload:
        kind = kind_by_code(session, payload.get("kind"))
        if kind.retired and kind.id != site.kind_id:
            raise InvalidInput(f"类别「{kind.name}」已停用", field="kind")
        if kind.id != site.kind_id and _recorded_results(session, site.id):
            # Scores join results to the standards of the site's kind: another kind would
            # rewrite every round it was checked in, finished ones included.
            raise Conflict(
                f"点位「{site.name}」已有测评结果，不能更改类别；如确需调整，请新建点位",
                field="kind",
            )
    if "code" in payload:
        site.code = _code(session, payload.get("code"), exclude_id=site.id)
    if "name" in payload:
        site.name = _name(payload)
    if "geometry" in payload or "lon" in payload:
        site.geom = from_shape(parse_geometry(payload, kind), srid=4326)
    elif kind.id != site.kind_id:
        geom_type = session.scalar(
            text("SELECT GeometryType(geom) FROM sites WHERE id = :id"), {"id": site.id}
        )
        if (geom_type == "POINT") != (kind.geometry_type == "point"):
            raise InvalidInput(f"类别「{kind.name}」的几何类型与该点位不符", field="kind")
    attrs = payload.get("attributes", site.attributes if kind.id == site.kind_id else {})
    site.attributes = check_attribute_values(list(kind.attributes or []), attrs)
    site.kind_id = kind.id
    if "address" in payload:
        site.address = _address(payload)
    if "community_code" in payload:
        site.community_area_id = _community(session, payload.get("community_code"))
    session.flush()
    return site


def _recorded_results(session: Session, site_id: int) -> bool:
    return bool(
        session.scalar(
            text(  # by the site's rounds: the results are indexed by (round, site)
                "SELECT EXISTS (SELECT 1 FROM round_sites s JOIN assessment_results r"
                " ON r.round_id = s.round_id AND r.site_id = s.site_id WHERE s.site_id = :id)"
            ),
            {"id": site_id},
        )
    )


def delete_site(session: Session, site_id: int) -> None:
    """Deletes a site that no assignment, issue or round references (else 409)."""
    site = get_site(session, site_id)
    used = session.execute(
        text(
            """SELECT (SELECT count(*) FROM assignments WHERE place_id = :id),
  (SELECT count(*) FROM issues WHERE primary_place_id = :id OR grid_id = :id),
  (SELECT count(*) FROM round_sites WHERE site_id = :id)"""
        ),
        {"id": site.id},
    ).one()
    if any(used):
        raise Conflict(
            f"点位「{site.name}」有 {used[0]} 条包保记录、{used[1]} 个问题、"
            f"{used[2]} 轮测评，不能删除",
            {"assignments": used[0], "issues": used[1], "rounds": used[2]},
            "id",
        )
    session.delete(site)
    session.flush()


# --- 点位清单 (.xlsx) ------------------------------------------------------------------------

# (key, header, aliases)
COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("code", "点位编码", ("编码", "编号")),
    ("name", "点位名称", ("名称", "点位")),
    ("kind", "点位类别", ("类别", "类型")),
    ("address", "地址", ("详细地址",)),
    ("street", "街道", ("镇街", "街道（镇）")),
    ("community", "社区", ("社区（村）", "村社区")),
    ("lon", "经度", ("lon", "lng")),
    ("lat", "纬度", ("lat",)),
    ("coord_sys", "坐标系", ("坐标类型",)),
    ("leader", "点长姓名", ("点长",)),
    ("phone", "点长电话", ("联系电话", "电话")),
    ("attributes", "类别属性", ("属性",)),
)
HEADER_OF = {key: header for key, header, _ in COLUMNS}
COORD_SYSTEMS = {"wgs84": "wgs84", "wgs-84": "wgs84", "gps": "wgs84", "cgcs2000": "wgs84",
                 "天地图": "wgs84", "gcj02": "gcj02", "gcj-02": "gcj02", "高德": "gcj02",
                 "火星坐标": "gcj02", "腾讯": "gcj02"}  # fmt: skip


def _norm(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def _header_key(value: Any) -> str | None:
    label = re.sub(r"[\s*＊:：]", "", _norm(value)).lower()
    for key, header, aliases in COLUMNS:
        if label == header.lower() or label in (a.lower() for a in aliases):
            return key
    return None


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    leaders_created: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    site_ids: list[int] = field(default_factory=list)  # the sites written (created, updated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "leaders_created": self.leaders_created,
            "errors": self.errors,
        }


def read_site_list(source: bytes | IO[bytes]) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """Rows of the first sheet with a 点位清单 header: [(row number, {key: value})]."""
    wb = open_upload(source, MAX_IMPORT_ROWS + 20)
    try:
        for ws in wb.worksheets:
            rows = ws.iter_rows(max_col=MAX_IMPORT_COLUMNS, values_only=True)
            header: dict[int, str] | None = None
            out: list[tuple[int, dict[str, Any]]] = []
            for number, values in enumerate(rows, start=1):
                if header is None:
                    if number > 10:
                        break
                    keys = {i: _header_key(v) for i, v in enumerate(values)}
                    keys = {i: k for i, k in keys.items() if k is not None}
                    if {"name", "kind"} <= set(keys.values()):
                        header = keys
                    continue
                if len(out) >= MAX_IMPORT_ROWS:
                    raise InvalidInput(
                        f"清单行数超过上限 {MAX_IMPORT_ROWS} 行，请分批导入", field="file"
                    )
                row = {k: values[i] if i < len(values) else None for i, k in header.items()}
                if all(_norm(v) == "" for v in row.values()):
                    continue
                out.append((number, row))
            if header is not None:
                return out, ws.title
    finally:
        wb.close()
    raise InvalidInput("没有找到点位清单表头：表头行须包含「点位名称」「点位类别」", field="file")


def _row_payload(row: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": _norm(row.get("code")),
        "name": _norm(row.get("name")),
        "kind": _norm(row.get("kind")),
        "address": _norm(row.get("address")) or None,
    }
    if _norm(row.get("lon")) or _norm(row.get("lat")):
        payload["lon"], payload["lat"] = row.get("lon"), row.get("lat")
        cs = _norm(row.get("coord_sys")).lower() or "wgs84"
        if cs not in COORD_SYSTEMS:
            raise InvalidInput(
                f"未知坐标系「{row.get('coord_sys')}」，应为 WGS-84 或 GCJ-02", field="coord_sys"
            )
        payload["coord_sys"] = COORD_SYSTEMS[cs]
    raw_attrs = _norm(row.get("attributes"))
    if raw_attrs:
        attrs: dict[str, Any] = {}
        for part in re.split(r"[;；\n]", raw_attrs):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                key, sep, value = part.partition("：")
            if not sep:
                raise InvalidInput(
                    f"类别属性「{part}」应写作 名称=值，多个用分号分隔", field="attributes"
                )
            attrs[key.strip()] = value.strip()
        payload["attributes"] = attrs
    return payload


def _community_of_row(
    session: Session, row: dict[str, Any], cache: dict[tuple[str, str], int | None]
) -> int | None:
    street, community = _norm(row.get("street")), _norm(row.get("community"))
    if not community:
        return None
    key = (street, community)
    if key not in cache:
        query = (
            "SELECT c.id FROM admin_areas c LEFT JOIN admin_areas s ON s.id = c.parent_id"
            " WHERE c.level = 'community' AND (c.name = :c OR c.code = :c)"
        )
        params = {"c": community}
        if street:
            query += " AND (s.name = :s OR s.code = :s)"
            params["s"] = street
        ids = session.scalars(text(query), params).all()
        if len(ids) != 1:
            where = f"{street}{community}" if street else community
            raise InvalidInput(
                f"找不到社区「{where}」" if not ids else f"社区「{community}」有重名，请填写街道",
                field="community",
            )
        cache[key] = ids[0]
    return cache[key]


def _find_or_make_leader(session: Session, name: str, phone: str, report: ImportReport) -> Leader:
    query = select(Leader).where(Leader.name == name, Leader.active.is_(True))
    if phone:
        query = query.where(Leader.phone == phone)
    found = session.scalars(query.order_by(Leader.id)).all()
    if len(found) > 1 and not phone:
        raise InvalidInput(f"有多位名为「{name}」的领导，请填写点长电话", field="leader")
    if found:
        return found[0]
    if phone and not re.fullmatch(r"[0-9+\- ]{5,20}", phone):
        raise InvalidInput(f"点长电话「{phone}」格式不对", field="phone")
    leader = Leader(name=name[:50], title="点长", phone=phone or None, level="村社区", active=True)
    session.add(leader)
    session.flush()
    report.leaders_created += 1
    return leader


def _set_site_leader(session: Session, site_id: int, leader: Leader, at: datetime) -> None:
    current = session.scalars(
        select(Assignment).where(
            Assignment.place_id == site_id,
            Assignment.is_primary.is_(True),
            Assignment.valid_to.is_(None),
        )
    ).first()
    if current is not None and current.leader_id == leader.id:
        return
    if current is not None:
        current.valid_to = at
    session.add(
        Assignment(
            leader_id=leader.id,
            place_id=site_id,
            role=DEFAULT_ROLE,
            is_primary=True,
            valid_from=at,
            note="点位清单导入",
        )
    )
    session.flush()


def import_site_list(
    session: Session,
    source: bytes | IO[bytes],
    now: datetime | None = None,
    may_update: Callable[[int], bool] | None = None,
) -> ImportReport:
    """Imports a 点位清单 all-or-nothing: every row is checked; if any row is refused, nothing is
    written and the report lists each refused row (the caller rolls back). A row whose code
    exists updates that site — Forbidden when `may_update` (the caller's scope) refuses the site
    as it is; a 点长 becomes the site's primary 包保 (role 点长)."""
    now = now or datetime.now(UTC)
    rows, _sheet = read_site_list(source)
    report = ImportReport(rows=len(rows))
    cache: dict[tuple[str, str], int | None] = {}
    seen_codes: dict[str, int] = {}
    codes_by_kind: dict[int, int] = {}
    for number, row in rows:
        savepoint = session.begin_nested()
        try:
            payload = _row_payload(row)
            community_id = _community_of_row(session, row, cache)
            code = payload.get("code") or ""
            if code and code in seen_codes:
                raise InvalidInput(f"点位编码 {code} 与第 {seen_codes[code]} 行重复", field="code")
            existing = session.scalar(select(Site).where(Site.code == code)) if code else None
            if existing is not None:
                payload.pop("code")
                if may_update is not None and not may_update(existing.id):
                    raise Forbidden(OUT_OF_SCOPE, field="file")
                site = update_site(session, existing.id, payload)
                report.updated += 1
            else:
                if not code:
                    kind = kind_by_code(session, payload.get("kind"))
                    n = codes_by_kind.get(kind.id) or _next_number(session, kind)
                    codes_by_kind[kind.id] = n + 1
                    code = payload["code"] = f"{kind.code.upper()}-{n:05d}"
                site = create_site(session, payload)
                report.created += 1
            report.site_ids.append(site.id)
            seen_codes[site.code] = number
            if community_id is not None:
                site.community_area_id = community_id
            leader_name = _norm(row.get("leader"))
            if leader_name:
                leader = _find_or_make_leader(session, leader_name, _norm(row.get("phone")), report)
                _set_site_leader(session, site.id, leader, now)
            session.flush()
            savepoint.commit()
        except (InvalidInput, Conflict, NotFound) as exc:
            savepoint.rollback()
            column = HEADER_OF.get((exc.field or "").split(".")[0], exc.field)
            report.errors.append({"row": number, "column": column, "error": exc.error})
    if report.errors:
        raise InvalidInput(
            f"点位清单有 {len(report.errors)} 行不符合要求，全部未导入", report.as_dict(), "file"
        )
    return report


OUT_OF_SCOPE = "文件中有点位位于您的管辖范围之外，全部未写入"
MAX_GEOJSON_FEATURES = MAX_IMPORT_ROWS
SITE_KEYS = {"code", "name", "kind", "address", "community_code"}


def import_site_features(
    session: Session,
    data: bytes,
    now: datetime | None = None,
    may_update: Callable[[int], bool] | None = None,
) -> ImportReport:
    """A GeoJSON FeatureCollection of sites (WGS-84), all or nothing like the 点位清单 (and
    `may_update` likewise): each
    feature's properties give code, name, kind, address, community_code, 点长/点长电话, and the
    kind's attributes (as `attributes` or as properties of their own). Read as JSON only (no
    GDAL driver is involved)."""
    now = now or datetime.now(UTC)
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("文件不是合法的 GeoJSON（UTF-8 JSON）", field="file") from None
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise InvalidInput("GeoJSON 须为 FeatureCollection", field="file")
    if len(features) > MAX_GEOJSON_FEATURES:
        raise InvalidInput(f"要素超过上限 {MAX_GEOJSON_FEATURES} 个，请分批导入", field="file")
    report = ImportReport(rows=len(features))
    seen: dict[str, int] = {}
    for number, feature in enumerate(features, start=1):
        savepoint = session.begin_nested()
        try:
            if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
                raise InvalidInput("要素须有 properties 对象", field="properties")
            props = dict(feature["properties"])
            kind = kind_by_code(session, props.get("kind"))
            attrs = props.get("attributes")
            if attrs is None:
                names = {d["name"] for d in kind.attributes or []}
                attrs = {k: v for k, v in props.items() if k in names}
            payload = {k: props.get(k) for k in SITE_KEYS if props.get(k) not in (None, "")}
            payload["attributes"] = attrs
            payload["geometry"] = feature.get("geometry")
            code = str(payload.get("code") or "")  # a file may hold a code as a number
            if code in seen:
                raise InvalidInput(f"点位编码 {code} 与第 {seen[code]} 个要素重复", field="code")
            existing = session.scalar(select(Site).where(Site.code == code)) if code else None
            if existing is not None:
                payload.pop("code")
                if may_update is not None and not may_update(existing.id):
                    raise Forbidden(OUT_OF_SCOPE, field="file")
                site = update_site(session, existing.id, payload)
                report.updated += 1
            else:
                if not code:
                    payload["code"] = f"{kind.code.upper()}-{_next_number(session, kind):05d}"
                site = create_site(session, payload)
                report.created += 1
            report.site_ids.append(site.id)
            seen[site.code] = number
            leader_name = _norm(props.get("点长") or props.get("leader"))
            if leader_name:
                phone = _norm(props.get("点长电话") or props.get("phone"))
                leader = _find_or_make_leader(session, leader_name, phone, report)
                _set_site_leader(session, site.id, leader, now)
            session.flush()
            savepoint.commit()
        except (InvalidInput, Conflict, NotFound) as exc:
            savepoint.rollback()
            report.errors.append({"row": number, "column": exc.field, "error": exc.error})
    if report.errors:
        raise InvalidInput(
            f"有 {len(report.errors)} 个要素不符合要求，全部未导入", report.as_dict(), "file"
        )
    return report


def _next_number(session: Session, kind: SiteKind) -> int:
    prefix = f"{kind.code.upper()}-"
    last = session.scalar(
        text(
            "SELECT max(substring(code FROM :pat)::int) FROM places"
            " WHERE layer = 'site' AND code LIKE :like"
        ),
        {"pat": f"^{re.escape(prefix)}([0-9]+)$", "like": prefix.replace("_", "\\_") + "%"},
    )
    return int(last or 0) + 1


def export_site_list(
    session: Session,
    kind_code: str | None = None,
    within: tuple[str, dict[str, Any]] | None = None,
    phones: bool = True,
) -> bytes:
    """The 点位清单 as .xlsx, in the import's columns (coordinates WGS-84). `within`: an SQL
    condition on the site `s` and its parameters (the caller's scope); `phones` False leaves
    the 点长's phone column empty (roster data: accounts without `assignments.read`)."""
    where, params = within or ("true", {})
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("点位清单")
    ws.append([header for _, header, _ in COLUMNS])
    rows = session.execute(
        text(
            f"""SELECT p.code, p.name, k.name AS kind, s.address, st.name AS street,
  c.name AS community, ST_X(ST_PointOnSurface(s.geom)) AS lon,
  ST_Y(ST_PointOnSurface(s.geom)) AS lat, k.geometry_type, ld.name AS leader, ld.phone,
  s.attributes
FROM sites s JOIN places p ON p.id = s.id JOIN site_kinds k ON k.id = s.kind_id
LEFT JOIN admin_areas c ON c.id = s.community_area_id
LEFT JOIN admin_areas st ON st.id = c.parent_id
LEFT JOIN LATERAL (
  SELECT l.name, l.phone FROM assignments a JOIN leaders l ON l.id = a.leader_id
  WHERE a.place_id = s.id AND a.is_primary AND a.valid_to IS NULL
  ORDER BY a.valid_from DESC LIMIT 1) ld ON TRUE
WHERE (CAST(:kind AS text) IS NULL OR k.code = :kind) AND {where}
ORDER BY k.id, p.code"""
        ),
        {**params, "kind": kind_code},
    )
    for r in rows:
        attrs = "；".join(f"{k}={v}" for k, v in (r.attributes or {}).items())
        ws.append(
            text_row(
                ws,
                [
                    r.code,
                    r.name,
                    r.kind,
                    r.address,
                    r.street,
                    r.community,
                    # A polygon site (工地, 公园) has no one point: left empty, so the list
                    # imports back (an existing site keeps its outline) instead of a 422.
                    round(r.lon, 7) if r.geometry_type == "point" else None,
                    round(r.lat, 7) if r.geometry_type == "point" else None,
                    "WGS-84",
                    r.leader,
                    r.phone if phones else None,
                    attrs,
                ],
            )
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- QR codes ----------------------------------------------------------------------------------


def qr_target(base_url: str, site: Mapping[str, Any]) -> str:
    """What the site's QR code opens (扫码上报): one address for whoever scans it, sent on to
    the report page placed at the site — the staff's for a signed-in account, the citizens'
    (/public/report) for anyone else where that is open (geoservice.web.assessment)."""
    return f"{base_url.rstrip('/')}/qr/site/{site['id']}"


def staff_report_url(site: Mapping[str, Any]) -> str:
    return f"/issues/new?lon={site['lon']:.7f}&lat={site['lat']:.7f}&site={site['id']}"


def qr_image(data: str, kind: str = "png", scale: int = 6) -> bytes:
    import segno

    qr = segno.make(data, error="m")
    out = io.BytesIO()
    if kind == "svg":
        qr.save(out, kind="svg", scale=scale, xmldecl=False)
    else:
        qr.save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


def sites_for_sheet(
    session: Session,
    street_code: str | None,
    limit: int,
    offset: int = 0,
    within: tuple[str, dict[str, Any]] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(how many, a page of them): the sites of a street (every site when None) in sheet
    order — street, kind, code. `within`: an SQL condition on `sites s` (the caller's area)."""
    condition, scoped = within or ("true", {})
    params = {"street": street_code, "limit": limit, "offset": offset, **scoped}
    where = f"""FROM sites s JOIN places p ON p.id = s.id JOIN site_kinds k ON k.id = s.kind_id
LEFT JOIN admin_areas c ON c.id = s.community_area_id
LEFT JOIN admin_areas st ON st.id = c.parent_id
WHERE (CAST(:street AS text) IS NULL OR st.code = :street) AND {condition}"""
    total = session.execute(text(f"SELECT count(*) {where}"), params).scalar_one()
    rows = session.execute(
        text(
            f"""SELECT p.id, p.code, p.name, k.name AS kind,
  ST_X(ST_PointOnSurface(s.geom)) AS lon, ST_Y(ST_PointOnSurface(s.geom)) AS lat,
  st.name AS street
{where}
ORDER BY st.code, k.id, p.code LIMIT :limit OFFSET :offset"""
        ),
        params,
    )
    return total, [dict(r._mapping) for r in rows]


def streets_with_sites(
    session: Session, within: tuple[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The streets that have sites (in `within`, as for sites_for_sheet), with how many (the
    QR sheet's choice)."""
    condition, params = within or ("true", {})
    rows = session.execute(
        text(
            f"""SELECT st.code, st.name, count(*) AS sites
FROM sites s JOIN admin_areas c ON c.id = s.community_area_id
JOIN admin_areas st ON st.id = c.parent_id
WHERE {condition}
GROUP BY st.code, st.name ORDER BY st.code"""
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]
