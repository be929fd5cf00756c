"""Field work pages (blueprint `bp`, name `field`): the /field mobile app (manifest, service
worker, one page whose script reads /api/fieldwork and keeps unsent records in IndexedDB),
the 存疑 (doubtful evidence) page, and the `flask fieldwork` commands."""

from __future__ import annotations

import hashlib
from datetime import date
from functools import lru_cache
from pathlib import Path

import click
from flask import Blueprint, Response, current_app, render_template, send_from_directory, url_for
from flask.cli import with_appcontext
from sqlalchemy import text

from geoservice.accounts.auth import permission_required, public
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.fieldwork import evidence, inspections, patrol_coverage, patrols
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues.workflow import IssueSettings
from geoservice.registry import layers

bp = Blueprint("field", __name__, template_folder="templates", cli_group="fieldwork")


@bp.app_template_global()
def photo_check(photo_id: int) -> dict | None:
    """The evidence check of an issue photo for the issue page (photos not yet checked are
    checked first, once per request)."""
    from flask import g
    from sqlalchemy import select

    from geoservice.fieldwork.models import PhotoCheck

    session = get_session()
    if not g.get("field_photos_scanned"):
        g.field_photos_scanned = True
        store = IssueSettings.from_config(current_app.config).store
        if evidence.scan_pending(
            session, layers(), FieldSettings.from_config(current_app.config), store
        ):
            session.commit()
    check = session.scalar(select(PhotoCheck).where(PhotoCheck.photo_id == photo_id))
    return evidence.check_json(check)


@bp.app_template_global()
def photo_display_url(photo_id: int) -> str:
    return url_for("fieldwork_api.issue_photo_display", photo_id=photo_id)


STATIC = "field"  # static/field/: the app's script, style and icon


@bp.get("/field/")
@permission_required("patrols.visit")
def app_page():
    """The app shell: everything else comes from /api/fieldwork (cached for offline use)."""
    from geoservice.accounts.auth import current_account
    from geoservice.accounts.security import json_script
    from geoservice.basemaps import basemap_from_config

    account = current_account()
    basemap = basemap_from_config(current_app.config)
    # Tiles only when they line up with our WGS-84 data (a GCJ-02 basemap would need the shift).
    tiles = [] if basemap.shift or not basemap.choices else list(basemap.choices[0].sources)
    session = get_session()
    center = session.execute(
        text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c"
            " FROM admin_areas) s"
        )
    ).one()
    config = {
        "user": account.display_name or account.username,
        "account": account.id,  # a shared phone's outbox and task cache are kept per account
        "categories": list(issue_settings_in_force().categories),
        "min_photos": int(current_app.config.get("REPORT_MIN_PHOTOS", 1)),
        "tiles": [t.as_dict() for t in tiles],
        "center": [center[0] or 116.4, center[1] or 39.9],
        "timezone": current_app.config["TIMEZONE"],
    }
    return render_template("field/app.html", config_json=json_script(config))


