"""Open311 GeoReport v2 at /open311/v2: round trips shaped like the spec's own examples
(http://wiki.open311.org/GeoReport_v2), JSON and XML, keys = integration tokens, the same
ticket twice is one issue, status changes pushed back (回单) through the outbox, and the
same bad-input rules as our API."""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from geoservice.models import Issue
from geoservice.notifications import manage
from tests import notify_support
from tests.factories import metres
from tests.issues.helpers import account
from tests.notify_support import deliver, worker_settings

scene, receivers = notify_support.scene, notify_support.receivers  # fixtures

# The spec's example response of GET requests (its keys are what clients read).
SPEC_REQUEST_KEYS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
SPEC_SERVICE_KEYS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}


@pytest.fixture
def hotline(scene):
    user, headers = account(scene.session, "integration")
    return user, headers["Authorization"].removeprefix("Bearer ")


def ticket(key: str, **extra):
    lon, lat = metres(100, 100)
    form = {
        "api_key": key,
        "service_code": "环境卫生",
        "lat": str(lat),
        "long": str(lon),
        "address_string": "人民路 88 号门前",
        "email": "citizen@example.com",
        "first_name": "john",
        "last_name": "smith",
        "phone": "111111111",
        "description": "门前垃圾堆积三天无人清运",
        "external_id": "12345-2026-000123",
    }
    form.update(extra)
    return {k: v for k, v in form.items() if v is not None}


