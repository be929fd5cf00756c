"""Open311 GeoReport v2 at /open311/v2 (blueprint `bp`), for hotlines (12345) and other
systems: discovery, services (our categories), requests GET/POST, requests/{id}; each in
`.json` or `.xml` as the spec defines.

Keys are integration API tokens: `api_key` (query for GET, form field for POST) or
`Authorization: Bearer …`; never the browser's session cookie, so these views need no CSRF
token (`token_only`). Reading needs `issues.read`, POST `issues.report` (token scopes apply);
an account bound to an area sees its area's requests only. Errors follow the spec: a list of
`{"code", "description"}` (plus our `field`), with the HTTP status: 400 bad input (an unknown
query parameter is named, as everywhere in our API), 401 no or bad key, 403 the key may not,
404 unknown request or service.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from geoservice.accounts.accounts import token_for
from geoservice.accounts.auth import public
from geoservice.accounts.permissions import allowed
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.errors import ApiError
from geoservice.models import User
from geoservice.notifications import open311 as service
from geoservice.registry import layers
from geoservice.service_errors import ServiceError

bp = Blueprint("open311", __name__)
FORMATS = ("json", "xml")
COLLECTION = "issues"


class Open311Error(Exception):
    def __init__(self, status: int, description: str, field: str | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.field = status, description, field


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"不支持的格式 .{fmt}，可用 .json 或 .xml", "format")
    return fmt


def _xml(root: str, item: str, rows: Iterable[dict[str, Any]]) -> Response:
    top = ET.Element(root)
    for row in rows:
        element = ET.SubElement(top, item)
        _fill(element, row)
    body = ET.tostring(top, encoding="unicode", xml_declaration=False)
    return Response(
        '<?xml version="1.0" encoding="utf-8"?>' + body, mimetype="text/xml", status=200
    )


def _fill(element: ET.Element, row: dict[str, Any]) -> None:
    for key, value in row.items():
        child = ET.SubElement(element, key)
        if isinstance(value, list):
            for entry in value:
                sub = ET.SubElement(child, key.rstrip("s") or "item")
                if isinstance(entry, dict):
                    _fill(sub, entry)
                else:
                    sub.text = str(entry)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)


def _answer(fmt: str, root: str, item: str, rows: list[dict[str, Any]], status: int = 200):
    response = _xml(root, item, rows) if fmt == "xml" else jsonify(rows)
    response.status_code = status
    return response


@bp.errorhandler(Open311Error)
def _open311_error(exc: Open311Error):
    fmt = request.view_args.get("fmt") if request.view_args else None
    error = {"code": exc.status, "description": exc.description}
    if exc.field:
        error["field"] = exc.field
    return _answer("xml" if fmt == "xml" else "json", "errors", "error", [error], exc.status)


def routing_error(status: int, error: str, detail: str | None) -> Response:
    """A refusal made before any view (unknown path, method not served), in the spec's error
    format (geoservice.errors.PATH_ERRORS): the path's .xml asks for XML, anything else JSON."""
    fmt = "xml" if request.path.endswith(".xml") else "json"
    description = f"{error}：{detail}" if detail else error
    return _answer(fmt, "errors", "error", [{"code": status, "description": description}], status)


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError):
    return _open311_error(
        Open311Error(400 if exc.status == 422 else exc.status, exc.error, exc.field)
    )


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return _open311_error(Open311Error(exc.status, exc.error, exc.field))


def _args(allowed_names: Iterable[str]) -> dict[str, str]:
    allowed_names = set(allowed_names) | {"api_key", "jurisdiction_id"}
    out: dict[str, str] = {}
    for name in request.args:
        if name not in allowed_names:
            raise Open311Error(
                400, f"未知参数 {name}；可用的参数：{'、'.join(sorted(allowed_names))}", name
            )
        values = request.args.getlist(name)
        if len(values) > 1:
            raise Open311Error(400, f"参数 {name} 重复", name)
        out[name] = values[0]
    return out


def _account(action: str) -> User:
    key = request.args.get("api_key") or request.form.get("api_key")
    header = request.headers.get("Authorization", "")
    if not key and header[:7].lower() == "bearer ":
        key = header[7:].strip()
    if not key:
        raise Open311Error(401, "缺少 api_key（系统对接令牌）", "api_key")
    found = token_for(get_session(), key)
    if found is None:
        raise Open311Error(401, "api_key 无效、已过期或已被吊销", "api_key")
    token, account = found
    if not allowed(account.role, action, COLLECTION, token.scopes, via_token=True):
        raise Open311Error(403, f"该令牌无权执行此操作（需要 {action}）", "api_key")
    return account


