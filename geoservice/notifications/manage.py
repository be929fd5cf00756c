"""Admin services: channels (secrets never shown back), people's preferences, unit contacts,
integration callbacks, the dead letters and their replay. Plain functions on a session."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from datetime import time
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geoservice.input_values import shown, text_value
from geoservice.models import Leader, Unit, User
from geoservice.notifications import queue
from geoservice.notifications.models import (
    CHANNEL_KINDS,
    DELIVERY_STATES,
    Channel,
    IntegrationCallback,
    Preference,
    UnitContact,
)
from geoservice.service_errors import Conflict, InvalidInput, NotFound

# Per kind: settings that may be shown, and secrets (write-only).
CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("host", "port", "security", "username", "sender", "ca_file"),
    "wecom": (),
    "dingtalk": (),
    "webhook": ("url",),
    "sms": ("url", "method", "content_type", "body_template", "success_contains"),
}
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("password",),
    "wecom": ("webhook_url",),
    "dingtalk": ("webhook_url", "sign_secret"),
    "webhook": ("secret",),
    "sms": ("headers",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "email": ("host",),
    "wecom": ("webhook_url",),
    "dingtalk": ("webhook_url",),
    "webhook": ("url", "secret"),
    "sms": ("url", "body_template"),
}
MOBILE = re.compile(r"^\+?\d{5,20}$")
CELL = re.compile(r"^1[3-9]\d{9}$")  # a mainland mobile: what the leader's own phone must be
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


URL_TITLES = {"config.url": "接收地址", "secrets.webhook_url": "Webhook 地址", "url": "地址"}


def _http_url(value: Any, field: str) -> str:
    url = str(value or "").strip()
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        title = URL_TITLES.get(field, field)
        raise InvalidInput(f"{title}须是 http:// 或 https:// 开头的网址", field=field)
    return url


def channel_view(channel: Channel) -> dict[str, Any]:
    """A channel as shown to admins: settings, and only the *names* of the secrets set."""
    return {
        "id": channel.id,
        "kind": channel.kind,
        "kind_label": CHANNEL_KINDS.get(channel.kind, channel.kind),
        "name": channel.name,
        "enabled": channel.enabled,
        "unit_id": channel.unit_id,
        "config": dict(channel.config or {}),
        "secrets_set": sorted(k for k, v in (channel.secrets or {}).items() if v),
        "updated_at": channel.updated_at.isoformat() if channel.updated_at else None,
    }


def list_channels(session: Session) -> list[dict[str, Any]]:
    return [channel_view(c) for c in session.scalars(select(Channel).order_by(Channel.id))]


def _clean_config(kind: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("config 须是对象", field="config")
    unknown = set(raw) - set(CONFIG_FIELDS[kind])
    if unknown:
        raise InvalidInput(
            f"{CHANNEL_KINDS[kind]}没有设置项：{'、'.join(sorted(unknown))}",
            {"allowed": list(CONFIG_FIELDS[kind])},
            "config",
        )
    out = {k: v for k, v in raw.items() if v not in (None, "")}
    if "url" in out:
        out["url"] = _http_url(out["url"], "config.url")
    if "port" in out:
        try:
            out["port"] = int(out["port"])
        except (TypeError, ValueError):
            raise InvalidInput("端口须是整数", field="config.port") from None
        if not 0 < out["port"] < 65536:
            raise InvalidInput("端口须在 1–65535 之间", field="config.port")
    if out.get("security", "starttls") not in ("starttls", "ssl", "none"):
        raise InvalidInput("security 只能是 starttls、ssl 或 none", field="config.security")
    if out.get("content_type", "json") not in ("json", "form"):
        raise InvalidInput("content_type 只能是 json 或 form", field="config.content_type")
    for key, value in out.items():
        if key != "port" and not isinstance(value, str):
            raise InvalidInput(f"config.{key} 须是文字", field=f"config.{key}")
    if out.get("method", "POST") not in ("POST", "PUT"):  # a gateway takes a message by these
        raise InvalidInput("请求方法（config.method）只能是 POST 或 PUT", field="config.method")
    if (
        kind == "sms"
        and "body_template" in out
        and not ("{mobile}" in out["body_template"] and "{text}" in out["body_template"])
    ):
        raise InvalidInput(
            "短信请求体模板须含 {mobile} 与 {text}（收信手机号与短信内容）",
            field="config.body_template",
        )
    return out


def _clean_secrets(kind: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("secrets 须是对象", field="secrets")
    unknown = set(raw) - set(SECRET_FIELDS[kind])
    if unknown:
        raise InvalidInput(
            f"{CHANNEL_KINDS[kind]}没有密钥项：{'、'.join(sorted(unknown))}",
            {"allowed": list(SECRET_FIELDS[kind])},
            "secrets",
        )
    out = {k: v for k, v in raw.items() if v not in (None, "")}
    if "webhook_url" in out:
        out["webhook_url"] = _http_url(out["webhook_url"], "secrets.webhook_url")
    if "headers" in out and not (
        isinstance(out["headers"], Mapping)
        and all(isinstance(v, str) for v in out["headers"].values())
    ):
        raise InvalidInput("secrets.headers 须是 {名称: 值} 对象", field="secrets.headers")
    for key in ("password", "sign_secret", "secret"):
        if key in out and not isinstance(out[key], str):
            raise InvalidInput(f"secrets.{key} 须是文字", field=f"secrets.{key}")
    return out


def save_channel(
    session: Session, payload: Mapping[str, Any], channel_id: int | None = None
) -> Channel:
    """Creates or updates a channel. Secrets left out of an update keep their values; a
    secret set to "" is removed."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("请求体须是 JSON 对象")
    channel = None
    if channel_id is not None:
        channel = session.get(Channel, channel_id)
        if channel is None:
            raise NotFound(f"没有编号为 {channel_id} 的通知渠道", field="id")
    kind = payload.get("kind", channel.kind if channel else None)
    if not isinstance(kind, str) or kind not in CHANNEL_KINDS:
        raise InvalidInput(f"未知渠道类型 {shown(kind)}", {"kinds": list(CHANNEL_KINDS)}, "kind")
    if channel is not None and kind != channel.kind:
        raise InvalidInput("渠道类型不能修改，请新建渠道", field="kind")
    name = payload.get("name", channel.name if channel else "")
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise InvalidInput("请填写渠道名称（不超过 100 字）", field="name")
    clash = session.scalar(select(Channel.id).where(Channel.name == name))
    if clash is not None and clash != channel_id:
        raise Conflict(f"已有名为「{name}」的渠道", field="name")
    enabled = payload.get("enabled", channel.enabled if channel else True)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled 须是 true 或 false", field="enabled")
    unit_id = payload.get("unit_id", channel.unit_id if channel else None)
    if unit_id is not None:
        if isinstance(unit_id, bool) or not isinstance(unit_id, int):
            raise InvalidInput("unit_id 须是单位编号", field="unit_id")
        if session.get(Unit, unit_id) is None:
            raise InvalidInput(f"没有编号为 {unit_id} 的单位", field="unit_id")
    config = (
        _clean_config(kind, payload.get("config"))
        if "config" in payload or not channel
        else dict(channel.config or {})
    )
    given = payload.get("secrets")
    secrets = dict(channel.secrets or {}) if channel else {}
    if given is not None:
        cleaned = _clean_secrets(kind, given)
        for key in given if isinstance(given, Mapping) else ():
            secrets.pop(key, None)
        secrets.update(cleaned)
    missing = [f for f in REQUIRED[kind] if not (config.get(f) or secrets.get(f))]
    if missing:
        raise InvalidInput(
            f"{CHANNEL_KINDS[kind]}缺少设置：{'、'.join(missing)}",
            {"missing": missing},
            missing[0],
        )
    if channel is None:
        channel = Channel(kind=kind)
        session.add(channel)
    channel.name, channel.enabled, channel.unit_id = name, enabled, unit_id
    channel.config, channel.secrets = config, secrets
    session.flush()
    session.refresh(channel)
    return channel


