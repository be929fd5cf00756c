"""Channels against real servers: e-mail to an aiosmtpd server (STARTTLS + AUTH) started in
the test, 企业微信/钉钉 robots and an SMS gateway on a local HTTP receiver; secrets never shown
back, never in an error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import socket
import subprocess
import urllib.parse
from datetime import UTC, datetime, time, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from geoservice.notifications import manage
from geoservice.notifications.channels import dingtalk_signed_url
from geoservice.notifications.worker import quiet_until
from tests import notify_support
from tests.notify_support import deliver, deliveries, worker_settings

scene, receivers = notify_support.scene, notify_support.receivers  # fixtures


def dispatch(client, scene, issue):
    response = client.post(
        f"/api/issues/{issue.id}/transitions",
        json={"to": "dispatched", "leader_id": scene.leaders["leader"].id},
        headers=scene.headers("planner"),
    )
    assert response.status_code == 200, response.get_json()


# --- e-mail ---------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content,
                "tls": session.ssl is not None,
                "login": session.auth_data if session.authenticated else None,
            }
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == b"notify@example.gov.cn" and auth_data.password == b"s3cret-pw"
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, port, str(cert)
    controller.stop()


def email_channel(session, port, ca_file, password="s3cret-pw"):
    return manage.save_channel(
        session,
        {
            "kind": "email",
            "name": "创文办邮箱",
            "config": {
                "host": "127.0.0.1",
                "port": port,
                "security": "starttls",
                "username": "notify@example.gov.cn",
                "sender": "notify@example.gov.cn",
                "ca_file": ca_file,
            },
            "secrets": {"password": password},
        },
    )


def test_email_goes_over_starttls_with_auth_to_a_real_smtp_server(client, scene, smtp_server):
    inbox, port, ca_file = smtp_server
    s = scene.session
    email_channel(s, port, ca_file)
    manage.save_preference(s, scene.leaders["leader"].id, {"email": "zhang@example.gov.cn"})
    issue = scene.issue()
    dispatch(client, scene, issue)
    assert deliver(s, worker_settings())["delivered"] == 1
    (mail,) = inbox.messages
    assert mail["to"] == ["zhang@example.gov.cn"] and mail["tls"]
    assert mail["login"] == b"notify@example.gov.cn"
    from email import message_from_bytes, policy

    parsed = message_from_bytes(mail["data"], policy=policy.default)
    assert "【交办】" in parsed["Subject"]
    body = parsed.get_content()
    assert f"https://cw.example.gov.cn/issues/{issue.id}" in body and "垃圾桶满溢" in body
    assert parsed["Message-ID"].endswith("@geoservice>")


def test_a_wrong_smtp_password_is_a_dead_letter_without_the_password(client, scene, smtp_server):
    inbox, port, ca_file = smtp_server
    s = scene.session
    email_channel(s, port, ca_file, password="wrong-password-9")
    manage.save_preference(s, scene.leaders["leader"].id, {"email": "zhang@example.gov.cn"})
    dispatch(client, scene, scene.issue())
    assert deliver(s, worker_settings())["dead"] == 1  # refused credentials: no retry
    (row,) = deliveries(s)
    assert "登录被拒绝" in row.last_error and "wrong-password-9" not in row.last_error
    assert inbox.messages == []


def test_no_email_address_means_no_email_delivery(client, scene, smtp_server):
    _, port, ca_file = smtp_server
    email_channel(scene.session, port, ca_file)
    dispatch(client, scene, scene.issue())
    assert deliveries(scene.session) == []


# --- robots ---------------------------------------------------------------------------------


def test_wecom_robot_gets_its_text_format_with_the_mobile_mentioned(client, scene, receivers):
    robot = receivers({"errcode": 0, "errmsg": "ok"})
    s = scene.session
    manage.save_channel(
        s, {"kind": "wecom", "name": "城南群", "secrets": {"webhook_url": robot.url + "?key=K1"}}
    )
    dispatch(client, scene, scene.issue())
    assert deliver(s, worker_settings())["delivered"] == 1
    (hit,) = robot.hits
    assert hit.path == "/hook?key=K1"
    body = hit.json()
    assert body["msgtype"] == "text"
    assert body["text"]["mentioned_mobile_list"] == ["13900000001"]
    assert "【交办】" in body["text"]["content"]


def test_a_robot_error_code_is_a_failure_and_is_retried(client, scene, receivers):
    robot = receivers({"errcode": 45009, "errmsg": "api freq out of limit"}, {"errcode": 0})
    s = scene.session
    manage.save_channel(
        s, {"kind": "wecom", "name": "城南群", "secrets": {"webhook_url": robot.url + "?key=K1"}}
    )
    dispatch(client, scene, scene.issue())
    now = datetime.now(UTC)
    assert deliver(s, worker_settings(), now)["retry"] == 1
    (row,) = deliveries(s)
    assert "45009" in row.last_error and "K1" not in row.last_error
    assert deliver(s, worker_settings(), now + timedelta(minutes=1))["delivered"] == 1


def test_dingtalk_robot_url_is_signed_and_the_body_mentions_the_mobile(client, scene, receivers):
    robot = receivers({"errcode": 0, "errmsg": "ok"})
    s = scene.session
    secret = "SEC0123456789abcdef"
    manage.save_channel(
        s,
        {
            "kind": "dingtalk",
            "name": "钉钉群",
            "secrets": {"webhook_url": robot.url + "?access_token=T1", "sign_secret": secret},
        },
    )
    dispatch(client, scene, scene.issue())
    assert deliver(s, worker_settings())["delivered"] == 1
    (hit,) = robot.hits
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(hit.path).query)
    assert query["access_token"] == ["T1"]
    timestamp, sign = query["timestamp"][0], query["sign"][0]
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert sign == expected  # parse_qs has undone the URL encoding
    body = hit.json()
    assert body["msgtype"] == "text" and body["at"]["atMobiles"] == ["13900000001"]
    assert body["text"]["content"].endswith("@13900000001")


def test_dingtalk_signature_matches_the_documented_example():
    url = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=X", "SECabc", 1)
    mac = hmac.new(b"SECabc", b"1\nSECabc", hashlib.sha256).digest()
    assert url.endswith("&timestamp=1&sign=" + urllib.parse.quote_plus(base64.b64encode(mac)))


def test_sms_gateway_through_its_http_template(client, scene, receivers):
    gateway = receivers(200)
    s = scene.session
    manage.save_channel(
        s,
        {
            "kind": "sms",
            "name": "短信",
            "config": {"url": gateway.url, "body_template": '{"to": "{mobile}", "msg": "{text}"}'},
            "secrets": {"headers": {"X-Api-Key": "sms-key-1"}},
        },
    )
    dispatch(client, scene, scene.issue())
    assert deliver(s, worker_settings())["delivered"] == 1
    (hit,) = gateway.hits
    assert hit.json()["to"] == "13900000001" and "【交办】" in hit.json()["msg"]
    assert hit.headers["X-Api-Key"] == "sms-key-1"


# --- settings by admins -----------------------------------------------------------------------


def test_channel_api_never_shows_a_secret_back(client, scene):
    admin = scene.headers("admin")
    created = client.post(
        "/api/notifications/channels",
        json={
            "kind": "dingtalk",
            "name": "钉钉群",
            "secrets": {
                "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=TOPSECRET",
                "sign_secret": "SECxyz",
            },
        },
        headers=admin,
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["secrets_set"] == ["sign_secret", "webhook_url"]
    listed = client.get("/api/notifications/channels", headers=admin)
    for text_ in (created.get_data(as_text=True), listed.get_data(as_text=True)):
        assert "TOPSECRET" not in text_ and "SECxyz" not in text_
    # An update without secrets keeps them.
    patched = client.patch(
        f"/api/notifications/channels/{body['id']}", json={"enabled": False}, headers=admin
    )
    assert patched.status_code == 200
    assert patched.get_json()["secrets_set"] == ["sign_secret", "webhook_url"]
    page = client.get("/admin/notifications", headers=admin)
    assert page.status_code == 200 and "TOPSECRET" not in page.get_data(as_text=True)
    # Each change is in the audit log, who and what — never the secrets.
    deleted = client.delete(f"/api/notifications/channels/{body['id']}", headers=admin)
    assert deleted.status_code == 204
    log = client.get("/api/audit?entity=notify_channel", headers=admin)
    assert log.status_code == 200, log.get_json()
    entries = log.get_json()["entries"]
    assert sorted(e["action"] for e in entries) == [
        "notify_channel.create",
        "notify_channel.delete",
        "notify_channel.update",
    ]
    assert "TOPSECRET" not in log.get_data(as_text=True)
    assert "SECxyz" not in log.get_data(as_text=True)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "fax", "name": "x"}, "kind"),
        ({"kind": "webhook", "name": "x", "config": {"url": "ftp://x"}}, "config.url"),
        ({"kind": "webhook", "name": "x", "config": {"url": "https://x.example"}}, "secret"),
        ({"kind": "email", "name": "x", "config": {"host": "h", "port": "abc"}}, "config.port"),
        ({"kind": "email", "name": "x", "config": {"host": "h", "colour": "red"}}, "config"),
        ({"kind": "wecom", "name": ""}, "name"),
        ({"kind": {}, "name": "x"}, "kind"),  # was a 500 (an unhashable kind)
        # Every delivery of these failed as "内部错误：ValueError", retried for ever.
        (
            {
                "kind": "sms",
                "name": "x",
                "config": {
                    "url": "https://sms.example",
                    "method": "POST /x HTTP/1.1\r\nX-Injected: 1",
                    "body_template": "{mobile}{text}",
                },
            },
            "config.method",
        ),
        (
            {
                "kind": "sms",
                "name": "x",
                "config": {"url": "https://sms.example", "body_template": '{"m": "{mobile}"}'},
            },
            "config.body_template",
        ),
        (
            {"kind": "wecom", "name": 5, "secrets": {"webhook_url": "https://x.example"}},
            "name",
        ),  # was saved as "5"
    ],
)
def test_bad_channel_settings_are_refused_by_field(client, scene, payload, field):
    response = client.post(
        "/api/notifications/channels", json=payload, headers=scene.headers("admin")
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == field


@pytest.mark.parametrize("ids", [[], [0], [2**63], [True], ["1"]])
def test_a_replay_names_dead_letters_by_their_ids(client, scene, ids):
    response = client.post(
        "/api/notifications/deliveries/replay",
        json={"ids": ids},
        headers=scene.headers("admin"),
    )
    assert response.status_code == 422
    assert response.get_json()["field"] == "ids"


def test_only_admins_manage_channels(client, scene):
    for who in ("planner", "viewer", "leader"):
        response = client.get("/api/notifications/channels", headers=scene.headers(who))
        assert response.status_code == 403


# --- preferences --------------------------------------------------------------------------------


def test_a_leader_sets_their_own_preferences_only(client, scene):
    own = scene.leaders["leader"].id
    response = client.put(
        f"/api/notifications/preferences/{own}",
        json={
            "email": "zhang@example.gov.cn",
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "channels": ["email", "wecom"],
        },
        headers=scene.headers("leader"),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["quiet_start"] == "22:00"
    other = scene.leaders["other"].id
    assert (
        client.get(
            f"/api/notifications/preferences/{other}", headers=scene.headers("leader")
        ).status_code
        == 403
    )
    bad = client.put(
        f"/api/notifications/preferences/{own}",
        json={"quiet_start": "25:99"},
        headers=scene.headers("leader"),
    )
    assert bad.status_code == 422 and bad.get_json()["field"] == "quiet_start"


def test_quiet_hours_hold_a_message_until_they_end(client, scene, receivers):
    robot = receivers({"errcode": 0})
    s = scene.session
    manage.save_channel(
        s, {"kind": "wecom", "name": "城南群", "secrets": {"webhook_url": robot.url}}
    )
    manage.save_preference(
        s, scene.leaders["leader"].id, {"quiet_start": "22:00", "quiet_end": "07:00"}
    )
    dispatch(client, scene, scene.issue())
    settings = worker_settings()
    today = datetime.now(settings.tz).date()
    night = datetime.combine(today, time(23, 30), tzinfo=settings.tz) + timedelta(days=1)
    assert deliver(s, settings, night.astimezone(UTC))["quiet"] == 1
    (row,) = deliveries(s)
    morning = datetime.combine(today + timedelta(days=2), time(7), tzinfo=settings.tz)
    assert row.next_attempt_at == morning and row.attempts == 0 and robot.hits == []
    assert deliver(s, settings, morning.astimezone(UTC))["delivered"] == 1


def test_quiet_hours_within_a_day_and_across_midnight():
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    at = datetime(2026, 3, 2, 12, 30, tzinfo=tz)
    assert quiet_until((time(12), time(14)), at, tz) == datetime(2026, 3, 2, 14, tzinfo=tz)
    assert quiet_until((time(12), time(14)), at.replace(hour=15), tz) is None
    assert quiet_until((time(22), time(7)), at.replace(hour=3), tz) == datetime(
        2026, 3, 2, 7, tzinfo=tz
    )


def test_the_admin_page_adds_a_channel_and_replays_dead_letters(client, scene, receivers):
    admin = scene.headers("admin")
    added = client.post(
        "/admin/notifications/channels",
        data={
            "kind": "wecom",
            "name": "城南群",
            "enabled": "1",
            "webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=PAGESECRET",
        },
        headers=admin,
    )
    assert added.status_code == 302
    page = client.get("/admin/notifications", headers=admin).get_data(as_text=True)
    assert "城南群" in page and "webhook_url" in page and "PAGESECRET" not in page
    refused = client.post(
        "/admin/notifications/channels",
        data={"kind": "webhook", "name": "缺地址"},
        headers=admin,
    )
    assert refused.status_code == 422 and "缺少设置" in refused.get_data(as_text=True)
    # A dead letter shows on the page and goes back to the queue from it.
    s = scene.session
    manage.save_channel(
        s,
        {
            "kind": "webhook",
            "name": "坏的",
            "config": {"url": receivers(404).url},
            "secrets": {"secret": "x" * 8},
        },
    )
    dispatch(client, scene, scene.issue())
    assert deliver(s, worker_settings())["dead"] == 1
    (row,) = [r for r in deliveries(s) if r.status == "dead"]
    assert "HTTP 404" in client.get("/admin/notifications", headers=admin).get_data(as_text=True)
    replayed = client.post("/admin/notifications/replay", data={"id": str(row.id)}, headers=admin)
    assert replayed.status_code == 302
    assert [r.status for r in deliveries(s) if r.id == row.id] == ["pending"]
    assert client.get("/admin/notifications", headers=scene.headers("planner")).status_code == 403


def test_preferences_and_unit_channels_choose_who_gets_what(client, scene, receivers):
    s = scene.session
    town = manage.save_channel(
        s,
        {
            "kind": "webhook",
            "name": "城南街道",
            "unit_id": scene.unit.id,
            "config": {"url": receivers(200).url},
            "secrets": {"secret": "s" * 8},
        },
    )
    other_unit = scene.leaders["other"].unit_id
    manage.save_channel(
        s,
        {
            "kind": "webhook",
            "name": "教育局",
            "unit_id": other_unit,
            "config": {"url": receivers(200).url},
            "secrets": {"secret": "s" * 8},
        },
    )
    robot = manage.save_channel(
        s, {"kind": "wecom", "name": "全县群", "secrets": {"webhook_url": receivers(200).url}}
    )
    dispatch(client, scene, scene.issue())
    assert {r.channel_id for r in deliveries(s)} == {town.id, robot.id}  # not 教育局's
    manage.save_preference(s, scene.leaders["leader"].id, {"channels": ["wecom"]})
    dispatch_again = client.post(
        f"/api/issues/{scene.issue().id}/transitions",
        json={"to": "dispatched", "leader_id": scene.leaders["leader"].id},
        headers=scene.headers("planner"),
    )
    assert dispatch_again.status_code == 200
    newest = max(r.message_id for r in deliveries(s))
    assert {r.channel_id for r in deliveries(s) if r.message_id == newest} == {robot.id}
