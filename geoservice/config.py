"""Settings with defaults. Only wsgi.py reads the environment (through `config_from_env`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geoservice import vocab

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,
    "SECRET_KEY": None,
    "TESTING": False,
    # The folder (a Python package on sys.path) whose modules declare the layers.
    "LAYERS_PACKAGE": "layers",
    # Basemap: "none" (plain background), "tianditu", "amap", "osm" or "custom" (see BASEMAP_URL).
    "BASEMAP": "none",
    "BASEMAP_URL": None,
    "TIANDITU_KEY": None,
    # Request limits.
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "MAX_FEATURES_PER_REQUEST": 10_000,
    # Vocabularies (configurable lists, not hard-coded branches).
    "ISSUE_CATEGORIES": dict(vocab.CATEGORY_DEADLINE_HOURS),
    "ISSUE_SOURCES": list(vocab.ISSUE_SOURCES),
    "ASSIGNMENT_ROLES": list(vocab.ASSIGNMENT_ROLES),
    "LEADER_LEVELS": list(vocab.LEADER_LEVELS),
    "TIMEZONE": "Asia/Shanghai",
    # Rankings (督查考核): composite-score weights (relative; the score is out of 100), the
    # threshold under which a row is flagged, and how many rows the bottom list names.
    "RANKING_WEIGHTS": {"on_time_rate": 60, "close_rate": 30, "rework_free": 10},
    "RANKING_THRESHOLD": 85,
    "RANKING_BOTTOM_N": 3,
    # Demo account created by `flask users ensure-demo-admin` (the run command).
    "DEMO_ADMIN_USERNAME": "admin",
}

# Environment variables read by config_from_env, with their types.
ENV_VARS: dict[str, type] = {
    "DATABASE_URL": str,
    "SECRET_KEY": str,
    "BASEMAP": str,
    "BASEMAP_URL": str,
    "TIANDITU_KEY": str,
    "MAX_CONTENT_LENGTH": int,
    "DEMO_ADMIN_USERNAME": str,
}


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Picks the known settings out of an environment mapping."""
    config: dict[str, Any] = {}
    for name, kind in ENV_VARS.items():
        if environ.get(name):
            config[name] = kind(environ[name])
    return config


def normalise_database_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// URL to psycopg 3; we ship psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url