def test_discovery_and_services_in_json_and_xml(client, scene, hotline):
    _, key = hotline
    discovery = client.get("/open311/v2/discovery.json")
    assert discovery.status_code == 200
    (endpoint,) = discovery.get_json()["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert client.get("/open311/v2/discovery.xml").mimetype == "text/xml"
    services = client.get(f"/open311/v2/services.json?api_key={key}")
    assert services.status_code == 200
    rows = services.get_json()
    assert {r["service_code"] for r in rows} == set(client.application.config["ISSUE_CATEGORIES"])
    assert all(set(r) == SPEC_SERVICE_KEYS for r in rows)
    xml = ET.fromstring(client.get(f"/open311/v2/services.xml?api_key={key}").data)
    assert xml.tag == "services"
    assert [e.findtext("service_code") for e in xml.findall("service")] == [
        r["service_code"] for r in rows
    ]


def test_a_ticket_round_trip_and_the_same_ticket_twice_is_one_issue(client, scene, hotline):
    _user, key = hotline
    s = scene.session
    before = s.scalar(select(func.count()).select_from(Issue))
    created = client.post("/open311/v2/requests.json", data=ticket(key))
    assert created.status_code == 201, created.get_json()
    (answer,) = created.get_json()
    assert set(answer) >= {"service_request_id", "service_notice", "account_id"}
    request_id = answer["service_request_id"]
    again = client.post("/open311/v2/requests.json", data=ticket(key))
    assert again.status_code == 200
    assert again.get_json()[0]["service_request_id"] == request_id
    assert s.scalar(select(func.count()).select_from(Issue)) == before + 1
    issue = s.get(Issue, int(request_id))
    assert issue.source == "12345热线" and issue.leader_id == scene.leaders["leader"].id
    assert "人民路 88 号门前" in issue.description

    one = client.get(f"/open311/v2/requests/{request_id}.json?api_key={key}")
    assert one.status_code == 200
    (row,) = one.get_json()
    assert set(row) >= SPEC_REQUEST_KEYS
    assert row["status"] == "open" and row["status_notes"] == "已受理，待立案"
    assert row["service_code"] == "环境卫生" and row["address"] == "人民路 88 号门前"
    assert row["external_id"] == "12345-2026-000123"
    assert abs(row["lat"] - float(ticket(key)["lat"])) < 1e-6

    listed = client.get(f"/open311/v2/requests.json?api_key={key}&status=open")
    assert request_id in {r["service_request_id"] for r in listed.get_json()}
    closed = client.get(f"/open311/v2/requests.json?api_key={key}&status=closed")
    assert request_id not in {r["service_request_id"] for r in closed.get_json()}
    # service_request_id overrides every other argument (GeoReport v2).
    by_id = client.get(
        f"/open311/v2/requests.json?api_key={key}&service_request_id={request_id}"
        "&status=closed&service_code=道路破损"
    )
    assert [r["service_request_id"] for r in by_id.get_json()] == [request_id]
    xml = ET.fromstring(client.get(f"/open311/v2/requests/{request_id}.xml?api_key={key}").data)
    assert xml.tag == "service_requests"
    assert xml.find("request").findtext("status") == "open"
    # The same ticket from another integration is another ticket.
    _, other_key = account(s, "integration")
    other = client.post(
        "/open311/v2/requests.json",
        data=ticket(other_key["Authorization"].removeprefix("Bearer ")),
    )
    assert other.status_code == 201
    assert other.get_json()[0]["service_request_id"] != request_id


def test_a_rejected_ticket_reads_closed_with_the_reason(client, scene, hotline):
    _, key = hotline
    request_id = client.post("/open311/v2/requests.json", data=ticket(key)).get_json()[0][
        "service_request_id"
    ]
    response = client.post(
        f"/api/issues/{request_id}/transitions",
        json={"to": "rejected", "note": "非本辖区事项"},
        headers=scene.headers("planner"),
    )
    assert response.status_code == 200
    (row,) = client.get(f"/open311/v2/requests/{request_id}.json?api_key={key}").get_json()
    assert row["status"] == "closed" and row["status_notes"] == "不予立案：非本辖区事项"


def test_status_changes_are_pushed_to_the_callback_signed(client, scene, hotline, receivers):
    user, key = hotline
    s = scene.session
    receiver = receivers(500, 200)
    manage.set_callback(s, user, receiver.url, "callback-secret-1")
    request_id = client.post("/open311/v2/requests.json", data=ticket(key)).get_json()[0][
        "service_request_id"
    ]
    planner = scene.headers("planner")
    for move in ({"to": "accepted"}, {"to": "dispatched"}):
        assert (
            client.post(
                f"/api/issues/{request_id}/transitions", json=move, headers=planner
            ).status_code
            == 200
        )
    settings = worker_settings()
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    deliver(s, settings, now)
    deliver(s, settings, now + timedelta(minutes=5))
    ok = receiver.succeeded()
    bodies = sorted((h.json() for h in ok), key=lambda b: b["event_id"])
    assert [b["our_status"] for b in bodies] == ["accepted", "dispatched"]
    assert all(b["external_id"] == "12345-2026-000123" for b in bodies)
    assert bodies[1]["status"] == "open" and bodies[1]["status_notes"].startswith("已交办城南街道")
    for hit in ok:
        ts = hit.headers["X-Geoservice-Timestamp"]
        mac = hmac.new(b"callback-secret-1", ts.encode() + b"." + hit.body, hashlib.sha256)
        assert hit.headers["X-Geoservice-Signature"] == "sha256=" + mac.hexdigest()
    assert len(ok) == 2  # one failed try was retried; each status once


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"service_code": "不存在的类别"}, 400, "service_code"),
        ({"service_code": None}, 400, "service_code"),
        ({"lat": None}, 400, "lat"),
        ({"lat": "abc"}, 400, "lat"),
        ({"lat": "95"}, 400, "geometry"),
        ({"lat": "10", "long": "10"}, 400, "geometry"),  # outside the service area
        ({"colour": "red"}, 400, "colour"),
        ({"external_id": "x" * 101}, 400, "external_id"),
        ({"api_key": "wrong"}, 401, "api_key"),
        ({"api_key": None}, 401, "api_key"),
    ],
)
def test_bad_input_to_post_requests(client, scene, hotline, change, status, field):
    _, key = hotline
    response = client.post("/open311/v2/requests.json", data=ticket(key, **change))
    assert response.status_code == status, response.get_json()
    (error,) = response.get_json()
    assert error["code"] == status and error["field"] == field and error["description"]


