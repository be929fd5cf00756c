"""JSON request bodies: read as JSON is written (RFC 8259), and the JSON object a write takes.

Python's json module reads more than JSON: `NaN`, `Infinity`, and numbers beyond a double
(`1e999`, read as infinity) that reach `int()` as an OverflowError; a body nested a thousand
levels deep raises RecursionError. Each of these was a 500 or a stored "nan". The app's JSON
provider refuses them all as malformed JSON, so every reader (silent or not) sees a bad body.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider

from geoservice.errors import ApiError

NOT_JSON = "请求体不是合法的 JSON"
JSON_ONLY = "请以 JSON（application/json）提交"


class StrictJSONError(ValueError):
    """A body Python could read but JSON does not allow (the message says why, in Chinese)."""


def _refuse_constant(name: str) -> Any:
    raise StrictJSONError(f"JSON 中不允许 {name}，数值须为有限数")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f"数值 {text[:40]} 超出范围")
    return value


def strict_loads(text: str | bytes, **kwargs: Any) -> Any:
    """`json.loads` for JSON only; ValueError for anything else (StrictJSONError explains)."""
    kwargs.setdefault("parse_constant", _refuse_constant)
    kwargs.setdefault("parse_float", _finite_float)
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        raise StrictJSONError("JSON 嵌套层级过深") from None


def why_not_json(exc: ValueError) -> str:
    """Where and why a body failed to read, for the 400's detail."""
    if isinstance(exc, json.JSONDecodeError):
        return f"第 {exc.lineno} 行第 {exc.colno} 列附近格式有误"
    if isinstance(exc, StrictJSONError):
        return str(exc)
    return "请求体不是有效的 UTF-8 文本"


class StrictJSONProvider(DefaultJSONProvider):
    """The app's JSON: requests are read by `strict_loads`."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s, **kwargs)


def json_object(optional: bool = False, not_json_status: int = 415) -> dict[str, Any]:
    """The request's body as a JSON object: 415 unless sent as JSON (`not_json_status`: the
    包保 and account families answer 400, as documented and kept), 400 when it is malformed or
    not an object. `optional`: an empty body stands for `{}` (every field at its default); any
    other body must still be a JSON object — a broken one never reads as "no changes"."""
    if optional and not request.get_data(cache=True).strip():
        return {}
    if not request.is_json:
        raise ApiError(not_json_status, JSON_ONLY, field="Content-Type")
    body = request.get_json()  # GuardedRequest: malformed → 400 saying where
    if not isinstance(body, dict):
        raise ApiError(400, "请求体必须是 JSON 对象", field="body")
    return body
