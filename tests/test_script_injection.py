"""User text never runs as script (issue 13 §2): with a payload in every user-writable text
(tests/xss_world.py), no page puts user text into a `<script>` that carries the page's CSP
nonce, and no payload reaches a page as live markup. The browser test
(tests/test_script_injection_browser.py) opens the same pages in Chromium."""

from __future__ import annotations

import re

import pytest

from geoservice.accounts.security import nonce_scripts
from geoservice.registry import layers
from tests.world import bearer, build_world
from tests.xss_world import poison

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)


@pytest.fixture
def poisoned(app, db_session):
    with app.app_context():
        world = build_world(db_session, layers(app))
        payloads = poison(db_session, world)
    db_session.flush()
    return world, payloads


def pages(world: dict) -> list[tuple[str, str]]:
    """(account, path) of every page and popup that shows the poisoned texts."""
    issue, place, leader = world["issues"]["I1"], world["places"]["R1"], world["leaders"]["L1"]
    grid = world["places"]["G1"]
    return [
        ("admin", "/"),
        ("admin", "/map"),
        ("admin", "/screen"),
        ("admin", "/issues"),
        ("admin", "/issues/new"),
        ("admin", f"/issues/{issue}"),
        ("admin", f"/issues/{issue}/map"),
        ("admin", "/issues/unassigned"),
        ("admin", f"/map/popup/place/{place}"),
        ("admin", f"/map/popup/place/{grid}"),
        ("admin", f"/map/popup/issue/{issue}"),
        ("admin", "/rankings"),
        ("admin", "/rankings?period=month&from=2026-11&of=leader"),
        ("admin", "/rankings?period=month&from=2026-11&of=unit"),
        ("admin", f"/rankings/scorecard/{leader}"),
        ("admin", "/units"),
        ("admin", "/leaders"),
        ("admin", f"/leaders/{leader}"),
        ("admin", f"/places/{place}/responsibility"),
        ("admin", f"/places/{grid}/responsibility"),
        ("admin", "/coverage"),
        ("admin", "/roster"),
        ("admin", "/admin/users"),
        ("admin", f"/admin/users/{world['users']['viewer']}"),
        ("admin", "/admin/audit"),
        ("leader", "/my"),
        ("leader", "/map?mine=1"),
        ("admin", "/api/collections/roads/items?f=html"),
        ("admin", f"/api/collections/roads/items/{place}?f=html"),
        ("admin", "/api/collections/issues/items?f=html"),
    ]


def nonced_scripts(html: str, nonce: str) -> list[str]:
    """Each `<script>` element the CSP lets run (as the browser's parser finds them: a
    script's text ends at the first `</script>`), as its attributes plus its text."""
    return [
        attrs + body
        for attrs, body in SCRIPT.findall(html)
        if re.search(rf"\snonce=[\"']?{re.escape(nonce)}", attrs)
    ]


def test_no_page_puts_user_text_into_a_script_that_carries_the_nonce(app, client, poisoned):
    world, payloads = poisoned
    assert len(payloads.tags) > 30
    checked = 0
    for account, path in pages(world):
        response = client.get(path, headers=bearer(world["tokens"][account]))
        assert response.status_code == 200, (path, response.status_code)
        html = response.get_data(as_text=True)
        nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
        assert nonce is not None
        for script in nonced_scripts(html, nonce.group(1)):
            # The nonce is random text: it may hold a short tag by chance (X16 did once).
            script = script.replace(nonce.group(1), "")
            found = [t for t in payloads.tags if t in script]
            assert found == [], (path, [payloads.tags[t] for t in found], script[:300])
            assert "__pwned" not in script, (path, script[:300])
            checked += 1
        # Nor as live markup anywhere else: escaped in HTML, \\u003c-escaped in JSON data.
        assert "<script>__pwned" not in html, path
        assert "<img src=x" not in html, path
    assert checked > 20


def test_the_poisoned_texts_are_on_the_pages_as_text(app, client, poisoned):
    """The payloads are not dropped: the issue page shows the description and the notes
    literally (escaped), the popup the place name."""
    world, _payloads = poisoned
    html = client.get(
        f"/issues/{world['issues']['I1']}", headers=bearer(world["tokens"]["admin"])
    ).get_data(as_text=True)
    assert "&lt;/script&gt;&lt;script&gt;__pwned=" in html
    assert "&lt;img src=x onerror=" in html


def test_nonce_scripts_leaves_json_data_alone():
    html = '<script src="/a.js"></script><script type="application/json">{"a": 1}</script>'
    out = str(nonce_scripts(html, "N"))
    assert '<script nonce="N" src="/a.js">' in out
    assert '<script type="application/json">{"a": 1}</script>' in out
