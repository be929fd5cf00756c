"""Fixtures of the citizens tests (loaded with `pytest_plugins`): the public pages switched on
with an easy proof-of-work, and the issue layout of tests/issues (leaders, places, staff
accounts)."""

from __future__ import annotations

import pytest

from tests.issues.conftest import Layout, layout, uploads  # noqa: F401  (fixtures)

EASY = 4  # bits: a few dozen hashes per challenge in tests


@pytest.fixture
def public_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "CITIZENS_PUBLIC", True)
    monkeypatch.setitem(app.config, "CITIZEN_POW_DIFFICULTY", EASY)
    monkeypatch.setitem(app.config, "PUBLIC_CACHE_SECONDS", 0)
    return app
