"""geoservice: 创文包保 GIS — PostGIS layers, 包保 responsibility and issues for the campaign."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask

from geoservice.config import DEFAULTS, PROJECT_ROOT
from geoservice.edge.json_input import StrictJSONProvider
from geoservice.edge.text_input import GuardedRequest, check_query_string


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app factory: config → db → layer registry → blueprints → CLI."""
    app = Flask(
        __name__,
        static_folder=str(PROJECT_ROOT / "static"),
        static_url_path="/static",
    )
    app.config.from_mapping(DEFAULTS)
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        logging.getLogger(__name__).warning(
            "SECRET_KEY is not set: using a random key, sessions end with this process"
        )
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    if not app.config.get("UPLOAD_DIR"):
        app.config["UPLOAD_DIR"] = str(PROJECT_ROOT / "uploads")
    app.request_class = GuardedRequest  # no NUL in any text a request brings
    app.json = StrictJSONProvider(app)  # no NaN, Infinity or 1e999 in any JSON a request brings
    app.json.ensure_ascii = False
    # Keys in the order the code builds them (key, name first), not sorted: sorting cost 0.3 s
    # of the 0.73 s the grid ranking's 28,000 rows took to encode.
    app.json.sort_keys = False

    import geoservice.api.open311 as open311_api
    import geoservice.fieldwork as fieldwork
    import geoservice.notifications as notifications
    import geoservice.web.notifications as notifications_pages
    from geoservice import api, cli, db, errors, registry, web
    from geoservice.accounts import auth, security
    from geoservice.api import health
    from geoservice.api.assessment import site_catalogue
    from geoservice.catalogue.catalogue import build_catalogue
    from geoservice.edge import access
    from geoservice.web import account, admin, assets

    db.init_app(app)
    registry.init_app(app)
    # The collections (every layer + issues, and one per site kind, read from the database at
    # request time: issue 15), built once and handed to the edges (edge.access.catalogue).
    base = build_catalogue(registry.layers(app))
    app.extensions[access.CATALOGUE] = site_catalogue(app, base)
    # errors cannot import auth or edge: handed over here
    errors.init_app(app, current_account=auth.current_account, routed_allow=access.routed_allow)
    app.before_request(check_query_string)
    assets.init_app(app)
    auth.init_app(app)  # every request needs an account (before the hooks below)
    security.init_app(app)  # CSRF, write rate limits, security headers
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp, url_prefix="/api")
    app.register_blueprint(web.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(admin.bp)
    register_citizens(app)
    from geoservice.api import assessment as assessment_api  # 点位 and 测评 (issue 15)
    from geoservice.web import assessment as assessment_web

    app.register_blueprint(assessment_api.bp, url_prefix="/api/assessment")
    app.register_blueprint(assessment_web.bp)
    from geoservice.api import fieldwork as fieldwork_api  # field work (issue 16)
    from geoservice.web import field as field_web

    app.register_blueprint(fieldwork_api.bp, url_prefix="/api/fieldwork")
    app.register_blueprint(field_web.bp)
    fieldwork.init_app(app)  # issue photos checked as evidence at upload
    cli.init_app(app)
    notifications.init_app(app)  # the outbox hook on issue events
    app.register_blueprint(open311_api.bp, url_prefix="/open311/v2")
    app.extensions.setdefault(errors.PATH_ERRORS, {})["/open311/"] = open311_api.routing_error
    app.register_blueprint(notifications_pages.bp)
    return app


def register_citizens(app: Flask) -> None:
    """随手拍, tickets, 回访 and the public pages (off unless CITIZENS_PUBLIC is set)."""
    from geoservice.api import public as public_api
    from geoservice.web import citizens as citizens_web
    from geoservice.web import public as public_web

    app.register_blueprint(public_api.bp)
    app.register_blueprint(public_api.staff_bp)
    app.register_blueprint(public_web.bp)
    app.register_blueprint(citizens_web.bp)
    # Before every other hook (the CSRF check reads the body): public bodies are bounded.
    app.before_request_funcs.setdefault(None, []).insert(0, public_web.limit_public_bodies)
