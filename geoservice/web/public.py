"""Public pages of the citizens package (no account; all 404 unless CITIZENS_PUBLIC is on):
the 随手拍 report page, a ticket by its private link (with the 回访 form), the public map and
list of issues, the 曝光台, and the approved photos those pages show.

Every unknown, tampered or disabled link answers the same Chinese 404 page.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import text

from geoservice.accounts.auth import public
from geoservice.areas import service_area
from geoservice.basemaps import basemap_from_config
from geoservice.citizens import followup, intake, publish
from geoservice.citizens.settings import CitizenSettings
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.issues.workflow import IssueSettings
from geoservice.ranking import board
from geoservice.registry import layers
from geoservice.service_errors import ServiceError
from geoservice.web.maps import json_script

bp = Blueprint("public", __name__, url_prefix="/public", template_folder="templates")


# Room for the form fields of a public write besides its photos.
FORM_ALLOWANCE = 256 * 1024


def limit_public_bodies() -> None:
    """A public write may carry at most its photos and a little form: anything larger is
    refused (413) before a byte of it is parsed, CSRF check included (so this runs first)."""
    if request.method == "POST" and request.path.startswith("/public/"):
        cs = CitizenSettings.from_config(current_app.config)
        request.max_content_length = cs.max_photos * cs.photo_max_bytes + FORM_ALLOWANCE


def _not_found():
    return make_response(render_template("public/not_found.html"), 404)


@bp.before_request
def _only_when_enabled():
    if not CitizenSettings.from_config(current_app.config).enabled:
        return _not_found()
    return None


def _issue_settings() -> IssueSettings:
    return issue_settings_in_force()


def _basemap() -> dict[str, Any]:
    basemap = basemap_from_config(current_app.config)
    return {
        "shift": basemap.shift,
        "choices": [
            {"id": c.id, "title": c.title, "sources": [s.as_dict() for s in c.sources]}
            for c in basemap.choices
        ],
    }


def site_spot(session: Any, raw: str | None) -> dict[str, Any] | None:
    """The spot of a site from a QR link (`?site=CODE` or `?site=LAYER:CODE`): a point on the
    feature, its name. None when unknown (the citizen then places the spot by hand)."""
    if not raw or len(raw) > 100:
        return None
    layer, _, code = raw.rpartition(":")
    registry = layers()
    for spec in registry:
        if layer and spec.name != layer:
            continue
        row = session.execute(
            text(
                "SELECT p.name, ST_X(ST_PointOnSurface(l.geom)) AS lon,"
                f" ST_Y(ST_PointOnSurface(l.geom)) AS lat FROM places p JOIN {spec.table} l"
                " ON l.id = p.id WHERE p.layer = :layer AND p.code = :code LIMIT 1"
            ),
            {"layer": spec.name, "code": code},
        ).first()
        if row is not None and row.lon is not None:
            return {"name": row.name, "title": spec.title, "lon": row.lon, "lat": row.lat}
    return None


@bp.get("/report")
@public
def report_page():
    cfg = _issue_settings()
    cs = CitizenSettings.from_config(current_app.config)
    session = get_session()
    settings = {
        "area": service_area.outline(session, layers()),
        "basemap": _basemap(),
        "site": site_spot(session, request.args.get("site")),
        "minPhotos": intake.issue_service.min_photos_for(
            intake.issue_service.Report(0, 0, "", intake.SOURCE), cfg
        ),
        "maxPhotos": cs.max_photos,
        "maxPhotoBytes": min(cs.photo_max_bytes, cfg.photo_limits.max_bytes),
        "descriptionMax": cs.description_max,
        "urls": {
            "challenge": url_for("public_api.new_challenge"),
            "nearby": url_for("public_api.nearby"),
            "reports": url_for("public_api.file_report"),
            "metoo": url_for("public_api.me_too", issue_id=0).replace("/0/", "/{id}/"),
        },
    }
    return render_template(
        "public/report.html",
        categories=list(cfg.categories),
        settings=json_script(settings),
        cs=cs,
    )


@bp.route("/t/<token>", methods=["GET", "POST"])
@public
def ticket_page(token: str):
    session = get_session()
    row = intake.find_ticket(session, token)
    if row is None:
        return _not_found()
    error = None
    if request.method == "POST":
        cs = CitizenSettings.from_config(current_app.config)
        try:
            try:
                intake.count_attempt(session, cs, request.remote_addr, None)
            finally:
                session.commit()
            followup.answer(
                session, row.issue_id, request.form.get("answer"), request.form.get("comment")
            )
            session.commit()
            return redirect(url_for("public.ticket_page", token=token), 303)
        except ServiceError as exc:
            session.rollback()
            error = exc.error
    view = intake.ticket_view(session, _issue_settings(), row)
    response = make_response(
        render_template("public/ticket.html", t=view, error=error), 422 if error else 200
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is the key: never leak it
    return response


@bp.get("/issues")
@public
def issues_page():
    return render_template(
        "public/issues.html",
        settings=json_script(
            {
                "area": service_area.outline(get_session(), layers()),
                "basemap": _basemap(),
                "issues": url_for("public_api.public_issues"),
            }
        ),
    )


@bp.get("/exposure")
@public
def exposure_page():
    def photo_url(photo_id: int, thumb: bool) -> str:
        return url_for("public.photo", photo_id=photo_id, thumb=1 if thumb else None)

    items = publish.exposure(get_session(), _issue_settings(), photo_url)
    return render_template("public/exposure.html", items=items)


@bp.get("/board")
@public
def board_page():
    """红黑榜 of units, as the office published them with its 通报."""
    cs = CitizenSettings.from_config(current_app.config)
    boards = publish.CACHE.get(("boards",), cs.cache_seconds, lambda: board.boards(get_session()))
    return render_template("public/board.html", boards=boards)


@bp.get("/photos/<int:photo_id>")
@public
def photo(photo_id: int):
    """An approved photo of an issue on the 曝光台 (anything else: 404)."""
    found = publish.public_photo(get_session(), photo_id)
    store = _issue_settings().store
    if found is None or store is None:
        abort(404)
    thumb = request.args.get("thumb") not in (None, "", "0")
    path = store.thumb_path(found.sha256) if thumb else store.path(found.sha256, found.content_type)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg" if thumb else found.content_type, max_age=3600)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/<path:rest>")
@public
def unknown(rest: str):
    return _not_found()


@bp.errorhandler(404)
def _404(_exc):
    return _not_found()
