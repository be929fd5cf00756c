"""Hardening: CSRF, security headers with a per-request CSP nonce, write rate limits,
proxy headers. See docs/security.md.

CSRF: every state-changing request (POST/PUT/PATCH/DELETE) authenticated by the session
cookie must carry the CSRF token, as the form field `csrf_token` (`{{ csrf_token() }}` in a
form) or the `X-CSRFToken` header (scripts read `<meta name="csrf-token">` of base.html).
Requests with `Authorization: Bearer …` are exempt: a browser never adds that header on its
own, and such a request is authenticated by the token only, never by the cookie.

Scripts: the CSP allows scripts from our own origin and inline `<script>` blocks carrying
this request's nonce (`csp_nonce()` in templates: `<script nonce="{{ csp_nonce() }}">`).
A folium map renders inline scripts; pass its HTML through `nonce_scripts(html)` before
returning it — only HTML without user text: user text reaches a page as escaped HTML or as
JSON data (`json_script`) that our own scripts read, never inside a nonce'd script.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup
from werkzeug.middleware.proxy_fix import ProxyFix

from geoservice.accounts import ratelimit
from geoservice.accounts.auth import bearer_token, current_account, is_public
from geoservice.basemaps import basemap_from_config
from geoservice.db import database, get_session
from geoservice.errors import ApiError

csrf = CSRFProtect()

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HAS_NONCE = re.compile(r"\snonce\s*=", re.IGNORECASE)
_DATA_TYPE = re.compile(r"""\stype\s*=\s*["']?application/json""", re.IGNORECASE)


def csp_nonce() -> str:
    """This request's CSP nonce (one per request, unguessable)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def nonce_scripts(html: str, nonce: str | None = None) -> Markup:
    """Adds this request's nonce to every `<script>` element of HTML our code rendered (the
    header and script parts of a folium map), so the CSP lets them run.

    The nonce vouches for everything it is given: pass only HTML that holds no user text
    (no names, codes, descriptions, notes …). folium puts tooltip and popup text into
    JavaScript (template literals), so maps get user text as JSON data instead
    (`json_script`, geoservice.web.featuremap). Data blocks (`type="application/json"`)
    are not scripts and get no nonce.
    """
    nonce = nonce or csp_nonce()

    def add(match: re.Match) -> str:
        attrs, body = match.group(1), match.group(2)
        if _HAS_NONCE.search(attrs) or _DATA_TYPE.search(attrs):
            return match.group(0)
        return f'<script nonce="{nonce}"{attrs}>{body}</script>'

    return Markup(_SCRIPT.sub(add, html))


def json_script(value: Any) -> Markup:
    """JSON to put inside <script type="application/json">: no `<`, `>` or `&` left that an
    HTML parser could read as the end of the element. The way user text reaches a page's
    scripts: our own scripts read it with `JSON.parse(element.textContent)`."""
    text_ = json.dumps(value, ensure_ascii=False)
    return Markup(text_.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def basemap_origins(config: dict) -> list[str]:
    """Tile hosts of the configured basemap (the map pages load their images)."""
    return basemap_from_config(config).origins()


def content_security_policy(nonce: str, image_origins: list[str], frame_ancestors: str) -> str:
    images = " ".join(["'self'", "data:", "blob:", *image_origins])
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            # Leaflet and folium position elements with inline styles.
            "style-src 'self' 'unsafe-inline'",
            f"img-src {images}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "frame-src 'self' data: blob:",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        )
    )


def _set_headers(app: Flask, response: Response) -> Response:
    h = response.headers
    h.setdefault(
        "Content-Security-Policy",
        content_security_policy(csp_nonce(), app.config["_IMAGE_ORIGINS"], "'self'"),
    )
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "SAMEORIGIN")
    h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Campaign data is not public: keep it out of shared caches and browser history caches,
    # unless the view chose its own caching (static assets, tiles).
    if "Cache-Control" not in h and not (request.endpoint or "").startswith(("static", "assets.")):
        h["Cache-Control"] = "no-store"
    return response


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that a request without the cookie (every API
    call with a token) gets its empty session without building the signing serializer (a
    key derivation and four objects per request: issue 19). With the cookie: Flask's own."""

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if not app.secret_key:
            return None
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


CSRF_MESSAGE = "页面已过期或缺少安全校验（CSRF）令牌，请刷新页面后重试"


def _check_csrf() -> None:
    if request.method in SAFE_METHODS or request.routing_exception is not None:
        return  # (an unknown URL or method: routing answers 404 / 405, no view runs)
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "token_only", False):  # never signed in by the cookie (Open311)
        return
    if bearer_token() is not None:
        return
    if not is_public(request.endpoint) and current_account() is None:
        return  # nobody signed in where an account is needed: the sign-in check answers 401
    try:
        csrf.protect()
    except CSRFError as exc:  # answered like every refusal (geoservice.errors)
        raise ApiError(400, CSRF_MESSAGE, CSRF_REASONS.get(exc.description)) from None


# Flask-WTF's reasons, in Chinese.
CSRF_REASONS = {
    "The CSRF token is missing.": "请求中缺少 CSRF 令牌（网页请刷新后再提交；接口请用 API 令牌）",
    "The CSRF session token is missing.": "会话中没有 CSRF 令牌（会话已过期，请刷新页面）",
    "The CSRF token has expired.": "CSRF 令牌已过期，请刷新页面后重试",
    "The CSRF token is invalid.": "CSRF 令牌无效，请刷新页面后重试",
    "The CSRF tokens do not match.": "CSRF 令牌与会话不符，请刷新页面后重试",
    "The referrer header is missing.": "缺少 Referer 请求头（HTTPS 下提交表单需要）",
    "The referrer does not match the host.": "Referer 与本站地址不符",
}


def _limit_writes(app: Flask) -> None:
    limit = app.config["RATE_LIMIT_WRITES_PER_MINUTE"]
    if not limit or request.method in SAFE_METHODS or request.endpoint is None:
        return
    if request.endpoint == "account.login":  # throttled per account and IP by accounts.py
        return
    account = current_account()
    key = f"write:user:{account.id}" if account is not None else f"write:ip:{request.remote_addr}"
    db = database()
    if db.sessionmaker.kw.get("bind") is db.engine:
        count, retry = ratelimit.hit_now(db.engine, key, 60)
    else:  # sessions bound to a connection of the caller's (tests): counted in its transaction
        session = get_session()
        count, retry = ratelimit.hit(session, key, 60)
        session.commit()
    if count > limit:
        raise ApiError(
            429, "提交过于频繁，请稍后再试", {"limit_per_minute": limit, "retry_after_s": retry}
        )


def init_app(app: Flask) -> None:
    app.session_interface = CookieSessions()
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    csrf.init_app(app)
    app.config["_IMAGE_ORIGINS"] = basemap_origins(app.config)
    if app.config.get("PROXY_FIX"):
        n = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore

    # After the sign-in check of geoservice.accounts.auth (so anonymous API calls get 401 first);
    # writes are counted per account.
    app.before_request(_check_csrf)
    app.before_request(lambda: _limit_writes(app))
    app.jinja_env.globals.update(csp_nonce=csp_nonce, nonce_scripts=nonce_scripts)
    app.after_request(lambda response: _set_headers(app, response))
