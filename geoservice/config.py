"""Settings with defaults. Only wsgi.py reads the environment (through `config_from_env`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from geoservice import vocab

# The checkout: static/, migrations/, node_modules/ and the default uploads/ live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,
    # A streaming hot standby for GET/HEAD requests (geoservice/db.py, docs/scaling.md); an
    # account that wrote within REPLICA_READ_AFTER_WRITE_SECONDS reads the primary, and so does
    # everyone while the replica is down or more than REPLICA_MAX_LAG_SECONDS behind (checked
    # every REPLICA_CHECK_SECONDS per process).
    "DATABASE_REPLICA_URL": None,
    "REPLICA_READ_AFTER_WRITE_SECONDS": 5.0,
    "REPLICA_MAX_LAG_SECONDS": 5.0,
    "REPLICA_CHECK_SECONDS": 1.0,
    # Connections each process keeps open: one per request thread (gunicorn's THREADS) and one
    # for the token stamp's short transaction; None: THREADS + 1, at least 5. Past it, a
    # connection is opened for the request and closed after (a new backend each time).
    "DATABASE_POOL_SIZE": None,
    "SECRET_KEY": None,
    "TESTING": False,
    # The folder (a Python package on sys.path) whose modules declare the layers.
    "LAYERS_PACKAGE": "layers",
    # Basemap: "none" (plain background), "tianditu", "amap", "osm" or "custom" (see BASEMAP_URL).
    # geoservice/basemaps.py; docs/maps.md.
    "BASEMAP": "none",
    "BASEMAP_URL": None,  # custom: XYZ template ({z}/{x}/{y}, optional {s}), or WMTS KVP
    "BASEMAP_SUBDOMAINS": None,  # custom: values of {s}, e.g. "0123"
    "BASEMAP_CRS": "wgs84",  # custom: "wgs84" (CGCS2000) or "gcj02" (shifted like 高德)
    "BASEMAP_ATTRIBUTION": None,
    "BASEMAP_TITLE": None,
    "BASEMAP_MAX_ZOOM": 18,
    "TIANDITU_KEY": None,
    # The big screen's week figures (rankings) are shared by all screens for this long.
    "MAP_SCREEN_CACHE_SECONDS": 30,
    # The home page's shared figures (the coverage headline; last week's rankings; the open and
    # overdue issues of the areas at the top of a scope) are reused by each worker for this
    # long. The coverage audit itself is kept while the layers, areas and assignments are
    # unchanged (geoservice.responsibility.coverage); /rankings is always live.
    "HOME_CACHE_SECONDS": 120,
    # HTTP validators and shared answers (geoservice/edge/caching.py, docs/performance.md):
    # ETag/304 and a per-process store of read answers keyed by who may see what and by the
    # write generation of the tables they read. Rankings (/api/rankings) may be served up to
    # RANKINGS_FRESH_SECONDS after a write changed them (0: recomputed after every write).
    # HTTP_VALIDATORS None: on, except under TESTING (the suite's tests share one transaction
    # that never commits, so write generations never move there; tests/test_httpcache.py
    # turns them on over a database that commits).
    "HTTP_VALIDATORS": None,
    "RESPONSE_STORE_BYTES": 64 * 1024 * 1024,
    "RANKINGS_FRESH_SECONDS": 10,
    # Request limits.
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "MAX_FEATURES_PER_REQUEST": 10_000,
    # Most features one file import may hold (API and CLI; 0: no cap). Larger files: split.
    "IMPORT_MAX_FEATURES": 200_000,
    # Writes: coordinates farther than this outside the service area are refused (metres).
    "SERVICE_AREA_MARGIN_M": 50_000,
    # Vector tiles: most features in one tile (issues at low zoom are aggregated instead).
    "TILE_MAX_FEATURES": 5_000,
    # Rendered tiles each worker keeps (bytes; 0: none). Keys carry the data's generation.
    "TILE_CACHE_BYTES": 32 * 1024 * 1024,
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
    # Issues (geoservice/issues/workflow.py, issues.py, photos.py).
    "UPLOAD_DIR": None,  # photos on disk; default <project>/uploads
    "PHOTO_MAX_BYTES": 10 * 1024 * 1024,
    "PHOTO_MAX_COUNT": 9,
    "PHOTO_MAX_PIXELS": 50_000_000,
    "REPORT_MIN_PHOTOS": 1,
    "PHOTO_OPTIONAL_SOURCES": ["12345热线"],  # hotline tickets come without photos
    "DEADLINE_WORKING_DAYS": False,  # count only working days' hours towards deadlines
    "HOLIDAYS": [],  # "YYYY-MM-DD" days off (法定节假日)
    "MAKEUP_WORKDAYS": [],  # "YYYY-MM-DD" weekend days that are working days (调休)
    "RELAPSE_RADIUS_M": 50.0,
    "RELAPSE_WINDOW_DAYS": 30,
    "DUPLICATE_RADIUS_M": 50.0,
    "DUPLICATE_WINDOW_DAYS": 7,
    # Demo account created by `flask users ensure-demo-admin` (the run command).
    "DEMO_ADMIN_USERNAME": "admin",
    # API tokens expire after this many days unless the issuer says otherwise (0: never);
    # the token printed for the first/demo admin at start-up after FIRST_ADMIN_TOKEN_HOURS.
    "TOKEN_DEFAULT_EXPIRY_DAYS": 90,
    "FIRST_ADMIN_TOKEN_HOURS": 24,
    # Sign-in sessions (docs/security.md). Secure cookies are the default; scripts/run sets
    # SESSION_COOKIE_SECURE=0 because it serves plain HTTP on 127.0.0.1 only.
    "SESSION_COOKIE_NAME": "geoservice_session",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_SECURE": True,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
    # CSRF tokens live as long as the session that holds them.
    "WTF_CSRF_TIME_LIMIT": None,
    # Login throttling: an account locks after this many wrong passwords in a row …
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCK_MINUTES": 15,
    # … and one IP address may fail this many times per window (any usernames).
    "LOGIN_IP_MAX_FAILURES": 20,
    "LOGIN_IP_WINDOW_SECONDS": 900,
    # Writes (POST/PUT/PATCH/DELETE) per account and minute; 0 switches the limit off.
    "RATE_LIMIT_WRITES_PER_MINUTE": 300,
    # Longest a single SQL statement may run for a web or API request (ms; 0: no limit). A
    # statement that runs longer is cancelled and the request answers 503 instead of holding a
    # worker and a database connection. Imports over the API are exempt (they may legitimately
    # take minutes), exports get EXPORT_STATEMENT_TIMEOUT_MS; the CLI is never limited.
    "STATEMENT_TIMEOUT_MS": 30_000,
    # JIT compilation for the connections of web and API requests (off: their statements are
    # short, and compiling one costs more than it wins; docs/performance.md).
    "DATABASE_JIT": False,
    # Exports over the API (GeoJSON/GeoPackage/CSV of a whole collection) get this longer but
    # finite limit instead (ms; 0: none). Imports by writers stay unlimited.
    "EXPORT_STATEMENT_TIMEOUT_MS": 300_000,
    # Number of reverse proxies in front of the service whose X-Forwarded-* to trust (0: none).
    "PROXY_FIX": 0,
    # Citizens (随手拍, tickets, 回访, public map, 曝光台), read through
    # geoservice/citizens/settings.py. CITIZENS_PUBLIC (off by default) is the one switch for
    # everything anonymous: the 随手拍 page, ticket pages, public map and 曝光台.
    "CITIZENS_PUBLIC": False,
    "CITIZEN_REPORTS_PER_IP_HOUR": 10,
    "CITIZEN_REPORTS_PER_PHONE_DAY": 5,
    "CITIZEN_POW_DIFFICULTY": 16,  # leading zero bits of SHA-256 (≈65 000 tries on average)
    "CITIZEN_POW_TTL_SECONDS": 900,
    "CITIZEN_MAX_PHOTOS": 3,
    "CITIZEN_PHOTO_MAX_BYTES": 8 * 1024 * 1024,
    "CITIZEN_DESCRIPTION_MAX": 500,
    "CITIZEN_SENSITIVE_DECIMALS": 3,  # sensitive issues: public positions rounded (≈100 m)
    "CITIZEN_PUBLIC_DAYS": 90,  # the public map/list shows issues reported this recently
    "CITIZEN_PUBLIC_MAX": 2000,
    "PUBLIC_CACHE_SECONDS": 60,
    # Notifications (geoservice/notifications; docs/integration.md). Links in messages start
    # with PUBLIC_BASE_URL (the address people open, e.g. https://cw.example.gov.cn).
    "PUBLIC_BASE_URL": "",
    "NOTIFY_DEADLINE_HOURS": 4,  # remind the responsible leader this long before a deadline
    "NOTIFY_ESCALATION_HOURS": [0, 24, 72],  # overdue by → leader, unit head, 联点/分管领导
    "NOTIFY_ESCALATION_MAX_DAYS": 14,  # issues overdue longer are not escalated (any more)
    "NOTIFY_DIGEST_HOUR": 8,  # local hour of the daily digest
    "NOTIFY_PATROL_DUE_HOURS": 6,  # remind a leader of unvisited patrol tasks this long before
    "NOTIFY_MAX_ATTEMPTS": 8,  # then a dead letter
    "NOTIFY_BACKOFF_SECONDS": 30,  # 30 s, 1 min, 2 min … (doubling, at most an hour)
    "NOTIFY_TIMEOUT_SECONDS": 10,  # one SMTP/HTTP attempt
    "NOTIFY_POLL_SECONDS": 5,  # the worker looks for due work at least this often (NOTIFY wakes it)
    "OPEN311_SOURCE": "12345热线",  # the source of issues created through Open311
}

# Environment variables read by config_from_env, with their types.
ENV_VARS: dict[str, type] = {
    "DATABASE_URL": str,
    "SECRET_KEY": str,
    "BASEMAP": str,
    "BASEMAP_URL": str,
    "BASEMAP_SUBDOMAINS": str,
    "BASEMAP_CRS": str,
    "BASEMAP_ATTRIBUTION": str,
    "BASEMAP_TITLE": str,
    "BASEMAP_MAX_ZOOM": int,
    "TIANDITU_KEY": str,
    "MAX_CONTENT_LENGTH": int,
    "DEMO_ADMIN_USERNAME": str,
    "TOKEN_DEFAULT_EXPIRY_DAYS": int,
    "FIRST_ADMIN_TOKEN_HOURS": int,
    "UPLOAD_DIR": str,
    "PHOTO_MAX_BYTES": int,
    "DEADLINE_WORKING_DAYS": bool,
    "HOLIDAYS": list,
    "MAKEUP_WORKDAYS": list,
    "RELAPSE_RADIUS_M": float,
    "RELAPSE_WINDOW_DAYS": float,
    "DUPLICATE_RADIUS_M": float,
    "DUPLICATE_WINDOW_DAYS": float,
    "RESPONSIBILITY_FALLBACK": list,
    "ACCEPT_SLA_HOURS": float,
    "DISPATCH_SLA_HOURS": float,
    "SESSION_COOKIE_SECURE": bool,
    "LOGIN_MAX_FAILURES": int,
    "LOGIN_LOCK_MINUTES": int,
    "LOGIN_IP_MAX_FAILURES": int,
    "RATE_LIMIT_WRITES_PER_MINUTE": int,
    "PROXY_FIX": int,
    "STATEMENT_TIMEOUT_MS": int,
    "DATABASE_JIT": bool,
    "DATABASE_REPLICA_URL": str,
    "DATABASE_POOL_SIZE": int,
    "REPLICA_READ_AFTER_WRITE_SECONDS": float,
    "REPLICA_MAX_LAG_SECONDS": float,
    "REPLICA_CHECK_SECONDS": float,
    "IMPORT_MAX_FEATURES": int,
    "EXPORT_STATEMENT_TIMEOUT_MS": int,
    "CITIZENS_PUBLIC": bool,
    "CITIZEN_POW_DIFFICULTY": int,
    "CITIZEN_REPORTS_PER_IP_HOUR": int,
    "CITIZEN_REPORTS_PER_PHONE_DAY": int,
    "PUBLIC_BASE_URL": str,
    "NOTIFY_DEADLINE_HOURS": float,
    "NOTIFY_ESCALATION_HOURS": list,
    "NOTIFY_ESCALATION_MAX_DAYS": float,
    "NOTIFY_DIGEST_HOUR": int,
    "NOTIFY_PATROL_DUE_HOURS": float,
    "NOTIFY_MAX_ATTEMPTS": int,
    "NOTIFY_BACKOFF_SECONDS": float,
    "NOTIFY_TIMEOUT_SECONDS": float,
    "NOTIFY_POLL_SECONDS": float,
    "OPEN311_SOURCE": str,
    "HTTP_VALIDATORS": bool,
    "RESPONSE_STORE_BYTES": int,
    "RANKINGS_FRESH_SECONDS": float,
}


def _parse(kind: type, value: str) -> Any:
    if kind is bool:
        return _as_bool(value)
    if kind is list:
        return [item.strip() for item in value.split(",") if item.strip()]
    return kind(value)


def _as_bool(value: str) -> bool:
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Picks the known settings out of an environment mapping."""
    config: dict[str, Any] = {}
    for name, kind in ENV_VARS.items():
        if environ.get(name):
            config[name] = _parse(kind, environ[name])
    if "SESSION_COOKIE_SECURE" in config:
        config["REMEMBER_COOKIE_SECURE"] = config["SESSION_COOKIE_SECURE"]
    if "DATABASE_POOL_SIZE" not in config and environ.get("THREADS", "").strip().isdigit():
        config["DATABASE_POOL_SIZE"] = max(5, int(environ["THREADS"]) + 1)
    return config


def normalise_database_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare postgresql:// URL to psycopg 3; we ship psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url
