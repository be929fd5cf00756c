"""/admin/notifications (Chinese): the queue's figures, the channels (secrets never shown:
only which are set), a form to add one, the dead letters with 重发. Blueprint `bp`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import select

from geoservice.accounts import audit
from geoservice.accounts.auth import current_account, permission_required, require
from geoservice.db import get_session
from geoservice.edge.issues import settings as issue_settings_in_force
from geoservice.errors import ApiError
from geoservice.notifications import intake, manage, outbox
from geoservice.notifications.models import CHANNEL_KINDS, IntakeBatch
from geoservice.service_errors import ServiceError
from geoservice.web.issues import report_map_settings
from geoservice.web.maps import json_script

bp = Blueprint("notifications", __name__, template_folder="templates")
ADMIN = "notifications.admin"
FORM_FIELDS = (
    "url",
    "host",
    "port",
    "security",
    "username",
    "sender",
    "password",
    "webhook_url",
    "sign_secret",
    "secret",
)


def _page(message: str | None = None, error: str | None = None, form: dict | None = None):
    session = get_session()
    _, dead = manage.deliveries(session, "dead", 100, 0)
    _, recent = manage.deliveries(session, None, 30, 0)
    return render_template(
        "notifications_admin.html",
        queue=outbox.queue_health(session),
        channels=manage.list_channels(session),
        dead=dead,
        recent=recent,
        kinds=CHANNEL_KINDS,
        message=message,
        error=error,
        form=form or {},
    )


@bp.get("/admin/notifications")
@permission_required(ADMIN)
def admin_page():
    return _page(request.args.get("msg"))


def _payload(form: Any) -> dict[str, Any]:
    kind = form.get("kind", "")
    values = {k: (form.get(k) or "").strip() for k in FORM_FIELDS}
    config = {k: values[k] for k in manage.CONFIG_FIELDS.get(kind, ()) if values.get(k)}
    secrets = {k: values[k] for k in manage.SECRET_FIELDS.get(kind, ()) if values.get(k)}
    return {
        "kind": kind,
        "name": form.get("name", ""),
        "enabled": form.get("enabled") == "1",
        "config": config,
        "secrets": secrets,
    }


@bp.post("/admin/notifications/channels")
@permission_required(ADMIN)
def add_channel():
    session = get_session()
    try:
        channel = manage.save_channel(session, _payload(request.form))
        audit.record(session, current_account(), "notify_channel.create", "notify_channel",
                     channel.id, after=manage.channel_view(channel))  # fmt: skip
    except ServiceError as exc:
        session.rollback()
        safe = {
            k: v
            for k, v in request.form.items()
            if k in ("kind", "name", "url", "host", "port", "security", "username", "sender")
        }
        return _page(error=exc.error, form=safe), exc.status
    session.commit()
    return redirect(url_for("notifications.admin_page", msg="已添加渠道"))


@bp.post("/admin/notifications/channels/<int:channel_id>/toggle")
@permission_required(ADMIN)
def toggle_channel(channel_id: int):
    session = get_session()
    current = next((c for c in manage.list_channels(session) if c["id"] == channel_id), None)
    if current is None:
        return _page(error=f"没有编号为 {channel_id} 的渠道"), 404
    channel = manage.save_channel(session, {"enabled": not current["enabled"]}, channel_id)
    audit.record(session, current_account(), "notify_channel.update", "notify_channel",
                 channel_id, before=current, after=manage.channel_view(channel))  # fmt: skip
    session.commit()
    return redirect(url_for("notifications.admin_page", msg="已更新渠道"))


@bp.post("/admin/notifications/replay")
@permission_required(ADMIN)
def replay():
    session = get_session()
    ids = [int(x) for x in request.form.getlist("id") if x.isdigit()]
    every = request.form.get("all") == "1"
    count = manage.replay(session, None if every else ids)
    replayed = {"ids": None if every else ids, "all": every, "replayed": count}
    audit.record(
        session, current_account(), "notify_delivery.replay", "notify_delivery", after=replayed
    )
    session.commit()
    return redirect(url_for("notifications.admin_page", msg=f"已重新排队 {count} 条"))


# --- the feedback-list confirmation queue (/intake) -----------------------------------------


def _county_planner():
    account = require("issues.dispatch")
    if account.area_id is not None or account.leader_id is not None:
        raise ApiError(403, "反馈清单导入需要不限辖区的账号（全县/全市）")
    return account


@bp.get("/intake")
@permission_required("issues.dispatch")
def intake_upload_page():
    _county_planner()
    batches = (
        get_session().scalars(select(IntakeBatch).order_by(IntakeBatch.id.desc()).limit(50)).all()
    )
    return render_template("intake_upload.html", batches=batches, error=None)


@bp.post("/intake")
@permission_required("issues.dispatch")
def intake_upload():
    account = _county_planner()
    upload = request.files.get("file")
    session = get_session()
    try:
        if upload is None or not upload.filename or not upload.filename.lower().endswith(".xlsx"):
            raise ServiceError("请选择 .xlsx 清单文件", field="file")
        batch = intake.create_batch(
            session,
            upload.read(),
            upload.filename,
            "测评反馈",
            issue_settings_in_force().categories,
            account,
        )
    except ServiceError as exc:
        session.rollback()
        return render_template("intake_upload.html", batches=[], error=exc.error), 422
    session.commit()
    return redirect(url_for("notifications.intake_page", batch_id=batch.id))


@bp.get("/intake/<int:batch_id>")
@permission_required("issues.dispatch")
def intake_page(batch_id: int):
    _county_planner()
    session = get_session()
    try:
        batch = intake.batch_view(session, batch_id)
    except ServiceError as exc:
        raise ApiError(404, exc.error) from None
    return render_template(
        "intake_batch.html",
        batch=batch,
        rows_json=json_script(batch["rows"]),
        map_settings=json_script(report_map_settings(session, False)),
    )
