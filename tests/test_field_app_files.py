"""The field app's manifest and service worker are fetched by the browser without the session
(a manifest request carries no cookies): served to anyone, or the app cannot be installed."""

from __future__ import annotations

import json


def test_the_manifest_and_the_worker_are_served_without_signing_in(client):
    manifest = client.get("/field/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest.mimetype == "application/manifest+json"
    body = json.loads(manifest.get_data())
    assert body["start_url"].startswith("/field/") and body["icons"]
    worker = client.get("/field/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert worker.headers["Service-Worker-Allowed"] == "/field/"
    assert client.get("/field/").status_code == 302  # the app itself still needs an account
