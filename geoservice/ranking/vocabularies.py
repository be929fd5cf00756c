"""City rules as data, effective-dated: ranking weights, the line (85), 后N名, category time
limits, photo rules and 负面清单 categories, and the vocabularies (categories in use, sources,
leader levels, 包保 roles: stored and read by geoservice.rules, validated here with the rest).

Each rule is a key with values in force from a moment (`rule_settings`, never updated: a
change is a new row, written by an admin with a reason, audited). The value at moment T is the
row with the latest `valid_from` ≤ T; without one, the app configuration's value (config.py).

* Rankings use the values in force **at the start of each period** (ranking_settings_for): a
  change effective on the 18th applies from the first period starting on or after the 18th, so
  the rules of a period are known when it starts and a closed period keeps its rules.
* Deadlines use the category time limits in force when the deadline is set (交办).
* A new value must take effect now or later: the past is never re-ruled.
* A category in use always has a time limit; a 包保 role held by current assignments cannot be
  removed (409: end or reassign them first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from geoservice import rules
from geoservice.input_values import shown, text_value
from geoservice.issues.workflow import IssueSettings
from geoservice.models import Assignment, RuleSetting, User
from geoservice.ranking import ranking
from geoservice.ranking.periods import Period
from geoservice.service_errors import Conflict, InvalidInput


def _weights(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or set(value) - set(ranking.DEFAULT_WEIGHTS):
        raise InvalidInput(f"权重应为对象，键为 {sorted(ranking.DEFAULT_WEIGHTS)}", field="value")
    out = {**ranking.DEFAULT_WEIGHTS}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise InvalidInput(f"权重 {k} 应为非负数", field="value")
        out[k] = float(v)
    if not sum(out.values()):
        raise InvalidInput("权重不能全为 0", field="value")
    return out


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise InvalidInput("达标线应为 0–100 之间的数", field="value")
    return float(value)


def _bottom_n(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise InvalidInput("后N名的 N 应为 0–100 之间的整数", field="value")
    return value


def _category_hours(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise InvalidInput("应为对象：{类别: 时限小时数}", field="value")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k.strip() or len(k) > 32:
            raise InvalidInput("类别名称应为 1–32 字", field="value")
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 24 * 366:
            raise InvalidInput(f"类别 {k} 的时限应为正的小时数", field="value")
        out[k.strip()] = float(v)
    return out


def _category_photos(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise InvalidInput("应为对象：{类别: 上报至少照片数}", field="value")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 9:
            raise InvalidInput(f"类别 {k} 的照片数应为 0–9 的整数", field="value")
        out[str(k)] = v
    return out


def _category_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise InvalidInput("应为类别名称的列表", field="value")
    return sorted({x.strip() for x in value})


# key → (title, validator)
RULES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "ranking_weights": ("综合得分权重（按期结案率、结案率、不返工率）", _weights),
    "ranking_threshold": ("达标线（低于此分标记）", _threshold),
    "ranking_bottom_n": ("后N名的 N", _bottom_n),
    "category_deadline_hours": ("问题类别处置时限（小时；未列出的类别沿用配置）", _category_hours),
    "category_min_photos": (
        "问题类别上报至少照片数（未列出的沿用 REPORT_MIN_PHOTOS）",
        _category_photos,
    ),
    "negative_list_categories": ("负面清单类别（上报即列入负面清单）", _category_list),
    # The vocabularies (geoservice.rules): whole lists, in force from a date.
    **{v.key: (v.title, rules.name_list(v.what)) for v in rules.VOCABULARIES.values()},
}
ISSUE_KEYS = (
    "category_deadline_hours",
    "category_min_photos",
    "negative_list_categories",
    "issue_categories",
    "issue_sources",
)


def in_force(session: Session, key: str, at: datetime) -> RuleSetting | None:
    return rules.in_force(session, key, at)


def ranking_settings(session: Session, config: Mapping[str, Any], at: datetime) -> ranking.Settings:
    base = ranking.Settings.from_config(config)
    values = rules.in_force_many(
        session, ("ranking_weights", "ranking_threshold", "ranking_bottom_n"), at
    )
    weights = values.get("ranking_weights")
    threshold = values.get("ranking_threshold")
    bottom = values.get("ranking_bottom_n")
    return ranking.Settings(
        weights=dict(weights) if weights is not None else dict(base.weights),
        threshold=float(threshold) if threshold is not None else base.threshold,
        bottom_n=int(bottom) if bottom is not None else base.bottom_n,
    )


def ranking_settings_for(
    session: Session, config: Mapping[str, Any], periods: Sequence[Period]
) -> list[ranking.Settings]:
    """The ranking settings of each period: those in force at its start."""
    return [ranking_settings(session, config, p.start) for p in periods]


def category_hours(
    config: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, float]:
    """Every category's time limit: the configuration's, with the rule's overrides."""
    return {**{k: float(v) for k, v in config["ISSUE_CATEGORIES"].items()}, **(overrides or {})}


