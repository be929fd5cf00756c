"""包保 rosters in Excel: import (all-or-nothing, with a per-row report) and the template.

A roster sheet has a header row (found among the first rows, so a title row above it is fine)
naming some of the columns of `COLUMNS` in Chinese; each row names a leader (姓名, 职务, 单位,
电话, 层级), a role (角色) and a place (图层 + 编码, or 名称 when it is unambiguous). Merged
cells (a leader's cells merged over their rows, as in the exported 一览表) count for every row
they span, so an exported 一览表 imports back unchanged.

Import: every row is checked and applied inside a savepoint; if any row is rejected, or on a
dry run, the savepoint is rolled back and nothing is written. Missing units and leaders are
created; a row whose assignment is already active changes nothing, so re-importing a roster is
harmless. A row marked primary (是否主要 = 是) replaces the place's current primary leader
(that assignment is closed, not overwritten).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.accounts import audit
from geoservice.models import Assignment, Leader, Place, Unit, User
from geoservice.registry import LayerRegistry, LayerSpec
from geoservice.responsibility import responsibility as resp
from geoservice.xlsx_guard import SpreadsheetRefused, open_xlsx

MAX_ROWS = 20_000
HEADER_SCAN_ROWS = 10
SHEET_NAME = "包保清单"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    aliases: tuple[str, ...]
    width: int
    help: str


COLUMNS: tuple[Column, ...] = (
    Column(
        "name",
        "姓名",
        ("领导姓名", "包保领导", "联点领导", "责任人", "包保责任人"),
        10,
        "必填，中文姓名",
    ),
    Column("title", "职务", ("职位",), 22, "选填"),
    Column(
        "unit",
        "单位",
        ("责任单位", "包保单位", "所在单位", "工作单位"),
        22,
        "选填；系统中没有的单位会自动新建；同名领导以单位区分",
    ),
    Column(
        "phone",
        "电话",
        ("联系电话", "手机", "手机号", "联系方式"),
        16,
        "选填；手机号11位，固定电话如0515-88881234",
    ),
    Column("level", "层级", ("级别", "领导层级"), 9, "新建领导时必填；从下拉列表选择"),
    Column("role", "角色", ("包保角色", "责任角色"), 12, "必填；从下拉列表选择"),
    Column(
        "layer",
        "图层",
        ("类型", "地点类型", "点位类型"),
        11,
        "从下拉列表选择；留空时按编码或名称在所有图层中查找",
    ),
    Column(
        "code",
        "编码",
        ("地点编码", "要素编码", "网格编码", "点位编码"),
        20,
        "编码与名称至少填一项；填了编码以编码为准",
    ),
    Column(
        "place_name",
        "名称",
        ("地点名称", "点位名称", "包保地点", "包保点位", "要素名称"),
        24,
        "只填名称时，名称须唯一",
    ),
    Column(
        "primary",
        "是否主要",
        ("主要负责人", "是否主要负责人", "主要"),
        9,
        "是/否；留空时，若该地点尚无主要负责人则按“是”处理",
    ),
    Column(
        "valid_from",
        "起始日期",
        ("生效日期", "开始日期", "包保起始日期"),
        12,
        "选填，如2026-03-01；留空为导入当天",
    ),
    Column("note", "备注", ("说明",), 20, "选填"),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
IGNORED_HEADERS = ("序号", "编号")


class RosterFileError(resp.Invalid):
    """The file is not a readable roster workbook."""


# ---------------------------------------------------------------------------------------------
# Reading.


@dataclass
class RawRow:
    number: int  # the Excel row number, as the planner sees it
    values: dict[str, Any]


@dataclass
class ParsedSheet:
    sheet: str
    header_row: int
    columns: list[str]
    rows: list[RawRow]


def _header_key(value: Any) -> str | None:
    text = re.sub(r"[\s*＊:：]", "", unicodedata.normalize("NFKC", str(value or "")))
    for column in COLUMNS:
        if text == column.header or text in column.aliases:
            return column.key
    return None


MAX_SCAN_COLUMNS = 60  # columns searched for the header and read


def _merged_values(
    grid: list[tuple[Any, ...]], ranges: list[tuple[int, int, int, int]]
) -> dict[tuple[int, int], Any]:
    """{(row, col): the top-left value} for every cell of a merged range (within the scanned
    columns; check_xlsx has bounded the ranges)."""
    filled = {}
    for min_row, min_col, max_row, max_col in ranges:
        if min_col > MAX_SCAN_COLUMNS:
            continue
        top = grid[min_row - 1] if min_row <= len(grid) else ()
        value = top[min_col - 1] if min_col <= len(top) else None
        for row in range(min_row, max_row + 1):
            for col in range(min_col, min(max_col, MAX_SCAN_COLUMNS) + 1):
                filled[(row, col)] = value
    return filled


def read_roster(source: str | Path | bytes | IO[bytes]) -> ParsedSheet:
    """Finds the first sheet with a roster header and reads its rows (merged cells filled).

    The workbook is checked first (geoservice.xlsx_guard: sizes, dimensions, rows, merged
    ranges) and then read in openpyxl's read-only mode, so a crafted file is refused in
    moments instead of holding a worker."""
    try:
        workbook, merged = open_xlsx(source, max_rows=MAX_ROWS + HEADER_SCAN_ROWS)
    except SpreadsheetRefused as exc:  # no workbook too: a 400, as documented for 包保
        raise RosterFileError(str(exc), field="file") from None
    try:
        for ws in workbook.worksheets:
            ranges = merged.get(getattr(ws, "_worksheet_path", ""), [])
            parsed = _read_sheet(ws, ranges)
            if parsed is not None:
                return parsed
    finally:
        workbook.close()
    required = "、".join(COLUMN_BY_KEY[k].header for k in ("name", "role"))
    raise RosterFileError(
        f"没有找到包保清单表头：表头行须包含{required}，以及编码或名称",
        detail={"sheets": workbook.sheetnames},
        field="file",
    )


def _read_sheet(ws, ranges: list[tuple[int, int, int, int]]) -> ParsedSheet | None:
    if not hasattr(ws, "iter_rows"):  # a chart sheet
        return None
    grid = [
        tuple(row) for row in ws.iter_rows(min_row=1, max_col=MAX_SCAN_COLUMNS, values_only=True)
    ]
    merged = _merged_values(grid, ranges)
    last_row = max([len(grid), *(r[2] for r in ranges)])

    def value(row: int, col: int) -> Any:
        if (row, col) in merged:
            return merged[(row, col)]
        cells = grid[row - 1] if row <= len(grid) else ()
        return cells[col - 1] if col <= len(cells) else None

    for header_row in range(1, min(last_row, HEADER_SCAN_ROWS) + 1):
        keys = {}
        for col in range(1, MAX_SCAN_COLUMNS + 1):
            key = _header_key(value(header_row, col))
            if key is not None and key not in keys.values():
                keys[col] = key
        found = set(keys.values())
        if {"name", "role"} <= found and found & {"code", "place_name"}:
            break
    else:
        return None
    if last_row - header_row > MAX_ROWS:
        raise RosterFileError(f"清单行数超过上限 {MAX_ROWS} 行，请分批导入", field="file")
    rows = []
    for number in range(header_row + 1, last_row + 1):
        values = {key: value(number, col) for col, key in keys.items()}
        if all(_text(v) == "" for v in values.values()):
            continue
        rows.append(RawRow(number, values))
    return ParsedSheet(ws.title, header_row, list(keys.values()), rows)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


# ---------------------------------------------------------------------------------------------
# Importing.


@dataclass
class RowReport:
    row: int
    status: str = "pending"  # created | unchanged | rejected
    leader: str = ""
    place: str = ""
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "status": self.status,
            "leader": self.leader,
            "place": self.place,
            "actions": self.actions,
            "errors": self.errors,
        }

    def line(self, applied: bool) -> str:
        """`applied`: the list was written (else a row that would be imported is 可导入)."""
        created = "已导入" if applied else "可导入"
        label = {"created": created, "unchanged": "无变化", "rejected": "拒绝"}.get(
            self.status, self.status
        )
        what = " ".join(x for x in (self.leader, self.place) if x)
        detail = "；".join(self.errors or self.actions)
        return f"第{self.row}行 [{label}] {what}：{detail}"


@dataclass
class ImportReport:
    sheet: str = ""
    dry_run: bool = False
    rows: list[RowReport] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    applied: bool = False

    @property
    def rejected(self) -> list[RowReport]:
        return [r for r in self.rows if r.status == "rejected"]

    @property
    def ok(self) -> bool:
        return not self.rejected

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "counts": self.counts,
            "rows": [r.as_dict() for r in self.rows],
        }

    def summary(self) -> str:
        c = self.counts
        if not self.ok:
            return (
                f"导入失败：共 {c.get('rows', 0)} 行，其中 {len(self.rejected)} 行被拒绝"
                "（见逐行说明），整份清单未写入任何数据；请修改后重新上传"
            )
        head = "试导入通过（未写入），正式导入将" if self.dry_run else "导入完成："
        return (
            f"{head}新增包保 {c.get('assignments_created', 0)} 条，"
            f"结束原主要负责人 {c.get('assignments_closed', 0)} 条，"
            f"无变化 {c.get('unchanged', 0)} 行，"
            f"新建单位 {c.get('units_created', 0)} 个，新建领导 {c.get('leaders_created', 0)} 人，"
            f"更新领导信息 {c.get('leaders_updated', 0)} 人（共 {c.get('rows', 0)} 行）"
        )


def _layer_lookup(registry: LayerRegistry) -> dict[str, LayerSpec]:
    table: dict[str, LayerSpec] = {}
    for spec in registry:
        for key in (spec.title, spec.name, spec.collection):
            table[key] = spec
    return table


def _parse_day(value: Any, timezone: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return resp.day_start(value.date(), timezone)
    if isinstance(value, date):
        return resp.day_start(value, timezone)
    text = _text(value)
    match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
    if not match:
        raise resp.Invalid(f"起始日期“{text}”格式不正确，应如 2026-03-01", field="valid_from")
    try:
        day = date(*(int(g) for g in match.groups()))
    except ValueError:
        raise resp.Invalid(f"起始日期“{text}”不是有效日期", field="valid_from") from None
    return resp.day_start(day, timezone)


class _Rejected(Exception):
    pass


def _fail(message: str):
    raise _Rejected(message)


class _Importer:
    """Resolves and applies rows one by one; state carries what earlier rows created."""

    def __init__(
        self,
        session: Session,
        registry: LayerRegistry,
        roles: Sequence[str],
        levels: Sequence[str],
        timezone: str,
        by: User | None,
        retired_levels: Sequence[str] = (),
    ) -> None:
        self.session = session
        # Retired levels stay valid on the leaders who have them (an export re-imports).
        self.retired_levels = [x for x in retired_levels if x not in levels]
        self.registry = registry
        self.layers = _layer_lookup(registry)
        self.roles = roles
        self.levels = levels
        self.timezone = timezone
        self.by = by
        self.counts = dict.fromkeys(
            (
                "rows",
                "assignments_created",
                "assignments_closed",
                "unchanged",
                "units_created",
                "leaders_created",
                "leaders_updated",
                "rejected",
            ),
            0,
        )
        # (leader id, place id, role) → row, for duplicates within the file.
        self.seen: dict[tuple[int, int, str], int] = {}
        # place id → row that made someone primary in this file.
        self.primary_rows: dict[int, int] = {}
        self.leader_rows: dict[int, tuple[int, str | None]] = {}

    # -- resolution helpers ------------------------------------------------------------------

    def place(self, values: dict[str, Any], report: RowReport) -> Place:
        layer_text = _text(values.get("layer"))
        code = _text(values.get("code"))
        name = _text(values.get("place_name"))
        spec = None
        if layer_text:
            spec = self.layers.get(layer_text)
            if spec is None:
                titles = "、".join(s.title for s in self.registry)
                raise _Rejected(f"未知图层“{layer_text}”，可选：{titles}")
        if not code and not name:
            raise _Rejected("未填写地点：编码与名称至少填一项")
        stmt = select(Place)
        if spec is not None:
            stmt = stmt.where(Place.layer == spec.name)
        if code:
            found = self.session.scalars(stmt.where(Place.code == code)).all()
            what = f"编码为“{code}”的"
        else:
            found = self.session.scalars(stmt.where(Place.name == name).limit(20)).all()
            what = f"名为“{name}”的"
        where = spec.title if spec else "任何图层"
        if not found:
            raise _Rejected(f"未知地点：{where}中没有{what}要素")
        if len(found) > 1:
            options = "、".join(f"{self._title(p.layer)}{p.code}" for p in found[:10])
            raise _Rejected(
                f"地点不明确：{where}中有 {len(found)} 个{what}要素（{options}），请填写图层和编码"
            )
        place = found[0]
        if code and name and name != place.name:
            report.actions.append(f"提示：表中名称“{name}”与系统名称“{place.name}”不同，以编码为准")
        return place

    def _title(self, layer: str) -> str:
        return self.registry.get(layer).title if layer in self.registry else layer

    def unit(self, name: str | None, report: RowReport) -> Unit | None:
        if name is None:
            return None
        unit = resp.unit_by_name(self.session, name)
        if unit is None:
            unit = resp.create_unit(self.session, name, by=self.by)
            self.counts["units_created"] += 1
            report.actions.append(f"新建单位“{name}”")
        return unit

    def leader_checks(self, values: dict[str, Any]) -> dict[str, Any]:
        """One check per leader column (no writes), so each problem is reported."""
        level_text = _text(values.get("level"))
        unit_text = _text(values.get("unit"))
        return {
            "name": lambda: resp.normalise_person_name(values.get("name")),
            "phone": lambda: resp.normalise_phone(values.get("phone")),
            "title": lambda: resp.normalise_title(values.get("title")),
            "level": lambda: (
                resp.normalise_choice(
                    level_text, [*self.levels, *self.retired_levels], "层级", "level"
                )
                if level_text
                else None
            ),
            "unit": lambda: resp.normalise_unit_name(unit_text, "unit") if unit_text else None,
        }

    def leader(self, fields: dict[str, Any], report: RowReport) -> Leader:
        name, phone, title, level = (fields[k] for k in ("name", "phone", "title", "level"))
        unit = self.unit(fields["unit"], report)
        stmt = select(Leader).where(Leader.name == name)
        if unit is not None:
            stmt = stmt.where(Leader.unit_id == unit.id)
        candidates = self.session.scalars(stmt.order_by(Leader.id)).all()
        if len(candidates) > 1 and phone:  # namesakes told apart by their phones (the export's)
            by_phone = [c for c in candidates if c.phone == phone]
            candidates = by_phone or candidates
        if unit is None and len(candidates) > 1:
            raise _Rejected(
                f"姓名不明确：系统中有 {len(candidates)} 位名为“{name}”的领导，"
                "请填写单位或联系电话以区分"
            )
        if len(candidates) > 1:
            raise _Rejected(
                f"姓名不明确：单位“{unit.name}”中有多位名为“{name}”的领导，请填写联系电话以区分"
            )
        if not candidates:
            if level is None:
                raise _Rejected(f"新建领导“{name}”须填写层级（{'、'.join(self.levels)}）")
            if level not in self.levels:
                raise _Rejected(f"层级“{level}”已停用，新建领导请用：{'、'.join(self.levels)}")
            leader = resp.create_leader(
                self.session,
                {
                    "name": name,
                    "title": title,
                    "phone": phone,
                    "level": level,
                    "unit_id": unit.id if unit else None,
                },
                self.levels,
                by=self.by,
            )
            self.counts["leaders_created"] += 1
            report.actions.append(f"新建领导“{name}”")
            self.leader_rows[leader.id] = (report.row, phone)
            return leader
        leader = candidates[0]
        if not leader.active:
            raise _Rejected(f"领导“{name}”已停用，不能分配包保责任")
        first = self.leader_rows.get(leader.id)
        if first is not None and phone and first[1] and phone != first[1]:
            raise _Rejected(f"“{name}”的电话与第{first[0]}行不一致（{first[1]} / {phone}）")
        if first is None or (phone and not first[1]):
            self.leader_rows[leader.id] = (report.row, phone)
        changes = {}
        if phone and phone != leader.phone:
            changes["phone"] = phone
        if title and title != leader.title:
            changes["title"] = title
        if level and level != leader.level:
            if level not in self.levels:
                raise _Rejected(
                    f"层级“{level}”已停用，不能改为该层级（可用：{'、'.join(self.levels)}）"
                )
            changes["level"] = level
        if changes:
            labels = {"phone": "电话", "title": "职务", "level": "层级"}
            old = {k: getattr(leader, k) for k in changes}
            resp.update_leader(self.session, leader.id, changes, self.levels, by=self.by)
            self.counts["leaders_updated"] += 1
            report.actions.append(
                "更新领导信息："
                + "，".join(f"{labels[k]} {old[k] or '（空）'} → {v}" for k, v in changes.items())
            )
        return leader

    # -- one row -----------------------------------------------------------------------------

    def row(self, raw: RawRow, report: RowReport) -> None:
        values = raw.values
        checked: dict[str, Any] = {}
        primary_text = _text(values.get("primary"))
        role_text = _text(values.get("role"))
        checks = {
            "role": lambda: (
                resp.normalise_choice(role_text, self.roles, "角色", "role")
                if role_text
                else _fail("未填写角色")
            ),
            "place": lambda: self.place(values, report),
            **self.leader_checks(values),
            "start": lambda: _parse_day(values.get("valid_from"), self.timezone),
            "primary": lambda: resp.as_bool(primary_text, "primary") if primary_text else None,
            "note": lambda: resp.normalise_note(values.get("note")),
        }
        # Check every column first, so a row reports all its problems at once.
        for key, check in checks.items():
            try:
                checked[key] = check()
            except _Rejected as exc:
                report.errors.append(str(exc))
            except resp.ServiceError as exc:
                report.errors.append(exc.message)
        if "place" in checked:
            place = checked["place"]
            report.place = f"{self._title(place.layer)} {place.code} {place.name}"
        if report.errors:
            raise _Rejected("；".join(report.errors))
        role, place, start, explicit = (checked[k] for k in ("role", "place", "start", "primary"))
        leader = self.leader(checked, report)
        report.leader = leader.name

        key = (leader.id, place.id, role)
        if key in self.seen:
            raise _Rejected(f"与第{self.seen[key]}行重复（同一领导、同一地点、同一角色）")
        self.seen[key] = raw.number

        active = self.session.scalars(
            select(Assignment).where(
                Assignment.place_id == place.id,
                Assignment.valid_to.is_(None),
            )
        ).all()
        existing = next((a for a in active if (a.leader_id, a.role) == (leader.id, role)), None)
        current_primary = next((a for a in active if a.is_primary), None)
        if explicit is True and place.id in self.primary_rows:
            raise _Rejected(
                f"与第{self.primary_rows[place.id]}行同为该地点的主要负责人，一个地点只能有一位"
            )
        if existing is not None:
            if explicit is not None and explicit != existing.is_primary:
                report.actions.append("提示：主次与系统记录不同，未改动（请在系统中调整）")
            if existing.is_primary:
                self.primary_rows.setdefault(place.id, raw.number)
            report.status = "unchanged"
            report.actions.append(f"已是该地点的{role}，无变化")
            self.counts["unchanged"] += 1
            return
        if explicit is None:
            is_primary = current_primary is None and place.id not in self.primary_rows
            report.actions.append(
                "未填是否主要：按主要负责人处理" if is_primary else "未填是否主要：按非主要处理"
            )
        else:
            is_primary = explicit
        result = resp.assign(
            self.session,
            leader_id=leader.id,
            place_id=place.id,
            role=role,
            roles=self.roles,
            is_primary=is_primary,
            valid_from=start,
            note=checked["note"],
            replace_primary=True,
            by=self.by,
        )
        if is_primary:
            self.primary_rows[place.id] = raw.number
        for old in result.closed:
            report.actions.append(f"接替原主要负责人 {old.leader.name}（{old.role}）")
            self.counts["assignments_closed"] += 1
        report.actions.append(f"新增{'主要' if is_primary else ''}{role}")
        report.status = "created"
        self.counts["assignments_created"] += 1


def import_roster(
    session: Session,
    registry: LayerRegistry,
    source: str | Path | bytes | IO[bytes] | ParsedSheet,
    *,
    roles: Sequence[str],
    levels: Sequence[str],
    timezone: str,
    by: User | None = None,
    dry_run: bool = False,
    retired_levels: Sequence[str] = (),
) -> ImportReport:
    """Imports a roster all-or-nothing. `roles` and `levels` are those in force (new leaders
    and assignments take them); a leader keeps a level of `retired_levels` they already have.
    Writes stay in the session (the caller commits) only when every row passed and `dry_run`
    is false; otherwise they are rolled back."""
    parsed = source if isinstance(source, ParsedSheet) else read_roster(source)
    if not parsed.rows:
        raise RosterFileError(f"工作表“{parsed.sheet}”表头下没有数据行", field="file")
    report = ImportReport(sheet=parsed.sheet, dry_run=dry_run)
    importer = _Importer(session, registry, roles, levels, timezone, by, retired_levels)
    savepoint = session.begin_nested()
    try:
        for raw in parsed.rows:
            row_report = RowReport(raw.number, leader=_text(raw.values.get("name")))
            report.rows.append(row_report)
            importer.counts["rows"] += 1
            row_savepoint = session.begin_nested()
            try:
                importer.row(raw, row_report)
                row_savepoint.commit()
            except (_Rejected, resp.ServiceError) as exc:
                row_savepoint.rollback()
                row_report.status = "rejected"
                if not row_report.errors:
                    row_report.errors.append(
                        exc.message if isinstance(exc, resp.ServiceError) else str(exc)
                    )
                importer.counts["rejected"] += 1
        if report.ok and not dry_run and report.rows:
            audit.record(
                session,
                by,
                "roster.import",
                "roster",
                None,
                after={"sheet": parsed.sheet, "counts": importer.counts},
                actor=None if by else "cli",
            )
            savepoint.commit()
            report.applied = True
        else:
            savepoint.rollback()
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    report.counts = importer.counts
    return report