def open311_view(view: Callable) -> Callable:
    """Reachable without a session (the key is checked in the view), never by the cookie."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    wrapper.token_only = True  # type: ignore[attr-defined]
    return public(wrapper)


@bp.get("/discovery.<fmt>")
@open311_view
def discovery(fmt: str):
    fmt = _format(fmt)
    _args(())
    body = {
        "changeset": "2026-12-02T00:00:00Z",
        "contact": "创文办（见 docs/integration.md）",
        "key_service": "向系统管理员申请“系统对接”账号的 API 令牌",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": url_for("open311.discovery", fmt="json", _external=True).rsplit("/", 1)[0],
                "changeset": "2026-12-02T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    if fmt == "xml":
        top = ET.Element("discovery")
        _fill(top, body)
        return Response(
            '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="unicode"),
            mimetype="text/xml",
        )
    return jsonify(body)


@bp.get("/services.<fmt>")
@open311_view
def services(fmt: str):
    fmt = _format(fmt)
    _args(())
    _account("issues.read")
    rows = service.services(issue_settings_in_force().categories)
    return _answer(fmt, "services", "service", rows)


@bp.get("/services/<code>.<fmt>")
@open311_view
def service_definition(code: str, fmt: str):
    fmt = _format(fmt)
    _args(())
    _account("issues.read")
    if code not in issue_settings_in_force().categories:
        raise Open311Error(404, f"未知的 service_code「{code}」", "service_code")
    body = {"service_code": code, "attributes": []}
    if fmt == "xml":
        top = ET.Element("service_definition")
        _fill(top, body)
        return Response(
            '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="unicode"),
            mimetype="text/xml",
        )
    return jsonify(body)


@bp.get("/requests.<fmt>")
@open311_view
def list_requests(fmt: str):
    fmt = _format(fmt)
    args = _args(("service_request_id", "service_code", "start_date", "end_date", "status"))
    account = _account("issues.read")
    issue = issue_settings_in_force()  # retired categories still filter old requests
    flt = service.parse_filter(args, {**issue.categories, **issue.retired_categories})
    rows = service.find_requests(get_session(), account, flt)
    return _answer(fmt, "service_requests", "request", rows)


@bp.get("/requests/<request_id>.<fmt>")
@open311_view
def get_request(request_id: str, fmt: str):
    fmt = _format(fmt)
    _args(())
    account = _account("issues.read")
    if not request_id.isdigit() or len(request_id) > 18:
        raise Open311Error(404, f"没有编号为 {request_id} 的服务请求", "service_request_id")
    row = service.get_request(get_session(), account, int(request_id))
    return _answer(fmt, "service_requests", "request", [row])


def _check_signature(account: User) -> None:
    """With a callback secret set for the account, an inbound update must be signed like our
    回单: X-Geoservice-Timestamp (unix seconds, within 5 minutes) and X-Geoservice-Signature =
    sha256=HMAC-SHA256(secret, timestamp + "." + body)."""
    import hmac
    import time

    from geoservice.notifications.channels import sign_webhook
    from geoservice.notifications.models import IntegrationCallback

    callback = get_session().get(IntegrationCallback, account.id)
    if callback is None:
        raise Open311Error(
            403, "请先由管理员为该对接账号设置回单地址与签名密钥", "X-Geoservice-Signature"
        )
    timestamp = request.headers.get("X-Geoservice-Timestamp", "")
    signature = request.headers.get("X-Geoservice-Signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        raise Open311Error(401, "时间戳缺失或已过期（须在 5 分钟内）", "X-Geoservice-Timestamp")
    expected = sign_webhook(callback.secret, timestamp, request.get_data(cache=True))
    if not hmac.compare_digest(expected, signature):
        raise Open311Error(401, "签名无效", "X-Geoservice-Signature")


@bp.post("/requests/<request_id>/updates.<fmt>")
@open311_view
def update_request(request_id: str, fmt: str):
    """Our extension: the sender's note or cancellation of its own ticket, signed."""
    fmt = _format(fmt)
    _args(())
    account = _account("issues.report")
    _check_signature(account)
    if not request_id.isdigit() or len(request_id) > 18:
        raise Open311Error(404, f"没有编号为 {request_id} 的服务请求", "service_request_id")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise Open311Error(400, "请求体须是 JSON 对象", "body")
    settings = issue_settings_in_force()
    session = get_session()
    result = service.ticket_update(session, settings, account, int(request_id), payload)
    session.commit()
    return _answer(fmt, "service_requests", "request", [result])


@bp.post("/requests.<fmt>")
@open311_view
def create_request(fmt: str):
    fmt = _format(fmt)
    _args(())
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(
            400,
            "请以表单（application/x-www-form-urlencoded）提交，参见 GeoReport v2",
            "Content-Type",
        )
    account = _account("issues.report")
    form = request.form
    unknown = sorted(
        set(form)
        - set(service.known_fields())
        - {"attribute"}
        - {k for k in form if k.startswith("attribute[")}
    )
    if unknown:
        raise Open311Error(
            400, f"未知字段 {unknown[0]}；可用：{'、'.join(service.known_fields())}", unknown[0]
        )
    for name in form:
        if len(form.getlist(name)) > 1:
            raise Open311Error(400, f"字段 {name} 重复", name)
    settings = issue_settings_in_force()
    session = get_session()
    created = service.create_request(
        session,
        layers(),
        settings,
        account,
        form.to_dict(),
        current_app.config.get("OPEN311_SOURCE", "12345热线"),
    )
    session.commit()
    notice = "该工单此前已提交，返回原服务请求" if created.existed else "已受理"
    row = {
        "service_request_id": str(created.issue_id),
        "service_notice": notice,
        "account_id": None,
    }
    if created.external_id is not None:
        row["external_id"] = created.external_id
    return _answer(fmt, "service_requests", "request", [row], 200 if created.existed else 201)