def issue_settings(session: Session, config: Mapping[str, Any], at: datetime) -> IssueSettings:
    """The issue settings in force at `at` (one query): the categories accepting new reports
    with their time limits (retired ones keep theirs for the issues that have them), the
    sources, and the per-category photo and 负面清单 rules."""
    base = IssueSettings.from_config(config)
    values = rules.in_force_many(session, ISSUE_KEYS, at)
    hours = category_hours(config, values.get("category_deadline_hours"))
    active = values.get("issue_categories")
    if active is None:
        active = list(base.categories)
    default = max(hours.values(), default=72.0)
    return dataclasses.replace(
        base,
        categories={c: hours.get(c, default) for c in active},
        retired_categories={c: h for c, h in hours.items() if c not in active},
        sources=tuple(values["issue_sources"]) if "issue_sources" in values else base.sources,
        category_min_photos=dict(values.get("category_min_photos") or {}),
        negative_list_categories=frozenset(values.get("negative_list_categories") or ()),
    )


def _check_categories(
    session: Session, config: Mapping[str, Any], key: str, value: Any, at: datetime
) -> None:
    """Every category in use from `at` keeps a time limit (the configuration's or a rule's),
    whether the change is to the list (`issue_categories`) or to the limits."""
    current = rules.in_force_many(session, ("issue_categories", "category_deadline_hours"), at)
    current[key] = value
    hours = category_hours(config, current.get("category_deadline_hours"))
    names = current.get("issue_categories") or list(config["ISSUE_CATEGORIES"])
    missing = [c for c in names if c not in hours]
    if missing:
        raise InvalidInput(
            f"类别「{'、'.join(missing)}」没有处置时限：请用“新增或修改类别”连同时限一并设定",
            {"missing": missing},
            "value",
        )


def _check_roles(session: Session, roles: list[str], at: datetime) -> None:
    """A role still held by assignments current at `at` cannot be removed: refused (409)."""
    in_use = session.execute(
        select(Assignment.role, func.count())
        .where(
            Assignment.role.not_in(roles),
            or_(Assignment.valid_to.is_(None), Assignment.valid_to > at),
        )
        .group_by(Assignment.role)
        .order_by(Assignment.role)
    ).all()
    if in_use:
        held = "、".join(f"{role}（{n} 条）" for role, n in in_use)
        raise Conflict(
            f"不能删除仍在使用的包保角色：{held} 的包保责任在生效时仍有效。"
            "请先结束或改派这些包保责任（或改到其他角色），再删除该角色",
            {"in_use": {role: n for role, n in in_use}},
            "value",
        )


def _check_sources(config: Mapping[str, Any], sources: list[str]) -> None:
    """A source the service itself gives new issues cannot leave the list (those reports would
    be refused from then on): refused (409), naming what uses it."""
    needed = {
        name: functions
        for name, functions in rules.system_sources(config).items()
        if name not in sources
    }
    if needed:
        used = "；".join(f"「{name}」用于{'、'.join(f)}" for name, f in needed.items())
        raise Conflict(
            f"不能停用系统自动使用的问题来源：{used}。"
            "停用后这些渠道的问题将无法生成；如需改名，请先修改系统配置中的对应来源",
            {"required": sorted(needed)},
            "value",
        )


def set_rule(
    session: Session,
    actor: User | None,
    key: str,
    value: Any,
    valid_from: datetime | None,
    note: str,
    now: datetime | None = None,
    config: Mapping[str, Any] | None = None,
) -> RuleSetting:
    """A new value of `key` from `valid_from` (default now; not in the past). The caller audits
    and commits. `config` (the app's) checks that categories in use have a time limit."""
    rules.lock_changes(session)
    now = now or rules.now()
    if key not in RULES:
        raise InvalidInput(f"未知的规则 {shown(key)}", {"keys": list(RULES)}, "key")
    note, valid_from = rules.check_change(note, valid_from, now)
    clean = RULES[key][1](value)
    if key in ("issue_categories", "category_deadline_hours") and config is not None:
        _check_categories(session, config, key, clean, valid_from)
    if key == "assignment_roles":
        _check_roles(session, clean, valid_from)
    if key == "issue_sources" and config is not None:
        _check_sources(config, clean)
    return rules.insert(session, actor, key, clean, valid_from, note)


