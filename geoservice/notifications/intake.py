"""Bulk intake of a feedback list (省/市测评反馈问题清单, .xlsx): each row's address text is
matched to the names of our own places (roads, compounds, markets, grids … every registered
layer); nothing is created until a planner confirms.

Matching, per row:
- "路名+门牌" (e.g. 人民路88号): the road whose name is the text before the number; the spot is
  the middle of that road (we hold no house numbers), said so in the row's message.
- otherwise every place whose name appears in the address (exact substring), and, with pg_trgm,
  names similar to a part of it (`word_similarity` ≥ threshold, for typos and short forms).
  One clear best → `matched`; several close → `ambiguous` (candidates listed); none →
  `unmatched`. A row without a usable address or with an unknown category is `invalid`.
A planner confirms a row with a candidate place, or with a spot (lon/lat) clicked on the map;
only then is the issue created (source 测评反馈, the list's row number in its description).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.issues import issues as issue_service
from geoservice.issues.workflow import IssueSettings
from geoservice.models import User
from geoservice.notifications.models import IntakeBatch, IntakeRow
from geoservice.registry import LayerRegistry
from geoservice.service_errors import Conflict, InvalidInput, NotFound
from geoservice.xlsx_guard import open_upload

MAX_ROWS = 2000
MAX_COLUMNS = 30
MAX_CELL = 2000
SIMILARITY = 0.5  # pg_trgm word_similarity of a name within the address (typos, short forms)
CLEAR_LEAD = 0.15  # the best candidate must lead the next by this much to be "matched"
HEADERS: dict[str, tuple[str, ...]] = {
    "row_number": ("序号", "编号", "行号"),
    "address": ("地址", "问题地址", "点位", "点位名称", "位置"),
    "category": ("类别", "问题类别", "问题类型", "类型"),
    "description": ("描述", "问题描述", "问题", "存在问题"),
    "photos": ("照片", "照片文件名", "图片", "附件"),
}
HOUSE_NUMBER = re.compile(r"^(?P<road>.{1,30}?(?:大道|路|街|巷|道|弄|胡同))(?P<no>\d+)(?:号|弄)")


@dataclass(frozen=True)
class SheetRow:
    row_number: int
    address: str
    category: str
    description: str
    photos: list[str]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()[:MAX_CELL]


def read_list(data: bytes) -> list[SheetRow]:
    """The rows of the first sheet, by its header row (bounded: rows, columns, unzipped size)."""
    workbook = open_upload(data, MAX_ROWS + 2)
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(max_row=MAX_ROWS + 2, max_col=MAX_COLUMNS, values_only=True)
        header = next(rows, None)
        if header is None:
            raise InvalidInput("表格是空的", field="file")
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            label = _text(name)
            for key, names in HEADERS.items():
                if label in names and key not in columns:
                    columns[key] = index
        if "address" not in columns:
            raise InvalidInput(
                f"找不到地址列（表头应为：{'、'.join(HEADERS['address'])}之一）", field="file"
            )
        out = []
        for offset, values in enumerate(rows, start=2):
            if offset > MAX_ROWS + 1:
                raise InvalidInput(f"清单超过 {MAX_ROWS} 行，请分批导入", field="file")
            cells = {k: _text(values[i]) if i < len(values) else "" for k, i in columns.items()}
            if not any(cells.values()):
                continue
            number = cells.get("row_number", "")
            photos = [p for p in re.split(r"[,，;；、\s]+", cells.get("photos", "")) if p]
            out.append(
                SheetRow(
                    int(number) if number.isdigit() else offset,
                    cells.get("address", ""),
                    cells.get("category", ""),
                    cells.get("description", ""),
                    photos[:20],
                )
            )
        return out
    finally:
        workbook.close()


def _candidates(session: Session, address: str, limit: int = 5) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            """
SELECT p.id, p.layer, p.name,
       CASE WHEN strpos(:address, p.name) > 0 THEN 1.0
            ELSE word_similarity(p.name, :address) END AS score