def test_errors_in_xml_and_other_refusals(client, scene, hotline):
    _, key = hotline
    xml = client.post("/open311/v2/requests.xml", data=ticket(key, service_code="nope"))
    assert xml.status_code == 400
    root = ET.fromstring(xml.data)
    assert root.tag == "errors" and root.find("error").findtext("code") == "400"
    unknown = client.get(f"/open311/v2/requests.json?api_key={key}&colour=red")
    assert unknown.status_code == 400 and unknown.get_json()[0]["field"] == "colour"
    assert client.get(f"/open311/v2/requests/999999999.json?api_key={key}").status_code == 404
    assert client.get(f"/open311/v2/requests/abc.json?api_key={key}").status_code == 404
    assert client.get(f"/open311/v2/requests.html?api_key={key}").status_code == 404
    assert client.get("/open311/v2/requests.json").status_code == 401
    bad_date = client.get(f"/open311/v2/requests.json?api_key={key}&start_date=yesterday")
    assert bad_date.status_code == 400 and bad_date.get_json()[0]["field"] == "start_date"
    _, read_only = account(scene.session, "integration", scopes=["issues.read"])
    refused = client.post(
        "/open311/v2/requests.json",
        data=ticket(read_only["Authorization"].removeprefix("Bearer ")),
    )
    assert refused.status_code == 403
    as_json = client.post("/open311/v2/requests.json", json=ticket(key))
    assert as_json.status_code == 400 and as_json.get_json()[0]["field"] == "Content-Type"


def _signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    import time

    ts = str(timestamp if timestamp is not None else int(time.time()))
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Geoservice-Timestamp": ts,
        "X-Geoservice-Signature": "sha256=" + mac,
        "Content-Type": "application/json",
    }


def test_signed_updates_from_the_hotline_note_and_cancel(client, scene, hotline):
    import json

    user, key = hotline
    s = scene.session
    manage.set_callback(s, user, "https://hotline.example.gov.cn/cb", "inbound-secret")
    request_id = client.post("/open311/v2/requests.json", data=ticket(key)).get_json()[0][
        "service_request_id"
    ]
    url = f"/open311/v2/requests/{request_id}/updates.json"
    auth = {"Authorization": f"Bearer {key}"}
    note = json.dumps({"type": "note", "note": "市民补充：晚上更严重"}).encode()
    ok = client.post(url, data=note, headers=auth | _signed("inbound-secret", note))
    assert ok.status_code == 200, ok.get_json()
    timeline = client.get(f"/api/issues/{request_id}", headers=scene.headers("planner"))
    notes = [e["note"] for e in timeline.get_json()["properties"]["timeline"]]
    assert any("热线补充（工单 12345-2026-000123）：市民补充" in n for n in notes)
    # A bad signature, a stale timestamp, a tampered body: refused, nothing written.
    bad = client.post(url, data=note, headers=auth | _signed("wrong-secret", note))
    assert bad.status_code == 401 and bad.get_json()[0]["field"] == "X-Geoservice-Signature"
    stale = client.post(url, data=note, headers=auth | _signed("inbound-secret", note, 1000))
    assert stale.status_code == 401
    headers = _signed("inbound-secret", note)
    tampered = client.post(url, data=note.replace(b"note", b"nota", 1), headers=auth | headers)
    assert tampered.status_code == 401
    # Cancel (撤单) before 交办: the issue is rejected and reads closed.
    cancel = json.dumps({"type": "cancel", "note": "市民已自行解决"}).encode()
    done = client.post(url, data=cancel, headers=auth | _signed("inbound-secret", cancel))
    assert done.status_code == 200 and done.get_json()[0]["status"] == "closed"
    (row,) = client.get(f"/open311/v2/requests/{request_id}.json?api_key={key}").get_json()
    assert row["status"] == "closed" and "热线撤单" in row["status_notes"]
    # A note afterwards is no reason for the state; a second cancel says it is cancelled.
    later = json.dumps({"type": "note", "note": "市民又来电询问"}).encode()
    posted = client.post(url, data=later, headers=auth | _signed("inbound-secret", later))
    assert posted.status_code == 200
    (row,) = client.get(f"/open311/v2/requests/{request_id}.json?api_key={key}").get_json()
    assert "热线撤单" in row["status_notes"] and "又来电" not in row["status_notes"]
    again = client.post(url, data=cancel, headers=auth | _signed("inbound-secret", cancel))
    assert again.status_code == 409 and "已撤单" in again.get_json()[0]["description"]
    # Another integration's ticket is not found; an unknown type is a 400.
    other_user, other = account(s, "integration")
    manage.set_callback(s, other_user, "https://other.example/cb", "other-secret")
    foreign = client.post(
        url,
        data=note,
        headers={"Authorization": other["Authorization"]} | _signed("other-secret", note),
    )
    assert foreign.status_code == 404
    odd = json.dumps({"type": "explode"}).encode()
    assert (
        client.post(url, data=odd, headers=auth | _signed("inbound-secret", odd)).status_code == 400
    )


