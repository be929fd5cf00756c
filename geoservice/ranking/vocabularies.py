"""City rules as data, effective-dated: ranking weights, the line (85), 后N名, category time
limits.

Each rule is a key with values in force from a moment (`rule_settings`, never updated: a
change is a new row, written by an admin with a reason, audited). The value at moment T is the
row with the latest `valid_from` ≤ T; without one, the app configuration's value (config.py).

* Rankings use the values in force **at the start of each period** (ranking_settings_for): a
  change effective on the 18th applies from the first period starting on or after the 18th, so
  the rules of a period are known when it starts and a closed period keeps its rules.
* Deadlines use the category time limits in force when the deadline is set (交办).
* A new value must take effect now or later: the past is never re-ruled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geoservice.issues.workflow import IssueSettings
from geoservice.models import RuleSetting, User
from geoservice.ranking import ranking
from geoservice.ranking.periods import Period
from geoservice.service_errors import InvalidInput


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
}


def in_force(session: Session, key: str, at: datetime) -> RuleSetting | None:
    return session.scalars(
        select(RuleSetting)
        .where(RuleSetting.key == key, RuleSetting.valid_from <= at)
        .order_by(RuleSetting.valid_from.desc())
        .limit(1)
    ).first()


def ranking_settings(session: Session, config: Mapping[str, Any], at: datetime) -> ranking.Settings:
    base = ranking.Settings.from_config(config)
    weights = in_force(session, "ranking_weights", at)
    threshold = in_force(session, "ranking_threshold", at)
    bottom = in_force(session, "ranking_bottom_n", at)
    return ranking.Settings(
        weights=dict(weights.value) if weights else dict(base.weights),
        threshold=float(threshold.value) if threshold else base.threshold,
        bottom_n=int(bottom.value) if bottom else base.bottom_n,
    )


def ranking_settings_for(
    session: Session, config: Mapping[str, Any], periods: Sequence[Period]
) -> list[ranking.Settings]:
    """The ranking settings of each period: those in force at its start."""
    return [ranking_settings(session, config, p.start) for p in periods]


def issue_settings(session: Session, config: Mapping[str, Any], at: datetime) -> IssueSettings:
    base = IssueSettings.from_config(config)
    hours = in_force(session, "category_deadline_hours", at)
    photos = in_force(session, "category_min_photos", at)
    negative = in_force(session, "negative_list_categories", at)
    return dataclasses.replace(
        base,
        categories={**base.categories, **(hours.value if hours else {})},
        category_min_photos=dict(photos.value) if photos else {},
        negative_list_categories=frozenset(negative.value) if negative else frozenset(),
    )


def set_rule(
    session: Session,
    actor: User | None,
    key: str,
    value: Any,
    valid_from: datetime | None,
    note: str,
    now: datetime | None = None,
) -> RuleSetting:
    """A new value of `key` from `valid_from` (default now; not in the past). The caller audits
    and commits."""
    now = now or datetime.now(UTC)
    if key not in RULES:
        raise InvalidInput(f"未知的规则 {key!r}", {"keys": list(RULES)}, "key")
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写调整的理由", field="note")
    valid_from = valid_from or now
    if valid_from.tzinfo is None:
        raise InvalidInput("valid_from 需带时区", field="valid_from")
    if valid_from < now - timedelta(minutes=1):
        raise InvalidInput("生效时间不能早于现在：已结束的周期保留当时的规则", field="valid_from")
    clean = RULES[key][1](value)
    if session.scalar(
        select(RuleSetting.id).where(RuleSetting.key == key, RuleSetting.valid_from == valid_from)
    ):
        raise InvalidInput("该规则在此时间已有一个值", field="valid_from")
    row = RuleSetting(
        key=key,
        value=clean,
        valid_from=valid_from,
        note=note[:2000],
        created_by_id=actor.id if actor else None,
    )
    session.add(row)
    session.flush()
    return row


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


def overview(session: Session, config: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """Every rule: its value in force at `at` (or the configuration's) and its history."""
    rs = ranking_settings(session, config, at)
    issue = issue_settings(session, config, at)
    hours = issue.categories
    current = {
        "ranking_weights": dict(rs.weights),
        "ranking_threshold": rs.threshold,
        "ranking_bottom_n": rs.bottom_n,
        "category_deadline_hours": dict(hours),
        "category_min_photos": dict(issue.category_min_photos),
        "negative_list_categories": sorted(issue.negative_list_categories),
    }
    rows = session.scalars(
        select(RuleSetting).order_by(RuleSetting.key, RuleSetting.valid_from)
    ).all()
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