FROM places p
WHERE char_length(p.name) >= 2
  AND (strpos(:address, p.name) > 0 OR word_similarity(p.name, :address) >= :threshold)
ORDER BY score DESC, char_length(p.name) DESC, p.id
LIMIT :limit"""
        ),
        {"address": address, "threshold": SIMILARITY, "limit": limit},
    ).all()
    return [
        {"place_id": r.id, "layer": r.layer, "name": r.name, "score": round(float(r.score), 3)}
        for r in rows
    ]


def _drop_contained(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of exact matches, a name inside a longer matched name loses (人民路 vs 人民路小区)."""
    exact = [c for c in candidates if c["score"] >= 1.0]
    return [
        c
        for c in candidates
        if not any(c is not o and c["name"] in o["name"] and c["name"] != o["name"] for o in exact)
    ]


def match(session: Session, row: SheetRow, categories: Mapping[str, float]) -> dict[str, Any]:
    """Status, message, candidates and place of one row (nothing is written)."""
    if row.category and row.category not in categories:
        return {"status": "invalid", "message": f"未知问题类别「{row.category}」", "candidates": []}
    if not row.category:
        return {"status": "invalid", "message": "缺少问题类别", "candidates": []}
    address = re.sub(r"\s+", "", row.address)
    if len(address) < 2:
        return {"status": "invalid", "message": "没有可用的地址", "candidates": []}
    numbered = HOUSE_NUMBER.match(address)
    if numbered:
        road = numbered.group("road")
        roads = [
            c
            for c in _candidates(session, road)
            if c["layer"] == "road" and (c["name"] == road or c["score"] >= 1.0)
        ]
        exact = [c for c in roads if c["name"] == road]
        if len(exact) == 1:
            return {
                "status": "matched",
                "message": (
                    f"按路名+门牌匹配到道路「{road}」（{numbered.group('no')}号，"
                    "位置取道路中点，请核对）"
                ),
                "candidates": exact,
                "place_id": exact[0]["place_id"],
            }
    candidates = _drop_contained(_candidates(session, address))
    if not candidates:
        return {
            "status": "unmatched",
            "message": "未找到名称相符的地点，请在地图上指定位置",
            "candidates": [],
        }
    best = candidates[0]
    rest = candidates[1:]
    if not rest or best["score"] - rest[0]["score"] >= CLEAR_LEAD:
        return {
            "status": "matched",
            "message": f"匹配到「{best['name']}」",
            "candidates": candidates,
            "place_id": best["place_id"],
        }
    names = "、".join(c["name"] for c in candidates)
    return {
        "status": "ambiguous",
        "message": f"有多个可能的地点：{names}，请选择",
        "candidates": candidates,
    }


def create_batch(
    session: Session,
    data: bytes,
    filename: str,
    source: str,
    categories: Mapping[str, float],
    actor: User | None,
) -> IntakeBatch:
    rows = read_list(data)
    if not rows:
        raise InvalidInput("清单中没有数据行", field="file")
    numbers = [r.row_number for r in rows]
    if len(set(numbers)) != len(numbers):
        raise InvalidInput("序号有重复，请检查清单", field="file")
    batch = IntakeBatch(
        filename=filename[:200], source=source, created_by_id=actor.id if actor else None
    )
    session.add(batch)
    session.flush()
    for row in rows:
        result = match(session, row, categories)
        session.add(
            IntakeRow(
                batch_id=batch.id,
                row_number=row.row_number,
                address=row.address,
                category=row.category,
                description=row.description,
                photos=row.photos,
                status=result["status"],
                message=result["message"],
                candidates=result["candidates"],
                place_id=result.get("place_id"),
            )
        )
    session.flush()
    return batch


def row_view(row: IntakeRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "row_number": row.row_number,
        "address": row.address,
        "category": row.category,
        "description": row.description,
        "photos": row.photos,
        "status": row.status,
        "message": row.message,
        "candidates": row.candidates,
        "place_id": row.place_id,
        "issue_id": row.issue_id,
    }


