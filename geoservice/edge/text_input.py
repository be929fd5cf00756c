"""Text a request carries that PostgreSQL cannot store: NUL (U+0000), and in JSON a lone
UTF-16 surrogate (`"\\ud800"` without its pair).

PostgreSQL's text, varchar and jsonb refuse the NUL character, and psycopg2 refuses to send a
string holding one (a ValueError from deep in a flush: a 500 for whatever the user typed or an
integration sent); a lone surrogate, which JSON's `\\u` escapes can spell but UTF-8 cannot,
fails as the text is sent. Every request is checked where its text comes in — the query string,
the form fields and file names, a JSON body (keys and values at any depth) — and refused with a
400 naming the field, before any view reads it. The view code never sees such a character.
(Query strings and forms are decoded by werkzeug, which never yields a surrogate.)
"""

from __future__ import annotations

from typing import Any

from flask import Request, request

from geoservice.edge.json_input import JSON_ONLY, NOT_JSON, why_not_json
from geoservice.errors import ApiError

NUL = "\x00"


def storable(text: str) -> bool:
    """Whether PostgreSQL can store `text`: no NUL, no lone surrogate."""
    if NUL in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_path(value: Any, path: str = "") -> str | None:
    """Where in a parsed JSON value a string (key or value) is not `storable`: a path such as
    `places[2].name` (`` for the value itself), or None."""
    if isinstance(value, str):
        return None if storable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if not storable(key):
                return here
            found = unstorable_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def refused(field: str, where: str, json: bool = False) -> ApiError:
    """The 400 for text at `field` that is not `storable` (`json`: it came in a JSON body, the
    only way a lone surrogate can)."""
    # The field's name is shown escaped: it may hold the very character refused.
    shown = field.replace(NUL, "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    shown = shown or "请求体"
    which = "NUL，\\u0000；或不成对的代理项 \\ud800–\\udfff" if json else "NUL，\\u0000"
    return ApiError(
        400, f"{where} {shown!r} 含有非法字符（{which}），无法保存；请删除该字符后重试", field=shown
    )


class GuardedRequest(Request):
    """Flask's request, refusing text PostgreSQL cannot store in the query string, form fields,
    file names and JSON bodies (400, `field` naming where)."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        body = super().get_json(force=force, silent=silent, cache=cache)
        where = unstorable_path(body)
        if where is not None:
            raise refused(where, "JSON 字段", json=True)
        return body

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            raise ApiError(415, JSON_ONLY, field="Content-Type")
        raise ApiError(400, NOT_JSON, why_not_json(e), field="body")

    def _load_form_data(self) -> None:
        super()._load_form_data()
        for name, values in self.form.lists():
            if NUL in (name or "") or any(NUL in (value or "") for value in values):
                raise refused(name or "", "表单字段")
        for name, upload in self.files.items(multi=True):
            if NUL in (name or "") or NUL in (upload.filename or ""):
                raise refused(name or "", "上传文件")


def check_query_string() -> None:
    """Before every request: a query parameter (name or value) holding NUL is a 400 naming it."""
    for name, values in request.args.lists():
        if NUL in name or any(NUL in value for value in values):
            raise refused(name, "查询参数")
