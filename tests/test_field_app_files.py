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


def test_a_new_release_of_the_app_gives_the_worker_a_new_cache(app, client, tmp_path):
    """The worker caches the app's script cache-first; only new worker bytes make a phone
    install the release, so the cache name follows the files."""
    import shutil

    from geoservice.web import field

    copy = tmp_path / "field"
    shutil.copytree(f"{app.static_folder}/field", copy)
    stamps = lambda: tuple((p.name, p.stat().st_mtime_ns) for p in sorted(copy.iterdir()))  # noqa: E731
    before = field._service_worker_text(str(copy), stamps())
    assert "const VERSION = 'gs-field-v1';" not in before
    assert field._service_worker_text(str(copy), stamps()) == before  # the same files, same name
    script = copy / "app.js"
    script.write_text(script.read_text(encoding="utf-8") + "\n// a fix\n", encoding="utf-8")
    after = field._service_worker_text(str(copy), stamps())
    assert after != before and after.replace("gs-field-", "") != before.replace("gs-field-", "")
    served = client.get("/field/sw.js").get_data(as_text=True)
    assert served.startswith("/* Service worker") and "gs-field-v1" not in served