def batch_view(session: Session, batch_id: int) -> dict[str, Any]:
    batch = session.get(IntakeBatch, batch_id)
    if batch is None:
        raise NotFound(f"没有编号为 {batch_id} 的清单", field="batch_id")
    rows = session.scalars(
        select(IntakeRow).where(IntakeRow.batch_id == batch_id).order_by(IntakeRow.row_number)
    ).all()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {
        "id": batch.id,
        "filename": batch.filename,
        "source": batch.source,
        "created_at": batch.created_at.isoformat() if batch.created_at else None,
        "counts": counts,
        "rows": [row_view(r) for r in rows],
    }


def _place_point(session: Session, registry: LayerRegistry, place_id: int) -> tuple[float, float]:
    layer = session.scalar(text("SELECT layer FROM places WHERE id = :id"), {"id": place_id})
    if layer is None or layer not in registry:
        raise InvalidInput(f"没有编号为 {place_id} 的地点", field="place_id")
    table = registry.get(layer).table
    point = session.execute(
        text(
            f"SELECT ST_X(pt), ST_Y(pt) FROM (SELECT ST_PointOnSurface(geom) AS pt"
            f" FROM {table} WHERE id = :id) s"
        ),
        {"id": place_id},
    ).one()
    return float(point[0]), float(point[1])


def confirm_row(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    row_id: int,
    actor: User,
    place_id: int | None = None,
    lon: Any = None,
    lat: Any = None,
    now: datetime | None = None,
) -> IntakeRow:
    """Creates the row's issue at the chosen place (a candidate or any place id), at a clicked
    spot (lon/lat), or at the matched place; once only."""
    row = session.scalars(
        select(IntakeRow).where(IntakeRow.id == row_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"没有编号为 {row_id} 的清单行", field="row_id")
    if row.status in ("confirmed", "skipped"):
        raise Conflict(f"第 {row.row_number} 行已处理（{row.status}）", {"issue_id": row.issue_id})
    if row.status == "invalid":
        raise Conflict(f"第 {row.row_number} 行无效：{row.message}，请改正清单后重新导入")
    if lon not in (None, "") or lat not in (None, ""):
        spot = issue_service.locate(lon, lat)
        point, chosen = (spot.lon, spot.lat), None
    else:
        chosen = place_id if place_id is not None else row.place_id
        if chosen is None:
            raise InvalidInput(
                "请选择地点（place_id）或在地图上指定位置（lon/lat）", field="place_id"
            )
        point = _place_point(session, registry, chosen)
    batch = session.get(IntakeBatch, row.batch_id)
    # The list names its photos; the files stay with the list's sender (names kept below).
    settings = replace(
        settings, photo_optional_sources=(*settings.photo_optional_sources, batch.source)
    )
    parts = [
        row.description or row.address,
        f"地址：{row.address}",
        f"清单「{batch.filename}」第 {row.row_number} 行",
    ]
    if row.photos:
        parts.append("照片：" + "、".join(row.photos))
    report = issue_service.validate_report(
        {
            "lon": point[0],
            "lat": point[1],
            "category": row.category,
            "source": batch.source,
            "description": "；".join(parts)[:2000],
        },
        settings,
        now,
    )
    issue = issue_service.create_issue(session, registry, settings, report, actor, (), now)
    row.status, row.issue_id, row.place_id = "confirmed", issue.id, chosen
    session.flush()
    return row


def confirm_matched(
    session: Session,
    registry: LayerRegistry,
    settings: IssueSettings,
    batch_id: int,
    actor: User,
) -> list[int]:
    ids = session.scalars(
        select(IntakeRow.id).where(IntakeRow.batch_id == batch_id, IntakeRow.status == "matched")
    ).all()
    return [confirm_row(session, registry, settings, i, actor).issue_id for i in ids]


def skip_row(session: Session, row_id: int) -> IntakeRow:
    row = session.get(IntakeRow, row_id)
    if row is None:
        raise NotFound(f"没有编号为 {row_id} 的清单行", field="row_id")
    if row.status == "confirmed":
        raise Conflict(f"第 {row.row_number} 行已创建问题 #{row.issue_id}")
    row.status = "skipped"
    session.flush()
    return row