def get_channel(session: Session, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"没有编号为 {channel_id} 的通知渠道", field="id")
    return channel


def delete_channel(session: Session, channel_id: int) -> None:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"没有编号为 {channel_id} 的通知渠道", field="id")
    session.delete(channel)
    session.flush()


# --- people ---------------------------------------------------------------------------------


def _time(value: Any, field: str) -> time | None:
    if value in (None, ""):
        return None
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{field} 须是 HH:MM 时间", field=field) from None


def preference_view(session: Session, leader_id: int) -> dict[str, Any]:
    leader = session.get(Leader, leader_id)
    if leader is None:
        raise NotFound(f"没有编号为 {leader_id} 的领导", field="leader_id")
    pref = session.get(Preference, leader_id)
    return {
        "leader_id": leader_id,
        "name": leader.name,
        "email": pref.email if pref else None,
        "mobile": (
            pref.mobile
            if pref and pref.mobile
            else (leader.phone if leader.phone and CELL.match(leader.phone) else None)
        ),
        "channels": pref.channels if pref else None,
        "quiet_start": pref.quiet_start.strftime("%H:%M") if pref and pref.quiet_start else None,
        "quiet_end": pref.quiet_end.strftime("%H:%M") if pref and pref.quiet_end else None,
        "digest": bool(pref.digest) if pref else False,
    }