# The manifest and the worker are static files, fetched by the browser without the session
# (a manifest request carries no cookies): public, or the app cannot be installed.
@bp.get("/field/manifest.webmanifest")
@public
def manifest():
    response = send_from_directory(
        current_app.static_folder, f"{STATIC}/manifest.webmanifest", max_age=0
    )
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/field/sw.js")
@public
def service_worker():
    """Served from /field/ so its scope is the app (a worker controls only paths below it).
    Its cache name carries a hash of the app's files: a release changes the worker's bytes,
    the phone installs it, and its install caches the new app (it served the old one for
    ever under a fixed name)."""
    folder = Path(current_app.static_folder) / STATIC
    stamps = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file())
    response = Response(_service_worker_text(str(folder), stamps), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/field/"
    return response


@lru_cache(maxsize=4)
def _service_worker_text(folder: str, stamps: tuple) -> str:
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
    text = (Path(folder) / "sw.js").read_text(encoding="utf-8")
    return text.replace("const VERSION = 'gs-field-v1';", f"const VERSION = 'gs-field-{digest}';")


# The overview lists the oldest overdue patrol tasks, and says how many there are in all.
OVERDUE_LISTED = 200


@bp.get("/field/overview")
@permission_required("patrols.plan")
def overview_page():
    """巡查督查 for planners: this week's 到位率 by person, unit and street, the places not
    visited today (map), overdue tasks, schedules and the 暗访 plans the account may see."""
    from datetime import UTC, datetime

    from geoservice.accounts.auth import current_account
    from geoservice.accounts.security import json_script
    from geoservice.fieldwork.access import place_ref
    from geoservice.fieldwork.common import period_bounds

    account, session, registry = current_account(), get_session(), layers()
    cfg = FieldSettings.from_config(current_app.config)
    now = datetime.now(UTC)
    today = now.astimezone(cfg.tz).date()
    start, end = period_bounds("week", today, cfg.tz)
    within = place_ref(account, registry, "t.place_id")
    patrols.generate_tasks(session, registry, cfg, today)
    session.commit()
    rates = {of: patrol_coverage.rates(session, registry, of, start, end, now, within)
             for of in patrol_coverage.GROUPINGS}  # fmt: skip
    unvisited = patrol_coverage.unvisited(session, registry, cfg, today, now, within)
    return render_template(
        "field/overview.html",
        week=(start.date(), (end.date())),
        rates=rates,
        groupings=patrol_coverage.GROUPINGS,
        overdue=patrol_coverage.overdue_tasks(
            session, registry, now, limit=OVERDUE_LISTED, within=within
        ),
        overdue_total=patrol_coverage.count_overdue(session, now, within=within),
        unvisited=unvisited,
        unvisited_json=json_script(unvisited),
        unvisited_limit=patrol_coverage.UNVISITED_TASKS,
        schedules=[patrols.schedule_json(x, registry) for x in patrols.list_schedules(session)],
        plans=[
            inspections.plan_json(session, registry, p, account)
            for p in inspections.visible_plans(session, account)
        ],
    )


@bp.get("/field/evidence")
@permission_required("evidence.read")
def evidence_page():
    session = get_session()
    store = IssueSettings.from_config(current_app.config).store
    if evidence.scan_pending(
        session, layers(), FieldSettings.from_config(current_app.config), store
    ):
        session.commit()
    from geoservice.accounts.auth import current_account
    from geoservice.fieldwork.access import photo_checks

    within = inspections.evidence_scope(
        get_session(), current_account(), photo_checks(current_account(), layers())
    )
    total, rows = evidence.suspicious_rows(session, within, limit=200)
    return render_template(
        "field/evidence.html",
        total=total,
        rows=rows,
        units=evidence.counts_per_unit(session, within),
        flags=evidence.FLAGS,
    )


@bp.cli.command("generate-tasks")
@click.option("--date", "day", default=None, help="YYYY-MM-DD (default: today)")
@with_appcontext
def generate_tasks_command(day: str | None) -> None:
    """Creates the patrol tasks of every schedule for the period holding the date."""
    cfg = FieldSettings.from_config(current_app.config)
    from datetime import datetime

    when = date.fromisoformat(day) if day else datetime.now(cfg.tz).date()
    session = get_session()
    created = patrols.generate_tasks(session, layers(), cfg, when)
    session.commit()
    click.echo(f"{when.isoformat()}: 新建巡查任务 {created} 条")


@bp.cli.command("scan-photos")
@click.option("--limit", default=5000, show_default=True)
@with_appcontext
def scan_photos_command(limit: int) -> None:
    """Checks the photos not yet checked (EXIF time/position, reuse)."""
    session = get_session()
    n = evidence.scan_pending(
        session,
        layers(),
        FieldSettings.from_config(current_app.config),
        IssueSettings.from_config(current_app.config).store,
        limit,
    )
    session.commit()
    click.echo(f"已检查照片 {n} 张")
