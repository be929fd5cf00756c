"""Sending one delivery: e-mail over SMTP, 企业微信/钉钉 group robots, a signed webhook, an
SMS gateway through an HTTP template, and the integration callback (回单).

Every sender raises DeliveryError on failure; `permanent=True` means retrying cannot help
(a 4xx answer, refused credentials or recipient), so the delivery goes to the dead letters at
once. Secrets (passwords, robot URLs and their keys, signing secrets) never appear in an error
text: `redact()` removes them before anything is stored or logged.

Signatures, for receivers to verify:
- webhook and callback: `X-Geoservice-Timestamp: <unix seconds>` and
  `X-Geoservice-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`;
  `X-Geoservice-Delivery` is the idempotency key (the same on every retry).
- 钉钉: `&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256(secret, "<ms>\\n<secret>")>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

USER_AGENT = "geoservice-notifications/1"


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """One delivery, as the worker hands it to a sender (plain values, no session)."""

    delivery_id: int
    delivery_key: str
    kind: str  # the message's kind (dispatch, escalate, callback …)
    subject: str
    text: str  # the rendered message, link included
    link: str | None
    address: str
    data: Mapping[str, Any]
    channel_kind: str  # email, wecom, dingtalk, webhook, sms, callback
    config: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)


def redact(message: str, secrets: Mapping[str, Any]) -> str:
    out = message
    for value in secrets.values():
        if isinstance(value, str) and len(value) >= 4:
            out = out.replace(value, "***")
            parsed = urllib.parse.urlsplit(value)
            if parsed.query:
                out = out.replace(parsed.query, "***")
    return out[:500]


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int | None = None) -> str:
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    sign = urllib.parse.quote_plus(base64.b64encode(mac.digest()))
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp}&sign={sign}"


def _post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float, method: str = "POST"
) -> bytes:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("User-Agent", USER_AGENT)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(65536)
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 425, 429)
        raise DeliveryError(f"HTTP {exc.code}", permanent=permanent) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"无法连接：{exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise DeliveryError(f"连接失败或超时：{exc.__class__.__name__}") from None


def _json_answer(raw: bytes, robot: str) -> None:
    """企业微信/钉钉 answer HTTP 200 with {"errcode": …}: anything but 0 is a failure."""
    try:
        answer = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise DeliveryError(f"{robot}返回的不是 JSON") from None
    code = answer.get("errcode", 0) if isinstance(answer, dict) else 0
    if code not in (0, "0"):
        raise DeliveryError(f"{robot}返回错误 {code}：{str(answer.get('errmsg', ''))[:100]}")


# --- the channels ---------------------------------------------------------------------------


def send_email(out: Outgoing, timeout: float) -> None:
    cfg, secrets = out.config, out.secrets
    host, port = cfg.get("host"), int(cfg.get("port") or 587)
    security = cfg.get("security", "starttls")  # starttls | ssl | none
    context = ssl.create_default_context(cafile=cfg.get("ca_file") or None)
    mail = EmailMessage()
    mail["Subject"] = out.subject
    mail["From"] = cfg.get("sender") or cfg.get("username") or "geoservice@localhost"
    mail["To"] = out.address
    mail["Date"] = formatdate(localtime=False)
    # The same delivery always has the same Message-ID: a receiver can drop a resend.
    key_hash = hashlib.sha256(out.delivery_key.encode()).hexdigest()[:32]
    mail["Message-ID"] = f"<{key_hash}@geoservice>"
    mail.set_content(out.text)
    try:
        if security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.get("username"):
                smtp.login(cfg["username"], secrets.get("password") or "")
            smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP 登录被拒绝（{exc.smtp_code}）", permanent=True) from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryError(f"收件人被拒绝：{out.address}", permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP 错误 {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600
        ) from None
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP 失败：{exc.__class__.__name__}") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS 失败：{exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise DeliveryError(f"无法连接 SMTP 服务器：{exc.__class__.__name__}") from None


def wecom_body(out: Outgoing) -> dict[str, Any]:
    text: dict[str, Any] = {"content": out.text}
    if out.address:
        text["mentioned_mobile_list"] = [out.address]
    return {"msgtype": "text", "text": text}


def dingtalk_body(out: Outgoing) -> dict[str, Any]:
    content = out.text + (f"\n@{out.address}" if out.address else "")
    return {
        "msgtype": "text",
        "text": {"content": content},
        "at": {"atMobiles": [out.address] if out.address else [], "isAtAll": False},
    }


def _robot_url(out: Outgoing, robot: str) -> str:
    url = out.secrets.get("webhook_url")
    if not url:
        raise DeliveryError(f"{robot}渠道未设置 webhook_url", permanent=True)
    return url


def send_wecom(out: Outgoing, timeout: float) -> None:
    body = json.dumps(wecom_body(out), ensure_ascii=False).encode()
    raw = _post(_robot_url(out, "企业微信"), body, {"Content-Type": "application/json"}, timeout)
    _json_answer(raw, "企业微信")


def send_dingtalk(out: Outgoing, timeout: float) -> None:
    url = _robot_url(out, "钉钉")
    if out.secrets.get("sign_secret"):
        url = dingtalk_signed_url(url, out.secrets["sign_secret"])
    body = json.dumps(dingtalk_body(out), ensure_ascii=False).encode()
    raw = _post(url, body, {"Content-Type": "application/json"}, timeout)
    _json_answer(raw, "钉钉")


def webhook_body(out: Outgoing) -> dict[str, Any]:
    return {
        "delivery": out.delivery_key,
        "kind": out.kind,
        "subject": out.subject,
        "text": out.text,
        "link": out.link,
        "recipient_mobile": out.address or None,
        "data": dict(out.data),
    }


def signed_post(url: str, secret: str, key: str, kind: str, payload: Any, timeout: float) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Geoservice-Timestamp": timestamp,
        "X-Geoservice-Signature": sign_webhook(secret, timestamp, body),
        "X-Geoservice-Delivery": key,
        "X-Geoservice-Event": kind,
    }
    _post(url, body, headers, timeout)


def send_webhook(out: Outgoing, timeout: float) -> None:
    url = out.config.get("url")
    if not url:
        raise DeliveryError("Webhook 渠道未设置 url", permanent=True)
    secret = out.secrets.get("secret") or ""
    signed_post(url, secret, out.delivery_key, out.kind, webhook_body(out), timeout)


def send_callback(out: Outgoing, timeout: float) -> None:
    signed_post(
        out.address,
        out.secrets.get("secret") or "",
        out.delivery_key,
        "open311.status",
        dict(out.data),
        timeout,
    )


def _fill(template: str, values: Mapping[str, str], as_json: bool) -> str:
    out = template
    for name, value in values.items():
        filled = json.dumps(value, ensure_ascii=False)[1:-1] if as_json else value
        out = out.replace("{" + name + "}", filled)
    return out


SMS_MAX = 300


def sms_text(text: str, limit: int = SMS_MAX) -> str:
    """The message cut to `limit` characters without cutting its last line, the link where
    the person acts (`请处理：…`): the description before it is shortened instead."""
    if len(text) <= limit:
        return text
    body, _, last = text.rpartition("\n")
    if not body or len(last) + 2 > limit:
        return text[: limit - 1] + "…"
    return body[: limit - len(last) - 2] + "…\n" + last


def send_sms(out: Outgoing, timeout: float) -> None:
    """An SMS gateway: `config.url`, `config.method` (POST), `config.content_type` (json or
    form), `config.body_template` with {mobile} {text}; `secrets.headers` (e.g. a token)."""
    cfg = out.config
    url = cfg.get("url")
    if not url or not cfg.get("body_template"):
        raise DeliveryError("短信渠道未设置 url 或 body_template", permanent=True)
    as_json = cfg.get("content_type", "json") == "json"
    values = {"mobile": out.address, "text": sms_text(out.text)}
    if as_json:
        body = _fill(cfg["body_template"], values, True)
        content_type = "application/json"
    else:
        quoted = {k: urllib.parse.quote_plus(v) for k, v in values.items()}
        body = _fill(cfg["body_template"], quoted, False)
        content_type = "application/x-www-form-urlencoded"
    headers = {"Content-Type": content_type, **dict(out.secrets.get("headers") or {})}
    raw = _post(url, body.encode(), headers, timeout, method=cfg.get("method", "POST"))
    expect = cfg.get("success_contains")
    if expect and expect not in raw.decode("utf-8", "replace"):
        raise DeliveryError("短信网关的回答不表示成功")


SENDERS = {
    "email": send_email,
    "wecom": send_wecom,
    "dingtalk": send_dingtalk,
    "webhook": send_webhook,
    "sms": send_sms,
    "callback": send_callback,
}


def send(out: Outgoing, timeout: float) -> None:
    sender = SENDERS.get(out.channel_kind)
    if sender is None:
        raise DeliveryError(f"未知渠道类型 {out.channel_kind}", permanent=True)
    try:
        sender(out, timeout)
    except DeliveryError as exc:
        raise DeliveryError(redact(str(exc), out.secrets), exc.permanent) from None
