"""Errors as JSON for API clients ({"error", "detail", "field"}), never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg2
from flask import Flask, current_app, g, jsonify, render_template, request
from markupsafe import escape
from psycopg2.errors import QueryCanceled
from psycopg2.extensions import TransactionRollbackError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from geoservice.service_errors import ServiceError

log = logging.getLogger(__name__)

ACCOUNT_FINDER = "geoservice.errors.current_account"
ROUTED_ALLOW = "geoservice.errors.routed_allow"
# URL prefix → (status, error, detail) → response: interfaces with an error format of their own
# (Open311's list of {"code", "description"}) for the refusals routing makes before their views.
PATH_ERRORS = "geoservice.errors.path_errors"
# What psycopg2 raises for a string holding NUL (PostgreSQL text cannot store it).
NUL_REFUSED = "A string literal cannot contain NUL (0x00) characters."

# Chinese messages for the standard HTTP errors.
MESSAGES = {
    400: "请求有误",
    401: "未登录或令牌无效",
    403: "无权执行此操作",
    404: "未找到",
    405: "不支持该请求方法",
    409: "与当前数据冲突",
    412: "数据已被他人修改，请刷新后重试",
    413: "上传内容过大",
    415: "不支持的内容类型",
    422: "数据无法处理",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误",
    503: "服务暂不可用",
}


class ApiError(Exception):
    """A client error with a message a planner understands."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: Any = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})  # e.g. Allow of a 405 (RFC 9110 requires it)


def error_response(status: int, error: str, detail: Any = None, field: str | None = None):
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    if field is not None:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def wants_json() -> bool:
    if request.path.startswith("/api") or request.path == "/healthz":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _database_down(exc: DBAPIError) -> bool:
    """The server cannot be reached (refused, socket missing, connection lost): a 503 the
    client retries, like /healthz's 数据库不可用, never a 500."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    return type(exc.orig) in (psycopg2.OperationalError, psycopg2.InterfaceError)


def _challenged(response: Any) -> Any:
    """A 401 says how to authenticate (RFC 9110 §11.6.1): an API token as a Bearer token."""
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = 'Bearer realm="geoservice"'
    return response


def _detail(exc: HTTPException, status: int, allow: str | None = None) -> str | None:
    """The exception's own description when a view wrote one (abort(404, "没有该测评轮次")); for
    werkzeug's stock English ones, what to do about it in Chinese."""
    description = exc.description
    if not description or status == 500:
        return None
    if description != type(exc).description:
        return description
    if isinstance(exc, MethodNotAllowed):
        return f"该地址不支持 {request.method} 请求" + (f"，可用：{allow}" if allow else "")
    return STOCK_DETAILS.get(status)


# What to do about werkzeug's stock errors, for an API client.
STOCK_DETAILS = {
    400: "请求格式有误，请检查参数与请求体",
    404: "该地址不存在，请检查 URL（接口一览见 /api/openapi）",
    413: "请求体超过上限（MAX_CONTENT_LENGTH），请缩小上传内容",
    415: "不支持该内容类型",
}


