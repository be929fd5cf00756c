"""Builders for the OpenAPI document: schemas, parameters, operations, and the pass that adds
what every operation shares (error responses, security, permissions) instead of copying it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from geoservice.accounts.permissions import ACTIONS, ROLE_ACTIONS
from geoservice.catalogue.catalogue import SPACE_CHARS
from geoservice.errors import MESSAGES

JSON = "application/json"
GEOJSON = "application/geo+json"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MVT = "application/vnd.mapbox-vector-tile"

# Statuses whose answer is the shared error body (components/responses/E<status>).
ERROR_STATUSES: tuple[int, ...] = (400, 401, 403, 404, 405, 406, 409, 412, 413, 415, 422, 429, 503)
# geoservice.errors has no standard message for 406 (format negotiation, params.py says it).
_MESSAGES = {406: "不支持请求的格式（Accept）"}
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

Schema = dict[str, Any]

# Tile coordinates: zoom 0–22 (geoservice.catalogue.tilegrid.MAX_ZOOM); x and y below 2^z
# (else 404).
TILE_XYZ = (
    ("z", "缩放级别（0–22）", 22),
    ("x", "列号（0 至 2^z−1）", 2**22 - 1),
    ("y", "行号（0 至 2^z−1）", 2**22 - 1),
)  # replaced per status by openapi_kit.finish


# --- schemas --------------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    if "$ref" in schema:  # OpenAPI 3.0 ignores siblings of $ref
        return {"nullable": True, "allOf": [schema]}
    if "enum" in schema:  # a nullable enum lists null among its values (OpenAPI 3.0.3)
        return {**schema, "nullable": True, "enum": [*schema["enum"], None]}
    for choice in ("oneOf", "anyOf"):  # `nullable` needs a `type` beside it: null as a choice
        if choice in schema and "type" not in schema:
            return {**schema, choice: [*schema[choice], NULL]}
    return {**schema, "nullable": True}


NULL: Schema = {"type": "object", "nullable": True, "enum": [None]}  # null, and nothing else


# Holds a character that is not white space as the server counts it (Python's `str.strip`,
# which also strips U+001C–U+001F and U+0085; ECMA's `\S` keeps them): text that is not blank.
NOT_BLANK = rf"[^{SPACE_CHARS}]"
SPACE = rf"[{SPACE_CHARS}]"


def string(description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "string", **extra}, description)


def text_or_null(description: str | None = None) -> Schema:
    return nullable(string(description))


def integer(description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "integer", **extra}, description)


def number(description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "number", **extra}, description)


def boolean(description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "boolean", **extra}, description)


def instant(description: str | None = None) -> Schema:
    return string(description, format="date-time")


def enum(values: Iterable[Any], description: str | None = None) -> Schema:
    values = list(values)
    kind = "integer" if values and all(isinstance(v, int) for v in values) else "string"
    return _described({"type": kind, "enum": values}, description)


def array(items: Schema, description: str | None = None, **extra: Any) -> Schema:
    return _described({"type": "array", "items": items, **extra}, description)


def mapping(values: Schema, description: str | None = None) -> Schema:
    """An object whose keys are data (ids, names), all with values of one schema."""
    return _described({"type": "object", "additionalProperties": values}, description)


def free(description: str | None = None) -> Schema:
    """Any JSON value (e.g. a report whose shape the code documents elsewhere)."""
    return _described({}, description)


def obj(
    required: Mapping[str, Schema] | None = None,
    optional: Mapping[str, Schema] | None = None,
    description: str | None = None,
) -> Schema:
    """An object: `required` keys are always present in answers (or must be sent)."""
    required = dict(required or {})
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    return _described(schema, description)


def _described(schema: Schema, description: str | None) -> Schema:
    return {**schema, "description": description} if description else schema


# --- parameters and bodies ------------------------------------------------------------------


def query(
    name: str, description: str, schema: Schema, required: bool = False, empty: bool = False
) -> Schema:
    """A query parameter; `empty`: `name=` (an empty value, as a form's blank box sends) is
    accepted and means the parameter is not given."""
    parameter = {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }
    if empty:
        parameter["allowEmptyValue"] = True
    return parameter


def path(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "integer"},
    }


MAX_OFFSET = 1_000_000_000  # geoservice.edge.params.MAX_OFFSET


def limit_param(default: int, maximum: int, what: str = "每页条数") -> Schema:
    return query(
        "limit",
        f"{what}（1–{maximum}，默认 {default}；0、非整数或超过 {maximum} 为 400）",
        integer(minimum=1, maximum=maximum, default=default),
    )


def paging(default: int, maximum: int) -> list[Schema]:
    """`limit` and `offset` of a JSON list, parsed alike everywhere (geoservice.edge.params);
    the answer carries numberMatched (all matches) and numberReturned (this page)."""
    return [
        limit_param(default, maximum),
        query(
            "offset",
            f"跳过的条数（0–{MAX_OFFSET}，默认 0）",
            integer(minimum=0, maximum=MAX_OFFSET, default=0),
        ),
    ]


def paged(items: str, schema: Schema) -> Schema:
    """The answer of a paged list: `items` plus numberMatched / numberReturned."""
    return obj(
        {
            items: array(schema),
            "numberMatched": integer("符合条件的总条数（不受分页影响）"),
            "numberReturned": integer("本页条数"),
        }
    )


def json_body(schema: Schema, description: str | None = None, required: bool = True) -> Schema:
    body: Schema = {"required": required, "content": {JSON: {"schema": schema}}}
    return _described(body, description)


def multipart(schema: Schema, description: str | None = None) -> Schema:
    return _described(
        {"required": True, "content": {"multipart/form-data": {"schema": schema}}}, description
    )


# importers.parse_mapping: "源=目标" pairs, comma-separated (blank parts ignored).
_MAP_PAIR = r"[^=,]*[^=,\s][^=,]*=[^,]*[^,\s][^,]*"
MAP_PATTERN = rf"^(?:{_MAP_PAIR}|\s*)(?:,(?:{_MAP_PAIR}|\s*))*$"


def file_field(description: str) -> Schema:
    return string(description, format="binary")


# --- responses and operations ---------------------------------------------------------------


def error(status: int) -> Schema:
    return {"$ref": f"#/components/responses/E{status}"}


def error_responses() -> dict[str, Schema]:
    """One response per error status: the shared body, the message of geoservice.errors."""
    out = {}
    for status in ERROR_STATUSES:
        message = _MESSAGES.get(status) or MESSAGES[status]
        response: Schema = {
            "description": f"{message}（错误体：error 说明，detail 细节，field 出错的字段）",
            "content": {JSON: {"schema": ref("error")}},
        }
        if status in (429, 503):
            response["headers"] = {
                "Retry-After": {"description": "建议等待的秒数", "schema": {"type": "integer"}}
            }
        out[f"E{status}"] = response
    return out


def answer(
    schema: Schema | None = None,
    description: str = "成功",
    media: str = JSON,
    headers: Mapping[str, Schema] | None = None,
) -> Schema:
    response: Schema = {"description": description}
    if schema is not None:
        response["content"] = {media: {"schema": schema}}
    if headers:
        response["headers"] = {
            name: {"schema": {"type": "string"}, "description": text}
            for name, text in headers.items()
        }
    return response


def download(media: str, description: str) -> Schema:
    return answer(
        {"type": "string", "format": "binary"},
        description,
        media,
        {"Content-Disposition": "attachment; filename*=UTF-8''…（中文文件名）"},
    )


def who_may(action: str) -> str:
    roles = [r for r, actions in ROLE_ACTIONS.items() if action in actions]
    return f"权限 `{action}`（{ACTIONS[action]}），角色：{'、'.join(roles)}"


def op(
    tag: str,
    operation_id: str,
    summary: str,
    permission: str | Sequence[str] | None,
    responses: Mapping[str, Schema],
    *,
    description: str = "",
    parameters: Sequence[Schema] = (),
    body: Schema | None = None,
    errors: Iterable[int] = (),
) -> Schema:
    """One operation. `permission`: the action(s) of geoservice.accounts.permissions the view
    requires (None: any account); the rights and the statuses in `errors` are added to the text."""
    actions = [permission] if isinstance(permission, str) else list(permission or [])
    rights = "；".join(who_may(a) for a in actions) if actions else "任何已登录账号或有效令牌"
    out: Schema = {
        "tags": [tag],
        "summary": summary,
        "operationId": operation_id,
        "description": (description + "\n\n" if description else "") + f"需要：{rights}。",
        "responses": {**responses, **{str(s): error(s) for s in errors}},
    }
    if actions:
        out["x-permission"] = actions if len(actions) > 1 else actions[0]
    if parameters:
        out["parameters"] = list(parameters)
    if body is not None:
        out["requestBody"] = body
    return out


BROWSER_WRITE_SECURITY = [{"bearer": []}, {"session": [], "csrf": []}]


def finish(paths: dict[str, Any]) -> dict[str, Any]:
    """What every operation shares, added in one place: 401/403 (no or insufficient account;
    a browser session that must change its password gets 403), 503 (database timeout or
    concurrent write), for reads 400 (a query parameter the operation does not list, or one
    given twice; 406 where the format is negotiated), and for writes 400 (missing CSRF
    token), 413 (request body over the limit), 429 (write rate limit) and the security
    alternatives (token, or session cookie with the X-CSRFToken header)."""
    for ops in paths.values():
        for method, operation in ops.items():
            if method not in METHODS:
                continue
            shared = [401, 403, 503]
            if method == "get":
                shared.append(400)
                if {"$ref": "#/components/parameters/f"} in operation.get("parameters", []):
                    shared.append(406)  # negotiated (f or Accept): a format not offered
            if method in WRITE_METHODS:
                shared += [400, 413, 429]
                operation.setdefault("security", BROWSER_WRITE_SECURITY)
            responses = operation.setdefault("responses", {})
            for status in shared:
                responses.setdefault(str(status), error(status))
            for status, response in list(responses.items()):
                if response == {"$ref": "#/components/responses/Error"}:
                    responses[status] = error(int(status))
    return paths


# --- operations documented next to their routes ----------------------------------------------

Build = Callable[[Mapping[str, Any]], Schema]


def documented(build: Build) -> Callable:
    """Keeps an operation's OpenAPI object next to its route: `build(config)` returns it.

        @bp.get("/audit")
        @documented(lambda config: op(TAG, "list_audit_entries", "操作日志", "audit.read", …))
        @permission_required("audit.read")
        def audit_entries(): …

    openapi.document collects every documented view of the app (`documented_paths`); the
    families not moved yet are still listed by the paths() of the openapi_*.py modules."""

    def mark(view: Callable) -> Callable:
        view.openapi = build  # type: ignore[attr-defined]
        return view

    return mark


def documented_paths(app: Any, prefix: str = "/api") -> dict[str, dict[str, Schema]]:
    """{path: {method: operation}} of the views marked with `documented`, paths relative to
    `prefix` with Flask's <converter:name> written as {name}."""
    paths: dict[str, dict[str, Schema]] = {}
    for rule in app.url_map.iter_rules():
        build = getattr(app.view_functions.get(rule.endpoint), "openapi", None)
        if build is None or not rule.rule.startswith(prefix + "/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(prefix) :])
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = build(app.config)
    return paths
