"""The store of city rules as data, effective-dated (`rule_settings`), and the vocabularies
every layer reads from it: issue sources, the issue categories in use, leader levels, 包保 roles.

A rule is a key with values in force from a moment; a change is a new row (never an update),
written by an admin with a reason and audited by the caller. The value at moment T is the row
with the latest `valid_from` ≤ T; without one, the app configuration's value (config.py, whose
defaults are geoservice.vocab). The ranking rules (weights, the line, 后N名) and the per-category
rules (time limits, photos, 负面清单) are validated in geoservice.ranking.vocabularies; this
module is the generic part (read, write, history) and the lists, so that the lower layers
(issues, responsibility) can read them.

* Writes read the vocabulary in force at the moment of the write: a value added from a date is
  refused before it and accepted after; a value retired stays valid on the rows that have it
  (an old issue keeps its category and source, a leader their level) and in closed periods.
* `in_force_many` reads every key in one indexed query (uq_rule_settings_key_from).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.input_values import within_service_years
from geoservice.models import RuleSetting, User
from geoservice.service_errors import InvalidInput

NAME_MAX_LENGTH = 32


def in_force(session: Session, key: str, at: datetime) -> RuleSetting | None:
    """The row of `key` in force at `at` (None: the configuration's value)."""
    return session.scalars(
        select(RuleSetting)
        .where(RuleSetting.key == key, RuleSetting.valid_from <= at)
        .order_by(RuleSetting.valid_from.desc())
        .limit(1)
    ).first()


def in_force_many(session: Session, keys: Iterable[str], at: datetime) -> dict[str, Any]:
    """The values of `keys` in force at `at`, in one query; keys without a row are absent."""
    # A handful of rows per key (one per change): the latest of each wins.
    rows = session.execute(
        select(RuleSetting.key, RuleSetting.value)
        .where(RuleSetting.key.in_(list(keys)), RuleSetting.valid_from <= at)
        .order_by(RuleSetting.valid_from)
    ).all()
    return {key: value for key, value in rows}


def later_rows(session: Session, key: str, after: datetime) -> list[RuleSetting]:
    return list(
        session.scalars(
            select(RuleSetting)
            .where(RuleSetting.key == key, RuleSetting.valid_from > after)
            .order_by(RuleSetting.valid_from)
        )
    )


def history(session: Session) -> list[RuleSetting]:
    return list(
        session.scalars(select(RuleSetting).order_by(RuleSetting.key, RuleSetting.valid_from))
    )


def check_change(note: str, valid_from: datetime | None, now: datetime) -> tuple[str, datetime]:
    """The reason (required) and the start (default now; never in the past) of a change."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写调整的理由", field="note")
    valid_from = valid_from or now
    if valid_from.tzinfo is None:
        raise InvalidInput("valid_from 需带时区", field="valid_from")
    if valid_from < now - timedelta(minutes=1):
        raise InvalidInput("生效时间不能早于现在：已结束的周期保留当时的规则", field="valid_from")
    within_service_years(valid_from, "valid_from", "生效时间")
    return note[:2000], valid_from


def insert(
    session: Session, actor: User | None, key: str, value: Any, valid_from: datetime, note: str
) -> RuleSetting:
    """A new row (value already validated). The caller audits and commits."""
    if session.scalar(
        select(RuleSetting.id).where(RuleSetting.key == key, RuleSetting.valid_from == valid_from)
    ):
        raise InvalidInput("该规则在此时间已有一个值", field="valid_from")
    row = RuleSetting(
        key=key,
        value=value,
        valid_from=valid_from,
        note=note,
        created_by_id=actor.id if actor else None,
    )
    session.add(row)
    session.flush()
    return row


# --- the vocabularies ----------------------------------------------------------------------


def name_list(what: str) -> Callable[[Any], list[str]]:
    """A validator: a non-empty list of distinct names (1–32 characters), order kept."""

    def clean(value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            raise InvalidInput(f"{what}应为非空的名称列表", field="value")
        out: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise InvalidInput(f"{what}的每一项应为非空文字", field="value")
            name = item.strip()
            if len(name) > NAME_MAX_LENGTH or any(c in name for c in ",，、\n\r\t"):
                raise InvalidInput(
                    f"{what}「{name[:40]}」应为 1–{NAME_MAX_LENGTH} 字，不含逗号、顿号",
                    field="value",
                )
            if name in out:
                raise InvalidInput(f"{what}「{name}」重复", field="value")
            out.append(name)
        return out

    return clean


@dataclass(frozen=True)
class Vocabulary:
    key: str  # the rule key in rule_settings
    config_key: str  # the configuration's default (config.py)
    title: str
    what: str  # what one item is called, for messages


VOCABULARIES: dict[str, Vocabulary] = {
    v.key: v
    for v in (
        Vocabulary(
            "issue_categories",
            "ISSUE_CATEGORIES",
            "问题类别（在用；停用的类别旧问题保留）",
            "问题类别",
        ),
        Vocabulary("issue_sources", "ISSUE_SOURCES", "问题来源", "问题来源"),
        Vocabulary("leader_levels", "LEADER_LEVELS", "包保领导层级", "领导层级"),
        Vocabulary("assignment_roles", "ASSIGNMENT_ROLES", "包保角色", "包保角色"),
    )
}


@dataclass(frozen=True)
class Vocabularies:
    """The lists in force at one moment (`at`)."""

    at: datetime
    categories: tuple[str, ...]  # accepting new reports
    sources: tuple[str, ...]
    levels: tuple[str, ...]
    roles: tuple[str, ...]


def _config_list(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(x) for x in config[VOCABULARIES[key].config_key])


def vocabularies(session: Session, config: Mapping[str, Any], at: datetime) -> Vocabularies:
    """The vocabularies in force at `at` (one query)."""
    rows = in_force_many(session, VOCABULARIES, at)

    def value(key: str) -> tuple[str, ...]:
        return tuple(rows[key]) if key in rows else _config_list(config, key)

    return Vocabularies(
        at=at,
        categories=value("issue_categories"),
        sources=value("issue_sources"),
        levels=value("leader_levels"),
        roles=value("assignment_roles"),
    )


def ever_used(session: Session, config: Mapping[str, Any], key: str, at: datetime) -> list[str]:
    """Every value `key` has had up to `at` (the configuration's and every row's): what old
    rows may carry."""
    out = list(_config_list(config, key))
    for value in session.scalars(
        select(RuleSetting.value)
        .where(RuleSetting.key == key, RuleSetting.valid_from <= at)
        .order_by(RuleSetting.valid_from)
    ):
        out.extend(v for v in value if v not in out)
    return out


def retired(
    session: Session, config: Mapping[str, Any], key: str, at: datetime, current: Iterable[str]
) -> list[str]:
    """The values of `key` used before `at` and not in `current` (those in force)."""
    current = set(current)
    return [v for v in ever_used(session, config, key, at) if v not in current]


def planned_removals(session: Session, key: str, at: datetime, current: Iterable[str]) -> set[str]:
    """The values of `current` that a change planned after `at` leaves out."""
    current = set(current)
    leaving: set[str] = set()
    for row in later_rows(session, key, at):
        leaving |= current - set(row.value)
    return leaving


# The sources the service itself gives the issues it creates, and what would stop if one of them
# left the list: (configuration key, its default, the function in words).
SYSTEM_SOURCES: tuple[tuple[str | None, str, str], ...] = (
    ("OPEN311_SOURCE", "12345热线", "12345 热线接口（Open311）"),
    ("FIELD_PATROL_SOURCE", "自查", "巡查中发现的问题"),
    ("FIELD_INSPECTION_SOURCE", "暗访督查", "暗访督查中发现的问题"),
    (None, "随手拍", "群众随手拍"),
)


def system_sources(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Source name → the functions of the service that create issues with it."""
    out: dict[str, list[str]] = {}
    for key, default, function in SYSTEM_SOURCES:
        name = str(config.get(key, default)) if key else default
        out.setdefault(name, []).append(function)
    return out


def now() -> datetime:
    return datetime.now(UTC)


CHANGES_LOCK = 0x72756C65  # "rule": one rule change at a time, across workers


def lock_changes(session: Session) -> None:
    """Serialises rule changes until the transaction ends. A change reads the lists in force
    and writes a new whole copy from `now`: two at once each missed the other, and the one
    committed later, starting earlier, was overtaken — a category added was lost. Take it
    before reading the clock."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGES_LOCK})
