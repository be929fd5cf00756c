"""The standards (测评体系): a versioned tree 版本 → 项目 → 内容 → 标准.

A version is written whole, from a tree (JSON) or a flat sheet (.xlsx, one row per 标准), and
checked whole: nothing is written when any row is wrong. A version that already has results is
never changed (409); copy it into a new version instead.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from openpyxl import Workbook
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from geoservice.assessment.models import (
    AssessmentResult,
    AssessmentRound,
    SiteKind,
    Standard,
    StandardContent,
    StandardItem,
    StandardKind,
    StandardVersion,
)
from geoservice.input_values import shown
from geoservice.service_errors import Conflict, InvalidInput, NotFound
from geoservice.spreadsheet_text import text_row
from geoservice.xlsx_guard import open_upload

MAX_ROWS = 5000
SHEET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("item_code", "项目编码"),
    ("item", "测评项目"),
    ("content_code", "内容编码"),
    ("content", "测评内容"),
    ("code", "标准编码"),
    ("text", "测评标准"),
    ("score", "分值"),
    ("kinds", "适用点位类别"),
    ("category", "问题类别"),
    ("negative_list", "负面清单"),
)
HEADER_KEYS = {header: key for key, header in SHEET_COLUMNS} | {
    "项目": "item",
    "内容": "content",
    "标准": "text",
    "适用类别": "kinds",
    "适用点位": "kinds",
}
YES = {"是", "yes", "true", "1", "y", "√", "✓"}
NO = {"", "否", "no", "false", "0", "n"}


@dataclass(frozen=True)
class Row:
    """One 标准 with its 项目 and 内容 (a sheet row, or flattened from a JSON tree)."""

    item_code: str
    item: str
    content_code: str
    content: str
    code: str
    text: str
    score: Decimal
    kind_ids: tuple[int, ...]
    category: str
    negative_list: bool


def _norm(value: Any) -> str:
    """Codes, kinds, yes/no: full-width letters and digits made plain (Ａ１ → A1)."""
    return unicodedata.normalize("NFKC", _plain(value))


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


# The standards' own words keep their Chinese punctuation (，：；（）): NFKC would make them
# half-width, and the 测评体系 read back would no longer be the one uploaded.
TEXT_KEYS = frozenset({"item", "content", "text"})


def get_version(session: Session, version_id: int) -> StandardVersion:
    version = session.get(StandardVersion, version_id)
    if version is None:
        raise NotFound(f"没有编号为 {version_id} 的测评体系版本", field="version_id")
    return version


def result_count(session: Session, version_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AssessmentResult)
            .join(Standard, Standard.id == AssessmentResult.standard_id)
            .where(Standard.version_id == version_id)
        )
        or 0
    )


def check_editable(session: Session, version_id: int) -> None:
    used = result_count(session, version_id)
    if used:
        raise Conflict(
            f"该版本已有 {used} 条测评结果，不能修改；请复制为新版本后再修改",
            {"results": used},
            "version_id",
        )


# --- checking rows ---------------------------------------------------------------------------


def _kinds_lookup(session: Session) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind in session.scalars(select(SiteKind)):
        out[kind.code] = kind.id
        out[kind.name] = kind.id
    return out


def check_row(raw: Mapping[str, Any], kinds: Mapping[str, int], categories: Sequence[str]) -> Row:
    """A row's fields checked; InvalidInput names the column key."""
    values = {
        key: (_plain if key in TEXT_KEYS else _norm)(raw.get(key)) for key, _ in SHEET_COLUMNS
    }
    for key, title, limit in (
        ("item_code", "项目编码", 16),
        ("item", "测评项目", 200),
        ("content_code", "内容编码", 16),
        ("content", "测评内容", 200),
        ("code", "标准编码", 32),
        ("text", "测评标准", 2000),
    ):
        if not values[key]:
            raise InvalidInput(f"缺少{title}", field=key)
        if len(values[key]) > limit:
            raise InvalidInput(f"{title}过长（最多 {limit} 字）", field=key)
    score_raw = raw.get("score")
    try:
        if isinstance(score_raw, bool):
            raise InvalidOperation
        score = Decimal(str(score_raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"分值应为数字，收到 {shown(score_raw)}", field="score") from None
    if (
        not score.is_finite()
        or score <= 0
        or score >= 10000
        or score != score.quantize(Decimal("0.01"))
    ):
        raise InvalidInput("分值应为大于 0 的数（最多两位小数）", field="score")
    kind_values = raw.get("kinds")
    if isinstance(kind_values, str) or kind_values is None:
        names = [n.strip() for n in re.split(r"[,，、;；\s]+", _norm(kind_values)) if n.strip()]
    elif isinstance(kind_values, list):
        names = [_norm(n) for n in kind_values if _norm(n)]
    else:
        raise InvalidInput("适用点位类别应为类别名称或代码的列表", field="kinds")
    if not names:
        raise InvalidInput("缺少适用点位类别", field="kinds")
    unknown = [n for n in names if n not in kinds]
    if unknown:
        raise InvalidInput(f"未知点位类别「{unknown[0]}」", {"unknown": unknown}, "kinds")
    category = values["category"]
    if category not in categories:
        raise InvalidInput(
            f"未知问题类别「{category}」" if category else "缺少问题类别",
            {"categories": list(categories)},
            "category",
        )
    negative = raw.get("negative_list")
    if isinstance(negative, bool):
        negative_list = negative
    elif _norm(negative).lower() in YES:
        negative_list = True
    elif _norm(negative).lower() in NO:
        negative_list = False
    else:
        raise InvalidInput("负面清单应填“是”或“否”", field="negative_list")
    return Row(
        values["item_code"],
        values["item"],
        values["content_code"],
        values["content"],
        values["code"],
        values["text"],
        score,
        tuple(sorted({kinds[n] for n in names})),
        category,
        negative_list,
    )


def check_rows(
    session: Session, raws: Sequence[tuple[int, Mapping[str, Any]]], categories: Sequence[str]
) -> list[Row]:
    """Every row checked, and the tree's consistency (one title per 项目/内容 code, unique
    标准 codes); InvalidInput with a per-row report if anything is wrong."""
    kinds = _kinds_lookup(session)
    rows: list[Row] = []
    errors: list[dict[str, Any]] = []
    titles = dict(SHEET_COLUMNS)
    items: dict[str, str] = {}
    contents: dict[tuple[str, str], str] = {}
    codes: dict[str, int] = {}
    for number, raw in raws:
        try:
            row = check_row(raw, kinds, categories)
            if items.setdefault(row.item_code, row.item) != row.item:
                raise InvalidInput(
                    f"项目编码 {row.item_code} 已用于「{items[row.item_code]}」", field="item"
                )
            key = (row.item_code, row.content_code)
            if contents.setdefault(key, row.content) != row.content:
                raise InvalidInput(
                    f"内容编码 {row.content_code} 已用于「{contents[key]}」", field="content"
                )
            if row.code in codes:
                raise InvalidInput(
                    f"标准编码 {row.code} 与第 {codes[row.code]} 行重复", field="code"
                )
            codes[row.code] = number
            rows.append(row)
        except InvalidInput as exc:
            errors.append(
                {
                    "row": number,
                    "column": titles.get(exc.field or "", exc.field),
                    "error": exc.error,
                }
            )
    if errors:
        raise InvalidInput(
            f"测评体系有 {len(errors)} 行不符合要求，全部未写入", {"errors": errors}, "file"
        )
    if not rows:
        raise InvalidInput("测评体系中没有任何标准", field="items")
    return rows


def rows_from_tree(tree: Any) -> list[tuple[int, dict[str, Any]]]:
    """A JSON tree {items: [{code, title, contents: [{code, title, standards: [...]}]}]}
    flattened into sheet rows (numbered from 1 in order)."""
    if not isinstance(tree, list):
        raise InvalidInput("items 必须是数组（测评项目）", field="items")
    out: list[tuple[int, dict[str, Any]]] = []
    for i, item in enumerate(tree):
        if not isinstance(item, Mapping) or not isinstance(item.get("contents"), list):
            raise InvalidInput("每个项目须有 code、title 和 contents 数组", field=f"items[{i}]")
        for j, content in enumerate(item["contents"]):
            if not isinstance(content, Mapping) or not isinstance(content.get("standards"), list):
                raise InvalidInput(
                    "每个内容须有 code、title 和 standards 数组",
                    field=f"items[{i}].contents[{j}]",
                )
            for standard in content["standards"]:
                if not isinstance(standard, Mapping):
                    raise InvalidInput("每条标准必须是对象", field=f"items[{i}].contents[{j}]")
                out.append(
                    (
                        len(out) + 1,
                        {
                            "item_code": item.get("code"),
                            "item": item.get("title"),
                            "content_code": content.get("code"),
                            "content": content.get("title"),
                            **{
                                k: standard.get(k)
                                for k in (
                                    "code",
                                    "text",
                                    "score",
                                    "kinds",
                                    "category",
                                    "negative_list",
                                )
                            },
                        },
                    )
                )
    return out


# --- writing ---------------------------------------------------------------------------------


def _write_rows(session: Session, version: StandardVersion, rows: Sequence[Row]) -> None:
    items: dict[str, StandardItem] = {}
    contents: dict[tuple[str, str], StandardContent] = {}
    for position, row in enumerate(rows):
        item = items.get(row.item_code)
        if item is None:
            item = StandardItem(
                version_id=version.id, code=row.item_code, title=row.item, position=len(items)
            )
            session.add(item)
            session.flush()
            items[row.item_code] = item
        key = (row.item_code, row.content_code)
        content = contents.get(key)
        if content is None:
            content = StandardContent(
                item_id=item.id, code=row.content_code, title=row.content, position=len(contents)
            )
            session.add(content)
            session.flush()
            contents[key] = content
        standard = Standard(
            version_id=version.id,
            content_id=content.id,
            code=row.code,
            text=row.text,
            score=row.score,
            category=row.category,
            negative_list=row.negative_list,
            position=position,
        )
        session.add(standard)
        session.flush()
        session.add_all(StandardKind(standard_id=standard.id, kind_id=k) for k in row.kind_ids)
    session.flush()


def _version_name(session: Session, raw: Any, exclude_id: int | None = None) -> str:
    name = _norm(raw)
    if not name:
        raise InvalidInput("缺少版本名称", field="name")
    if len(name) > 100:
        raise InvalidInput("版本名称过长（最多 100 字）", field="name")
    clash = session.scalar(select(StandardVersion.id).where(StandardVersion.name == name))
    if clash is not None and clash != exclude_id:
        raise Conflict(f"版本名称「{name}」已存在", field="name")
    return name


def create_version(
    session: Session,
    name: Any,
    raws: Sequence[tuple[int, Mapping[str, Any]]],
    categories: Sequence[str],
    note: str = "",
) -> StandardVersion:
    """A new version from rows (checked whole first)."""
    name = _version_name(session, name)
    rows = check_rows(session, raws, categories)
    version = StandardVersion(name=name, note=str(note or "")[:2000])
    session.add(version)
    session.flush()
    _write_rows(session, version, rows)
    return version


def replace_version(
    session: Session,
    version_id: int,
    raws: Sequence[tuple[int, Mapping[str, Any]]],
    categories: Sequence[str],
    name: Any = None,
) -> StandardVersion:
    """Rewrites a version's tree; refused (409) once the version has results."""
    version = get_version(session, version_id)
    check_editable(session, version.id)
    rows = check_rows(session, raws, categories)
    if name is not None:
        version.name = _version_name(session, name, exclude_id=version.id)
    session.execute(delete(StandardItem).where(StandardItem.version_id == version.id))
    session.flush()
    _write_rows(session, version, rows)
    return version


def delete_version(session: Session, version_id: int) -> None:
    version = get_version(session, version_id)
    rounds = session.scalar(select(func.count()).where(AssessmentRound.version_id == version.id))
    if rounds:
        raise Conflict(f"该版本已用于 {rounds} 轮测评，不能删除", field="version_id")
    session.delete(version)
    session.flush()


def copy_version(session: Session, version_id: int, name: Any) -> StandardVersion:
    """A new, editable version with the same tree."""
    source = get_version(session, version_id)
    new_name = _version_name(session, name)
    raws = [(i + 1, r) for i, r in enumerate(version_rows(session, source.id))]
    rows = [
        Row(
            r["item_code"], r["item"], r["content_code"], r["content"], r["code"], r["text"],
            Decimal(str(r["score"])), tuple(sorted(r["kind_ids"])), r["category"],
            r["negative_list"],
        )
        for _, r in raws
    ]  # fmt: skip
    version = StandardVersion(
        name=new_name, note=f"复制自「{source.name}」", copied_from_id=source.id
    )
    session.add(version)
    session.flush()
    _write_rows(session, version, rows)
    return version


# --- reading ---------------------------------------------------------------------------------


def version_rows(session: Session, version_id: int) -> list[dict[str, Any]]:
    """The version's standards as flat rows, in tree order."""
    kinds = {k.id: (k.code, k.name) for k in session.scalars(select(SiteKind))}
    applies: dict[int, list[int]] = {}
    for standard_id, kind_id in session.execute(
        select(StandardKind.standard_id, StandardKind.kind_id)
        .join(Standard, Standard.id == StandardKind.standard_id)
        .where(Standard.version_id == version_id)
    ):
        applies.setdefault(standard_id, []).append(kind_id)
    rows = session.execute(
        select(StandardItem, StandardContent, Standard)
        .join(StandardContent, StandardContent.item_id == StandardItem.id)
        .join(Standard, Standard.content_id == StandardContent.id)
        .where(StandardItem.version_id == version_id)
        .order_by(StandardItem.position, StandardContent.position, Standard.position)
    )
    out = []
    for item, content, standard in rows:
        kind_ids = sorted(applies.get(standard.id, []))
        out.append(
            {
                "id": standard.id,
                "item_code": item.code,
                "item": item.title,
                "content_code": content.code,
                "content": content.title,
                "code": standard.code,
                "text": standard.text,
                "score": float(standard.score),
                "kind_ids": kind_ids,
                "kinds": [kinds[k][0] for k in kind_ids if k in kinds],
                "kind_names": [kinds[k][1] for k in kind_ids if k in kinds],
                "category": standard.category,
                "negative_list": standard.negative_list,
            }
        )
    return out


def version_json(session: Session, version: StandardVersion, tree: bool = True) -> dict[str, Any]:
    rows = version_rows(session, version.id)
    out: dict[str, Any] = {
        "id": version.id,
        "name": version.name,
        "note": version.note,
        "copied_from_id": version.copied_from_id,
        "standards": len(rows),
        "results": result_count(session, version.id),
    }
    out["editable"] = out["results"] == 0
    if tree:
        items: list[dict[str, Any]] = []
        for r in rows:
            if not items or items[-1]["code"] != r["item_code"]:
                items.append({"code": r["item_code"], "title": r["item"], "contents": []})
            contents = items[-1]["contents"]
            if not contents or contents[-1]["code"] != r["content_code"]:
                contents.append({"code": r["content_code"], "title": r["content"], "standards": []})
            contents[-1]["standards"].append(
                {
                    k: r[k]
                    for k in ("id", "code", "text", "score", "kinds", "category", "negative_list")
                }
            )
        out["items"] = items
    return out


def list_versions(session: Session) -> list[dict[str, Any]]:
    versions = session.scalars(select(StandardVersion).order_by(StandardVersion.id)).all()
    return [version_json(session, v, tree=False) for v in versions]


# --- spreadsheets ----------------------------------------------------------------------------


def read_sheet(source: bytes | IO[bytes]) -> list[tuple[int, dict[str, Any]]]:
    wb = open_upload(source, MAX_ROWS + 20)
    try:
        for ws in wb.worksheets:
            header: dict[int, str] | None = None
            out: list[tuple[int, dict[str, Any]]] = []
            for number, values in enumerate(
                ws.iter_rows(max_col=len(SHEET_COLUMNS) + 10, values_only=True), start=1
            ):
                if header is None:
                    if number > 10:
                        break
                    keys = {
                        i: HEADER_KEYS.get(re.sub(r"[\s*＊]", "", _norm(v)))
                        for i, v in enumerate(values)
                    }
                    keys = {i: k for i, k in keys.items() if k}
                    if {"code", "text", "score"} <= set(keys.values()):
                        header = keys
                    continue
                if len(out) >= MAX_ROWS:
                    raise InvalidInput(f"超过 {MAX_ROWS} 条标准，请检查文件", field="file")
                row = {k: values[i] if i < len(values) else None for i, k in header.items()}
                if all(_norm(v) == "" for v in row.values()):
                    continue
                out.append((number, row))
            if header is not None:
                return out
    finally:
        wb.close()
    raise InvalidInput(
        "没有找到测评体系表头：表头行须包含「标准编码」「测评标准」「分值」", field="file"
    )


def export_sheet(session: Session, version_id: int) -> bytes:
    version = get_version(session, version_id)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("测评体系")
    ws.append([header for _, header in SHEET_COLUMNS])
    for r in version_rows(session, version.id):
        ws.append(
            text_row(
                ws,
                [
                    r["item_code"],
                    r["item"],
                    r["content_code"],
                    r["content"],
                    r["code"],
                    r["text"],
                    r["score"],
                    "、".join(r["kind_names"]),
                    r["category"],
                    "是" if r["negative_list"] else "否",
                ],
            )
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def applicable(session: Session, version_id: int, kind_id: int) -> list[dict[str, Any]]:
    """The version's standards that apply to a kind, in tree order."""
    return [r for r in version_rows(session, version_id) if kind_id in r["kind_ids"]]
