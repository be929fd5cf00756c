"""Small parsing helpers shared by the field work services (messages in Chinese)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from geoservice.input_values import shown
from geoservice.service_errors import InvalidInput


def as_int(value: Any, field: str, label: str, lo: int = 1, hi: int = 2**62) -> int:
    if isinstance(value, bool) or value in (None, ""):
        raise InvalidInput(f"缺少{label}", field=field)
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInput(f"{label}必须是整数，收到 {shown(value)}", field=field) from None
    if not lo <= number <= hi:
        raise InvalidInput(f"{label}必须在 {lo}…{hi} 之间", field=field)
    return number


def as_text(value: Any, field: str, label: str, max_length: int, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{label}必须是文字", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"缺少{label}", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{label}不能超过 {max_length} 字", field=field)
    return value


def as_date(value: Any, field: str, label: str = "日期") -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{label}须为 YYYY-MM-DD，收到 {shown(value)}", field=field) from None


def as_time(value: Any, field: str, label: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{label}不是 ISO 8601 时间（例如 2026-11-20T09:30:00+08:00）：{value!r}",
                field=field,
            ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{label}需带时区（例如 +08:00）", field=field)
    return parsed


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def period_bounds(period: str, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the day, ISO week (Monday) or month containing `day`, local time."""
    if period == "day":
        first, after = day, day + timedelta(days=1)
    elif period == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif period == "month":
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(period)
    return midnight(first, tz), midnight(after, tz)


def content_hash(fields: dict[str, Any], photo_hashes: list[str]) -> str:
    """A stable hash of a submission: what an idempotency key promises stays the same."""
    canonical = json.dumps(
        {"fields": fields, "photos": photo_hashes},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def no_nulls(payload: Any, keys: tuple[str, ...]) -> None:
    """An optional field given as JSON null is refused (leave it out instead)."""
    for key in keys:
        if key in payload and payload[key] is None:
            raise InvalidInput(f"{key} 不能为 null（不填请省略该字段）", field=key)