def set_category(
    session: Session,
    actor: User | None,
    config: Mapping[str, Any],
    fields: Mapping[str, Any],
    now: datetime | None = None,
) -> list[RuleSetting]:
    """Adds a category (or changes one) with its time limit, photos and 负面清单 flag, in one
    change from one date: one new row for each rule it alters, all from the same moment.

    fields: name, deadline_hours, min_photos (optional), negative_list (optional bool),
    valid_from (optional), note. Refused when one of those rules already has a change planned
    after that date (the planned value would drop this one)."""
    rules.lock_changes(session)
    now = now or rules.now()
    note, valid_from = rules.check_change(
        text_value(fields.get("note"), "note", "备注"), fields.get("valid_from"), now
    )
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("请填写类别名称", field="name")
    try:
        name = rules.name_list("问题类别")([name])[0]
    except InvalidInput as exc:
        raise InvalidInput(exc.error, field="name") from None
    hours = fields.get("deadline_hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 366:
        raise InvalidInput("处置时限应为正的小时数（不超过一年）", field="deadline_hours")
    hours = float(hours)
    photos = fields.get("min_photos")
    if photos is not None and (
        isinstance(photos, bool) or not isinstance(photos, int) or not 0 <= photos <= 9
    ):
        raise InvalidInput("上报至少照片数应为 0–9 的整数", field="min_photos")
    negative = fields.get("negative_list")
    if negative is not None and not isinstance(negative, bool):
        raise InvalidInput("negative_list 应为 true 或 false", field="negative_list")
    current = rules.in_force_many(session, ISSUE_KEYS, valid_from)
    active = list(current.get("issue_categories") or config["ISSUE_CATEGORIES"])
    changes: dict[str, Any] = {
        "category_deadline_hours": {**(current.get("category_deadline_hours") or {}), name: hours}
    }
    if name not in active:
        changes["issue_categories"] = [*active, name]
    if photos is not None:
        changes["category_min_photos"] = {
            **(current.get("category_min_photos") or {}),
            name: photos,
        }
    if negative is not None:
        negatives = set(current.get("negative_list_categories") or ())
        if (name in negatives) != negative:
            changes["negative_list_categories"] = sorted(
                (negatives | {name}) if negative else (negatives - {name})
            )
    for key in changes:
        if later := rules.later_rows(session, key, valid_from):
            raise Conflict(
                f"规则“{RULES[key][0]}”在 {later[0].valid_from.isoformat()} 已有计划中的调整，"
                "请改在其后生效，或直接调整该规则",
                field="valid_from",
            )
    return [
        rules.insert(session, actor, key, RULES[key][1](value), valid_from, note)
        for key, value in changes.items()
    ]


def rule_json(row: RuleSetting) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "title": RULES.get(row.key, (row.key,))[0],
        "value": row.value,
        "valid_from": row.valid_from.isoformat(),
        "note": row.note,
        "created_by_id": row.created_by_id,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def vocabulary_listing(session: Session, config: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The vocabularies in force at `at`: the categories accepting reports with their rules,
    the sources, leader levels and 包保 roles; and the retired values old rows may carry."""
    issue = issue_settings(session, config, at)
    vocab = rules.vocabularies(session, config, at)

    def category(name: str, hours: float) -> dict[str, Any]:
        return {
            "name": name,
            "deadline_hours": hours,
            "min_photos": issue.category_min_photos.get(name, issue.report_min_photos),
            "negative_list": name in issue.negative_list_categories,
        }

    def retired(key: str, current: Sequence[str]) -> list[str]:
        return [v for v in rules.ever_used(session, config, key, at) if v not in current]

    return {
        "at": at.isoformat(),
        "categories": [category(c, h) for c, h in issue.categories.items()],
        "retired_categories": [category(c, h) for c, h in issue.retired_categories.items()],
        "sources": list(vocab.sources),
        "retired_sources": retired("issue_sources", vocab.sources),
        "leader_levels": list(vocab.levels),
        "retired_leader_levels": retired("leader_levels", vocab.levels),
        "assignment_roles": list(vocab.roles),
        "retired_assignment_roles": retired("assignment_roles", vocab.roles),
    }


def overview(session: Session, config: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """Every rule: its value in force at `at` (or the configuration's) and its history."""
    rs = ranking_settings(session, config, at)
    issue = issue_settings(session, config, at)
    vocab = rules.vocabularies(session, config, at)
    current = {
        "ranking_weights": dict(rs.weights),
        "ranking_threshold": rs.threshold,
        "ranking_bottom_n": rs.bottom_n,
        "category_deadline_hours": {**issue.categories, **issue.retired_categories},
        "category_min_photos": dict(issue.category_min_photos),
        "negative_list_categories": sorted(issue.negative_list_categories),
        "issue_categories": list(vocab.categories),
        "issue_sources": list(vocab.sources),
        "leader_levels": list(vocab.levels),
        "assignment_roles": list(vocab.roles),
    }
    rows = rules.history(session)
    return {
        "at": at.isoformat(),
        "rules": [
            {
                "key": key,
                "title": title,
                "value": current[key],
                "history": [rule_json(r) for r in rows if r.key == key],
            }
            for key, (title, _) in RULES.items()
        ],
    }
