"""Helpers for the citizens tests: the public pages switched on with an easy proof-of-work,
a citizen's client (CSRF token from the public page, solved challenges). The fixtures are in
tests/citizens_fixtures.py (a plugin: `pytest_plugins = ("tests.citizens_fixtures",)`)."""

from __future__ import annotations

import io
import re

from geoservice.citizens import challenge
from tests.issues.helpers import at, image_bytes


def csrf_of(client) -> str:
    html = client.get("/public/report").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on /public/report"
    return match.group(1)


def proof(client) -> dict[str, str]:
    body = client.get("/public/api/challenge", headers={"Accept": "application/json"}).get_json()
    return {
        "challenge": body["challenge"],
        "solution": challenge.solve(body["challenge"], body["difficulty"]),
    }


def headers(client) -> dict[str, str]:
    return {"X-CSRFToken": csrf_of(client), "Accept": "application/json"}


def file_report(
    client,
    x: float = 100,
    y: float = 100,
    photos: list[bytes] | None = None,
    solved: dict[str, str] | None = None,
    environ: dict | None = None,
    **fields,
):
    """Posts a 随手拍 report as the page does (multipart, CSRF header, solved challenge)."""
    data = {**at(x, y), "category": "环境卫生", "description": "垃圾桶满溢", **fields}
    data.update(solved if solved is not None else proof(client))
    photos = [image_bytes()] if photos is None else photos
    data["photos"] = [(io.BytesIO(p), f"p{i}.jpg", "image/jpeg") for i, p in enumerate(photos)]
    return client.post(
        "/public/api/reports",
        data=data,
        headers=headers(client),
        content_type="multipart/form-data",
        environ_base=environ or {},
    )


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]