def save_preference(session: Session, leader_id: int, payload: Mapping[str, Any]) -> dict:
    if session.get(Leader, leader_id) is None:
        raise NotFound(f"没有编号为 {leader_id} 的领导", field="leader_id")
    if not isinstance(payload, Mapping):
        raise InvalidInput("请求体须是 JSON 对象")
    unknown = set(payload) - {"email", "mobile", "channels", "quiet_start", "quiet_end", "digest"}
    if unknown:
        raise InvalidInput(f"未知字段：{'、'.join(sorted(unknown))}", field=sorted(unknown)[0])
    pref = session.get(Preference, leader_id) or Preference(leader_id=leader_id)
    if "email" in payload:
        email = text_value(payload["email"], "email", "邮箱地址").strip() or None
        if email and not EMAIL.match(email):
            raise InvalidInput(f"邮箱地址不正确：{email}", field="email")
        pref.email = email
    if "mobile" in payload:
        mobile = text_value(payload["mobile"], "mobile", "手机号").strip() or None
        if mobile and not MOBILE.match(mobile):
            raise InvalidInput(f"手机号不正确：{mobile}", field="mobile")
        pref.mobile = mobile
    if "channels" in payload:
        chosen = payload["channels"]
        if chosen is not None and (
            not isinstance(chosen, list) or any(c not in CHANNEL_KINDS for c in chosen)
        ):
            raise InvalidInput(
                "channels 须是渠道类型的列表（或 null 表示全部）",
                {"kinds": list(CHANNEL_KINDS)},
                "channels",
            )
        pref.channels = chosen
    if "quiet_start" in payload:
        pref.quiet_start = _time(payload["quiet_start"], "quiet_start")
    if "quiet_end" in payload:
        pref.quiet_end = _time(payload["quiet_end"], "quiet_end")
    if (pref.quiet_start is None) != (pref.quiet_end is None):
        raise InvalidInput("免打扰时段须同时设置开始和结束", field="quiet_end")
    if "digest" in payload:
        if not isinstance(payload["digest"], bool):
            raise InvalidInput("digest 须是 true 或 false", field="digest")
        pref.digest = payload["digest"]
    session.add(pref)
    session.flush()
    return preference_view(session, leader_id)