def error_page(status: int, message: str):
    """The same error for a browser: a Chinese HTML page (templates/error.html)."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()  # the request failed: nothing of it is kept, and the page may read
    find_account = current_app.extensions.get(ACCOUNT_FINDER, lambda: None)
    try:
        find_account()  # the page's menu asks for it; a bad token must not fail it again
    except ApiError:
        g.account, g.api_token = None, None
    except Exception:  # the database is unreachable: the plain page below
        pass
    try:
        page = render_template(
            "error.html", status=status, title=MESSAGES.get(status), message=message
        )
        return page, status
    except Exception:  # the page itself failed (e.g. no database): plain text
        log.exception("error page failed")
        plain = f"<h1>{status} {MESSAGES.get(status, '')}</h1><p>{escape(message)}</p>"
        return f'<!doctype html><html lang="zh-CN"><meta charset="utf-8">{plain}</html>', status


def init_app(
    app: Flask,
    current_account: Callable[[], Any] | None = None,
    routed_allow: Callable[[], str | None] | None = None,
) -> None:
    """Errors become responses here, once for the whole app. `current_account` finds the
    caller for the error page's menu, `routed_allow` the `Allow` of a routing 405 where the
    routes' methods overstate it (handed over by create_app: errors sit below both)."""
    if current_account is not None:
        app.extensions[ACCOUNT_FINDER] = current_account
    if routed_allow is not None:
        app.extensions[ROUTED_ALLOW] = routed_allow

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        if wants_json():
            response = error_response(exc.status, exc.error, exc.detail, exc.field)
        else:
            response = app.make_response(error_page(exc.status, exc.error))
        if exc.status == 429 and isinstance(exc.detail, dict) and "retry_after_s" in exc.detail:
            response.headers["Retry-After"] = str(exc.detail["retry_after_s"])
        response.headers.update(exc.headers)
        return _challenged(response)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        """A service refused (no Flask in services): its status and Chinese message."""
        if wants_json():
            return _challenged(error_response(exc.status, exc.error, exc.detail, exc.field))
        return error_page(exc.status, exc.error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status < 400:  # redirects raised as exceptions (e.g. strict slashes)
            return exc
        allow = None
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            # A 405 names the methods the URL serves (RFC 9110 §15.5.6).
            narrowed = app.extensions.get(ROUTED_ALLOW, lambda: None)()
            allow = narrowed or ", ".join(sorted(exc.valid_methods))
        detail = _detail(exc, status, allow)
        own = next(
            (
                render
                for prefix, render in app.extensions.get(PATH_ERRORS, {}).items()
                if request.path.startswith(prefix)
            ),
            None,
        )
        if own is not None:
            response = own(status, MESSAGES.get(status, exc.name), detail)
        elif not wants_json():
            response = app.make_response(error_page(status, MESSAGES.get(status, exc.name)))
        else:
            response = error_response(status, MESSAGES.get(status, exc.name), detail)
        if allow:
            response.headers["Allow"] = allow
        return _challenged(response)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_error(exc: OperationalError | InterfaceError):
        g.setdefault("account", None)  # failed while finding it: the page renders without one
        g.setdefault("api_token", None)
        if isinstance(exc.orig, QueryCanceled):
            seconds = int(current_app.config.get("STATEMENT_TIMEOUT_MS") or 0) / 1000
            log.warning(
                "statement cancelled after %.0f s on %s %s: %.300s",
                seconds,
                request.method,
                request.path,
                exc.statement,
            )
            message = f"查询超时（超过 {seconds:g} 秒），已中止" if seconds else "查询已被中止"
            detail = (
                "请缩小查询范围（地图范围、时间段、筛选条件）后重试；如反复出现，请联系系统管理员。"
            )
            retry_after = 30
        elif isinstance(exc.orig, TransactionRollbackError):  # deadlock, serialization failure
            log.warning("write conflict on %s %s: %s", request.method, request.path, exc.orig)
            message = "数据正被他人同时修改，本次操作未保存"
            detail = "请稍后重试（所有修改已撤销，不会重复写入）。"
            retry_after = 1
        elif _database_down(exc):
            log.warning("database unreachable on %s %s: %s", request.method, request.path, exc.orig)
            message = "数据库不可用"
            detail = "数据库暂时无法连接，请稍后重试；如持续出现，请联系系统管理员。"
            retry_after = 10
        else:
            return _unexpected(exc)
        if wants_json():
            response = error_response(503, message, detail)
        else:
            response = app.make_response(error_page(503, f"{message}。{detail}"))
        response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(DataError)
    def _value_refused(exc: DataError):
        """A value the database cannot hold (SQLSTATE class 22: a year or time zone offset out
        of its range, a number too large for its column…) that no check before it caught: the
        client's input, refused with PostgreSQL's own words; nothing of the request is kept."""
        log.warning("value refused on %s %s: %s", request.method, request.path, exc.orig)
        diagnostics = getattr(exc.orig, "diag", None)
        detail = getattr(diagnostics, "message_primary", None) or str(exc.orig).strip()
        message = (
            "请求中的数值超出数据库可接受的范围（如年份、时区、数值）"
            if request.method in ("GET", "HEAD")  # a read: nothing was to be saved
            else "提交的数据超出数据库可接受的范围（如年份、时区、数值），未保存"
        )
        if wants_json():
            return error_response(400, message, detail)
        return error_page(400, f"{message}：{detail}")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, ValueError) and str(exc) == NUL_REFUSED:
            # Text with NUL from somewhere the request guard does not read (a cell of an
            # uploaded file, say): refused by psycopg2 before reaching the database, and the
            # request's transaction is rolled back like any other error's.
            log.warning("NUL in text to store on %s %s", request.method, request.path)
            message = "提交的内容含有非法字符（NUL，\\u0000），无法保存；请删除该字符后重试"
            if wants_json():
                return error_response(400, message)
            return error_page(400, message)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, MESSAGES[500])
        return error_page(500, MESSAGES[500])