def test_cancel_after_dispatch_is_refused(client, scene, hotline):
    import json

    user, key = hotline
    s = scene.session
    manage.set_callback(s, user, "https://hotline.example.gov.cn/cb", "inbound-secret")
    request_id = client.post("/open311/v2/requests.json", data=ticket(key)).get_json()[0][
        "service_request_id"
    ]
    planner = scene.headers("planner")
    for move in ({"to": "accepted"}, {"to": "dispatched"}):
        client.post(f"/api/issues/{request_id}/transitions", json=move, headers=planner)
    cancel = json.dumps({"type": "cancel"}).encode()
    refused = client.post(
        f"/open311/v2/requests/{request_id}/updates.json",
        data=cancel,
        headers={"Authorization": f"Bearer {key}"} | _signed("inbound-secret", cancel),
    )
    assert refused.status_code == 409


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_open311_client_from_pypi_reads_our_answers(
    app, client, scene, hotline, fmt, monkeypatch
):
    """georeport (PyPI) is a read-only GeoReport v2 client that sends GETs without a key (the
    spec makes keys optional for reads); our reads need one, so the test adds the header."""
    georeport = pytest.importorskip("georeport")
    import requests

    from tests.browser import serve

    _, key = hotline
    request_id = client.post("/open311/v2/requests.json", data=ticket(key)).get_json()[0][
        "service_request_id"
    ]
    real_get = requests.get

    def get_with_key(url, params=None, **kwargs):
        kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {key}"
        return real_get(url, params=params, timeout=10, **kwargs)

    monkeypatch.setattr(georeport.georeport.requests, "get", get_with_key)
    with serve(app) as base:
        api = georeport.GeoReport(f"{base}/open311/v2", output_format=fmt)
        services = api.get_service_list()
        assert "环境卫生" in [s["service_code"] for s in services]
        definition = api.get_service_definition("环境卫生")
        assert definition["service_code"] == "环境卫生"
        one = api.get_service_request(request_id)
        assert one["service_request_id"] == request_id and one["status"] == "open"
        assert one["address"] == "人民路 88 号门前"
        listed = api.get_service_requests(service_request_id=request_id)
        if fmt == "xml":  # xmltodict: one element is a dict, several a list
            listed = [listed] if isinstance(listed, dict) else listed
        assert [r["service_request_id"] for r in listed] == [request_id]


def test_unknown_paths_and_methods_answer_in_the_spec_error_format(client):
    """Refusals made before any view — no such path, a method the path does not serve — are
    GeoReport errors in the path's format too, never an HTML page or a CSRF complaint."""
    cases = [
        ("get", "/open311/v2/nope.json", 404, "json"),
        ("get", "/open311/v2/nope.xml", 404, "xml"),
        ("post", "/open311/v2/services.json", 405, "json"),
        ("delete", "/open311/v2/requests/1.xml", 405, "xml"),
    ]
    for method, path, status, fmt in cases:
        response = getattr(client, method)(path)
        assert response.status_code == status, (path, response.data[:200])
        if fmt == "json":
            assert response.mimetype == "application/json"
            (error,) = response.get_json()
            assert error["code"] == status and error["description"]
        else:
            assert response.mimetype == "text/xml"
            root = ET.fromstring(response.data)
            assert root.tag == "errors" and root.find("error/code").text == str(status)
        if status == 405:
            assert "GET" in response.headers["Allow"]