def set_unit_contacts(
    session: Session,
    unit_id: int,
    contact_leader_id: int | None,
    supervisor_leader_id: int | None,
) -> UnitContact:
    if session.get(Unit, unit_id) is None:
        raise NotFound(f"没有编号为 {unit_id} 的单位", field="unit_id")
    for field, value in (
        ("contact_leader_id", contact_leader_id),
        ("supervisor_leader_id", supervisor_leader_id),
    ):
        if value is not None and session.get(Leader, value) is None:
            raise InvalidInput(f"没有编号为 {value} 的领导", field=field)
    # The contact answers for the unit's issues with it: one of its leaders, who sees them
    # (a leader of another unit was sent links to issues its account could not open).
    if contact_leader_id is not None:
        contact = session.get(Leader, contact_leader_id)
        if contact.unit_id != unit_id:
            raise InvalidInput(
                f"联络人应为本单位的领导（{contact.name}不属于该单位）", field="contact_leader_id"
            )
    row = session.get(UnitContact, unit_id) or UnitContact(unit_id=unit_id)
    row.contact_leader_id, row.supervisor_leader_id = contact_leader_id, supervisor_leader_id
    session.add(row)
    session.flush()
    return row


def set_callback(session: Session, user: User, url: str, secret: str | None) -> None:
    """Where an integration account's tickets report back (回单), and the signing secret
    (kept when omitted on an update)."""
    if user.role != "integration":
        raise InvalidInput("回单地址只能设置给系统对接（integration）账号", field="user")
    url = _http_url(url, "url")
    row = session.get(IntegrationCallback, user.id)
    if row is None:
        if not secret:
            raise InvalidInput("请设置签名密钥（secret）", field="secret")
        row = IntegrationCallback(user_id=user.id, url=url, secret=secret)
    else:
        row.url = url
        if secret:
            row.secret = secret
    session.add(row)
    session.flush()


# --- the dead letters ------------------------------------------------------------------------


def deliveries(
    session: Session, status: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    if status is not None and status not in DELIVERY_STATES:
        raise InvalidInput(
            f"未知状态 {shown(status)}", {"statuses": list(DELIVERY_STATES)}, "status"
        )
    where = "WHERE d.status = :status" if status else ""
    params = {"status": status, "limit": limit, "offset": offset}
    total = session.scalar(text(f"SELECT count(*) FROM notify_deliveries d {where}"), params)
    rows = session.execute(
        text(
            f"""
SELECT d.id, d.status, d.attempts, d.last_error, d.next_attempt_at, d.delivered_at,
       d.created_at, d.address, m.id AS message_id, m.kind, m.subject, m.issue_id,
       COALESCE(c.name, '回单：' || u.username) AS channel,
       COALESCE(c.kind, 'callback') AS channel_kind
FROM notify_deliveries d JOIN notify_messages m ON m.id = d.message_id
LEFT JOIN notify_channels c ON c.id = d.channel_id
LEFT JOIN users u ON u.id = d.callback_user_id
{where} ORDER BY d.id DESC LIMIT :limit OFFSET :offset"""
        ),
        params,
    ).mappings()
    out = []
    for r in rows:
        item = dict(r)
        if item["channel_kind"] == "callback":
            item["address"] = _host_only(item["address"])
        for key in ("next_attempt_at", "delivered_at", "created_at"):
            item[key] = item[key].isoformat() if item[key] else None
        item["status_label"] = DELIVERY_STATES.get(item["status"], item["status"])
        out.append(item)
    return total, out


def _host_only(url: str) -> str:
    parsed = urllib.parse.urlsplit(url or "")
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}" if parsed.netloc else ""


def replay(session: Session, delivery_ids: list[int] | None) -> int:
    """Dead letters back to the queue, due now, attempts counted afresh, each with a new
    procrastinate job deferred in the caller's transaction. None: all of them."""
    if delivery_ids is None:
        where, params = "status = 'dead'", {}
    else:
        where, params = "status = 'dead' AND id = ANY(:ids)", {"ids": delivery_ids}
    ids = session.scalars(
        text(
            "UPDATE notify_deliveries SET status = 'pending', attempts = 0, next_attempt_at ="
            f" now(), locked_until = NULL, updated_at = now() WHERE {where} RETURNING id"
        ),
        params,
    ).all()
    return queue.defer(session, ids)
