"""Values as a request sends them (JSON, a form field, a spreadsheet cell): whole numbers read
strictly, and a received value quoted in a message as its sender wrote it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from geoservice.service_errors import InvalidInput

SHOWN_MAX = 60


def shown(value: Any) -> str:
    """`value` as JSON spells it — "abc", null, true, {"a": 1} — cut to a readable length:
    a planner or an integrator sent JSON or typed text, not Python's None or {'a': 1}."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # NaN and the like, read from a spreadsheet
        text = str(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def whole_number(value: Any) -> int:
    """An integer from JSON (7, or 7.0) or text ("7"). ValueError for anything else: 2.9 is not
    an id to round down to 2, true is not 1."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value} is not a whole number")
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError(f"{type(value).__name__} is not a number")


def json_kind(value: Any) -> str:
    """What a JSON value is, in the words of a message: null, 数字, 文字, 数组, 对象…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "布尔值"
    if isinstance(value, int | float):
        return "数字"
    if isinstance(value, str):
        return "文字"
    if isinstance(value, list):
        return "数组"
    return "对象"


def text_value(value: Any, field: str, label: str, default: str = "") -> str:
    """A text field's value: a string, or `default` when absent or empty. A number, list or
    object sent for text is refused (InvalidInput, a 422), not stored as "{'a': 1}" or "True"."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{label}应为文字，收到{json_kind(value)} {shown(value)}", field=field)
    return value


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def within_service_years(value: datetime, field: str, label: str) -> datetime:
    """A time a record may start or end at: 2000–2099, as the periods. Year 9999 in a far time
    zone is year 10000 in UTC, which PostgreSQL stores but no reader can read back."""
    if not EARLIEST <= value < LATEST:
        raise InvalidInput(f"{label}须在 2000–2099 年之间", field=field)
    return value
